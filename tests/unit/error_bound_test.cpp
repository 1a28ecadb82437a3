#include "cache/error_bound.h"

#include <cmath>

#include <gtest/gtest.h>

namespace semcached::cache {
namespace {

// The Beta(a, b) quantile by numerical integration of its density and bisection: a reference
// independent of the library the estimator uses.
double ReferenceBetaQuantile(double a, double b, double p) {
  const double log_norm = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b);
  auto cdf = [&](double x) {
    // Simpson's rule on [0, x] with the substitution that tames the density at 0 for a >= 1.
    const int n = 20000;
    const double h = x / n;
    double sum = 0;
    for (int i = 0; i <= n; ++i) {
      const double t = i * h;
      double f = 0;
      if (t > 0 && t < 1) f = std::exp(log_norm + (a - 1) * std::log(t) + (b - 1) * std::log1p(-t));
      if (t == 0 && a == 1) f = std::exp(log_norm);
      sum += f * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2);
    }
    return sum * h / 3;
  };
  double lo = 0, hi = 1;
  for (int i = 0; i < 50; ++i) {
    const double mid = (lo + hi) / 2;
    (cdf(mid) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

TEST(ErrorBound, UpperBoundIsTheBetaQuantile) {
  // No wrong observation in n, uniform prior: Beta(1, n + 1), whose quantile has a closed
  // form, 1 - (1 - p)^(1 / (n + 1)).
  for (int n : {0, 10, 147, 148, 1000}) {
    EXPECT_NEAR(BetaUpperBound(1, n + 1, 0.95), 1 - std::pow(0.05, 1.0 / (n + 1)), 1e-9) << n;
  }
  for (auto [a, b] : {std::pair{2.0, 10.0}, {3.0, 40.0}, {1.5, 200.0}, {6.0, 6.0}}) {
    EXPECT_NEAR(BetaUpperBound(a, b, 0.95), ReferenceBetaQuantile(a, b, 0.95), 1e-4)
        << a << "," << b;
  }
  EXPECT_EQ(BetaUpperBound(0, 5, 0.95), 1.0);  // no posterior
}

TEST(ErrorBound, AHitIsServedOnceEnoughRightObservationsSitAtOrBelowIt) {
  ErrorBoundOptions o;  // 2% at 95%: with no wrong one, 148 right ones are needed
  ErrorEvidence entry(1000);
  for (int i = 0; i < 147; ++i) entry.Add({0.90f, true});
  EXPECT_FALSE(DecideHit(0.92f, &entry, nullptr, nullptr, o).serve);
  entry.Add({0.90f, true});
  const ErrorDecision d = DecideHit(0.92f, &entry, nullptr, nullptr, o);
  EXPECT_TRUE(d.serve);
  EXPECT_NEAR(d.upper_bound, 1 - std::pow(0.05, 1.0 / 149), 1e-9);
  EXPECT_EQ(d.evidence, 148);
  // Observations above the hit's similarity, or more than a window below, say nothing of it.
  EXPECT_FALSE(DecideHit(0.85f, &entry, nullptr, nullptr, o).serve);
  ErrorBoundOptions narrow = o;
  narrow.window = 0.05f;
  EXPECT_FALSE(DecideHit(1.0f, &entry, nullptr, nullptr, narrow).serve);
  EXPECT_TRUE(DecideHit(1.0f, &entry, nullptr, nullptr, o).serve);
  // One wrong answer among them: the bound rises past 2%.
  entry.Add({0.91f, false});
  EXPECT_FALSE(DecideHit(0.92f, &entry, nullptr, nullptr, o).serve);
  EXPECT_TRUE(DecideHit(0.905f, &entry, nullptr, nullptr, o).serve);  // below the wrong one
}

TEST(ErrorBound, WiderScopesCountAtADiscount) {
  ErrorBoundOptions o;
  ErrorEvidence entry, cluster(10000), cache(10000);
  // Each scope holds the narrower ones' observations, as a cache keeps them.
  auto observe = [&](Observation x, bool in_entry, bool in_cluster) {
    if (in_entry) entry.Add(x);
    if (in_cluster) cluster.Add(x);
    cache.Add(x);
  };
  for (int i = 0; i < 200; ++i) observe({0.88f, true}, false, true);
  // 200 of the cluster's count as 100 of the entry's: not enough alone...
  ErrorDecision from_cluster = DecideHit(0.9f, &entry, &cluster, nullptr, o);
  EXPECT_DOUBLE_EQ(from_cluster.evidence, 100);
  EXPECT_FALSE(from_cluster.serve);
  // ...with 50 of the entry's own (counted once, at full weight), enough.
  for (int i = 0; i < 50; ++i) observe({0.89f, true}, true, true);
  EXPECT_DOUBLE_EQ(DecideHit(0.9f, &entry, &cluster, &cache, o).evidence, 150);
  EXPECT_TRUE(DecideHit(0.9f, &entry, &cluster, &cache, o).serve);
  // Wrong answers elsewhere in the cache weigh in too, at a tenth.
  for (int i = 0; i < 40; ++i) observe({0.87f, false}, false, false);
  const ErrorDecision d = DecideHit(0.9f, &entry, &cluster, &cache, o);
  EXPECT_DOUBLE_EQ(d.wrong, 4);
  EXPECT_DOUBLE_EQ(d.evidence, 154);
  EXPECT_FALSE(d.serve);
  // A looser bound serves it again (4 wrong in 154: the bound is about 6%).
  EXPECT_GT(d.upper_bound, 0.05);
  EXPECT_LT(d.upper_bound, 0.1);
  o.max_error_rate = 0.1;
  EXPECT_TRUE(DecideHit(0.9f, &entry, &cluster, &cache, o).serve);
}

TEST(ErrorBound, EvidenceKeepsTheMostRecentObservations) {
  ErrorEvidence e(3);
  e.Add({0.9f, false});
  e.Add({0.9f, true});
  e.Add({0.9f, true});
  e.Add({0.9f, true});  // replaces the oldest, the wrong one
  EXPECT_EQ(e.size(), 3u);
  EXPECT_EQ(e.Within(0.8f, 1.0f), (std::pair<std::size_t, std::size_t>{0, 3}));
}

}  // namespace
}  // namespace semcached::cache
