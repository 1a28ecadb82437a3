// Redis Cluster: a real 3-master Redis 8 cluster started on loopback ports. The sharded store
// runs the same conformance suite as the single-set stores, and the client follows MOVED
// after a slot migration.
#include <set>

#include "../store/conformance.h"
#include "redis/cluster.h"
#include "store/sharded_store.h"
#include "test_support.h"

namespace semcached::testing {
namespace {

redis::ClientOptions NodeOptions() {
  redis::ClientOptions o;
  o.pool_min = 1;
  o.pool_max = 8;
  o.command_timeout_ms = 5000;
  return o;
}

struct SharedCluster {
  RedisCluster cluster{3};
  std::unique_ptr<redis::ClusterClient> client;
  std::atomic<int> next{0};
  SharedCluster() {
    auto c = redis::ClusterClient::Create(NodeOptions(), cluster.Seeds());
    if (!c.ok()) throw std::runtime_error(c.status().ToString());
    client = std::move(*c);
  }
};

SharedCluster& Shared() {
  static SharedCluster shared;
  return shared;
}

StoreFactory ShardedFactory(store::Placement placement, const char* name) {
  return {name, [placement](const store::CollectionOptions& o) {
            store::ShardedStoreOptions so;
            so.base.collection = "sharded" + std::to_string(Shared().next.fetch_add(1));
            so.base.collection_options = o;
            so.base.batch_size = 200;
            so.shards = 4;
            so.placement = placement;
            auto s = store::ShardedStore::Open(*Shared().client, so);
            if (!s.ok()) throw std::runtime_error(s.status().ToString());
            return std::unique_ptr<store::VectorStore>(std::move(*s));
          }};
}

const StoreFactory kByHash = ShardedFactory(store::Placement::kHash, "ShardedByHash");
const StoreFactory kBySimHash = ShardedFactory(store::Placement::kSimHash, "ShardedBySimHash");

INSTANTIATE_TEST_SUITE_P(Cluster, StoreConformance, ::testing::Values(&kByHash, &kBySimHash),
                         [](const auto& info) { return info.param->name; });

TEST(RedisCluster, ShardsSpreadOverMastersAndSearchesMergeThem) {
  auto& shared = Shared();
  store::ShardedStoreOptions so;
  so.base.collection = "spread";
  so.base.collection_options.dim = 16;
  so.shards = 8;
  auto s = store::ShardedStore::Open(*shared.client, so);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::set<int> owners;
  for (std::size_t i = 0; i < (*s)->shard_count(); ++i) {
    const std::string& key = (*s)->shard(i).key();
    EXPECT_NE(key.find("{spread~" + std::to_string(i) + "}"), std::string::npos) << key;
    owners.insert(shared.cluster.OwnerOf(redis::KeySlot(key)));
  }
  EXPECT_GE(owners.size(), 2u) << "8 hash tags should not all land on one master of 3";

  std::mt19937 rng(1);
  std::vector<store::Element> elements;
  for (int i = 0; i < 400; ++i)
    elements.push_back({"v" + std::to_string(i), RandomUnit(rng, 16), ""});
  for (const auto& st : (*s)->AddBatch(elements)) ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ((*s)->Info()->size, 400u);
  std::vector<std::size_t> per_shard((*s)->shard_count());
  for (const auto& e : elements) ++per_shard[(*s)->ShardOf(e)];
  for (std::size_t n : per_shard) EXPECT_GT(n, 20u);  // hash placement spreads evenly enough
  auto hits = (*s)->Search(elements[123].vector, {.k = 5, .exact = true});
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].id, "v123");
  // Nodes served traffic: more than one master answered.
  int busy = 0;
  for (const auto& [node, stats] : shared.client->NodeStats()) busy += stats.commands > 0;
  EXPECT_GE(busy, 2);
}

TEST(RedisCluster, SimHashPlacementKeepsNeighboursTogether) {
  store::ShardedStoreOptions so;
  so.base.collection = "simhash";
  so.base.collection_options.dim = 32;
  so.shards = 4;
  so.placement = store::Placement::kSimHash;
  auto s = store::ShardedStore::Open(*Shared().client, so);
  ASSERT_TRUE(s.ok());
  std::mt19937 rng(2);
  int same = 0, trials = 200;
  for (int i = 0; i < trials; ++i) {
    auto v = RandomUnit(rng, 32);
    auto w = v;
    std::normal_distribution<float> noise(0, 0.02f);
    for (auto& x : w) x += noise(rng);  // a near-duplicate, cosine ~0.99
    same += (*s)->ShardOf({"a", v, ""}) == (*s)->ShardOf({"b", w, ""});
  }
  EXPECT_GT(same, trials * 9 / 10) << "near-duplicates should share a set";
}

TEST(RedisCluster, FollowsMovedAfterASlotMigration) {
  auto& shared = Shared();
  store::RedisStoreOptions o;
  o.collection = "migrating";
  o.collection_options.dim = 8;
  auto s = store::RedisVectorStore::Open(*shared.client, o);
  ASSERT_TRUE(s.ok());
  std::mt19937 rng(3);
  std::vector<float> v = RandomUnit(rng, 8);
  ASSERT_TRUE((*s)->Add({"x", v, R"({"k":1})"}).ok());
  const int slot = redis::KeySlot((*s)->key());
  const int from = shared.cluster.OwnerOf(slot);
  const int to = (from + 1) % shared.cluster.size();
  shared.cluster.MoveSlot(slot, to);
  ASSERT_EQ(shared.cluster.OwnerOf(slot), to);

  const auto moved_before = shared.client->Stats().moved;
  auto hits = (*s)->Search(v, {.k = 1});  // the client still thinks `from` owns the slot
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, "x");
  EXPECT_GT(shared.client->Stats().moved, moved_before);
  // The map was updated: the next command goes straight to the new owner.
  const auto moved_after = shared.client->Stats().moved;
  EXPECT_TRUE((*s)->Add({"y", RandomUnit(rng, 8), ""}).ok());
  EXPECT_EQ(shared.client->Stats().moved, moved_after);
  EXPECT_EQ((*s)->Info()->size, 2u);
}

TEST(RedisCluster, FollowsAskDuringASlotMigration) {
  auto& shared = Shared();
  store::RedisStoreOptions o;
  o.collection = "asking";
  o.collection_options.dim = 8;
  auto s = store::RedisVectorStore::Open(*shared.client, o);
  ASSERT_TRUE(s.ok());
  std::mt19937 rng(4);
  std::vector<float> v = RandomUnit(rng, 8);
  ASSERT_TRUE((*s)->Add({"x", v, ""}).ok());
  const int slot = redis::KeySlot((*s)->key());
  const int to = (shared.cluster.OwnerOf(slot) + 1) % shared.cluster.size();
  shared.cluster.BeginMove(slot, to);  // the key now lives on `to`; the slot is still the source's
  const auto ask_before = shared.client->Stats().ask;
  auto hits = (*s)->Search(v, {.k = 1});
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, "x");
  EXPECT_GT(shared.client->Stats().ask, ask_before);
  shared.cluster.FinishMove(slot, to);
  EXPECT_TRUE((*s)->Search(v, {.k = 1}).ok());
}

}  // namespace
}  // namespace semcached::testing
