#include "cache/embedded/embedded_cache.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "embed/builtin_embedder.h"
#include "embed/static_embedder.h"

namespace semcached::cache {
namespace {

struct FakeClock {
  std::int64_t now = 1'000'000;
  EmbeddedCache::Clock fn() {
    return [this] { return now; };
  }
};

std::unique_ptr<EmbeddedCache> Make(FakeClock* clock, CacheOptions o = {}) {
  o.id = o.id.empty() ? "c1" : o.id;
  auto c = EmbeddedCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(), clock->fn());
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(*c);
}

Hit One(EmbeddedCache& c, const std::string& prompt, Attributes attrs = {}) {
  SearchQuery q;
  q.prompt = prompt;
  q.attributes = std::move(attrs);
  auto r = c.Search(q);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 1u) << prompt;
  return r->empty() ? Hit{"", EntryText::Make("", ""), 0, Strategy::kExact} : r->front();
}

bool Misses(EmbeddedCache& c, const std::string& prompt, Attributes attrs = {}) {
  SearchQuery q;
  q.prompt = prompt;
  q.attributes = std::move(attrs);
  auto r = c.Search(q);
  EXPECT_TRUE(r.ok());
  return r->empty();
}

TEST(EmbeddedCache, ExactAndParaphraseHitDifferentQuestionMisses) {
  FakeClock clock;
  auto c = Make(&clock);
  auto id = c->Store("What is the capital of France?", "Paris.", {}, std::nullopt);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(
      c->Store("How do I reset my router password?", "Hold the reset button.", {}, std::nullopt)
          .ok());
  ASSERT_TRUE(
      c->Store("Best way to learn Python quickly", "Write small programs daily.", {}, std::nullopt)
          .ok());

  Hit exact = One(*c, "what is the capital of france");
  EXPECT_EQ(exact.strategy, Strategy::kExact);
  EXPECT_EQ(exact.id, *id);
  EXPECT_EQ(exact.entry->response(), "Paris.");
  EXPECT_FLOAT_EQ(exact.similarity, 1.0f);

  // The built-in embedder is lexical: a rewording scores about 0.79 here and a different
  // country 0.70 (bench/hit_quality measures this on labelled pairs).
  SearchQuery q;
  q.prompt = "What is the capital city of France?";
  q.threshold = 0.75f;
  auto para = c->Search(q);
  ASSERT_TRUE(para.ok());
  ASSERT_EQ(para->size(), 1u);
  EXPECT_EQ((*para)[0].strategy, Strategy::kSemantic);
  EXPECT_EQ((*para)[0].id, *id);
  EXPECT_GE((*para)[0].similarity, 0.75f);
  EXPECT_LT((*para)[0].similarity, 1.0f);

  q.prompt = "What is the capital of Germany?";
  auto other = c->Search(q);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
  EXPECT_TRUE(Misses(*c, "How do I cook rice?"));
  auto st = c->Stats();
  EXPECT_EQ(st.entries, 3u);
  EXPECT_EQ(st.exact_hits, 1u);
  EXPECT_EQ(st.semantic_hits, 1u);
  EXPECT_EQ(st.misses, 2u);
}

TEST(EmbeddedCache, MemoryCountsTextVectorsAndGraph) {
  FakeClock clock;
  auto c = Make(&clock);
  const CacheMemory empty = c->Memory();
  EXPECT_EQ(empty.text, 0u);
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(c->Store("Question number " + std::to_string(i) + " about shipping",
                         "Answer " + std::to_string(i), {}, std::nullopt)
                    .ok());
  const CacheMemory m = c->Memory();
  EXPECT_EQ(m.text, c->Stats().bytes);
  // The built-in embedder's vectors in float32 at least, and one link list per entry.
  EXPECT_GE(m.vectors, 50u * embed::BuiltinEmbedder().dim() * sizeof(float));
  EXPECT_GT(m.graph, 50u * 16 * sizeof(std::uint32_t));
}

