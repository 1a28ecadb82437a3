#include "vector/hnsw_index.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "test_support.h"

namespace semcached::vector {
namespace {

// Clustered Gaussian data: what embeddings of related texts look like, roughly.
std::vector<float> Clustered(std::size_t n, std::size_t dim, std::uint64_t seed,
                             std::size_t clusters = 20, float spread = 0.3f, float shift = 0.f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> centers(clusters * dim);
  for (auto& c : centers) c = g(rng) + shift;
  std::vector<float> v(n * dim);
  std::uniform_int_distribution<std::size_t> pick(0, clusters - 1);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t c = pick(rng);
    for (std::size_t d = 0; d < dim; ++d) v[i * dim + d] = centers[c * dim + d] + spread * g(rng);
  }
  return v;
}

HnswOptions Options(std::size_t dim) {
  HnswOptions o;
  o.dim = dim;
  o.M = 16;
  o.ef_construction = 100;
  o.calibration_threshold = 256;
  return o;
}

std::unique_ptr<HnswIndex> Build(const HnswOptions& o, const std::vector<float>& data) {
  auto index = HnswIndex::Create(o);
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  const std::size_t n = data.size() / o.dim;
  for (std::size_t i = 0; i < n; ++i) {
    Status s = (*index)->Add(i, &data[i * o.dim], o.dim);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return std::move(*index);
}

double Recall(const HnswIndex& index, const std::vector<float>& queries, std::size_t dim,
              SearchParams p) {
  const std::size_t nq = queries.size() / dim;
  double hit = 0;
  for (std::size_t i = 0; i < nq; ++i) {
    SearchParams exact = p;
    exact.precision = Precision::kExact;
    auto truth = index.Search(&queries[i * dim], dim, exact);
    auto got = index.Search(&queries[i * dim], dim, p);
    EXPECT_TRUE(truth.ok() && got.ok());
    std::set<std::uint64_t> t;
    for (auto& h : *truth) t.insert(h.label);
    for (auto& h : *got) hit += t.count(h.label);
  }
  return hit / static_cast<double>(nq * p.k);
}

TEST(Hnsw, RecallAtEveryPrecision) {
  const std::size_t dim = 64;
  auto data = Clustered(4000, dim, 1);
  HnswOptions o = Options(dim);
  o.binary_codes = true;
  auto index = Build(o, data);
  auto queries = Clustered(100, dim, 2);
  SearchParams p;
  p.k = 10;
  p.ef = 64;
  p.precision = Precision::kInt8;
  double int8 = Recall(*index, queries, dim, p);
  p.precision = Precision::kInt8Rescore;
  double rescored = Recall(*index, queries, dim, p);
  // The binary first pass ranks by sign agreement, which only tracks distance for queries
  // that look like the data: use perturbed data points here.
  std::vector<float> near(queries.size());
  std::mt19937_64 rng(3);
  std::normal_distribution<float> noise(0, 0.05f);
  for (std::size_t i = 0; i < near.size(); ++i) near[i] = data[i] + noise(rng);
  p.precision = Precision::kCascade;
  double cascade = Recall(*index, near, dim, p);
  std::printf("recall@10: int8 %.3f, rescored %.3f, cascade %.3f\n", int8, rescored, cascade);
  // Queries come from other clusters than the data: hard for any graph (hnswlib float32 gets
  // about 0.80 here at ef 64). Measured: int8 0.87, re-scored 0.88.
  EXPECT_GT(int8, 0.8);
  EXPECT_GT(rescored, 0.8);
  EXPECT_GE(rescored, int8);
  EXPECT_GT(cascade, 0.9);
  p.precision = Precision::kInt8Rescore;
  p.ef = 200;
  EXPECT_GT(Recall(*index, queries, dim, p), 0.95);
  auto stats = index->Stats();
  EXPECT_TRUE(stats.calibrated);
  EXPECT_EQ(stats.live, 4000u);
  EXPECT_GE(stats.params_version, 1u);
}

TEST(Hnsw, BuffersUntilCalibrationThreshold) {
  const std::size_t dim = 16;
  auto data = Clustered(300, dim, 3);
  HnswOptions o = Options(dim);
  auto created = HnswIndex::Create(o);
  ASSERT_TRUE(created.ok());
  auto& index = *created;
  for (std::size_t i = 0; i < 100; ++i) ASSERT_TRUE(index->Add(i, &data[i * dim], dim).ok());
  EXPECT_FALSE(index->Stats().calibrated);
  // Buffered vectors are found exactly.
  SearchParams p;
  p.k = 1;
  auto hit = index->Search(&data[42 * dim], dim, p);
  ASSERT_TRUE(hit.ok());
  ASSERT_EQ(hit->size(), 1u);
  EXPECT_EQ((*hit)[0].label, 42u);
  EXPECT_NEAR((*hit)[0].distance, 0.f, 1e-5);
  for (std::size_t i = 100; i < 300; ++i) ASSERT_TRUE(index->Add(i, &data[i * dim], dim).ok());
  auto stats = index->Stats();
  EXPECT_TRUE(stats.calibrated);
  EXPECT_EQ(stats.params_version, 1u);
  hit = index->Search(&data[250 * dim], dim, p);
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ((*hit)[0].label, 250u);
}

TEST(Hnsw, RefusesBadVectors) {
  auto index = HnswIndex::Create(Options(4));
  ASSERT_TRUE(index.ok());
  std::vector<float> ok = {1, 2, 3, 4}, nan = {1, NAN, 3, 4}, inf = {1, INFINITY, 3, 4},
                     zero = {0, 0, 0, 0};
  EXPECT_EQ((*index)->Add(1, ok.data(), 3).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add(1, nan.data(), 4).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add(1, inf.data(), 4).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add(1, zero.data(), 4).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*index)->Search(nan.data(), 4, {}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*index)->Search(ok.data(), 5, {}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*index)->size(), 0u);  // nothing half-inserted
  EXPECT_FALSE(HnswIndex::Create(HnswOptions{}).ok());
}

TEST(Hnsw, UpdateRemoveAndFilter) {
  const std::size_t dim = 32;
  auto data = Clustered(1000, dim, 4);
  auto index = Build(Options(dim), data);
  SearchParams p;
  p.k = 5;

  // Update: label 7 now holds vector 500's value.
  ASSERT_TRUE(index->Add(7, &data[500 * dim], dim).ok());
  auto hits = index->Search(&data[500 * dim], dim, p);
  ASSERT_TRUE(hits.ok());
  std::set<std::uint64_t> labels;
  for (auto& h : *hits) labels.insert(h.label);
  EXPECT_TRUE(labels.count(7) && labels.count(500));
  EXPECT_EQ(index->size(), 1000u);

  // Remove: never returned again.
  ASSERT_TRUE(index->Remove(500).ok());
  EXPECT_EQ(index->Remove(500).code(), ErrorCode::kNotFound);
  EXPECT_FALSE(index->Contains(500));
  hits = index->Search(&data[500 * dim], dim, p);
  ASSERT_TRUE(hits.ok());
  for (auto& h : *hits) EXPECT_NE(h.label, 500u);
  EXPECT_EQ((*hits)[0].label, 7u);

  // Filter: only labels divisible by 100 (10 of them).
  std::function<bool(std::uint64_t)> filter = [](std::uint64_t l) { return l % 100 == 0; };
  p.filter = &filter;
  p.k = 10;
  hits = index->Search(&data[3 * dim], dim, p);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 9u);  // 0, 100, ..., 900 minus the removed 500
  for (auto& h : *hits) EXPECT_EQ(h.label % 100, 0u);
}

