#include "cache/drift.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace semcached::cache {
namespace {

TEST(Drift, KolmogorovSmirnovStatisticAndPValue) {
  // a = {1, 2, 2, 3}, b = {2, 4}: after 1, F_a = 1/4, F_b = 0; after 2 (a tie), 3/4 and 1/2;
  // after 3, 1 and 1/2; D = 1/2.
  std::vector<float> a = {2, 1, 3, 2}, b = {4, 2};
  EXPECT_DOUBLE_EQ(KolmogorovSmirnov(a, b).statistic, 0.5);
  // The same sample twice: D 0, p 1.
  std::vector<float> x, y;
  for (int i = 0; i < 500; ++i) x.push_back(static_cast<float>(i) / 500);
  y = x;
  DriftTest same = KolmogorovSmirnov(x, y);
  EXPECT_EQ(same.statistic, 0);
  EXPECT_EQ(same.p_value, 1);
  // 1,000 points each, one grid shifted by 0.0604: lambda = (sqrt(500) + 0.12 + 0.11 /
  // sqrt(500)) x 0.0604 = 1.358, the Kolmogorov distribution's 5% point.
  std::vector<float> u, v;
  for (int i = 0; i < 1000; ++i) {
    u.push_back(static_cast<float>(i) / 1000);
    v.push_back(static_cast<float>(i) / 1000 + 0.0604f);
  }
  const DriftTest shifted = KolmogorovSmirnov(u, v);
  EXPECT_NEAR(shifted.statistic, 0.0604, 0.0011);
  EXPECT_NEAR(shifted.p_value, 0.05, 0.005);
}

TEST(Drift, TwoProportionsZTest) {
  // 50/100 against 30/100: pooled 0.4, standard error sqrt(0.24 x 0.02) = 0.0693, z = 2.887,
  // two-sided p = erfc(2.887 / sqrt 2) = 0.00389.
  const DriftTest t = TwoProportions(50, 100, 30, 100);
  EXPECT_DOUBLE_EQ(t.statistic, 0.2);
  EXPECT_NEAR(t.p_value, 0.00389, 0.00005);
  EXPECT_DOUBLE_EQ(TwoProportions(0, 10, 0, 10).p_value, 1);
}

TEST(Drift, AWindowUnlikeTheOnesBeforeIsAShift) {
  DriftOptions o;
  o.window = 200;
  o.reference_windows = 2;
  DriftMonitor m(o);
  // Three windows of the same traffic: best similarities spread over 0.5..0.7, one hit in ten.
  int closed_with_shift = 0;
  for (int i = 0; i < 600; ++i)
    closed_with_shift +=
        m.Record(0.5f + 0.2f * static_cast<float>((i * 37) % 200) / 200, i % 10 == 0);
  EXPECT_EQ(closed_with_shift, 0);
  DriftReport r = m.Report();
  EXPECT_EQ(r.windows, 3u);
  EXPECT_TRUE(r.compared);
  EXPECT_FALSE(r.similarity.shifted);
  EXPECT_FALSE(r.hit_rate.shifted);
  EXPECT_NEAR(r.window_hit_rate, 0.1, 1e-9);
  // Then a window of questions much nearer the entries, six in ten served.
  bool shift = false;
  for (int i = 0; i < 200; ++i)
    shift = m.Record(0.8f + 0.2f * static_cast<float>(i) / 200, i % 10 < 6) || shift;
  EXPECT_TRUE(shift);
  r = m.Report();
  EXPECT_TRUE(r.similarity.shifted);
  EXPECT_GT(r.similarity.statistic, 0.9);
  EXPECT_TRUE(r.hit_rate.shifted);
  EXPECT_NEAR(r.hit_rate.statistic, 0.5, 1e-9);
  // Lookups that found nothing count for the hit rate only.
  m.Reset();
  for (int i = 0; i < 200; ++i) m.Record(-1, false);
  EXPECT_EQ(m.Report().windows, 1u);
  EXPECT_FALSE(m.Report().compared);
}

}  // namespace
}  // namespace semcached::cache
