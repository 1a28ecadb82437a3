// A/B experiments on how a cache serves: arms, the stable split, per-arm counts, and each
// arm's difference from the first with its confidence interval.
//
// Choosing between a static threshold and an adaptive bound (or between two thresholds) on
// replayed data only says how they would have done on old traffic. An experiment serves live
// traffic by two or more arms at once: each request goes to the arm a stable hash of its split
// key picks (a user id, say), so one user always sees one arm and the arms see like traffic.
// Per arm: lookups, hits, verified and reported false hits, cost saved and latency; the first
// arm is the control the others are compared with.
// Must not: know HTTP (callers bring the split key) or decide hits (Cache::Search applies the
// arm's threshold and bound).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace semcached::cache {

// How an arm serves: a threshold (cosine), and with max_error_rate above 0 adaptive
// thresholds under that bound, the threshold then their floor.
struct ExperimentArm {
  std::string name;
  float threshold = 0;
  double max_error_rate = 0;
  double weight = 1;  // its share of split keys, relative to the other arms'
};

struct ExperimentOptions {
  // The request attribute whose value is the split key (requests may name the key themselves
  // instead); empty: only requests that name a key take part.
  std::string split_attribute;
  std::vector<ExperimentArm> arms;  // none: no experiment
};

// "NAME threshold=0.90 [max_error_rate=0.02] [weight=1]": one arm as the configuration
// writes it. Errors say what is wrong with which part.
Result<ExperimentArm> ParseArm(std::string_view text);
std::string ArmText(const ExperimentArm& arm);
// Arms from their texts: at least two, names unique.
Result<std::vector<ExperimentArm>> ParseArms(const std::vector<std::string>& texts);

// The arm a split key goes to: the same for the same key and salt on every instance and
// after every restart (a 64-bit hash of the key, placed among the arms' cumulative weights).
std::size_t ArmFor(const std::vector<ExperimentArm>& arms, std::string_view split_key,
                   std::uint64_t salt);

// What one arm has seen, as totals.
struct ArmTotals {
  std::uint64_t lookups = 0, exact_hits = 0, semantic_hits = 0;
  std::uint64_t withheld = 0;        // found, sent upstream for verification instead
  std::uint64_t verified = 0;        // withheld hits whose answer was compared with the model's
  std::uint64_t verified_wrong = 0;  // ... and disagreed: a false hit caught
  std::uint64_t reported_correct = 0, reported_wrong = 0;  // feedback on its answers
  double cost_saved_usd = 0, cost_saved_sq = 0;            // per lookup: sum, sum of squares
  std::uint64_t timed = 0;                                 // requests whose latency is known
  double latency_s = 0, latency_sq = 0;                    // their sum, sum of squares
};

// The live counters behind ArmTotals (lock-free: every request of the arm adds to them).
class ArmCounters {
 public:
  std::atomic<std::uint64_t> lookups{0}, exact_hits{0}, semantic_hits{0}, withheld{0}, verified{0},
      verified_wrong{0}, reported_correct{0}, reported_wrong{0}, timed{0};
  void AddCostSaved(double usd);
  void AddLatency(double seconds);
  ArmTotals Totals() const;

 private:
  std::atomic<double> cost_{0}, cost_sq_{0}, latency_{0}, latency_sq_{0};
};

// A difference, arm minus control, with its 95% interval (normal approximation: unpooled
// for rates, Welch for means).
struct Difference {
  double value = 0, low = 0, high = 0;
  bool known = false;  // both sides had data
};

struct ArmReport {
  ExperimentArm arm;
  ArmTotals totals;
  double hit_rate = 0;         // hits served / lookups
  double false_hit_rate = 0;   // (verified + reported false hits) / lookups
  double cost_per_lookup = 0;  // USD saved
  double mean_latency_ms = 0;
  // Against the first arm (unset for the first arm itself).
  Difference hit_rate_vs_control, false_hit_rate_vs_control, cost_vs_control, latency_ms_vs_control;
};

// The arms' totals as rates, each compared with the first.
std::vector<ArmReport> CompareArms(const std::vector<ExperimentArm>& arms,
                                   const std::vector<ArmTotals>& totals);

}  // namespace semcached::cache
