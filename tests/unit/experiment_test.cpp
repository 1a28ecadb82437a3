// A/B experiments (cache/experiment.h): arms as the configuration writes them, a split that
// is stable per key and follows the weights, and the arms' differences with the intervals
// the normal approximation gives.
#include "cache/experiment.h"

#include <cmath>
#include <string>

#include <gtest/gtest.h>

namespace semcached::cache {
namespace {

TEST(ExperimentArms, ParseWhatTheConfigurationWritesAndRefuseTheRest) {
  auto arm = ParseArm("adaptive threshold=0.80 max_error_rate=0.02 weight=3");
  ASSERT_TRUE(arm.ok()) << arm.status().ToString();
  EXPECT_EQ(arm->name, "adaptive");
  EXPECT_FLOAT_EQ(arm->threshold, 0.80f);
  EXPECT_DOUBLE_EQ(arm->max_error_rate, 0.02);
  EXPECT_DOUBLE_EQ(arm->weight, 3);
  EXPECT_EQ(ArmText(*arm), "adaptive threshold=0.8 max_error_rate=0.02 weight=3");
  auto again = ParseArm(ArmText(*arm));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->name, arm->name);
  EXPECT_DOUBLE_EQ(again->weight, arm->weight);
  EXPECT_EQ(ArmText(*ParseArm("  static   threshold=0.9 ")), "static threshold=0.9");

  for (const char* bad :
       {"", "threshold=0.9", "static", "static threshold=1.5", "static threshold=abc",
        "static threshold=0.9 colour=red", "static threshold=0.9 weight=0",
        "static threshold=0.9 max_error_rate=0.7", "static other threshold=0.9",
        "static threshold=nan"}) {
    auto refused = ParseArm(bad);
    EXPECT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ParseArms({"a threshold=0.9"}).ok());  // one arm is no experiment
  EXPECT_FALSE(ParseArms({"a threshold=0.9", "a threshold=0.8"}).ok());
  EXPECT_EQ(ParseArms({"a threshold=0.9", "b threshold=0.8"})->size(), 2u);
  EXPECT_TRUE(ParseArms({})->empty());
}

TEST(ExperimentSplit, StablePerKeyAndInProportionToTheWeights) {
  const std::vector<ExperimentArm> arms = {{"control", 0.9f, 0, 1}, {"treatment", 0.8f, 0, 3}};
  std::size_t treatment = 0;
  const int keys = 20000;
  for (int i = 0; i < keys; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const std::size_t a = ArmFor(arms, user, 7);
    EXPECT_EQ(ArmFor(arms, user, 7), a);  // the same key, the same arm
    treatment += a;
  }
  // 3 of 4 shares; the binomial standard deviation is about 0.3%.
  EXPECT_NEAR(static_cast<double>(treatment) / keys, 0.75, 0.015);
  // Another salt (another cache) splits the same keys independently.
  std::size_t agree = 0;
  for (int i = 0; i < keys; ++i) {
    const std::string user = "user-" + std::to_string(i);
    agree += ArmFor(arms, user, 7) == ArmFor(arms, user, 8);
  }
  EXPECT_NEAR(static_cast<double>(agree) / keys, 0.75 * 0.75 + 0.25 * 0.25, 0.02);
}

TEST(ExperimentCompare, DifferencesAndIntervalsAreTheNormalApproximations) {
  const std::vector<ExperimentArm> arms = {{"control", 0.9f, 0, 1}, {"looser", 0.8f, 0, 1}};
  ArmTotals control, looser;
  control.lookups = 1000;
  control.exact_hits = 100;
  control.semantic_hits = 200;
  control.reported_wrong = 5;
  looser.lookups = 1000;
  looser.semantic_hits = 400;
  looser.verified_wrong = 10;
  looser.reported_wrong = 10;
  // Latency: control 100 requests of 2 ms and 100 of 4 ms; looser 200 of 1 ms.
  control.timed = 200;
  control.latency_s = 100 * 0.002 + 100 * 0.004;
  control.latency_sq = 100 * 0.002 * 0.002 + 100 * 0.004 * 0.004;
  looser.timed = 200;
  looser.latency_s = 200 * 0.001;
  looser.latency_sq = 200 * 0.001 * 0.001;
  const auto r = CompareArms(arms, {control, looser});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_DOUBLE_EQ(r[0].hit_rate, 0.3);
  EXPECT_DOUBLE_EQ(r[0].false_hit_rate, 0.005);
  EXPECT_FALSE(r[0].hit_rate_vs_control.known);  // the control is not compared with itself
  EXPECT_DOUBLE_EQ(r[1].hit_rate, 0.4);
  EXPECT_DOUBLE_EQ(r[1].false_hit_rate, 0.02);
  // 0.4 - 0.3, se = sqrt(0.4 * 0.6 / 1000 + 0.3 * 0.7 / 1000) = 0.0212132.
  const Difference& h = r[1].hit_rate_vs_control;
  ASSERT_TRUE(h.known);
  EXPECT_NEAR(h.value, 0.1, 1e-12);
  EXPECT_NEAR(h.low, 0.1 - 1.959964 * 0.0212132, 1e-6);
  EXPECT_NEAR(h.high, 0.1 + 1.959964 * 0.0212132, 1e-6);
  const Difference& f = r[1].false_hit_rate_vs_control;
  EXPECT_NEAR(f.value, 0.015, 1e-12);
  EXPECT_NEAR(f.high - f.value, 1.959964 * std::sqrt(0.02 * 0.98 / 1000 + 0.005 * 0.995 / 1000),
              1e-9);
  // Means 3 ms and 1 ms; the control's sample variance (1 ms)^2 * 200/199, the other's 0.
  EXPECT_DOUBLE_EQ(r[0].mean_latency_ms, 3);
  const Difference& l = r[1].latency_ms_vs_control;
  ASSERT_TRUE(l.known);
  EXPECT_NEAR(l.value, -2, 1e-9);
  EXPECT_NEAR(l.high - l.value, 1.959964 * std::sqrt(1.0 * 200 / 199 / 200), 1e-6);
  // An arm with no lookups yet has no difference to state.
  const auto empty = CompareArms(arms, {control, ArmTotals{}});
  EXPECT_FALSE(empty[1].hit_rate_vs_control.known);
  EXPECT_FALSE(empty[1].latency_ms_vs_control.known);
}

}  // namespace
}  // namespace semcached::cache
