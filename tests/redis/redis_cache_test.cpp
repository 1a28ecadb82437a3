// The semantic cache on Redis 8 (cache/redis/redis_cache.h) against a real server: two instances
// share entries; tiers, scoping, TTL and the sweeper, deletes and flush; Redis down gives an
// error within the timeout, never a hang or a wrong answer.
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "cache/redis/redis_cache.h"
#include "embed/builtin_embedder.h"
#include "redis/client.h"
#include "test_support.h"

namespace semcached::testing {
namespace {

using namespace std::chrono_literals;
using cache::Attributes;
using cache::SearchQuery;
using cache::Strategy;

std::unique_ptr<redis::Client> Connect(const RedisServer& server) {
  redis::ClientOptions o;
  o.port = server.port();
  o.pool_min = 1;
  o.command_timeout_ms = 500;
  o.breaker_open_ms = 200;
  return std::move(*redis::Client::Create(o));
}

std::unique_ptr<cache::RedisCache> Open(redis::Executor& r, cache::CacheOptions o = {}) {
  if (o.id.empty()) o.id = "shared";
  auto c = cache::RedisCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(), r);
  if (!c.ok()) throw std::runtime_error(c.status().ToString());
  return std::move(*c);
}

std::optional<cache::Hit> Find(cache::Cache& c, const std::string& prompt, Attributes scope = {},
                               std::vector<Strategy> strategies = {}) {
  SearchQuery q;
  q.prompt = prompt;
  q.attributes = std::move(scope);
  q.strategies = std::move(strategies);
  auto r = c.Search(q);
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  if (r->empty()) return std::nullopt;
  return r->front();
}

TEST(RedisCache, TwoInstancesShareEntriesAcrossTiers) {
  RedisServer server;
  auto ra = Connect(server), rb = Connect(server);
  cache::CacheOptions o;
  o.similarity_threshold = 0.7f;
  auto a = Open(*ra, o), b = Open(*rb, o);  // as two semcached processes would
  auto id = a->Store("How do I reset my router password?", "Hold the reset button for 10 seconds.",
                     {}, std::nullopt);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto exact = Find(*b, "how do I reset my router password");
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->id, *id);
  EXPECT_EQ(exact->strategy, Strategy::kExact);
  EXPECT_EQ(exact->entry->response(), "Hold the reset button for 10 seconds.");
  auto semantic = Find(*b, "how do I reset the router password?", {}, {Strategy::kSemantic});
  ASSERT_TRUE(semantic);
  EXPECT_EQ(semantic->id, *id);
  EXPECT_GT(semantic->similarity, 0.7f);
  EXPECT_LT(semantic->similarity, 1.0f);
  EXPECT_FALSE(Find(*b, "What is the capital of France?"));
  // A question with another number is refused by the guard even though it scores high.
  EXPECT_FALSE(
      Find(*b, "How do I reset my router password in 20 seconds?", {}, {Strategy::kSemantic}));
  EXPECT_EQ(b->Stats().entries, 1u);
  EXPECT_GE(b->Stats().tokens_saved, 1u);
}

