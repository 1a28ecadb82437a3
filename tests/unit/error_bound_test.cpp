#include "cache/error_bound.h"

#include <algorithm>
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

TEST(ErrorCurve, PoolsAdjacentViolatorsSoTheWrongRateNeverRisesWithSimilarity) {
  // Wrong at 0.80 and 0.86, right at 0.83: 0.83 (rate 0) below 0.86 (rate 1) violates the
  // order, so they pool into one block of rate 1/2; 0.90 and 0.95 are right (rate 0).
  ErrorCurve curve;
  curve.Fit({{0.95f, true}, {0.80f, false}, {0.86f, false}, {0.83f, true}, {0.90f, true}});
  ASSERT_EQ(curve.blocks(), 3u);
  EXPECT_EQ(curve.At(0.80f).wrong, 1);
  EXPECT_EQ(curve.At(0.80f).right, 0);
  const CurveEstimate pooled = curve.At(0.85f);
  EXPECT_EQ(pooled.wrong, 1);
  EXPECT_EQ(pooled.right, 1);
  EXPECT_EQ(curve.At(0.83f).block, pooled.block);
  // Between two blocks, the one below (the higher rate); above every label, the top block;
  // below every label, nothing is known.
  EXPECT_EQ(curve.At(0.88f).block, pooled.block);
  EXPECT_EQ(curve.At(0.99f).right, 2);
  EXPECT_EQ(curve.At(0.70f).block, -1);
  // No labels, no blocks.
  curve.Fit({});
  EXPECT_EQ(curve.At(0.9f).block, -1);
}

TEST(ErrorCurve, LabelsAtOneSimilarityAreOneBlockInWhateverOrder) {
  // Wrong labels sorted before right ones at the same similarity would otherwise stand as a
  // block of their own below a block of right ones, and a hit there would read only the latter.
  std::vector<Observation> labels(30, {0.9f, false});
  labels.insert(labels.end(), 630, {0.9f, true});
  labels.push_back({0.85f, false});  // more often wrong below: a block of its own
  ErrorCurve curve;
  curve.Fit(labels);
  EXPECT_EQ(curve.blocks(), 2u);
  EXPECT_EQ(curve.At(0.9f).wrong, 30);
  EXPECT_EQ(curve.At(0.9f).right, 630);
  std::reverse(labels.begin(), labels.end());
  curve.Fit(labels);
  EXPECT_EQ(curve.blocks(), 2u);
  EXPECT_EQ(curve.At(0.9f).wrong, 30);
}

TEST(ErrorCurve, AClustersCurveNarrowsTheCachesBeforeTheEntrysOwnLabels) {
  // The cache's labels at 0.9: 20 wrong and 80 right elsewhere, 1000 right in one cluster.
  std::vector<Observation> labels(20, {0.9f, false});
  labels.insert(labels.end(), 1080, {0.9f, true});
  ErrorCurve curve, cluster;
  curve.Fit(labels);
  cluster.Fit(std::vector<Observation>(1000, {0.9f, true}));
  ErrorBoundOptions o;
  o.max_error_rate = 0.006;
  // The cache's curve alone: Beta(21, 1081), its bound far above 0.6%.
  EXPECT_FALSE(EstimateHit(0.9f, nullptr, curve, o).serve);
  // The cache's block (20 wrong, 1080 right) as a prior of 50 labels, the cluster's block
  // (1000 right) on top: Beta(1 + 20 * 50 / 1100, 1 + 1080 * 50 / 1100 + 1000).
  const ErrorDecision d = EstimateHit(0.9f, nullptr, curve, o, 50, &cluster);
  const double wrong = 20.0 * 50 / 1100, right = 1080.0 * 50 / 1100 + 1000;
  EXPECT_NEAR(d.mean, (1 + wrong) / (2 + wrong + right), 1e-12);
  EXPECT_TRUE(d.serve);
  // Below every label of the cluster its curve says nothing: the cache's alone.
  EXPECT_DOUBLE_EQ(EstimateHit(0.85f, nullptr, curve, o, 50, &cluster).mean,
                   EstimateHit(0.85f, nullptr, curve, o).mean);
  // An entry of the cluster wrong 3 times there: those are in the cluster's and the cache's
  // labels too; the estimate so far (less the entry's) counts as 50 labels under them.
  std::vector<Observation> in_cluster(1000, {0.9f, true});
  ErrorEvidence entry;
  for (int i = 0; i < 3; ++i) {
    entry.Add({0.9f, false});
    in_cluster.push_back({0.9f, false});
    labels.push_back({0.9f, false});
  }
  curve.Fit(labels);
  cluster.Fit(in_cluster);
  double w = 23.0 * 50 / 1103 + 3, r = 1080.0 * 50 / 1103 + 1000;  // after the cluster
  w -= 3;
  const double scale = 50 / (w + r);
  w = w * scale + 3;
  r = r * scale;
  const ErrorDecision own = EstimateHit(0.9f, &entry, curve, o, 50, &cluster);
  EXPECT_NEAR(own.mean, (1 + w) / (2 + w + r), 1e-9);
  EXPECT_FALSE(own.serve);
}

