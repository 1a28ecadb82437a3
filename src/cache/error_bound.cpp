#include "cache/error_bound.h"

#include <algorithm>

#include <boost/math/distributions/beta.hpp>

namespace semcached::cache {

void ErrorEvidence::Add(Observation o) {
  if (observations_.size() < capacity_) {
    observations_.push_back(o);
    return;
  }
  observations_[next_] = o;
  next_ = (next_ + 1) % capacity_;
}

std::pair<std::size_t, std::size_t> ErrorEvidence::Within(float low, float high) const {
  std::size_t wrong = 0, total = 0;
  for (const auto& o : observations_) {
    if (o.similarity < low || o.similarity > high) continue;
    ++total;
    if (!o.correct) ++wrong;
  }
  return {wrong, total};
}

double BetaUpperBound(double wrong, double right, double confidence) {
  if (wrong <= 0 || right <= 0) return 1;  // no posterior: nothing is known
  const boost::math::beta_distribution<double> posterior(wrong, right);
  return boost::math::quantile(posterior, confidence);
}

ErrorDecision DecideHit(float similarity, const ErrorEvidence* entry, const ErrorEvidence* cluster,
                        const ErrorEvidence* cache, const ErrorBoundOptions& o) {
  ErrorDecision d;
  double wrong = 0, total = 0;
  // Each scope holds the narrower one's observations too: those count once, at the narrowest
  // scope's weight (a wider ring may have dropped some the narrower keeps: never below 0).
  std::size_t inner_wrong = 0, inner_total = 0;
  auto add = [&](const ErrorEvidence* scope, double weight) {
    if (scope == nullptr) return;
    const auto [w, n] = scope->Within(similarity - o.window, similarity);
    const std::size_t own_wrong = w > inner_wrong ? w - inner_wrong : 0;
    const std::size_t own_total = n > inner_total ? n - inner_total : 0;
    wrong += weight * static_cast<double>(own_wrong);
    total += weight * static_cast<double>(std::max(own_total, own_wrong));
    inner_wrong = std::max(w, inner_wrong);
    inner_total = std::max(n, inner_total);
  };
  add(entry, 1.0);
  add(cluster, o.cluster_weight);
  add(cache, o.cache_weight);
  d.wrong = wrong;
  d.evidence = total;
  d.upper_bound =
      BetaUpperBound(o.prior_wrong + wrong, o.prior_right + (total - wrong), o.confidence);
  d.serve = d.upper_bound <= o.max_error_rate;
  return d;
}

}  // namespace semcached::cache
