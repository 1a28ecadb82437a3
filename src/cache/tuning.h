// What-if tuning: which similarity threshold to choose, from labelled lookups.
//
// A threshold is a trade: lower serves more true rewordings and more related-but-different
// questions. Given lookups labelled with whether serving the candidate would have been right
// (pairs of questions a person labelled, and later the cache's own verified and reported
// hits), this says for each threshold what share of the right answers it serves (hit rate)
// and what share of the wrong ones (false-hit rate), and recommends the lowest threshold whose
// false-hit rate stays within a target. A lookup the guards refuse is never served, at any
// threshold. Used by `semcached tune` and the tuning route alike.
// Must not: embed, read files or know about HTTP (callers bring the similarities).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace semcached::cache {

struct LabelledLookup {
  float similarity = 0;  // cosine of the question to the candidate it would be served
  bool refused_by_guards = false;
  bool same_question = false;  // serving the candidate's answer would have been right
};

struct ThresholdRow {
  float threshold = 0;
  std::size_t hits = 0, false_hits = 0;  // right and wrong lookups served at this threshold
  double hit_rate = 0;                   // hits / right lookups
  double false_hit_rate = 0;             // false hits / wrong lookups
  double precision = 1;                  // hits / everything served (1 when nothing is)
  // Of the recent traffic (AddTrafficShares), the share whose best candidate reaches this
  // threshold: what the cache would serve, before the guards.
  double served_share = 0;
};

struct TuningReport {
  std::size_t same = 0, different = 0;                  // lookups labelled right and wrong
  std::size_t refused_same = 0, refused_different = 0;  // of those, refused by the guards
  // Of the ranking by similarity, guards aside: how well the embedder alone separates the two.
  double average_precision = 0;
  std::vector<ThresholdRow> rows;
  double target_false_hit_rate = 0.01;
  // The lowest threshold (to 0.001) at which the false-hit rate stays within the target, and
  // what it gives; none when no threshold up to 1 does (every wrong lookup at similarity 1).
  std::optional<ThresholdRow> recommended;
  std::size_t lookups = 0;  // recent lookups behind served_share (0: none recorded)
};

// Rows for thresholds from `from` to `to` in steps of `step`, and the recommendation.
TuningReport WhatIf(const std::vector<LabelledLookup>& lookups, double target_false_hit_rate,
                    float from = 0.5f, float to = 1.0f, float step = 0.01f);

// Fills served_share from the best similarity each recent lookup saw (1 for an exact hit).
void AddTrafficShares(TuningReport* report, const std::vector<float>& best_similarities);

// The report as JSON (keys as in the structs above, camelCase).
std::string TuningReportJson(const TuningReport& report);
// The report as a table for a terminal.
std::string TuningReportText(const TuningReport& report);
// The report back from its JSON (what the tuning route returns); nullopt if it is not one.
std::optional<TuningReport> TuningReportFromJson(const std::string& json);

}  // namespace semcached::cache