TEST(ErrorCurve, AHitsEstimateIsTheBetaPosteriorOfItsBlockAndItsEntrysOwnLabels) {
  std::vector<Observation> labels;
  for (int i = 0; i < 98; ++i)
    labels.push_back({0.9f + 0.0005f * static_cast<float>(i % 10), true});
  labels.push_back({0.91f, false});
  labels.push_back({0.92f, false});
  ErrorCurve curve;
  curve.Fit(labels);
  ErrorBoundOptions o;
  o.max_error_rate = 0.1;
  // The two wrong ones above the right ones pool everything into one block: 2 wrong,
  // 98 right, posterior Beta(3, 99).
  const ErrorDecision d = EstimateHit(0.92f, nullptr, curve, o);
  EXPECT_DOUBLE_EQ(d.mean, 3.0 / 102);
  EXPECT_NEAR(d.sd, std::sqrt(3.0 * 99 / (102.0 * 102 * 103)), 1e-12);
  EXPECT_NEAR(d.upper_bound, ReferenceBetaQuantile(3, 99, 0.95), 1e-4);
  EXPECT_TRUE(d.serve);
  // The two wrong labels were one entry's: the block without them (98 right) counts as 50
  // labels, the entry's 2 wrong come on top: Beta(1 + 2, 1 + 50).
  ErrorEvidence entry;
  entry.Add({0.91f, false});
  entry.Add({0.92f, false});
  const ErrorDecision own = EstimateHit(0.92f, &entry, curve, o);
  EXPECT_NEAR(own.mean, 3.0 / 54, 1e-12);
  EXPECT_FALSE(own.serve);
  // Its labels far from the hit's similarity do not count.
  ErrorEvidence far;
  far.Add({0.5f, false});
  EXPECT_DOUBLE_EQ(EstimateHit(0.92f, &far, curve, o).mean, d.mean);
  // Nothing known: the uniform prior.
  EXPECT_DOUBLE_EQ(EstimateHit(0.92f, nullptr, ErrorCurve{}, o).mean, 0.5);
}

TEST(ErrorBudget, SpendsTheBudgetOnTheHitsLeastLikelyWrong) {
  // 100 lookups: 94 found nothing, 6 hits whose estimates are exact (no deviation), at
  // 0.05, 0.1, 0.2, 0.3, 0.4, 0.45. At 2% the budget is 2 wrong answers: the first five cost
  // 1.05, the sixth would make 1.5: all served, allowance 0.45. At 1%, 1 wrong: 0.05 + 0.1 +
  // 0.2 + 0.3 = 0.65, and 0.4 more would make 1.05: allowance 0.3.
  ErrorBudget budget(100, 1);
  budget.Configure(0.02, 0.95, 0.5);
  for (int i = 0; i < 94; ++i) budget.Record({ErrorBudget::kNoHit, 0, ErrorBudget::kNoHit, 0});
  for (double m : {0.05, 0.1, 0.2, 0.3, 0.4, 0.45}) budget.Record({m, 0, m, 1});
  EXPECT_DOUBLE_EQ(budget.Allowance(), 0.45);
  budget.Configure(0.01, 0.95, 0.5);
  budget.Record({ErrorBudget::kNoHit, 0, ErrorBudget::kNoHit, 0});  // recomputes
  EXPECT_DOUBLE_EQ(budget.Allowance(), 0.3);
  // A hit whose bound is above the cap is never bought.
  budget.Configure(0.5, 0.95, 0.35);
  budget.Record({ErrorBudget::kNoHit, 0, ErrorBudget::kNoHit, 0});
  EXPECT_DOUBLE_EQ(budget.Allowance(), 0.3);
}

TEST(ErrorBudget, HitsOnTheSameEvidenceErrTogether) {
  // Two hits, each 0.1 +- 0.1, in 20 lookups at 2% (a budget of 0.4 wrong answers), z = 1.645.
  // On one block their deviations add: 0.2 + 1.645 x 0.2 = 0.53 > 0.4, so only the first is
  // bought (0.1 + 0.1645 = 0.26). On two blocks they add in quadrature: 0.2 + 1.645 x 0.141
  // = 0.43 > 0.4 still; at a budget of 0.45 (2.25%) both are bought.
  auto allowance = [](int second_block, double rate) {
    ErrorBudget budget(20, 1);
    budget.Configure(rate, 0.95, 0.5);
    for (int i = 0; i < 18; ++i) budget.Record({ErrorBudget::kNoHit, 0, ErrorBudget::kNoHit, 0});
    budget.Record({0.1, 0.1, 0.3, 0});
    budget.Record({0.1000001, 0.1, 0.3, second_block});
    return budget.Allowance();
  };
  EXPECT_DOUBLE_EQ(allowance(0, 0.02), 0.1);
  EXPECT_DOUBLE_EQ(allowance(1, 0.02), 0.1);
  EXPECT_DOUBLE_EQ(allowance(0, 0.0225), 0.1);
  EXPECT_DOUBLE_EQ(allowance(1, 0.0225), 0.1000001);
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
