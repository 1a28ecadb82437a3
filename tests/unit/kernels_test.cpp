#include "vector/kernels.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace semcached::vector {
namespace {

const std::vector<std::size_t> kDims = {1,  2,   7,   15,  16,  17,  31,  32,  33,  63,  64,
                                        65, 100, 127, 128, 129, 255, 256, 512, 768, 769, 1536};

std::vector<const KernelTable*> AvailableLevels() {
  std::vector<const KernelTable*> out;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512Vnni}) {
    if (const KernelTable* t = KernelsFor(l)) out.push_back(t);
  }
  return out;
}

class KernelLevel : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    table_ = KernelsFor(GetParam());
    if (table_ == nullptr) GTEST_SKIP() << "CPU lacks " << SimdLevelName(GetParam());
  }
  const KernelTable* table_ = nullptr;
  const KernelTable& ref_ = ScalarKernels();
  std::mt19937 rng_{42};
};

TEST_P(KernelLevel, Float32MatchesScalar) {
  std::normal_distribution<float> dist(0.f, 1.f);
  for (std::size_t n : kDims) {
    for (int rep = 0; rep < 5; ++rep) {
      std::vector<float> a(n), b(n);
      for (auto& x : a) x = dist(rng_);
      for (auto& x : b) x = dist(rng_);
      float tol = 1e-5f * static_cast<float>(n) + 1e-5f;
      EXPECT_NEAR(table_->dot_f32(a.data(), b.data(), n), ref_.dot_f32(a.data(), b.data(), n), tol)
          << "n=" << n;
      EXPECT_NEAR(table_->l2sq_f32(a.data(), b.data(), n), ref_.l2sq_f32(a.data(), b.data(), n),
                  tol * 4)
          << "n=" << n;
    }
  }
}

TEST_P(KernelLevel, Int8IsExact) {
  std::uniform_int_distribution<int> s8(-128, 127), u8(0, 255);
  for (std::size_t n : kDims) {
    for (int rep = 0; rep < 5; ++rep) {
      std::vector<std::int8_t> a(n), b(n);
      std::vector<std::uint8_t> q(n);
      for (auto& x : a) x = static_cast<std::int8_t>(s8(rng_));
      for (auto& x : b) x = static_cast<std::int8_t>(s8(rng_));
      for (auto& x : q) x = static_cast<std::uint8_t>(u8(rng_));
      if (rep == 0) {  // the extremes
        std::fill(a.begin(), a.end(), std::int8_t{-128});
        std::fill(b.begin(), b.end(), std::int8_t{-128});
        std::fill(q.begin(), q.end(), std::uint8_t{255});
      }
      EXPECT_EQ(table_->dot_i8(a.data(), b.data(), n), ref_.dot_i8(a.data(), b.data(), n)) << n;
      EXPECT_EQ(table_->l2sq_i8(a.data(), b.data(), n), ref_.l2sq_i8(a.data(), b.data(), n)) << n;
      EXPECT_EQ(table_->dot_u8i8(q.data(), b.data(), n), ref_.dot_u8i8(q.data(), b.data(), n)) << n;
    }
  }
}

TEST_P(KernelLevel, ManyRowsMatchOneByOne) {
  std::uniform_int_distribution<int> s8(-127, 127), u8(0, 255);
  for (std::size_t n : kDims) {
    for (std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{4}, std::size_t{9}}) {
      std::vector<std::vector<std::int8_t>> rows(count, std::vector<std::int8_t>(n));
      std::vector<const std::int8_t*> ptrs;
      for (auto& r : rows) {
        for (auto& x : r) x = static_cast<std::int8_t>(s8(rng_));
        ptrs.push_back(r.data());
      }
      std::vector<std::uint8_t> q(n);
      for (auto& x : q) x = static_cast<std::uint8_t>(u8(rng_));
      std::vector<std::int32_t> out(count);
      table_->dot_u8i8_many(q.data(), ptrs.data(), count, n, out.data());
      for (std::size_t r = 0; r < count; ++r) {
        EXPECT_EQ(out[r], ref_.dot_u8i8(q.data(), rows[r].data(), n)) << "n=" << n << " r=" << r;
      }
    }
  }
}

TEST_P(KernelLevel, Int16QueryIsExact) {
  std::uniform_int_distribution<int> s8(-127, 127), s14(-8191, 8191);
  for (std::size_t n : kDims) {
    std::vector<std::int16_t> q(n);
    for (auto& x : q) x = static_cast<std::int16_t>(s14(rng_));
    std::vector<std::vector<std::int8_t>> rows(5, std::vector<std::int8_t>(n));
    std::vector<const std::int8_t*> ptrs;
    for (auto& r : rows) {
      for (auto& x : r) x = static_cast<std::int8_t>(s8(rng_));
      ptrs.push_back(r.data());
    }
    std::vector<std::int32_t> out(5);
    table_->dot_i16i8_many(q.data(), ptrs.data(), 5, n, out.data());
    for (std::size_t r = 0; r < 5; ++r) {
      std::int32_t ref = ref_.dot_i16i8(q.data(), rows[r].data(), n);
      EXPECT_EQ(table_->dot_i16i8(q.data(), rows[r].data(), n), ref) << "n=" << n;
      EXPECT_EQ(out[r], ref) << "n=" << n << " r=" << r;
    }
  }
}

TEST_P(KernelLevel, HammingMatchesScalar) {
  std::uniform_int_distribution<std::uint64_t> bits;
  for (std::size_t words : {1, 2, 3, 8, 12, 24}) {
    std::vector<std::uint64_t> a(words), b(words);
    for (auto& x : a) x = bits(rng_);
    for (auto& x : b) x = bits(rng_);
    EXPECT_EQ(table_->hamming(a.data(), b.data(), words), ref_.hamming(a.data(), b.data(), words));
    EXPECT_EQ(table_->hamming(a.data(), a.data(), words), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(AllLevels, KernelLevel,
                         ::testing::Values(SimdLevel::kScalar, SimdLevel::kAvx2,
                                           SimdLevel::kAvx512Vnni),
                         [](const auto& info) { return std::string(SimdLevelName(info.param)); });

TEST(Kernels, ScalarReferenceIsRight) {
  const KernelTable& k = ScalarKernels();
  float a[] = {1, 2, 3}, b[] = {4, -5, 6};
  EXPECT_FLOAT_EQ(k.dot_f32(a, b, 3), 4 - 10 + 18);
  EXPECT_FLOAT_EQ(k.l2sq_f32(a, b, 3), 9 + 49 + 9);
  std::int8_t c[] = {-128, 127, 0}, d[] = {-128, -128, 5};
  EXPECT_EQ(k.dot_i8(c, d, 3), 16384 - 16256);
  EXPECT_EQ(k.l2sq_i8(c, d, 3), 0 + 255 * 255 + 25);
  std::uint64_t x[] = {0xFF, 0}, y[] = {0x0F, 1};
  EXPECT_EQ(k.hamming(x, y, 2), 5u);
}

TEST(Kernels, ActiveTableIsTheActiveLevel) {
  EXPECT_LE(Kernels().level, ActiveSimdLevel());
  EXPECT_GE(AvailableLevels().size(), 1u);
}

}  // namespace
}  // namespace semcached::vector