// Feedback finds a Redis entry by id (from any instance) and scores the prompt with the
// cache's embedder; a wrong label may delete the shared entry.
TEST(RedisCache, FeedbackFindsTheSharedEntryAndMayDeleteIt) {
  RedisServer server;
  auto ra = Connect(server), rb = Connect(server);
  cache::CacheOptions o;
  o.feedback_deletes_wrong = true;
  auto a = Open(*ra, o), b = Open(*rb, o);
  auto id = a->Store("How do I reset my router password?", "Hold reset for 10 seconds.", {},
                     std::nullopt);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto right = b->RecordFeedback(*id, {"how can I reset the password of my router", true, {}});
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  EXPECT_GT(right->similarity, 0.5f);  // the n-gram embedder of these tests: a rewording
  EXPECT_LT(right->similarity, 1.0f);
  EXPECT_EQ(b->RecordFeedback("0123456789abcdef0123456789abcdef", {"x", true, {}}).status().code(),
            ErrorCode::kNotFound);
  auto wrong =
      b->RecordFeedback(*id, {"How do I reset my router password in 20 seconds?", false, {}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_TRUE(wrong->refused_by_guards);
  EXPECT_TRUE(wrong->deleted);
  EXPECT_FALSE(Find(*a, "How do I reset my router password?"));
  EXPECT_EQ(b->Tuning(0.01).same, 1u);
  EXPECT_EQ(b->Tuning(0.01).different, 1u);
}

// Labels one instance records reach the others through NS:{C}:labels, each once, and an
// instance that starts later reads what the cache learnt before it.
TEST(RedisCache, LabelsAreSharedBetweenInstances) {
  RedisServer server;
  auto ra = Connect(server), rb = Connect(server);
  auto a = Open(*ra), b = Open(*rb);
  auto id = a->Store("How do I reset my router password?", "Hold reset for 10 seconds.", {},
                     std::nullopt);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(a->RecordFeedback(*id, {"how can I reset the password of my router", true, {}}).ok());
  ASSERT_TRUE(a->RecordFeedback(*id, {"How do I reset my modem?", false, {}}).ok());
  EXPECT_EQ(b->Tuning(0.01).same + b->Tuning(0.01).different, 0u);  // not shared yet
  ASSERT_TRUE(a->ShareLabels().ok());
  ASSERT_TRUE(b->ShareLabels().ok());
  EXPECT_EQ(b->Tuning(0.01).same, 1u);
  EXPECT_EQ(b->Tuning(0.01).different, 1u);
  // b's own label goes the other way; nobody counts a label twice.
  ASSERT_TRUE(b->RecordFeedback(*id, {"what resets my router password", true, {}}).ok());
  ASSERT_TRUE(b->ShareLabels().ok());
  ASSERT_TRUE(a->ShareLabels().ok());
  ASSERT_TRUE(a->ShareLabels().ok());
  EXPECT_EQ(a->Tuning(0.01).same, 2u);
  EXPECT_EQ(b->Tuning(0.01).same, 2u);
  EXPECT_EQ(*ra->Execute({"XLEN", a->Key("labels")})->AsInteger(), 3);
  // A third instance, started now, learns all three.
  auto c = Open(*rb);
  ASSERT_TRUE(c->ShareLabels().ok());
  EXPECT_EQ(c->Tuning(0.01).same, 2u);
  EXPECT_EQ(c->Tuning(0.01).different, 1u);
}

// Each instance fits the clusters of an adaptive cache from the shared vector set, and a label
// another instance shares lands in the cluster of its entry.
TEST(RedisCache, ClustersComeFromTheSharedVectorsAndSharedLabelsReachThem) {
  RedisServer server;
  auto ra = Connect(server), rb = Connect(server);
  cache::CacheOptions o;
  o.max_error_rate = 0.02;
  auto a = Open(*ra, o), b = Open(*rb, o);
  std::string first;
  for (int i = 0; i < 220; ++i) {
    auto id = a->Store(
        "Where do I find " + std::string(i % 2 ? "invoice " : "router ") + std::to_string(i) + "?",
        "Answer " + std::to_string(i), {}, std::nullopt);
    ASSERT_TRUE(id.ok());
    if (i == 0) first = *id;
  }
  for (auto* c : {a.get(), b.get()}) {
    ASSERT_TRUE(c->MaintainClusters().ok());
    const auto state = c->Clusters();
    ASSERT_EQ(state.clusters.size(), cache::ClusterCount(220));
    std::size_t sized = 0;
    for (const auto& one : state.clusters) sized += one.size;
    EXPECT_EQ(sized, 220u);
  }
  ASSERT_TRUE(a->RecordFeedback(first, {"Where do I find router 0?", true, {}, ""}).ok());
  ASSERT_TRUE(a->ShareLabels().ok());
  ASSERT_TRUE(b->ShareLabels().ok());
  std::size_t labelled = 0;
  for (const auto& one : b->Clusters().clusters) labelled += one.labels;
  EXPECT_EQ(labelled, 1u);
}

// An export lists every live entry of the shared cache with its TTL left and its vector.
TEST(RedisCache, ForEachEntryListsWhatIsLiveWithItsTtlAndVector) {
  RedisServer server;
  auto r = Connect(server);
  auto c = Open(*r);
  ASSERT_TRUE(c->Store("first exported question", "one", {{"team", "a"}}, std::nullopt).ok());
  ASSERT_TRUE(c->Store("second exported question", "two", {}, 60000).ok());
  ASSERT_TRUE(c->Store("third exported question", "three", {}, 1).ok());  // gone by then
  std::this_thread::sleep_for(20ms);
  std::map<std::string, cache::ExportedEntry> seen;
  ASSERT_TRUE(c->ForEachEntry(true, [&](const cache::ExportedEntry& e) {
                 seen.emplace(std::string(e.text->response()), e);
                 return true;
               }).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen.at("one").ttl_left_ms, 0);
  EXPECT_EQ(seen.at("one").text->attributes(), (Attributes{{"team", "a"}}));
  EXPECT_GT(seen.at("two").ttl_left_ms, 50000);
  EXPECT_LE(seen.at("two").ttl_left_ms, 60000);
  EXPECT_EQ(seen.at("one").vector.size(), embed::BuiltinEmbedder().dim());
  EXPECT_EQ(seen.at("one").id.size(), 32u);
  // The callback may stop the walk.
  int calls = 0;
  ASSERT_TRUE(
      c->ForEachEntry(false, [&](const cache::ExportedEntry&) { return ++calls < 1; }).ok());
  EXPECT_EQ(calls, 1);
}

TEST(RedisCache, AttributeScopeIsNeverCrossed) {
  RedisServer server;
  auto r = Connect(server);
  auto c = Open(*r);
  ASSERT_TRUE(
      c->Store("What is my account balance?", "alice: 10 EUR", {{"user", "alice"}}, std::nullopt)
          .ok());
  ASSERT_TRUE(
      c->Store("What is my account balance?", "bob: 99 EUR", {{"user", "bob"}}, std::nullopt).ok());
  // Values Redis's filter language cannot quote are checked on the candidates instead.
  ASSERT_TRUE(
      c->Store("What is my account balance?", "quote: 5 EUR", {{"user", "o\"brien"}}, std::nullopt)
          .ok());
  for (auto strategies :
       {std::vector<Strategy>{Strategy::kExact}, std::vector<Strategy>{Strategy::kSemantic}}) {
    auto alice = Find(*c, "what is my account balance", {{"user", "alice"}}, strategies);
    ASSERT_TRUE(alice);
    EXPECT_EQ(alice->entry->response(), "alice: 10 EUR");
    auto quoted = Find(*c, "what is my account balance", {{"user", "o\"brien"}}, strategies);
    ASSERT_TRUE(quoted);
    EXPECT_EQ(quoted->entry->response(), "quote: 5 EUR");
    EXPECT_FALSE(Find(*c, "what is my account balance", {{"user", "carol"}}, strategies));
  }
}

TEST(RedisCache, ExpiredEntriesAreNeverReturnedAndTheSweeperClearsTheSet) {
  RedisServer server;
  auto r = Connect(server);
  auto c = Open(*r);
  ASSERT_TRUE(c->Store("short lived question about caching", "soon gone", {}, 300).ok());
  ASSERT_TRUE(c->Store("long lived question about caching", "stays", {}, std::nullopt).ok());
  // Expiry is the hashes' and the sweeper's: the vector set never carries a TTL, so no
  // eviction policy that picks keys by TTL can take the whole index.
  EXPECT_EQ(*r->Execute({"PTTL", c->Key("vectors")})->AsInteger(), -1);
  EXPECT_TRUE(Find(*c, "short lived question about caching"));
  std::this_thread::sleep_for(450ms);
  EXPECT_FALSE(Find(*c, "short lived question about caching"));
  EXPECT_FALSE(Find(*c, "short lived question about caching", {}, {Strategy::kSemantic}));
  auto card = r->Execute({"VCARD", c->Key("vectors")});
  EXPECT_LE(*card->AsInteger(), 2);
  EXPECT_EQ(c->Sweep(), 1u);
  EXPECT_EQ(*r->Execute({"VCARD", c->Key("vectors")})->AsInteger(), 1);
  EXPECT_EQ(c->Stats().entries, 1u);
  EXPECT_TRUE(Find(*c, "long lived question about caching"));
}

TEST(RedisCache, DeleteByIdByAttributesAndFlush) {
  RedisServer server;
  auto r = Connect(server);
  auto c = Open(*r);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    auto id = c->Store("question number " + std::to_string(i), "answer",
                       {{"team", i % 2 ? "red" : "blue"}}, std::nullopt);
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  ASSERT_TRUE(c->Delete(ids[0]).ok());
  EXPECT_EQ(c->Delete(ids[0]).code(), ErrorCode::kNotFound);
  EXPECT_EQ(c->Delete("not-an-id").code(), ErrorCode::kNotFound);
  EXPECT_FALSE(Find(*c, "question number 0", {{"team", "blue"}}));
  EXPECT_EQ(*c->DeleteByAttributes({{"team", "red"}}), 3u);
  EXPECT_EQ(c->Stats().entries, 2u);
  EXPECT_FALSE(Find(*c, "question number 1", {{"team", "red"}}));
  EXPECT_TRUE(Find(*c, "question number 2", {{"team", "blue"}}));
  ASSERT_TRUE(c->Flush().ok());
  EXPECT_EQ(c->Stats().entries, 0u);
  EXPECT_FALSE(Find(*c, "question number 2", {{"team", "blue"}}));
  // Only this cache's keys existed, and none is left but the record of its embedder and the
  // count of its writes.
  auto keys = r->Execute({"KEYS", "semcached:{shared}:*"});
  std::set<std::string> left;
  for (const auto& k : keys->elements) left.insert(k.str);
  EXPECT_EQ(left,
            (std::set<std::string>{"semcached:{shared}:embedder", "semcached:{shared}:writes"}));
}

TEST(RedisCache, AnotherEmbedderIsRefusedWithWhatChangedAndWhatToRun) {
  RedisServer server;
  auto r = Connect(server);
  cache::CacheOptions o;
  o.id = "shared";
  {
    auto c = cache::RedisCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(), *r);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE((*c)->Store("hello there", "hi", cache::Attributes{}, std::nullopt).ok());
  }
  embed::BuiltinEmbedderOptions other;
  other.dim = 256;
  auto refused = cache::RedisCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(other), *r);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("dimensions 512 -> 256"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("semcached reembed shared"), std::string::npos);
  // The same embedder again opens it.
  EXPECT_TRUE(cache::RedisCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(), *r).ok());
}

