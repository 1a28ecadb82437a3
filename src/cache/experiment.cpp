#include "cache/experiment.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include "common/hash.h"

namespace semcached::cache {
namespace {

constexpr double kZ95 = 1.959964;

bool ParseNumber(std::string_view text, double* out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(*out);
}

void Add(std::atomic<double>& a, double v) { a.fetch_add(v, std::memory_order_relaxed); }

// A rate's difference: successes/n of the arm against the control's.
Difference RateDifference(std::uint64_t k1, std::uint64_t n1, std::uint64_t k0, std::uint64_t n0) {
  Difference d;
  if (n1 == 0 || n0 == 0) return d;
  const double p1 = static_cast<double>(k1) / static_cast<double>(n1);
  const double p0 = static_cast<double>(k0) / static_cast<double>(n0);
  const double se =
      std::sqrt(p1 * (1 - p1) / static_cast<double>(n1) + p0 * (1 - p0) / static_cast<double>(n0));
  d = {p1 - p0, p1 - p0 - kZ95 * se, p1 - p0 + kZ95 * se, true};
  return d;
}

// A mean's difference from sums and sums of squares of n values each.
Difference MeanDifference(double sum1, double sq1, std::uint64_t n1, double sum0, double sq0,
                          std::uint64_t n0) {
  Difference d;
  if (n1 < 2 || n0 < 2) return d;
  auto moments = [](double sum, double sq, std::uint64_t n) {
    const double count = static_cast<double>(n);
    const double mean = sum / count;
    const double variance = std::max(0.0, (sq - count * mean * mean) / (count - 1));
    return std::pair{mean, variance / count};
  };
  const auto [m1, v1] = moments(sum1, sq1, n1);
  const auto [m0, v0] = moments(sum0, sq0, n0);
  const double se = std::sqrt(v1 + v0);
  d = {m1 - m0, m1 - m0 - kZ95 * se, m1 - m0 + kZ95 * se, true};
  return d;
}

}  // namespace

Result<ExperimentArm> ParseArm(std::string_view text) {
  ExperimentArm arm;
  bool has_threshold = false;
  std::size_t at = 0;
  while (at < text.size()) {
    while (at < text.size() && text[at] == ' ') ++at;
    std::size_t end = text.find(' ', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view part = text.substr(at, end - at);
    at = end;
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      if (!arm.name.empty())
        return InvalidArgument("arm '" + std::string(text) + "': '" + std::string(part) +
                               "' is neither its name nor a setting=value");
      arm.name = std::string(part);
      continue;
    }
    if (arm.name.empty())
      return InvalidArgument("arm '" + std::string(text) + "' must start with its name");
    const std::string_view key = part.substr(0, eq);
    double value = 0;
    if (!ParseNumber(part.substr(eq + 1), &value))
      return InvalidArgument("arm '" + arm.name + "': " + std::string(key) + " must be a number");
    if (key == "threshold") {
      if (!(value >= 0 && value <= 1))
        return InvalidArgument("arm '" + arm.name + "': threshold must be within 0 and 1");
      arm.threshold = static_cast<float>(value);
      has_threshold = true;
    } else if (key == "max_error_rate") {
      if (!(value >= 0 && value <= 0.5))
        return InvalidArgument("arm '" + arm.name + "': max_error_rate must be within 0 and 0.5");
      arm.max_error_rate = value;
    } else if (key == "weight") {
      if (!(value > 0)) return InvalidArgument("arm '" + arm.name + "': weight must be above 0");
      arm.weight = value;
    } else {
      return InvalidArgument("arm '" + arm.name + "': unknown setting '" + std::string(key) +
                             "' (threshold, max_error_rate, weight)");
    }
  }
  if (arm.name.empty()) return InvalidArgument("an arm needs a name");
  if (!has_threshold) return InvalidArgument("arm '" + arm.name + "' needs threshold=");
  return arm;
}

std::string ArmText(const ExperimentArm& arm) {
  char settings[96];
  std::snprintf(settings, sizeof settings, " threshold=%g", static_cast<double>(arm.threshold));
  std::string out = arm.name + settings;
  if (arm.max_error_rate > 0) {
    std::snprintf(settings, sizeof settings, " max_error_rate=%g", arm.max_error_rate);
    out += settings;
  }
  if (arm.weight != 1) {
    std::snprintf(settings, sizeof settings, " weight=%g", arm.weight);
    out += settings;
  }
  return out;
}

Result<std::vector<ExperimentArm>> ParseArms(const std::vector<std::string>& texts) {
  std::vector<ExperimentArm> arms;
  std::set<std::string> names;
  for (const auto& t : texts) {
    auto arm = ParseArm(t);
    if (!arm.ok()) return arm.status();
    if (!names.insert(arm->name).second)
      return InvalidArgument("two arms are named '" + arm->name + "'");
    arms.push_back(std::move(*arm));
  }
  if (arms.size() == 1) return InvalidArgument("an experiment needs at least two arms");
  return arms;
}

std::size_t ArmFor(const std::vector<ExperimentArm>& arms, std::string_view split_key,
                   std::uint64_t salt) {
  double total = 0;
  for (const auto& a : arms) total += a.weight;
  // The top 53 bits as a uniform number in [0, 1).
  const double u = static_cast<double>(Mix64(Fnv1a64(split_key, salt)) >> 11) * 0x1.0p-53;
  double upto = 0;
  for (std::size_t i = 0; i < arms.size(); ++i) {
    upto += arms[i].weight / total;
    if (u < upto) return i;
  }
  return arms.size() - 1;
}

void ArmCounters::AddCostSaved(double usd) {
  Add(cost_, usd);
  Add(cost_sq_, usd * usd);
}

void ArmCounters::AddLatency(double seconds) {
  timed.fetch_add(1, std::memory_order_relaxed);
  Add(latency_, seconds);
  Add(latency_sq_, seconds * seconds);
}

ArmTotals ArmCounters::Totals() const {
  ArmTotals t;
  t.lookups = lookups.load();
  t.exact_hits = exact_hits.load();
  t.semantic_hits = semantic_hits.load();
  t.withheld = withheld.load();
  t.verified = verified.load();
  t.verified_wrong = verified_wrong.load();
  t.reported_correct = reported_correct.load();
  t.reported_wrong = reported_wrong.load();
  t.cost_saved_usd = cost_.load();
  t.cost_saved_sq = cost_sq_.load();
  t.timed = timed.load();
  t.latency_s = latency_.load();
  t.latency_sq = latency_sq_.load();
  return t;
}

std::vector<ArmReport> CompareArms(const std::vector<ExperimentArm>& arms,
                                   const std::vector<ArmTotals>& totals) {
  std::vector<ArmReport> out;
  for (std::size_t i = 0; i < arms.size() && i < totals.size(); ++i) {
    ArmReport r;
    r.arm = arms[i];
    r.totals = totals[i];
    const ArmTotals& t = totals[i];
    const double n = static_cast<double>(t.lookups);
    if (t.lookups > 0) {
      r.hit_rate = static_cast<double>(t.exact_hits + t.semantic_hits) / n;
      r.false_hit_rate = static_cast<double>(t.verified_wrong + t.reported_wrong) / n;
      r.cost_per_lookup = t.cost_saved_usd / n;
    }
    if (t.timed > 0) r.mean_latency_ms = 1000 * t.latency_s / static_cast<double>(t.timed);
    if (i > 0) {
      const ArmTotals& c = totals[0];
      r.hit_rate_vs_control = RateDifference(t.exact_hits + t.semantic_hits, t.lookups,
                                             c.exact_hits + c.semantic_hits, c.lookups);
      r.false_hit_rate_vs_control = RateDifference(t.verified_wrong + t.reported_wrong, t.lookups,
                                                   c.verified_wrong + c.reported_wrong, c.lookups);
      r.cost_vs_control = MeanDifference(t.cost_saved_usd, t.cost_saved_sq, t.lookups,
                                         c.cost_saved_usd, c.cost_saved_sq, c.lookups);
      Difference latency =
          MeanDifference(t.latency_s, t.latency_sq, t.timed, c.latency_s, c.latency_sq, c.timed);
      r.latency_ms_vs_control = {1000 * latency.value, 1000 * latency.low, 1000 * latency.high,
                                 latency.known};
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace semcached::cache
