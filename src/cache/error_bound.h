// Adaptive thresholds: may a hit at this similarity be served, under a bound on the error rate?
//
// A fixed threshold is one guess for every region of the embedding space. Here the decision
// rests on labelled lookups (feedback, verification, shadow comparisons). The cache's labels
// give a curve of the chance that a hit is wrong against its similarity (ErrorCurve: the only
// assumption is that it does not grow with similarity); an entry's own labels move its
// estimate from there (EstimateHit), each estimate a Beta posterior with its uncertainty.
//
// The bound is on the share of requests answered wrongly (what a user of the cache sees, and
// what a static threshold is judged by), not on the share of hits: a hit whose own error
// bound is within max_error_rate is served, and others while the recent lookups' estimates,
// summed over the hits served with the sum's uncertainty, stay within max_error_rate of all
// lookups (ErrorBudget). Misses and exact hits cost nothing, so the budget goes to the
// semantic hits least likely wrong. A hit not served goes upstream, and its comparison
// becomes one more label.
// Must not: embed, cluster or keep time (callers keep the scopes and bring the similarity).
#pragma once

#include <cstddef>
#include <vector>

namespace semcached::cache {

struct Observation {
  float similarity = 0;
  bool correct = false;
};

// The observations of one scope, the most recent `capacity` of them.
class ErrorEvidence {
 public:
  explicit ErrorEvidence(std::size_t capacity = 256) : capacity_(capacity) {}
  void Add(Observation o);
  // Observations with similarity in [low, high]: (wrong, total).
  std::pair<std::size_t, std::size_t> Within(float low, float high) const;
  std::size_t size() const { return observations_.size(); }
  const std::vector<Observation>& observations() const { return observations_; }

 private:
  std::size_t capacity_;
  std::vector<Observation> observations_;  // a ring once full
  std::size_t next_ = 0;
};

struct ErrorBoundOptions {
  double max_error_rate = 0.02;
  double confidence = 0.95;  // of the upper bound
  float window = 0.10f;      // an entry's own labels this near the hit's similarity count
  // Beta prior on the error rate: one wrong and one right (uniform).
  double prior_wrong = 1, prior_right = 1;
};

struct ErrorDecision {
  bool serve = false;
  double upper_bound = 1;          // of the error rate at this similarity
  double mean = 0.5, sd = 0.29;    // of its posterior
  double wrong = 0, evidence = 0;  // (weighted) labels that went into it
};

// The upper bound, at `confidence`, of a rate whose posterior is Beta(wrong, right) (priors
// included by the caller).
double BetaUpperBound(double wrong, double right, double confidence);

// The chance that a hit at a given similarity is wrong, over a whole scope's observations:
// the isotonic fit (pool adjacent violators) of wrong against similarity, the only shape
// assumed being that it does not grow with similarity. A window around the hit would be
// biased toward its lower edge, where hits are more frequent and more often wrong; the fit
// pools exactly as far as the data need. Each pooled block is one estimate (a Beta posterior
// of its wrong and right labels).
struct CurveEstimate {
  double wrong = 0, right = 0;  // the labels of the block the similarity falls in
  int block = -1;               // -1: no labels at all
};
class ErrorCurve {
 public:
  void Fit(const std::vector<Observation>& observations);
  CurveEstimate At(float similarity) const;
  std::size_t blocks() const { return blocks_.size(); }

 private:
  struct Block {
    float low, high;  // the similarities it covers
    double wrong, total;
  };
  std::vector<Block> blocks_;  // by similarity, ascending
};

// A semantic hit's error estimate: the cache's curve's block as the prior; on top, the block
// of the entry's cluster's own curve (its labels, fitted the same way) where it differs from
// the cache's at 95% (two-sided; elsewhere the cache's many labels say more), then the entry's own
// labels (within `window` of the similarity, either side), each time the broader estimate
// counted at most as `prior_strength` labels so that the narrower record can move it.
ErrorDecision EstimateHit(float similarity, const ErrorEvidence* entry, const ErrorCurve& curve,
                          const ErrorBoundOptions& options, double prior_strength = 50,
                          const ErrorCurve* cluster = nullptr);

// The error a cache may spend, as the share of recent lookups it answers wrongly, and which
// hits it buys. The recent lookups' would-be hits, sorted by estimated error, are served from
// the lowest up while the upper bound of their summed error stays within max_error_rate of
// all the lookups; the estimate of the last one served is the allowance a new hit's estimate
// must not exceed. The sum's bound: hits whose estimates rest on the same evidence (the same
// similarity band) err together, so their deviations add; bands rest on disjoint
// observations, so theirs add in quadrature. Recomputed every `refresh` lookups.
struct HitCost {
  double mean = 0, sd = 0;  // the hit's error estimate (0, 0 for an exact hit)
  double upper = 0;         // its upper bound
  int band = 0;             // which evidence it rests on
};
class ErrorBudget {
 public:
  static constexpr double kNoHit = 2;  // the mean of a lookup that found nothing to serve
  explicit ErrorBudget(std::size_t window = 4096, std::size_t refresh = 128)
      : window_(window), refresh_(refresh) {}
  void Configure(double max_error_rate, double confidence, double cap) {
    max_error_rate_ = max_error_rate;
    confidence_ = confidence;
    cap_ = cap;
  }
  // One lookup: what its hit would cost (HitCost{} for an exact hit, mean kNoHit for none).
  void Record(const HitCost& cost);
  // The largest estimated error a hit may carry now to be served. A hit whose error bound is
  // above the cap is not served however much budget is left (nor counted in the budget): too
  // little is known of it.
  double Allowance() const { return allowance_; }

 private:
  void Recompute();
  std::size_t window_, refresh_;
  double max_error_rate_ = 0, confidence_ = 0.95, cap_ = 0.5;
  std::vector<HitCost> costs_;  // a ring of the last `window_` lookups
  std::size_t next_ = 0, since_refresh_ = 0;
  double allowance_ = 0;
};

}  // namespace semcached::cache
