#include "embed/caching_embedder.h"

#include <thread>

#include <gtest/gtest.h>

namespace semcached::embed {
namespace {

class CountingEmbedder final : public Embedder {
 public:
  std::size_t dim() const override { return 2; }
  std::string name() const override { return "counting"; }
  EmbedderIdentity identity() const override { return {"counting", "", "", 2, false}; }
  Result<std::vector<float>> Embed(std::string_view text) override {
    calls.fetch_add(1);
    return std::vector<float>{static_cast<float>(text.size()), static_cast<float>(gen.load())};
  }
  std::uint64_t generation() const override { return gen.load(); }
  std::atomic<int> calls{0};
  std::atomic<std::uint64_t> gen{0};
};

TEST(CachingEmbedder, EmbedsOncePerTextAndGeneration) {
  auto inner = std::make_unique<CountingEmbedder>();
  CountingEmbedder* counting = inner.get();
  CachingEmbedder c(std::move(inner), 64);
  EXPECT_EQ((*c.Embed("hello"))[0], 5.f);
  EXPECT_EQ((*c.Embed("hello"))[0], 5.f);
  EXPECT_EQ(counting->calls.load(), 1);
  EXPECT_EQ(c.hits(), 1u);
  counting->gen = 1;  // weights moved: recompute
  EXPECT_EQ((*c.Embed("hello"))[1], 1.f);
  EXPECT_EQ(counting->calls.load(), 2);
  EXPECT_EQ((*c.Embed("hello"))[1], 1.f);
  EXPECT_EQ(counting->calls.load(), 2);
}

TEST(CachingEmbedder, StoredTextsAreAnsweredButNotKept) {
  auto inner = std::make_unique<CountingEmbedder>();
  CountingEmbedder* counting = inner.get();
  CachingEmbedder c(std::move(inner), 64);
  ASSERT_TRUE(c.Embed("searched then stored").ok());
  ASSERT_TRUE(c.EmbedToStore("searched then stored").ok());  // answered from the cache
  EXPECT_EQ(counting->calls.load(), 1);
  ASSERT_TRUE(c.EmbedToStore("stored only").ok());
  ASSERT_TRUE(c.EmbedToStore("stored only").ok());  // not kept: embedded again
  EXPECT_EQ(counting->calls.load(), 3);
  ASSERT_TRUE(c.Embed("stored only").ok());
  EXPECT_EQ(counting->calls.load(), 4);
}

TEST(CachingEmbedder, StaysWithinCapacityUnderConcurrency) {
  auto inner = std::make_unique<CountingEmbedder>();
  CountingEmbedder* counting = inner.get();
  CachingEmbedder c(std::move(inner), 160);  // 10 per shard
  auto work = [&] {
    for (int i = 0; i < 2000; ++i) ASSERT_TRUE(c.Embed("text " + std::to_string(i % 500)).ok());
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(c.hits() + c.misses(), 4000u);
  EXPECT_GT(counting->calls.load(), 500);  // 500 distinct texts do not fit in 160
  // A small working set fits entirely.
  int before = counting->calls.load();
  for (int rep = 0; rep < 3; ++rep) {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Embed("hot " + std::to_string(i)).ok());
  }
  EXPECT_EQ(counting->calls.load() - before, 5);
}

}  // namespace
}  // namespace semcached::embed
