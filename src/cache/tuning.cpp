#include "cache/tuning.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace semcached::cache {
namespace {

ThresholdRow RowAt(const std::vector<LabelledLookup>& lookups, float threshold, std::size_t same,
                   std::size_t different) {
  ThresholdRow row;
  row.threshold = threshold;
  for (const auto& l : lookups) {
    if (l.refused_by_guards || l.similarity < threshold) continue;
    (l.same_question ? row.hits : row.false_hits)++;
  }
  row.hit_rate = same ? static_cast<double>(row.hits) / static_cast<double>(same) : 0;
  row.false_hit_rate =
      different ? static_cast<double>(row.false_hits) / static_cast<double>(different) : 0;
  const std::size_t served = row.hits + row.false_hits;
  row.precision = served ? static_cast<double>(row.hits) / static_cast<double>(served) : 1;
  return row;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

std::string RowJson(const ThresholdRow& r) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(r.threshold));
  return std::string("{\"threshold\":") + buf + ",\"hits\":" + std::to_string(r.hits) +
         ",\"falseHits\":" + std::to_string(r.false_hits) + ",\"hitRate\":" + Number(r.hit_rate) +
         ",\"falseHitRate\":" + Number(r.false_hit_rate) + ",\"precision\":" + Number(r.precision) +
         ",\"servedShare\":" + Number(r.served_share) + "}";
}

}  // namespace

TuningReport WhatIf(const std::vector<LabelledLookup>& lookups, double target_false_hit_rate,
                    float from, float to, float step) {
  TuningReport report;
  report.target_false_hit_rate = target_false_hit_rate;
  for (const auto& l : lookups) {
    (l.same_question ? report.same : report.different)++;
    if (l.refused_by_guards) (l.same_question ? report.refused_same : report.refused_different)++;
  }
  // Thresholds counted in thousandths, so the grid has no accumulated rounding.
  const int lo = static_cast<int>(std::lround(from * 1000)),
            hi = static_cast<int>(std::lround(to * 1000));
  const int by = std::max(1, static_cast<int>(std::lround(step * 1000)));
  for (int t = lo; t <= hi; t += by)
    report.rows.push_back(
        RowAt(lookups, static_cast<float>(t) / 1000.f, report.same, report.different));

  // The similarity's own ranking, guards aside (what compares embedders): average precision.
  std::vector<const LabelledLookup*> ranked;
  for (const auto& l : lookups) ranked.push_back(&l);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const LabelledLookup* a, const LabelledLookup* b) {
                     return a->similarity > b->similarity;
                   });
  std::size_t tp = 0;
  double ap = 0;
  for (std::size_t i = 0; i < ranked.size(); ++i) {
    if (!ranked[i]->same_question) continue;
    ++tp;
    ap += static_cast<double>(tp) / static_cast<double>(i + 1);
  }
  report.average_precision = report.same ? ap / static_cast<double>(report.same) : 0;
  // What the guards let through, most similar first: the lowest threshold whose false hits
  // stay within the target.
  std::vector<const LabelledLookup*> served;
  for (const auto* l : ranked)
    if (!l->refused_by_guards) served.push_back(l);
  const auto allowed = static_cast<std::size_t>(
      std::floor(target_false_hit_rate * static_cast<double>(report.different) + 1e-9));
  // The (allowed + 1)-th most similar wrong lookup must stay out: the threshold goes just
  // above its similarity (to the next thousandth), or anywhere if there are not that many.
  std::vector<float> wrong;
  for (const auto* l : served)
    if (!l->same_question) wrong.push_back(l->similarity);
  int at = lo;
  if (wrong.size() > allowed)
    at = std::max(lo, static_cast<int>(std::floor(wrong[allowed] * 1000.f + 1e-4f)) + 1);
  if (at <= 1000)
    report.recommended =
        RowAt(lookups, static_cast<float>(at) / 1000.f, report.same, report.different);
  return report;
}

void AddTrafficShares(TuningReport* report, const std::vector<float>& best) {
  std::vector<float> sorted(best);
  std::sort(sorted.begin(), sorted.end());
  report->lookups = sorted.size();
  auto share_at = [&](float t) {
    if (sorted.empty()) return 0.0;
    const auto first = std::lower_bound(sorted.begin(), sorted.end(), t);
    return static_cast<double>(sorted.end() - first) / static_cast<double>(sorted.size());
  };
  for (auto& row : report->rows) row.served_share = share_at(row.threshold);
  if (report->recommended)
    report->recommended->served_share = share_at(report->recommended->threshold);
}

