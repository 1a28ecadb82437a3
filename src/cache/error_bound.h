// Adaptive thresholds: may a hit at this similarity be served, under a bound on the error rate?
//
// A fixed threshold is one guess for every region of the embedding space. Here the decision
// rests on labelled lookups (feedback, verification, shadow comparisons): for a hit at
// similarity s, the observations at or below s, down to s - window, are at most as likely to
// be right as the hit is, if the chance of a wrong hit does not grow with similarity (the one
// assumption); so their share of wrong ones, under a Beta posterior, bounds the hit's error
// from above. The hit is served when the upper credible bound of that share, at the chosen
// confidence, stays within the cache's max_error_rate; otherwise the request goes upstream and
// its comparison becomes one more observation. Evidence comes from three scopes: the entry
// itself, its cluster of neighbouring entries, and the whole cache, the wider ones counted at
// a discount (a neighbour's label says less about this entry than its own).
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

 private:
  std::size_t capacity_;
  std::vector<Observation> observations_;  // a ring once full
  std::size_t next_ = 0;
};

struct ErrorBoundOptions {
  double max_error_rate = 0.02;
  double confidence = 0.95;  // of the upper bound
  float window = 0.10f;      // observations this far below the hit's similarity still count
  // Beta prior on the error rate: one wrong and one right (uniform).
  double prior_wrong = 1, prior_right = 1;
  // What one observation of the cluster, and of the whole cache, counts for against one of
  // the entry's own.
  double cluster_weight = 0.5, cache_weight = 0.1;
};

struct ErrorDecision {
  bool serve = false;
  double upper_bound = 1;          // of the error rate at this similarity
  double wrong = 0, evidence = 0;  // weighted observations that went into it
};

// The upper bound, at `confidence`, of a rate whose posterior is Beta(wrong, right) (priors
// included by the caller).
double BetaUpperBound(double wrong, double right, double confidence);

// Whether a hit at `similarity` may be served; null scopes have no observations. Each scope
// holds the narrower one's observations as well (the cluster the entry's, the cache the
// cluster's): each observation counts once, at the weight of the narrowest scope holding it.
ErrorDecision DecideHit(float similarity, const ErrorEvidence* entry, const ErrorEvidence* cluster,
                        const ErrorEvidence* cache, const ErrorBoundOptions& options);

}  // namespace semcached::cache