std::unique_ptr<embed::Embedder> NgramOfDim(std::size_t dim) {
  embed::BuiltinEmbedderOptions o;
  o.dim = dim;
  return std::make_unique<embed::BuiltinEmbedder>(o);
}

std::string Question(int i) {
  static const char* const kTopics[] = {"renew a passport", "cancel a subscription",
                                        "reset a router",   "bake sourdough bread",
                                        "change a tyre",    "learn the guitar"};
  return "How long does it take to " + std::string(kTopics[i % 6]) + " in city " +
         std::to_string(i) + "?";
}

TEST(RedisCache, ReembedSwitchesInOneStepWhileAnotherInstanceKeepsStoring) {
  RedisServer server;
  auto ra = Connect(server), rb = Connect(server);
  cache::CacheOptions o;
  o.id = "shared";
  auto a = cache::RedisCache::Create(o, NgramOfDim(512), *ra);
  auto b = cache::RedisCache::Create(o, NgramOfDim(512), *rb);  // another instance
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<std::pair<std::string, std::string>> stored;  // id, prompt
  for (int i = 0; i < 300; ++i) {
    auto id = (*a)->Store(Question(i), "answer " + std::to_string(i), {}, std::nullopt);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    stored.emplace_back(*id, Question(i));
  }
  // The other instance stores all along; what it stored before the switch must be found
  // after it, and after the switch it must refuse (its embedder makes the old vectors).
  std::atomic<bool> stop{false};
  std::vector<std::pair<std::string, std::string>> by_b;
  Status b_refusal;  // written by the writer, read after it is joined
  std::atomic<bool> b_refused{false};
  std::thread writer([&] {
    for (int i = 1000; !stop.load(); ++i) {
      auto id = (*b)->Store(Question(i), "answer", {}, std::nullopt);
      if (!id.ok()) {
        b_refusal = id.status();
        b_refused = true;
        return;
      }
      by_b.emplace_back(*id, Question(i));
    }
  });
  std::size_t last_total = 0, calls = 0;
  Status s = (*a)->Reembed(NgramOfDim(256), [&](std::size_t done, std::size_t total) {
    ++calls;
    EXPECT_LE(done, total);
    last_total = total;
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  // b refuses from its next store on; give it a moment to try one.
  for (int i = 0; i < 200 && !b_refused.load(); ++i) std::this_thread::sleep_for(5ms);
  stop = true;
  writer.join();
  EXPECT_GT(calls, 0u);
  EXPECT_GE(last_total, 300u);
  ASSERT_FALSE(b_refusal.ok());
  EXPECT_EQ(b_refusal.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(b_refusal.message().find("restart it"), std::string::npos) << b_refusal.message();
  EXPECT_EQ((*a)->generation(), 1);

  // Every entry, from either instance, is found by its own prompt in the new vectors.
  for (const auto& list : {stored, by_b}) {
    for (const auto& [id, prompt] : list) {
      auto hit = Find(**a, prompt, {}, {Strategy::kSemantic});
      ASSERT_TRUE(hit) << prompt;
      EXPECT_EQ(hit->id, id);
      EXPECT_GT(hit->similarity, 0.98f);  // int8 in Redis
    }
  }
  // One vector per entry, in the new set only.
  auto ids = ra->Execute({"SCARD", "semcached:{shared}:ids"});
  auto card = ra->Execute({"VCARD", "semcached:{shared}:vectors.g1"});
  EXPECT_EQ(*card->AsInteger(), *ids->AsInteger());
  EXPECT_EQ(*card->AsInteger(), static_cast<std::int64_t>(stored.size() + by_b.size()));
  EXPECT_EQ(*ra->Execute({"EXISTS", "semcached:{shared}:vectors"})->AsInteger(), 0);
  EXPECT_EQ(*ra->Execute({"EXISTS", "semcached:{shared}:reembed"})->AsInteger(), 0);

  // b's searches refuse too, rather than compare vectors of two embedders.
  SearchQuery q;
  q.prompt = "something never stored";
  q.strategies = {Strategy::kSemantic};
  auto refused = (*b)->Search(q);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kFailedPrecondition);
  // A new instance with the old embedder is refused; one with the new embedder opens it.
  auto old = cache::RedisCache::Create(o, NgramOfDim(512), *rb);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("semcached reembed shared"), std::string::npos);
  auto c = cache::RedisCache::Create(o, NgramOfDim(256), *rb);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->generation(), 1);
  EXPECT_EQ(Find(**c, stored[7].second, {}, {Strategy::kSemantic})->id, stored[7].first);

  // An instance whose embedder makes the new vectors follows a later reembed by itself.
  ASSERT_TRUE((*a)->Reembed(NgramOfDim(256), {}).ok());
  EXPECT_EQ((*a)->generation(), 2);
  auto after = (*c)->Store("What is the tallest mountain in Wales?", "Snowdon", {}, std::nullopt);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ((*c)->generation(), 2);
  // Its vector went to the new set, and only there. (Not checked through a semantic search:
  // one question unlike the 300 others is an outlier in Redis's HNSW graph, which a search of
  // ef 24 does not always reach; that is the index's approximation, not the switch.)
  EXPECT_EQ(*ra->Execute({"VISMEMBER", "semcached:{shared}:vectors.g2", *after})->AsInteger(), 1);
  EXPECT_EQ(*ra->Execute({"EXISTS", "semcached:{shared}:vectors.g1"})->AsInteger(), 0);
  auto found = Find(**a, "What is the tallest mountain in Wales?", {}, {Strategy::kExact});
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, *after);
}