std::optional<TuningReport> TuningReportFromJson(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("thresholds") || !j["thresholds"].is_array())
    return std::nullopt;
  auto row_of = [](const nlohmann::json& r) {
    ThresholdRow row;
    row.threshold = r.value("threshold", 0.f);
    row.hits = r.value("hits", std::size_t{0});
    row.false_hits = r.value("falseHits", std::size_t{0});
    row.hit_rate = r.value("hitRate", 0.0);
    row.false_hit_rate = r.value("falseHitRate", 0.0);
    row.precision = r.value("precision", 1.0);
    row.served_share = r.value("servedShare", 0.0);
    return row;
  };
  TuningReport out;
  out.same = j.value("same", std::size_t{0});
  out.different = j.value("different", std::size_t{0});
  if (j.contains("refusedByGuards") && j["refusedByGuards"].is_object()) {
    out.refused_same = j["refusedByGuards"].value("same", std::size_t{0});
    out.refused_different = j["refusedByGuards"].value("different", std::size_t{0});
  }
  out.average_precision = j.value("averagePrecision", 0.0);
  out.target_false_hit_rate = j.value("targetFalseHitRate", 0.01);
  out.lookups = j.value("lookups", std::size_t{0});
  if (j.contains("recommended") && j["recommended"].is_object())
    out.recommended = row_of(j["recommended"]);
  for (const auto& r : j["thresholds"])
    if (r.is_object()) out.rows.push_back(row_of(r));
  return out;
}

std::string TuningReportJson(const TuningReport& r) {
  std::string out =
      "{\"same\":" + std::to_string(r.same) + ",\"different\":" + std::to_string(r.different) +
      ",\"refusedByGuards\":{\"same\":" + std::to_string(r.refused_same) +
      ",\"different\":" + std::to_string(r.refused_different) +
      "},\"averagePrecision\":" + Number(r.average_precision) +
      ",\"targetFalseHitRate\":" + Number(r.target_false_hit_rate) +
      ",\"lookups\":" + std::to_string(r.lookups) +
      ",\"recommended\":" + (r.recommended ? RowJson(*r.recommended) : std::string("null")) +
      ",\"thresholds\":[";
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    if (i) out += ',';
    out += RowJson(r.rows[i]);
  }
  return out + "]}";
}

std::string TuningReportText(const TuningReport& r) {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line,
                "%zu lookups that should be served, %zu that should not; the guards refuse %zu "
                "and %zu of them\naverage precision of the similarity (guards aside) %.3f\n\n",
                r.same, r.different, r.refused_same, r.refused_different, r.average_precision);
  out += line;
  const bool traffic = r.lookups > 0;
  std::snprintf(line, sizeof line, "%10s %10s %15s %10s %8s %11s%s\n", "threshold", "hit rate",
                "false-hit rate", "precision", "hits", "false hits",
                traffic ? "  traffic served" : "");
  out += line;
  for (const auto& row : r.rows) {
    std::snprintf(line, sizeof line, "%10.2f %9.1f%% %14.2f%% %9.1f%% %8zu %11zu",
                  static_cast<double>(row.threshold), 100 * row.hit_rate, 100 * row.false_hit_rate,
                  100 * row.precision, row.hits, row.false_hits);
    out += line;
    if (traffic) {
      std::snprintf(line, sizeof line, " %14.1f%%", 100 * row.served_share);
      out += line;
    }
    out += '\n';
  }
  if (traffic) {
    std::snprintf(line, sizeof line,
                  "(traffic served: of the last %zu lookups, those whose best candidate reaches "
                  "the threshold, before the guards)\n",
                  r.lookups);
    out += line;
  }
  if (r.recommended) {
    std::snprintf(line, sizeof line,
                  "\nrecommended: similarity_threshold = %.3f (false hits at most %.2f%%): hit "
                  "rate %.1f%%, false-hit rate %.2f%%, precision %.1f%%\n",
                  static_cast<double>(r.recommended->threshold), 100 * r.target_false_hit_rate,
                  100 * r.recommended->hit_rate, 100 * r.recommended->false_hit_rate,
                  100 * r.recommended->precision);
  } else {
    std::snprintf(line, sizeof line,
                  "\nno threshold keeps false hits within %.2f%%: too many wrong candidates are "
                  "identical to their question (similarity 1)\n",
                  100 * r.target_false_hit_rate);
  }
  out += line;
  return out;
}

}  // namespace semcached::cache
