#include "cache/error_bound.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/normal.hpp>

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

void ErrorCurve::Fit(const std::vector<Observation>& observations) {
  std::vector<Observation> sorted = observations;
  std::sort(sorted.begin(), sorted.end(),
            [](const Observation& a, const Observation& b) { return a.similarity < b.similarity; });
  blocks_.clear();
  for (const Observation& o : sorted) {
    // Labels at one similarity are one estimate, whatever order they were sorted in.
    if (!blocks_.empty() && blocks_.back().high == o.similarity) {
      blocks_.back().wrong += o.correct ? 0.0 : 1.0;
      blocks_.back().total += 1.0;
    } else {
      blocks_.push_back({o.similarity, o.similarity, o.correct ? 0.0 : 1.0, 1.0});
    }
    // The wrong rate must not rise with similarity: a block more often wrong than the one
    // below it joins it.
    while (blocks_.size() > 1) {
      Block& last = blocks_.back();
      Block& before = blocks_[blocks_.size() - 2];
      if (last.wrong * before.total < before.wrong * last.total) break;
      before.high = last.high;
      before.wrong += last.wrong;
      before.total += last.total;
      blocks_.pop_back();
    }
  }
}

CurveEstimate ErrorCurve::At(float similarity) const {
  // The block at or below the similarity: between two blocks the wrong rate lies between
  // theirs, and the lower block's is the one that does not understate it. Below every label
  // nothing is known.
  auto it = std::upper_bound(blocks_.begin(), blocks_.end(), similarity,
                             [](float s, const Block& b) { return s < b.low; });
  if (it == blocks_.begin()) return {};
  --it;
  return {it->wrong, it->total - it->wrong, static_cast<int>(it - blocks_.begin())};
}

namespace {

// A narrower scope's counts on top of a broader estimate counted as at most prior_strength
// labels.
void AddOnPrior(double scope_wrong, double scope_right, double prior_strength, double* wrong,
                double* right) {
  const double k = std::min(prior_strength, *wrong + *right);
  const double scale = *wrong + *right > 0 ? k / (*wrong + *right) : 0;
  *wrong = *wrong * scale + scope_wrong;
  *right = *right * scale + scope_right;
}

// Counts of a broader scope narrowed by a scope's own labels near the similarity: the broader
// counts hold the scope's too, so those count once, as the scope's.
void Narrow(const ErrorEvidence& scope, float similarity, float window, double prior_strength,
            double* wrong, double* right) {
  const auto [w, n] = scope.Within(similarity - window, similarity + window);
  if (n == 0) return;
  *wrong = std::max(0.0, *wrong - static_cast<double>(w));
  *right = std::max(0.0, *right - static_cast<double>(n - w));
  AddOnPrior(static_cast<double>(w), static_cast<double>(n - w), prior_strength, wrong, right);
}

// Whether a cluster's block of labels differs from the cache's block at the same similarity
// (two-sided, 95%, the normal approximation of the cluster's count under the cache's rate).
// Where it does not, the cluster's few labels would only widen the cache's estimate: scaled
// down to a prior, the cache's many labels would say less than they do.
bool DiffersFromCurve(const CurveEstimate& cluster, const CurveEstimate& cache) {
  const double n = cluster.wrong + cluster.right, total = cache.wrong + cache.right;
  if (n <= 0) return false;
  if (total <= 0) return true;
  const double p = cache.wrong / total, observed = cluster.wrong / n;
  const double se = std::sqrt(p * (1 - p) / n);
  if (se == 0) return observed != p;
  return std::abs(observed - p) / se > 1.959964;
}

}  // namespace

ErrorDecision EstimateHit(float similarity, const ErrorEvidence* entry, const ErrorCurve& curve,
                          const ErrorBoundOptions& o, double prior_strength,
                          const ErrorCurve* cluster) {
  const CurveEstimate c = curve.At(similarity);
  double wrong = c.wrong, right = c.right;
  if (const CurveEstimate n = cluster ? cluster->At(similarity) : CurveEstimate{};
      n.block >= 0 && DiffersFromCurve(n, c)) {
    // The cache's labels hold the cluster's too, but among many clusters' they weigh little:
    // the cache's estimate is a prior of at most prior_strength labels, the cluster's added.
    AddOnPrior(n.wrong, n.right, prior_strength, &wrong, &right);
  }
  if (entry != nullptr) Narrow(*entry, similarity, o.window, prior_strength, &wrong, &right);
  ErrorDecision d;
  const double a = o.prior_wrong + wrong, b = o.prior_right + right;
  d.wrong = wrong;
  d.evidence = wrong + right;
  d.upper_bound = BetaUpperBound(a, b, o.confidence);
  d.mean = a / (a + b);
  d.sd = std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)));
  d.serve = d.upper_bound <= o.max_error_rate;
  return d;
}

void ErrorBudget::Record(const HitCost& cost) {
  if (costs_.size() < window_) {
    costs_.push_back(cost);
  } else {
    costs_[next_] = cost;
    next_ = (next_ + 1) % window_;
  }
  // Early on every lookup counts; later the window changes slowly, and a sort every
  // `refresh_` lookups keeps the cost per lookup small.
  if (++since_refresh_ >= refresh_ || costs_.size() < refresh_) {
    since_refresh_ = 0;
    Recompute();
  }
}

void ErrorBudget::Recompute() {
  std::vector<HitCost> sorted;
  sorted.reserve(costs_.size());
  for (const HitCost& c : costs_)
    if (c.upper <= cap_) sorted.push_back(c);
  std::sort(sorted.begin(), sorted.end(),
            [](const HitCost& a, const HitCost& b) { return a.mean < b.mean; });
  const double z = boost::math::quantile(boost::math::normal_distribution<double>(), confidence_);
  const double budget = max_error_rate_ * static_cast<double>(costs_.size());
  std::unordered_map<int, double> band_sd;  // summed deviations per band
  double mean = 0, variance = 0, allowance = 0;
  for (const HitCost& c : sorted) {
    double& sd = band_sd[c.band];
    const double next_variance = variance - sd * sd + (sd + c.sd) * (sd + c.sd);
    if (mean + c.mean + z * std::sqrt(next_variance) > budget) break;
    mean += c.mean;
    variance = next_variance;
    sd += c.sd;
    allowance = c.mean;
  }
  allowance_ = allowance;
}

}  // namespace semcached::cache
