#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "test_support.h"
#include "vector/hnsw_index.h"

namespace semcached::vector {
namespace {

using semcached::testing::ReadFile;
using semcached::testing::TempDir;
using semcached::testing::WriteFile;

std::vector<float> RandomData(std::size_t n, std::size_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(n * dim);
  for (auto& x : v) x = g(rng) + (x == 0 ? 0.5f : 0.f);
  return v;
}

std::unique_ptr<HnswIndex> BuildIndex(std::size_t n, std::size_t dim, bool binary = true) {
  HnswOptions o;
  o.dim = dim;
  o.M = 8;
  o.ef_construction = 64;
  o.calibration_threshold = 100;
  o.binary_codes = binary;
  o.background_maintenance = false;
  auto created = HnswIndex::Create(o);
  EXPECT_TRUE(created.ok());
  auto data = RandomData(n, dim, 1);
  for (std::size_t i = 0; i < n; ++i)
    EXPECT_TRUE((*created)->Add(1000 + i, &data[i * dim], dim).ok());
  return std::move(*created);
}

TEST(Persist, RoundTripGivesTheSameAnswers) {
  TempDir dir;
  const std::size_t dim = 24;
  auto index = BuildIndex(600, dim);
  for (std::uint64_t l = 1000; l < 1100; l += 3) ASSERT_TRUE(index->Remove(l).ok());
  ASSERT_TRUE(index->Save(dir.File("i.idx")).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.File("i.idx.tmp")));

  auto loaded = HnswIndex::Load(dir.File("i.idx"), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto a = index->Stats(), b = (*loaded)->Stats();
  EXPECT_EQ(a.live, b.live);
  EXPECT_EQ(a.nodes, b.nodes);
  EXPECT_EQ(a.tombstones, b.tombstones);
  EXPECT_EQ(a.params_version, b.params_version);
  EXPECT_EQ(a.scheme, b.scheme);
  EXPECT_EQ(a.max_level, b.max_level);

  auto queries = RandomData(50, dim, 2);
  for (Precision prec :
       {Precision::kInt8, Precision::kInt8Rescore, Precision::kExact, Precision::kCascade}) {
    SearchParams p;
    p.k = 10;
    p.precision = prec;
    for (std::size_t q = 0; q < 50; ++q) {
      auto x = index->Search(&queries[q * dim], dim, p);
      auto y = (*loaded)->Search(&queries[q * dim], dim, p);
      ASSERT_TRUE(x.ok() && y.ok());
      ASSERT_EQ(x->size(), y->size());
      for (std::size_t i = 0; i < x->size(); ++i) {
        EXPECT_EQ((*x)[i].label, (*y)[i].label);
        EXPECT_FLOAT_EQ((*x)[i].distance, (*y)[i].distance);
      }
    }
  }
  // The loaded index keeps working.
  auto more = RandomData(10, dim, 3);
  ASSERT_TRUE((*loaded)->Add(1, more.data(), dim).ok());
  ASSERT_TRUE((*loaded)->Remove(1500).ok());
  EXPECT_EQ((*loaded)->Remove(1000).code(), ErrorCode::kNotFound);  // removed before saving
  SearchParams p;
  p.k = 1;
  auto hit = (*loaded)->Search(more.data(), dim, p);
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ((*hit)[0].label, 1u);
}

TEST(Persist, BufferedIndexRoundTrips) {
  TempDir dir;
  auto index = BuildIndex(50, 8);  // below the calibration threshold
  EXPECT_FALSE(index->Stats().calibrated);
  ASSERT_TRUE(index->Save(dir.File("b.idx")).ok());
  auto loaded = HnswIndex::Load(dir.File("b.idx"), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE((*loaded)->Stats().calibrated);
  EXPECT_EQ((*loaded)->size(), 50u);
  auto data = RandomData(200, 8, 9);
  for (std::size_t i = 0; i < 200; ++i) ASSERT_TRUE((*loaded)->Add(5000 + i, &data[i * 8], 8).ok());
  EXPECT_TRUE((*loaded)->Stats().calibrated);
}

TEST(Persist, LoadIntoOriginalsFile) {
  TempDir dir;
  auto index = BuildIndex(300, 16, false);
  ASSERT_TRUE(index->Save(dir.File("x.idx")).ok());
  HnswIndex::LoadOptions lo;
  lo.originals_path = dir.File("orig.f32");
  auto loaded = HnswIndex::Load(dir.File("x.idx"), lo);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE((*loaded)->Stats().originals_on_disk);
  auto v = (*loaded)->Get(1042);
  ASSERT_TRUE(v.ok());
  auto w = index->Get(1042);
  EXPECT_EQ(*v, *w);
}

TEST(Persist, EveryTruncationIsRefused) {
  TempDir dir;
  auto index = BuildIndex(150, 8);
  ASSERT_TRUE(index->Save(dir.File("t.idx")).ok());
  std::string bytes = ReadFile(dir.File("t.idx"));
  // Every length up to the first few hundred bytes, then a stride through the rest.
  for (std::size_t len = 0; len < bytes.size(); len += (len < 400 ? 1 : 97)) {
    WriteFile(dir.File("cut.idx"), bytes.substr(0, len));
    auto r = HnswIndex::Load(dir.File("cut.idx"), {});
    ASSERT_FALSE(r.ok()) << "a file cut at " << len << " of " << bytes.size() << " bytes loaded";
    EXPECT_EQ(r.status().code(), ErrorCode::kDataLoss) << len << ": " << r.status().ToString();
  }
}

TEST(Persist, CorruptionIsCaughtByChecksums) {
  TempDir dir;
  auto index = BuildIndex(150, 8);
  ASSERT_TRUE(index->Save(dir.File("c.idx")).ok());
  std::string bytes = ReadFile(dir.File("c.idx"));
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    std::string bad = bytes;
    std::size_t at = 12 + rng() % (bytes.size() - 12);
    bad[at] = static_cast<char>(bad[at] ^ (1 << (rng() % 8)));
    WriteFile(dir.File("bad.idx"), bad);
    auto r = HnswIndex::Load(dir.File("bad.idx"), {});
    ASSERT_FALSE(r.ok()) << "flipped a bit at " << at;
    EXPECT_NE(r.status().message().find("damaged"), std::string::npos) << r.status().message();
  }
}

TEST(Persist, ForeignAndNewerFilesAreRefused) {
  TempDir dir;
  WriteFile(dir.File("junk"), "this is not an index");
  EXPECT_EQ(HnswIndex::Load(dir.File("junk"), {}).status().code(), ErrorCode::kDataLoss);
  EXPECT_EQ(HnswIndex::Load(dir.File("missing"), {}).status().code(), ErrorCode::kNotFound);
  auto index = BuildIndex(10, 4);
  ASSERT_TRUE(index->Save(dir.File("v.idx")).ok());
  std::string bytes = ReadFile(dir.File("v.idx"));
  bytes[8] = 9;  // format version 9
  WriteFile(dir.File("v.idx"), bytes);
  auto r = HnswIndex::Load(dir.File("v.idx"), {});
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("version 9"), std::string::npos);
}

}  // namespace
}  // namespace semcached::vector