TEST(Hnsw, RecalibrationKeepsSearchWorking) {
  const std::size_t dim = 32;
  auto data = Clustered(2000, dim, 5);
  HnswOptions o = Options(dim);
  o.background_maintenance = false;
  o.drift_window = 1u << 30;  // only explicit recalibration here
  auto index = Build(o, data);
  auto queries = Clustered(50, dim, 6);
  SearchParams p;
  double before = Recall(*index, queries, dim, p);
  ASSERT_TRUE(index->Recalibrate().ok());
  auto stats = index->Stats();
  EXPECT_EQ(stats.params_version, 2u);
  EXPECT_EQ(stats.recalibrations, 1u);
  double after = Recall(*index, queries, dim, p);
  EXPECT_GT(after, before - 0.05);
}

TEST(Hnsw, DriftTriggersBackgroundRecalibration) {
  const std::size_t dim = 16;
  HnswOptions o = Options(dim);
  o.metric = Metric::kL2;  // keep magnitudes, so a shifted distribution clips
  o.drift_window = 200;
  auto index = Build(o, Clustered(1000, dim, 7, 20, 0.3f, 3.f));
  index->WaitForMaintenance();
  std::uint64_t before = index->Stats().recalibrations;
  auto shifted = Clustered(600, dim, 8, 5, 0.3f, 25.f);  // far outside the learned ranges
  for (std::size_t i = 0; i < 600; ++i)
    ASSERT_TRUE(index->Add(10000 + i, &shifted[i * dim], dim).ok());
  index->WaitForMaintenance();
  auto stats = index->Stats();
  EXPECT_GT(stats.recalibrations, before);
  // The drifted points are findable: each one's nearest neighbour is itself for nearly all
  // (a few may sit in a poorly linked corner, whatever the thread timing was).
  SearchParams p;
  p.k = 1;
  p.ef = 128;
  int found = 0;
  for (std::size_t i = 0; i < 600; ++i) {
    auto hit = index->Search(&shifted[i * dim], dim, p);
    ASSERT_TRUE(hit.ok());
    found += !hit->empty() && (*hit)[0].label == 10000 + i;
  }
  std::printf("drift: %d of 600 drifted points found as their own nearest neighbour\n", found);
  EXPECT_GE(found, 540) << "of 600";  // measured 578-595 across thread timings (TSan included)
}