TEST(EmbeddedCache, GuardsRejectNumberAndNegationChanges) {
  FakeClock clock;
  auto c = Make(&clock);
  ASSERT_TRUE(c->Store("book 3 tickets to London", "Booked 3.", {}, std::nullopt).ok());
  ASSERT_TRUE(c->Store("is the museum open on sunday", "Yes.", {}, std::nullopt).ok());
  SearchQuery q;
  q.prompt = "book 4 tickets to London";
  q.threshold = 0.5f;
  LookupTrace trace;
  auto r = c->Search(q, &trace);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_GE(trace.guard_rejections, 1);
  q.prompt = "is the museum not open on sunday";
  r = c->Search(q, &trace);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_GE(c->Stats().guard_rejections, 2u);
}

TEST(EmbeddedCache, AttributesScopeEveryTier) {
  FakeClock clock;
  auto c = Make(&clock);
  ASSERT_TRUE(c->Store("my account balance", "alice: $10", {{"user", "alice"}}, std::nullopt).ok());
  ASSERT_TRUE(
      c->Store("my account balance", "bob: $99", {{"user", "bob"}, {"tier", "gold"}}, std::nullopt)
          .ok());
  EXPECT_EQ(One(*c, "my account balance", {{"user", "alice"}}).entry->response(), "alice: $10");
  EXPECT_EQ(One(*c, "my account balance", {{"user", "bob"}}).entry->response(), "bob: $99");
  EXPECT_EQ(One(*c, "My account balance!", {{"user", "bob"}}).entry->response(), "bob: $99");
  EXPECT_TRUE(Misses(*c, "my account balance", {{"user", "carol"}}));
  EXPECT_TRUE(Misses(*c, "my account balance", {{"user", "alice"}, {"tier", "gold"}}));

  auto n = c->DeleteByAttributes({{"user", "bob"}});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_TRUE(Misses(*c, "my account balance", {{"user", "bob"}}));
  auto all = c->DeleteByAttributes({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 1u);
  EXPECT_EQ(c->Stats().entries, 0u);
}

TEST(EmbeddedCache, TtlExpiresAndSweeps) {
  FakeClock clock;
  CacheOptions o;
  o.default_ttl_ms = 60'000;
  auto c = Make(&clock, o);
  ASSERT_TRUE(c->Store("short lived", "x", {}, 1'000).ok());
  ASSERT_TRUE(c->Store("default lived", "y", {}, std::nullopt).ok());
  EXPECT_EQ(One(*c, "short lived").entry->response(), "x");
  clock.now += 1'001;
  EXPECT_TRUE(Misses(*c, "short lived"));
  EXPECT_EQ(One(*c, "default lived").entry->response(), "y");
  clock.now += 60'000;
  EXPECT_TRUE(Misses(*c, "default lived"));
  EXPECT_EQ(c->Sweep(), 2u);
  EXPECT_EQ(c->Stats().entries, 0u);
  EXPECT_FALSE(c->Store("bad ttl", "z", {}, 0).ok());
}

TEST(EmbeddedCache, SlidingTtlRestartsOnHit) {
  FakeClock clock;
  CacheOptions o;
  o.sliding_ttl = true;
  auto c = Make(&clock, o);
  ASSERT_TRUE(c->Store("sliding entry", "s", {}, 1'000).ok());
  ASSERT_TRUE(c->Store("idle entry", "i", {}, 1'000).ok());
  clock.now += 800;
  EXPECT_EQ(One(*c, "sliding entry").entry->response(), "s");  // hit at 800: expires at 1800 now
  clock.now += 800;                                            // 1600 after store
  EXPECT_EQ(c->Sweep(), 1u);                                   // the idle one only
  EXPECT_EQ(One(*c, "sliding entry").entry->response(), "s");  // hit at 1600: expires at 2600
  EXPECT_TRUE(Misses(*c, "idle entry"));
  clock.now += 1'001;
  EXPECT_TRUE(Misses(*c, "sliding entry"));
  EXPECT_EQ(c->Sweep(), 1u);
  EXPECT_EQ(c->Stats().entries, 0u);
}

TEST(EmbeddedCache, DeleteFlushAndBadInput) {
  FakeClock clock;
  auto c = Make(&clock);
  auto id = c->Store("delete me", "gone", {}, std::nullopt);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(c->Delete(*id).ok());
  EXPECT_EQ(c->Delete(*id).code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Misses(*c, "delete me"));
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(c->Store("q" + std::to_string(i), "a", {}, std::nullopt).ok());
  ASSERT_TRUE(c->Flush().ok());
  EXPECT_EQ(c->Stats().entries, 0u);
  EXPECT_TRUE(Misses(*c, "q3"));

  auto bad = c->Store("bad \xff utf8", "r", {}, std::nullopt);
  ASSERT_FALSE(bad.ok());
  ASSERT_EQ(bad.status().fields().size(), 1u);
  EXPECT_EQ(bad.status().fields()[0].field, "prompt");
  EXPECT_FALSE(c->Store("?!", "r", {}, std::nullopt).ok());
  EXPECT_FALSE(c->Store("p", "", {}, std::nullopt).ok());
  SearchQuery q;
  q.prompt = "x";
  q.threshold = 1.5f;
  EXPECT_FALSE(c->Search(q).ok());
}

TEST(EmbeddedCache, NormalizationStepsCanBeTurnedOff) {
  FakeClock clock;
  CacheOptions o;
  o.normalize.casefold = false;
  o.normalize.trim_punctuation = false;
  auto c = Make(&clock, o);
  ASSERT_TRUE(c->Store("What is the Capital of France?", "Paris.", {}, std::nullopt).ok());
  SearchQuery q;
  q.strategies = {Strategy::kExact};
  for (const char* other : {"what is the capital of france?", "What is the Capital of France"}) {
    q.prompt = other;
    EXPECT_TRUE(c->Search(q)->empty()) << other;
  }
  q.prompt = "What  is the Capital   of France?";  // whitespace is still collapsed
  EXPECT_EQ(c->Search(q)->size(), 1u);
}

TEST(EmbeddedCache, ReusedSlotsNeverAnswerToStaleIds) {
  FakeClock clock;
  auto c = Make(&clock);
  auto old_id = c->Store("first question", "first", {}, std::nullopt);
  ASSERT_TRUE(old_id.ok());
  ASSERT_TRUE(c->Delete(*old_id).ok());
  auto new_id = c->Store("second question", "second", {}, std::nullopt);
  ASSERT_TRUE(new_id.ok());
  // The freed slot is taken again: same label half, another tag.
  EXPECT_EQ(new_id->substr(0, 16), old_id->substr(0, 16));
  EXPECT_NE(*new_id, *old_id);
  EXPECT_EQ(c->Delete(*old_id).code(), ErrorCode::kNotFound);
  EXPECT_TRUE(Misses(*c, "first question"));
  Hit h = One(*c, "second question");
  EXPECT_EQ(h.id, *new_id);
  EXPECT_EQ(h.entry->response(), "second");
  EXPECT_EQ(c->Stats().entries, 1u);
}

TEST(EmbeddedCache, OnePromptUnderManyScopesSurvivesDeletesInAnyOrder) {
  FakeClock clock;
  auto c = Make(&clock);
  std::vector<std::string> ids;
  for (const char* user : {"a", "b", "c", "d"}) {
    auto id = c->Store("what is my quota", std::string("quota of ") + user, {{"user", user}},
                       std::nullopt);
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  ASSERT_TRUE(c->Delete(ids[1]).ok());  // inside the chain
  ASSERT_TRUE(c->Delete(ids[3]).ok());  // its newest (the head)
  for (const char* user : {"a", "c"}) {
    Hit h = One(*c, "What is my quota?", {{"user", user}});
    EXPECT_EQ(h.strategy, Strategy::kExact);
    EXPECT_EQ(h.entry->response(), std::string("quota of ") + user);
  }
  SearchQuery q;
  q.prompt = "what is my quota";
  q.attributes = {{"user", "b"}};
  q.strategies = {Strategy::kExact};
  EXPECT_TRUE(c->Search(q)->empty());
  ASSERT_TRUE(c->Delete(ids[0]).ok());  // its last
  ASSERT_TRUE(c->Delete(ids[2]).ok());
  q.attributes.clear();
  EXPECT_TRUE(c->Search(q)->empty());
  ASSERT_TRUE(c->Store("what is my quota", "again", {}, std::nullopt).ok());
  EXPECT_EQ(One(*c, "what is my quota").entry->response(), "again");
}

TEST(EmbeddedCache, SweepFindsEachDueTimeAndStoresDuringIt) {
  FakeClock clock;
  auto c = Make(&clock);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(c->Store("entry number " + std::to_string(i), "r", {}, 1'000 * (1 + i % 3)).ok());
  }
  ASSERT_TRUE(c->Store("forever", "f", {}, std::nullopt).ok());
  EXPECT_EQ(c->Sweep(), 0u);
  clock.now += 1'000;
  EXPECT_EQ(c->Sweep(), 10u);
  EXPECT_EQ(c->Sweep(), 0u);  // the next due time is 1 s away
  ASSERT_TRUE(c->Store("late short", "l", {}, 500).ok());
  clock.now += 500;
  EXPECT_EQ(c->Sweep(), 1u);  // the store lowered the due time below what the scan found
  clock.now += 500;
  EXPECT_EQ(c->Sweep(), 10u);
  clock.now += 1'000;
  EXPECT_EQ(c->Sweep(), 10u);
  clock.now += 1'000'000;
  EXPECT_EQ(c->Sweep(), 0u);
  EXPECT_EQ(c->Stats().entries, 1u);
  EXPECT_EQ(c->Stats().expired, 31u);
  // Nothing left can expire: the unscoped semantic search needs no per-node check again.
  EXPECT_EQ(One(*c, "forever").entry->response(), "f");
}

TEST(EmbeddedCache, AllowedAttributesAreEnforced) {
  FakeClock clock;
  CacheOptions o;
  o.allowed_attributes = {"user"};
  auto c = Make(&clock, o);
  EXPECT_TRUE(c->Store("p", "r", {{"user", "a"}}, std::nullopt).ok());
  auto bad = c->Store("p", "r", {{"team", "a"}}, std::nullopt);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().fields()[0].rule, "allowed");
}

TEST(EmbeddedCache, ManyEntriesAndConcurrentUse) {
  FakeClock clock;
  auto c = Make(&clock);
  // Past the index's calibration threshold, with readers running alongside.
  std::thread writer([&] {
    for (int i = 0; i < 1500; ++i) {
      ASSERT_TRUE(c->Store("question number " + std::to_string(i) + " about topic " +
                               std::to_string(i % 37),
                           "answer " + std::to_string(i), {{"shard", std::to_string(i % 3)}},
                           std::nullopt)
                      .ok());
    }
  });
  std::thread reader([&] {
    for (int i = 0; i < 300; ++i) {
      SearchQuery q;
      q.prompt = "question number " + std::to_string(i) + " about topic " + std::to_string(i % 37);
      ASSERT_TRUE(c->Search(q).ok());
    }
  });
  writer.join();
  reader.join();
  Hit h = One(*c, "Question number 1234 about topic 13", {{"shard", "1"}});
  EXPECT_EQ(h.entry->response(), "answer 1234");
  EXPECT_EQ(h.strategy, Strategy::kExact);
  EXPECT_EQ(c->Stats().entries, 1500u);
}

}  // namespace
}  // namespace semcached::cache

namespace semcached::cache {
namespace {

// The clusters of an adaptive cache come from its index's vectors, and a label lands in the
// cluster of its entry.
TEST(EmbeddedCache, AnAdaptiveCacheClustersItsEntries) {
  FakeClock clock;
  CacheOptions o;
  o.max_error_rate = 0.02;
  auto c = Make(&clock, o);
  std::vector<std::string> ids;
  for (int i = 0; i < 250; ++i) {
    const std::string topic = i % 2 ? "invoice number " : "router model ";
    auto id = c->Store("Where do I find " + topic + std::to_string(i) + "?",
                       "Answer " + std::to_string(i), {}, std::nullopt);
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  ASSERT_TRUE(c->MaintainClusters().ok());
  const auto state = c->Clusters();
  ASSERT_EQ(state.clusters.size(), ClusterCount(250));
  std::size_t sized = 0;
  for (const auto& one : state.clusters) sized += one.size;
  EXPECT_EQ(sized, 250u);
  EXPECT_EQ(state.fitted_entries, 250u);
  ASSERT_TRUE(c->RecordFeedback(ids[3], {"Where do I find router model 3?", true, {}, ""}).ok());
  std::size_t labelled = 0;
  for (const auto& one : c->Clusters().clusters) labelled += one.labels;
  EXPECT_EQ(labelled, 1u);
  // A cache without adaptive thresholds fits none.
  auto plain = Make(&clock);
  for (int i = 0; i < 250; ++i)
    ASSERT_TRUE(plain->Store("question " + std::to_string(i), "answer", {}, std::nullopt).ok());
  ASSERT_TRUE(plain->MaintainClusters().ok());
  EXPECT_TRUE(plain->Clusters().clusters.empty());
}

TEST(Eviction, LruKeepsWhatIsUsed) {
  FakeClock clock;
  CacheOptions o;
  o.max_entries = 50;
  o.eviction = Eviction::kLru;
  o.eviction_samples = 64;  // at least the cache size: exact victim choice
  auto c = Make(&clock, o);
  for (int i = 0; i < 50; ++i) {
    clock.now += 10;
    ASSERT_TRUE(c->Store("entry " + std::to_string(i), "r", {}, std::nullopt).ok());
  }
  clock.now += 10;
  for (int i = 0; i < 10; ++i) One(*c, "entry " + std::to_string(i));  // recently used
  for (int i = 50; i < 70; ++i) {
    clock.now += 10;
    ASSERT_TRUE(c->Store("entry " + std::to_string(i), "r", {}, std::nullopt).ok());
  }
  EXPECT_EQ(c->Stats().entries, 50u);
  EXPECT_EQ(c->Stats().evicted, 20u);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(Misses(*c, "entry " + std::to_string(i))) << i;
  for (int i = 10; i < 30; ++i) EXPECT_TRUE(Misses(*c, "entry " + std::to_string(i))) << i;
}

TEST(Eviction, LfuAndValuePoliciesAndByteLimit) {
  FakeClock clock;
  CacheOptions o;
  o.max_entries = 20;
  o.eviction = Eviction::kLfu;
  o.eviction_samples = 20;
  auto c = Make(&clock, o);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(c->Store("lfu " + std::to_string(i), "r", {}, std::nullopt).ok());
  for (int rep = 0; rep < 3; ++rep) {
    for (int i = 0; i < 5; ++i) One(*c, "lfu " + std::to_string(i));
  }
  for (int i = 20; i < 30; ++i)
    ASSERT_TRUE(c->Store("lfu " + std::to_string(i), "r", {}, std::nullopt).ok());
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(Misses(*c, "lfu " + std::to_string(i))) << i;

  CacheOptions v;
  v.max_entries = 10;
  v.eviction = Eviction::kValue;
  v.eviction_samples = 10;
  auto d = Make(&clock, v);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(d->Store("value " + std::to_string(i), i < 3 ? std::string(2000, 'x') : "tiny", {},
                         std::nullopt)
                    .ok());
  }
  for (int i = 10; i < 17; ++i)
    ASSERT_TRUE(d->Store("value " + std::to_string(i), "tiny", {}, std::nullopt).ok());
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(Misses(*d, "value " + std::to_string(i))) << i;  // big answers stay

  CacheOptions b;
  b.max_bytes = 1000;
  auto e = Make(&clock, b);
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(
        e->Store("bytes " + std::to_string(i), std::string(100, 'y'), {}, std::nullopt).ok());
  EXPECT_LE(e->Stats().bytes, 1000u);
  EXPECT_GT(e->Stats().evicted, 0u);
}

}  // namespace
}  // namespace semcached::cache

namespace semcached::cache {
namespace {

TEST(EmbeddedCacheAnalytics, HitsCountEstimatedTokensAndCostSaved) {
  FakeClock clock;
  CacheOptions o;
  o.input_usd_per_mtok = 2.5;
  o.output_usd_per_mtok = 10;
  auto c = Make(&clock, o);
  const std::string prompt(40, 'p');     // 10 tokens at 4 bytes each
  const std::string response(400, 'r');  // 100 tokens
  ASSERT_TRUE(c->Store(prompt, response, {}, std::nullopt).ok());
  EXPECT_EQ(c->Stats().tokens_saved, 0u);
  One(*c, prompt);
  One(*c, prompt);
  auto s = c->Stats();
  EXPECT_EQ(s.tokens_saved, 220u);
  EXPECT_NEAR(s.cost_saved_usd, 2 * (10 * 2.5 + 100 * 10) / 1e6, 1e-9);
  EXPECT_TRUE(Misses(*c, "something else entirely, nothing like it"));
  EXPECT_EQ(c->Stats().tokens_saved, 220u);  // a miss saves nothing
  EXPECT_EQ(EstimateTokens(""), 1u);
  EXPECT_EQ(EstimateTokens("abcde"), 2u);
}

}  // namespace
}  // namespace semcached::cache

namespace semcached::cache {
namespace {

// The worst int8 distance error among each query's 16 nearest, on prompts that share most of
// their words (the neighbours a cache's threshold decides between).
float WorstInt8Error(embed::Embedder& embedder) {
  const char* words[] = {"reset",    "router",  "password", "refund",  "order",
                         "shipping", "cancel",  "invoice",  "account", "login",
                         "error",    "install", "battery",  "screen",  "warranty",
                         "upgrade",  "plan",    "price",    "address", "payment"};
  std::mt19937 rng(3);
  auto prompt = [&] {
    std::string p = "how do i";
    for (int w = 0; w < 6; ++w) p += std::string(" ") + words[rng() % std::size(words)];
    return p + " " + std::to_string(rng() % 500);
  };
  std::vector<std::string> texts;
  for (int i = 0; i < 3000; ++i) {
    texts.push_back(prompt());
    embedder.Observe(texts.back());
  }
  vector::HnswOptions io;
  io.dim = embedder.dim();
  auto index = vector::HnswIndex::Create(io);
  EXPECT_TRUE(index.ok());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto v = embedder.Embed(texts[i]);
    EXPECT_TRUE((*index)->Add(i, v->data(), v->size()).ok());
  }
  EXPECT_TRUE((*index)->Stats().calibrated);
  float worst = 0;
  for (int q = 0; q < 200; ++q) {
    auto v = embedder.Embed(prompt());
    vector::SearchParams p;
    p.k = 16;
    p.precision = vector::Precision::kInt8;
    auto hits = (*index)->Search(v->data(), v->size(), p);
    EXPECT_TRUE(hits.ok());
    for (const auto& h : *hits) {
      auto stored = (*index)->Get(h.label);
      float dot = 0;
      for (std::size_t d = 0; d < v->size(); ++d) dot += (*v)[d] * (*stored)[d];
      worst = std::max(worst, std::abs(h.distance - (1 - dot)));
    }
    // The cache's search, re-scoring within the band, returns what re-scoring all returns.
    vector::SearchParams all;
    all.k = 4;
    vector::SearchParams banded = all;
    banded.rescore_band = EmbeddedCache::kRescoreBand;
    auto a = (*index)->Search(v->data(), v->size(), all);
    auto b = (*index)->Search(v->data(), v->size(), banded);
    EXPECT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->size(), b->size());
    for (std::size_t i = 0; i < std::min(a->size(), b->size()); ++i) {
      EXPECT_EQ((*a)[i].label, (*b)[i].label);
      EXPECT_FLOAT_EQ((*a)[i].distance, (*b)[i].distance);
    }
  }
  return worst;
}

// Both margins rest on this: re-scoring skips candidates that int8 puts further than the band
// past the k-th best, or further than the margin past the threshold.
TEST(EmbeddedCacheRescore, Int8ErrorStaysWithinTheBandAndTheMargin) {
  embed::BuiltinEmbedder ngram;
  auto model = embed::StaticEmbedder::Load(embed::DefaultStaticModel());
  ASSERT_TRUE(model.ok());
  for (embed::Embedder* e :
       {static_cast<embed::Embedder*>(&ngram), static_cast<embed::Embedder*>(model->get())}) {
    const float worst = WorstInt8Error(*e);
    std::printf("%s: worst int8 distance error over 200 queries x 16 neighbours: %.4f\n",
                e->name().c_str(), worst);
    EXPECT_LT(worst, EmbeddedCache::kRescoreBand / 2);
    EXPECT_LT(worst, EmbeddedCache::kRescoreMargin / 2);
  }
}

}  // namespace
}  // namespace semcached::cache

namespace semcached::cache {
namespace {

// Reembed while other threads search and store (TSan checks the switch): every search is
// answered, every store lands, and afterwards every entry, including those stored during the
// rebuild, is found through the new embedder.
TEST(EmbeddedCache, ReembedKeepsAnsweringAndCatchesUpStoresMadeMeanwhile) {
  CacheOptions o;
  o.id = "re";
  auto made = EmbeddedCache::Create(o, std::make_unique<embed::BuiltinEmbedder>());
  ASSERT_TRUE(made.ok());
  EmbeddedCache& c = **made;
  // Prompts that differ in a made-up word, so each is its own nearest neighbour by far.
  auto prompt = [](int i) {
    std::string word;
    for (int v = i + 1; v > 0; v /= 26) word += static_cast<char>('a' + v % 26);
    return "how do I renew the parking permit of " + word + "ville";
  };
  for (int i = 0; i < 400; ++i) ASSERT_TRUE(c.Store(prompt(i), "r", {}, std::nullopt).ok());
  // A label under the old vectors: its similarity means nothing under the new ones.
  auto labelled = c.Search(SearchQuery{prompt(1)});
  ASSERT_TRUE(labelled.ok() && labelled->size() == 1);
  ASSERT_TRUE(c.RecordFeedback((*labelled)[0].id, Feedback{prompt(1), true, {}}).ok());
  ASSERT_EQ(c.Tuning(0.01).same, 1u);
  std::atomic<bool> stop{false};
  std::atomic<int> searches{0}, failures{0}, stored{400};
  std::thread searcher([&] {
    for (int i = 0; !stop.load(); ++i) {
      SearchQuery q;
      q.prompt = prompt(i % 400);
      auto r = c.Search(q);
      if (!r.ok() || r->empty()) failures.fetch_add(1);
      searches.fetch_add(1);
    }
  });
  std::thread storer([&] {
    for (int i = 400; !stop.load() && i < 2000; ++i) {
      if (c.Store(prompt(i), "r", {}, std::nullopt).ok())
        stored.fetch_add(1);
      else
        failures.fetch_add(1);
    }
  });
  embed::BuiltinEmbedderOptions other;
  other.dim = 256;
  std::size_t last_total = 0;
  ASSERT_TRUE(c.Reembed(std::make_unique<embed::BuiltinEmbedder>(other), [&](std::size_t,
                                                                             std::size_t total) {
                 last_total = total;
               }).ok());
  stop = true;
  searcher.join();
  storer.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(searches.load(), 0);
  EXPECT_GE(last_total, 400u);
  EXPECT_EQ(c.Stats().entries, static_cast<std::size_t>(stored.load()));
  EXPECT_EQ(c.Tuning(0.01).same, 0u);  // the labels started again with the new vectors
  for (int i = 0; i < stored.load(); i += 37) {
    SearchQuery q;
    q.prompt = prompt(i);
    q.strategies = {Strategy::kSemantic};
    auto r = c.Search(q);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), 1u) << i;
    EXPECT_EQ((*r)[0].entry->prompt(), prompt(i));
  }
}

}  // namespace
}  // namespace semcached::cache