TEST(RedisCache, OneReembedAtATime) {
  RedisServer server;
  auto r = Connect(server);
  cache::CacheOptions o;
  o.id = "shared";
  auto a = cache::RedisCache::Create(o, NgramOfDim(512), *r);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Store("hello there", "hi", {}, std::nullopt).ok());
  // Another instance holds the lock.
  ASSERT_TRUE(r->Execute({"SET", "semcached:{shared}:reembed", "someone", "PX", "60000"}).ok());
  Status s = (*a)->Reembed(NgramOfDim(256), {});
  EXPECT_EQ(s.code(), ErrorCode::kAlreadyExists) << s.ToString();
  EXPECT_EQ((*a)->generation(), 0);
  EXPECT_TRUE(Find(**a, "hello there", {}, {Strategy::kSemantic}));  // unchanged
  // Its lock is left alone; once released, the reembed goes through.
  EXPECT_EQ(r->Execute({"GET", "semcached:{shared}:reembed"})->str, "someone");
  ASSERT_TRUE(r->Execute({"DEL", "semcached:{shared}:reembed"}).ok());
  EXPECT_TRUE((*a)->Reembed(NgramOfDim(256), {}).ok());
  EXPECT_TRUE(Find(**a, "hello there", {}, {Strategy::kSemantic}));
}

