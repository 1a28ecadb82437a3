// The Redis 8 vector-set store through the same conformance suite as the embedded store,
// over RESP2 and RESP3, plus what only the Redis store has: creation flags and the key layout.
#include <atomic>

#include "../store/conformance.h"
#include "redis/client.h"
#include "store/redis_store.h"
#include "test_support.h"

namespace semcached::testing {
namespace {

// One server and one client per protocol for the whole suite; each store gets its own key.
struct SharedRedis {
  RedisServer server;
  std::unique_ptr<redis::Client> clients[2];
  std::atomic<int> next{0};
  redis::Client& client(int protocol) {
    auto& c = clients[protocol - 2];
    if (!c) {
      redis::ClientOptions o;
      o.port = server.port();
      o.protocol = protocol;
      o.pool_min = 2;
      o.command_timeout_ms = 5000;
      c = std::move(*redis::Client::Create(o));
    }
    return *c;
  }
};

SharedRedis& Shared() {
  static SharedRedis shared;  // stopped at exit (members go in reverse: clients, then server)
  return shared;
}

StoreFactory RedisFactory(int protocol) {
  return {"RedisResp" + std::to_string(protocol), [protocol](const store::CollectionOptions& o) {
            store::RedisStoreOptions ro;
            ro.collection = "conformance" + std::to_string(Shared().next.fetch_add(1));
            ro.collection_options = o;
            ro.batch_size = 128;
            auto s = store::RedisVectorStore::Open(Shared().client(protocol), ro);
            if (!s.ok()) throw std::runtime_error(s.status().ToString());
            return std::unique_ptr<store::VectorStore>(std::move(*s));
          }};
}

const StoreFactory kResp2 = RedisFactory(2);
const StoreFactory kResp3 = RedisFactory(3);

INSTANTIATE_TEST_SUITE_P(Redis, StoreConformance, ::testing::Values(&kResp2, &kResp3),
                         [](const auto& info) { return info.param->name; });

TEST(RedisStore, KeysShareTheCollectionsHashTagAndFlagsAreChecked) {
  auto& client = Shared().client(2);
  store::RedisStoreOptions o;
  o.collection = "flags";
  o.collection_options.dim = 4;
  o.collection_options.quantization = store::Quantization::kNoQuant;
  o.collection_options.M = 12;
  auto s = store::RedisVectorStore::Open(client, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->key(), "semcached:{flags}:vectors");
  ASSERT_TRUE((*s)->Add({"a", {1, 0, 0, 0}, ""}).ok());
  auto info = client.Execute({"VINFO", (*s)->key()});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->Field("quant-type")->str, "f32");
  EXPECT_EQ(*info->Field("hnsw-m")->AsInteger(), 12);
  // Flags are repeated on every VADD, so later writes are accepted.
  EXPECT_TRUE((*s)->Add({"b", {0, 1, 0, 0}, ""}).ok());

  auto other = o;
  other.collection_options.quantization = store::Quantization::kQ8;
  auto mismatch = store::RedisVectorStore::Open(client, other);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("quantization"), std::string::npos);
  other = o;
  other.collection_options.M = 16;
  EXPECT_FALSE(store::RedisVectorStore::Open(client, other).ok());
  other = o;
  other.collection_options.dim = 8;
  EXPECT_FALSE(store::RedisVectorStore::Open(client, other).ok());
  other.collection = "bad{name}";
  EXPECT_FALSE(store::RedisVectorStore::Open(client, other).ok());
}

TEST(RedisStore, ReduceProjectsAndStillFindsNeighbours) {
  store::RedisStoreOptions o;
  o.collection = "reduced";
  o.collection_options.dim = 64;
  o.collection_options.reduce = 32;
  auto s = store::RedisVectorStore::Open(Shared().client(3), o);
  ASSERT_TRUE(s.ok());
  std::mt19937 rng(5);
  std::vector<std::vector<float>> vs;
  for (int i = 0; i < 100; ++i) {
    vs.push_back(RandomUnit(rng, 64));
    ASSERT_TRUE((*s)->Add({"r" + std::to_string(i), vs.back(), ""}).ok());
  }
  auto dim = Shared().client(3).Execute({"VDIM", (*s)->key()});
  EXPECT_EQ(*dim->AsInteger(), 32);
  auto hits = (*s)->Search(vs[7], {.k = 1});
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].id, "r7");
}

}  // namespace
}  // namespace semcached::testing
