#include "vector/lsh.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "vector/kernels.h"
#include "vector/quantizer.h"

namespace semcached::vector {
namespace {

std::vector<float> Gauss(std::size_t dim, std::mt19937_64& rng) {
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(dim);
  for (auto& x : v) x = g(rng);
  NormalizeInPlace(v.data(), dim);
  return v;
}

std::vector<float> Near(const std::vector<float>& v, float noise, std::mt19937_64& rng) {
  std::normal_distribution<float> g(0, noise);
  std::vector<float> w = v;
  for (auto& x : w) x += g(rng);
  NormalizeInPlace(w.data(), w.size());
  return w;
}

TEST(SimHash, HammingEstimatesTheAngle) {
  const std::size_t dim = 128;
  SimHasher h(dim, 512, 3);
  std::mt19937_64 rng(1);
  std::vector<std::uint64_t> a(h.words()), b(h.words());
  double worst = 0, total = 0;
  for (int i = 0; i < 50; ++i) {
    auto x = Gauss(dim, rng);
    auto y = Near(x, 0.05f * static_cast<float>(i % 10), rng);
    h.Hash(x.data(), a.data());
    h.Hash(y.data(), b.data());
    double est = h.EstimatedCosine(ScalarKernels().hamming(a.data(), b.data(), h.words()));
    double truth = ScalarKernels().dot_f32(x.data(), y.data(), dim);
    worst = std::max(worst, std::fabs(est - truth));
    total += std::fabs(est - truth);
  }
  // 512 bits: the angle's standard error is about 0.07 rad where cosine moves fastest.
  EXPECT_LT(total / 50, 0.06);
  EXPECT_LT(worst, 0.25);
  auto x = Gauss(dim, rng);
  std::vector<float> neg(x);
  for (auto& v : neg) v = -v;
  h.Hash(x.data(), a.data());
  h.Hash(neg.data(), b.data());
  EXPECT_EQ(ScalarKernels().hamming(a.data(), b.data(), h.words()), 512u);
}

TEST(LshIndex, FindsNearDuplicatesAndNothingFar) {
  const std::size_t dim = 64;
  LshOptions o;
  o.dim = dim;
  auto created = LshIndex::Create(o);
  ASSERT_TRUE(created.ok());
  auto& index = *created;
  std::mt19937_64 rng(2);
  std::vector<std::vector<float>> base;
  for (int i = 0; i < 2000; ++i) {
    base.push_back(Gauss(dim, rng));
    ASSERT_TRUE(index->Add(i, base.back().data(), dim).ok());
  }
  int found = 0;
  for (int i = 0; i < 200; ++i) {
    auto q = Near(base[i * 7], 0.02f, rng);  // cosine about 0.99
    auto hits = index->Search(q.data(), dim, 1, 40);
    ASSERT_TRUE(hits.ok());
    found += !hits->empty() && (*hits)[0].label == static_cast<std::uint64_t>(i * 7);
  }
  EXPECT_GE(found, 196);
  // A random vector has no near-copy: nothing within a small Hamming radius.
  auto far = Gauss(dim, rng);
  auto none = index->Search(far.data(), dim, 5, 20);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(index->Remove(7).ok());
  auto q = Near(base[7], 0.02f, rng);
  auto hits = index->Search(q.data(), dim, 1, 40);
  ASSERT_TRUE(hits.ok());
  if (!hits->empty()) {
    EXPECT_NE((*hits)[0].label, 7u);
  }
  EXPECT_EQ(index->Remove(7).code(), ErrorCode::kNotFound);
  EXPECT_EQ(index->size(), 1999u);
  EXPECT_FALSE(LshIndex::Create(LshOptions{}).ok());
  std::vector<float> bad(dim, NAN);
  EXPECT_FALSE(index->Add(1, bad.data(), dim).ok());
}

TEST(MinHash, EstimatesJaccardOfShingles) {
  MinHasher mh(128, 5, 9);
  auto a = mh.Signature("what is the capital of france");
  auto b = mh.Signature("what is the capital of france?");
  auto c = mh.Signature("how do I reset my router password");
  EXPECT_DOUBLE_EQ(MinHasher::Similarity(a, a), 1.0);
  EXPECT_GT(MinHasher::Similarity(a, b), 0.8);
  EXPECT_LT(MinHasher::Similarity(a, c), 0.15);

  MinHashLsh lsh(32, 4);
  ASSERT_TRUE(lsh.Add(1, a).ok());
  ASSERT_TRUE(lsh.Add(2, c).ok());
  auto cands = lsh.Candidates(b);
  EXPECT_NE(std::find(cands.begin(), cands.end(), 1u), cands.end());
  EXPECT_EQ(std::find(cands.begin(), cands.end(), 2u), cands.end());
  EXPECT_FALSE(lsh.Add(3, std::vector<std::uint64_t>(7)).ok());
}

}  // namespace
}  // namespace semcached::vector
