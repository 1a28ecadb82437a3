#include "cache/drift.h"

#include <algorithm>
#include <cmath>

namespace semcached::cache {

DriftTest KolmogorovSmirnov(std::vector<float>& a, std::vector<float>& b) {
  DriftTest t;
  if (a.empty() || b.empty()) return t;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  // The largest gap between the two empirical distribution functions, taken after each run
  // of equal values (ties move both functions at once).
  std::size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const float x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
    d = std::max(d, std::abs(static_cast<double>(i) / na - static_cast<double>(j) / nb));
  }
  t.statistic = d;
  const double ne = std::sqrt(na * nb / (na + nb));
  const double lambda = (ne + 0.12 + 0.11 / ne) * d;
  // Q(lambda) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 lambda^2); 1 for lambda near 0.
  if (lambda < 0.2) {
    t.p_value = 1;
  } else {
    double q = 0;
    for (int k = 1; k <= 100; ++k) {
      const double term = std::exp(-2.0 * k * k * lambda * lambda);
      q += (k % 2 ? 2 : -2) * term;
      if (term < 1e-12) break;
    }
    t.p_value = std::clamp(q, 0.0, 1.0);
  }
  return t;
}

DriftTest TwoProportions(std::size_t hits_a, std::size_t n_a, std::size_t hits_b, std::size_t n_b) {
  DriftTest t;
  if (n_a == 0 || n_b == 0) return t;
  const double pa = static_cast<double>(hits_a) / static_cast<double>(n_a);
  const double pb = static_cast<double>(hits_b) / static_cast<double>(n_b);
  t.statistic = pa - pb;
  const double pooled = static_cast<double>(hits_a + hits_b) / static_cast<double>(n_a + n_b);
  const double se = std::sqrt(pooled * (1 - pooled) *
                              (1 / static_cast<double>(n_a) + 1 / static_cast<double>(n_b)));
  if (se == 0) {
    t.p_value = pa == pb ? 1 : 0;
    return t;
  }
  t.p_value = std::erfc(std::abs(pa - pb) / se / std::sqrt(2.0));
  return t;
}

bool DriftMonitor::Record(float best_similarity, bool hit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (best_similarity >= 0) open_.similarities.push_back(best_similarity);
  ++open_.lookups;
  if (hit) ++open_.hits;
  return open_.lookups >= options_.window && Close();
}

bool DriftMonitor::Close() {
  DriftReport r;
  r.windows = report_.windows + 1;
  if (!closed_.empty()) {
    std::vector<float> reference;
    std::size_t lookups = 0, hits = 0;
    for (const Window& w : closed_) {
      reference.insert(reference.end(), w.similarities.begin(), w.similarities.end());
      lookups += w.lookups;
      hits += w.hits;
    }
    std::vector<float> now = open_.similarities;
    r.compared = true;
    r.similarity = KolmogorovSmirnov(now, reference);
    r.similarity.shifted = r.similarity.p_value < options_.alpha &&
                           r.similarity.statistic >= options_.min_similarity_effect;
    r.hit_rate = TwoProportions(open_.hits, open_.lookups, hits, lookups);
    r.hit_rate.shifted = r.hit_rate.p_value < options_.alpha &&
                         std::abs(r.hit_rate.statistic) >= options_.min_hit_rate_effect;
    r.window_hit_rate = static_cast<double>(open_.hits) / static_cast<double>(open_.lookups);
    r.reference_hit_rate = lookups ? static_cast<double>(hits) / static_cast<double>(lookups) : 0;
  }
  report_ = r;
  closed_.push_back(std::move(open_));
  open_ = {};
  while (closed_.size() > options_.reference_windows) closed_.pop_front();
  return r.similarity.shifted || r.hit_rate.shifted;
}

DriftReport DriftMonitor::Report() const {
  std::lock_guard<std::mutex> lock(mu_);
  return report_;
}

void DriftMonitor::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  open_ = {};
  closed_.clear();
  report_ = {};
}

}  // namespace semcached::cache
