#include "cache/recommendations.h"

#include <gtest/gtest.h>

namespace semcached::cache {
namespace {

const Advice& For(const std::vector<Advice>& all, const std::string& setting) {
  for (const auto& a : all)
    if (a.setting == setting) return a;
  static Advice none;
  ADD_FAILURE() << "no advice on " << setting;
  return none;
}

double Evidence(const Advice& a, const std::string& key) {
  for (const auto& [k, v] : a.evidence)
    if (k == key) return v;
  ADD_FAILURE() << "no evidence " << key << " on " << a.setting;
  return -1;
}

RecommendationInputs Quiet() {
  RecommendationInputs in;
  in.threshold = 0.85f;
  in.embedder = "model2vec test";
  return in;
}

TEST(Recommendations, ThresholdFromLabelledLookups) {
  auto in = Quiet();
  // Rewordings between 0.78 and 0.98, different questions at or under 0.76: 0.77 separates.
  std::vector<LabelledLookup> labels;
  for (int i = 0; i < 40; ++i) labels.push_back({0.78f + 0.005f * i, false, true});
  for (int i = 0; i < 40; ++i) labels.push_back({0.56f + 0.005f * i, false, false});
  in.tuning = WhatIf(labels, 0.01);
  const Advice a = For(Recommend(in), "similarity_threshold");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_NEAR(std::stod(a.suggested), 0.757, 0.02);
  EXPECT_NE(a.reason.find("80 labelled lookups"), std::string::npos) << a.reason;
  // Already there: keep.
  in.threshold = static_cast<float>(std::stod(a.suggested));
  EXPECT_EQ(For(Recommend(in), "similarity_threshold").verdict, Verdict::kKeep);
}

TEST(Recommendations, ThresholdFromNearMissesAndFalseHitSignals) {
  auto in = Quiet();
  // 300 recent lookups, a fifth of them just under the threshold.
  std::vector<float> best;
  for (int i = 0; i < 240; ++i) best.push_back(0.4f);
  for (int i = 0; i < 60; ++i) best.push_back(0.835f);
  in.tuning = WhatIf({}, 0.01);
  AddTrafficShares(&in.tuning, best);
  Advice a = For(Recommend(in), "similarity_threshold");
  EXPECT_EQ(a.verdict, Verdict::kChange) << a.reason;
  EXPECT_EQ(a.suggested, "0.830");
  EXPECT_NEAR(Evidence(a, "nearMissShare"), 0.2, 0.01);
  // The same traffic, but applications report 10% of served answers wrong: raise it.
  in.stats.feedback_correct = 90;
  in.stats.feedback_wrong = 10;
  a = For(Recommend(in), "similarity_threshold");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_EQ(a.suggested, "0.870");
  // Too little traffic: no verdict.
  in = Quiet();
  in.tuning = WhatIf({}, 0.01);
  AddTrafficShares(&in.tuning, {0.9f, 0.5f});
  EXPECT_EQ(For(Recommend(in), "similarity_threshold").verdict, Verdict::kUnknown);
}

TEST(Recommendations, TtlFromWhenInTheirLivesEntriesAreHit) {
  auto in = Quiet();
  EXPECT_EQ(For(Recommend(in), "default_ttl_ms").verdict, Verdict::kKeep);  // no TTL
  in.options.default_ttl_ms = 3'600'000;
  in.stats.hits_by_life = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  EXPECT_EQ(For(Recommend(in), "default_ttl_ms").verdict, Verdict::kUnknown);  // 100 needed
  in.stats.hits_by_life = {50, 50, 50, 50, 50, 50, 50, 50, 50, 150};
  Advice a = For(Recommend(in), "default_ttl_ms");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_EQ(a.suggested, "7200000");
  in.stats.hits_by_life = {900, 90, 5, 5, 0, 0, 0, 0, 0, 0};
  in.stats.stores = 1000;
  in.stats.expired = 800;
  a = For(Recommend(in), "default_ttl_ms");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_EQ(a.suggested, "1800000");
  in.stats.expired = 100;  // few expire: they are not sitting idle in numbers
  EXPECT_EQ(For(Recommend(in), "default_ttl_ms").verdict, Verdict::kKeep);
}

TEST(Recommendations, SizeLimitFromEvictions) {
  auto in = Quiet();
  in.options.max_entries = 1000;
  in.stats.entries = 1000;
  in.stats.stores = 5000;
  in.stats.evicted = 4000;
  in.memory = {.text = 400'000, .vectors = 512'000, .graph = 200'000};
  Advice a = For(Recommend(in), "max_entries");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_EQ(a.suggested, "2000");
  EXPECT_NEAR(Evidence(a, "bytesPerEntry"), 1112, 1);
  EXPECT_NE(a.reason.find("1.1 MiB"), std::string::npos) << a.reason;
  in.stats.evicted = 100;
  EXPECT_EQ(For(Recommend(in), "max_entries").verdict, Verdict::kKeep);
}

TEST(Recommendations, SearchEfFromRecallProbes) {
  auto in = Quiet();
  in.options.search_ef = 24;
  in.stats.entries = 50'000;
  in.recall = {{50, 10, 12, 0.80}, {50, 10, 24, 0.90}, {50, 10, 48, 0.97}, {50, 10, 96, 0.99}};
  Advice a = For(Recommend(in), "search_ef");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_EQ(a.suggested, "48");
  in.recall = {{50, 10, 12, 0.995}, {50, 10, 24, 0.998}, {50, 10, 48, 1.0}, {50, 10, 96, 1.0}};
  a = For(Recommend(in), "search_ef");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_EQ(a.suggested, "12");
  in.recall = {{50, 10, 12, 0.96}, {50, 10, 24, 0.98}, {50, 10, 48, 0.99}, {50, 10, 96, 1.0}};
  EXPECT_EQ(For(Recommend(in), "search_ef").verdict, Verdict::kKeep);
  in.stats.entries = 300;  // a small cache: every search_ef finds everything
  EXPECT_EQ(For(Recommend(in), "search_ef").verdict, Verdict::kKeep);
}

TEST(Recommendations, EmbedderWhenAnEmbeddingServerDominatesLookups) {
  auto in = Quiet();
  in.stats.timed_lookups = 1000;
  in.stats.lookup_seconds = 10;  // 10 ms a lookup
  in.stats.embed_seconds = 9;
  EXPECT_EQ(For(Recommend(in), "embedder").verdict, Verdict::kKeep);  // in process
  in.embedder_remote = true;
  const Advice a = For(Recommend(in), "embedder");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_EQ(a.suggested, "model2vec");
  EXPECT_NEAR(Evidence(a, "meanEmbedMs"), 9, 1e-9);
}

TEST(Recommendations, RedisPoolFromBusyConnections) {
  auto in = Quiet();
  EXPECT_EQ(Recommend(in).size(), 5u);  // no Redis: no pool advice
  in.redis_pool = PoolSample{.pool_max = 50, .busy_share = 0.95, .waiting = 3};
  Advice a = For(Recommend(in), "redis.pool_max");
  EXPECT_EQ(a.verdict, Verdict::kChange);
  EXPECT_EQ(a.suggested, "100");
  in.redis_pool = PoolSample{.pool_max = 50, .busy_share = 0.1, .waiting = 0};
  EXPECT_EQ(For(Recommend(in), "redis.pool_max").verdict, Verdict::kKeep);
}

TEST(Recommendations, JsonListsChangesAndEverySettingChecked) {
  auto in = Quiet();
  in.redis_pool = PoolSample{.pool_max = 5, .busy_share = 1, .waiting = 9};
  const std::string j = RecommendationsJson("docs", Recommend(in));
  EXPECT_NE(j.find(R"("cacheId":"docs")"), std::string::npos);
  EXPECT_NE(j.find(R"("recommendations":[{)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("suggested":"10")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("verdict":"not_enough_data")"), std::string::npos) << j;
}

}  // namespace
}  // namespace semcached::cache