TEST(Hnsw, CompactionDropsTombstones) {
  const std::size_t dim = 24;
  auto data = Clustered(3000, dim, 9);
  HnswOptions o = Options(dim);
  o.background_maintenance = false;
  auto index = Build(o, data);
  for (std::size_t i = 0; i < 3000; i += 2) ASSERT_TRUE(index->Remove(i).ok());
  EXPECT_EQ(index->Stats().tombstones, 1500u);
  ASSERT_TRUE(index->Compact().ok());
  auto stats = index->Stats();
  EXPECT_EQ(stats.tombstones, 0u);
  EXPECT_EQ(stats.nodes, 1500u);
  EXPECT_EQ(stats.live, 1500u);
  SearchParams p;
  p.k = 1;
  for (std::size_t i = 1; i < 3000; i += 300) {
    auto hit = index->Search(&data[i * dim], dim, p);
    ASSERT_TRUE(hit.ok());
    ASSERT_FALSE(hit->empty());
    EXPECT_EQ((*hit)[0].label, i);
  }
}

TEST(Hnsw, OtherMetrics) {
  const std::size_t dim = 16;
  auto data = Clustered(800, dim, 10);
  for (Metric m : {Metric::kL2, Metric::kInnerProduct}) {
    HnswOptions o = Options(dim);
    o.metric = m;
    auto index = Build(o, data);
    auto queries = Clustered(30, dim, 11);
    SearchParams p;
    EXPECT_GT(Recall(*index, queries, dim, p), 0.9) << MetricName(m);
  }
}

TEST(Hnsw, OriginalsOnDisk) {
  semcached::testing::TempDir dir;
  const std::size_t dim = 32;
  HnswOptions o = Options(dim);
  o.originals_path = dir.File("originals.f32");
  auto data = Clustered(600, dim, 12);
  {
    auto index = Build(o, data);
    auto stats = index->Stats();
    EXPECT_TRUE(stats.originals_on_disk);
    EXPECT_TRUE(std::filesystem::exists(o.originals_path + ".0"));
    auto v = index->Get(17);
    ASSERT_TRUE(v.ok());
    SearchParams p;
    p.k = 1;
    auto hit = index->Search(v->data(), dim, p);
    ASSERT_TRUE(hit.ok());
    EXPECT_EQ((*hit)[0].label, 17u);
  }
  EXPECT_FALSE(std::filesystem::exists(o.originals_path + ".0"));
}

TEST(Hnsw, ConcurrentAddSearchRemove) {
  const std::size_t dim = 32;
  auto data = Clustered(4000, dim, 13);
  HnswOptions o = Options(dim);
  o.drift_window = 500;
  auto created = HnswIndex::Create(o);
  ASSERT_TRUE(created.ok());
  HnswIndex& index = **created;
  for (std::size_t i = 0; i < 500; ++i) ASSERT_TRUE(index.Add(i, &data[i * dim], dim).ok());

  std::atomic<bool> failed{false};
  // Writer w adds the labels of its parity, and removes only labels it added itself (300
  // back, same parity), so every Remove follows its Add.
  auto writer_for = [&](std::size_t w) {
    return [&, w] {
      for (std::size_t i = 500 + w; i < 4000; i += 2) {
        if (!index.Add(i, &data[i * dim], dim).ok()) failed = true;
        if (i % 7 == 0 && !index.Remove(i - 300).ok()) failed = true;
      }
    };
  };
  auto writer = writer_for(0);
  auto writer2 = writer_for(1);
  auto reader = [&] {
    SearchParams p;
    p.k = 5;
    for (int r = 0; r < 300; ++r) {
      auto hits = index.Search(&data[(r * 13 % 4000) * dim], dim, p);
      if (!hits.ok()) failed = true;
    }
  };
  std::thread w1(writer), w2(writer2), r1(reader), r2(reader);
  std::thread recal([&] {
    if (!index.Recalibrate().ok()) failed = true;
  });
  w1.join();
  w2.join();
  r1.join();
  r2.join();
  recal.join();
  index.WaitForMaintenance();
  EXPECT_FALSE(failed);
  std::size_t removed = 0;
  for (std::size_t i = 500; i < 4000; ++i) removed += (i % 7 == 0);
  EXPECT_EQ(index.size(), 4000u - removed);
  SearchParams p;
  p.k = 1;
  auto hit = index.Search(&data[3999 * dim], dim, p);
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ((*hit)[0].label, 3999u);
}

}  // namespace
}  // namespace semcached::vector