TEST(RedisCache, RedisDownIsAnErrorWithinTheTimeout) {
  RedisServer server;
  auto r = Connect(server);
  auto c = Open(*r);
  ASSERT_TRUE(c->Store("a question before the outage", "answer", {}, std::nullopt).ok());
  server.Kill();
  auto start = std::chrono::steady_clock::now();
  auto stored = c->Store("a question during the outage", "answer", {}, std::nullopt);
  SearchQuery q;
  q.prompt = "a question before the outage";
  auto searched = c->Search(q);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ASSERT_FALSE(stored.ok());
  ASSERT_FALSE(searched.ok());
  EXPECT_TRUE(searched.status().code() == ErrorCode::kUnavailable ||
              searched.status().code() == ErrorCode::kDeadlineExceeded)
      << searched.status().ToString();
}

TEST(RedisCache, EntryLimitEvictsTheLeastRecentlyUsedFromEveryStructure) {
  RedisServer server;
  auto r = Connect(server);
  std::int64_t now = 1'000'000;
  cache::CacheOptions o;
  o.id = "bounded";
  o.max_entries = 20;
  auto made = cache::RedisCache::Create(o, std::make_unique<embed::BuiltinEmbedder>(), *r, {},
                                        [&now] { return now; });
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto& c = **made;
  auto prompt = [](int i) {
    return "question number " + std::to_string(i) + " about topic " + std::to_string(i);
  };
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    now = 1'000'000 + i;
    auto id = c.Store(prompt(i), "answer " + std::to_string(i), {}, std::nullopt);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  now = 2'000'000;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Find(c, prompt(i), {}, {Strategy::kExact}));
  // Hits record their use asynchronously: wait until the last one is in.
  for (int tries = 0; tries < 100; ++tries) {
    auto la = r->Execute({"HGET", c.Key("e:" + ids[9]), "la"});
    if (la.ok() && la->IsText() && la->str == "2000000") break;
    std::this_thread::sleep_for(10ms);
  }
  for (int i = 20; i < 30; ++i) {
    now = 3'000'000 + i;
    ASSERT_TRUE(c.Store(prompt(i), "answer " + std::to_string(i), {}, std::nullopt).ok());
  }
  auto stats = c.Stats();
  EXPECT_EQ(stats.entries, 20u);
  EXPECT_EQ(stats.evicted, 10u);
  auto vcard = r->Execute({"VCARD", c.Key("vectors")});
  ASSERT_TRUE(vcard.ok());
  EXPECT_EQ(*vcard->AsInteger(), 20);
  // Sampling 16 of 21 ids finds a cold entry for the first evictions for certain and for the
  // last few with probability 0.76 to 1: nearly every hit entry stays.
  int hot_kept = 0;
  for (int i = 0; i < 20; ++i) {
    auto exists = r->Execute({"EXISTS", c.Key("e:" + ids[i])});
    ASSERT_TRUE(exists.ok());
    const bool kept = *exists->AsInteger() == 1;
    if (i < 10 && kept) ++hot_kept;
    if (!kept) {
      // Evicted from every structure: no hash, no vector, no id, no exact key.
      EXPECT_FALSE(Find(c, prompt(i), {}, {Strategy::kExact}));
      auto member = r->Execute({"SISMEMBER", c.Key("ids"), ids[i]});
      EXPECT_EQ(*member->AsInteger(), 0);
      auto emb = r->Execute({"VEMB", c.Key("vectors"), ids[i]});
      EXPECT_FALSE(emb.ok() && emb->IsAggregate()) << "vector of evicted entry " << i;
    }
  }
  EXPECT_GE(hot_kept, 8);
}

}  // namespace
}  // namespace semcached::testing
