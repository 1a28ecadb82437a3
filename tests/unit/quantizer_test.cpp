#include "vector/quantizer.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "vector/kernels.h"

namespace semcached::vector {
namespace {

std::vector<float> Gaussian(std::size_t n, std::size_t dim, std::uint64_t seed,
                            const std::vector<float>& mean, const std::vector<float>& sd) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(n * dim);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t d = 0; d < dim; ++d) v[i * dim + d] = mean[d] + sd[d] * g(rng);
  }
  return v;
}

TEST(Quantizer, PerVectorIsRedisQ8) {
  // Redis Q8: codes = round(x * 127 / max|x|), the range kept per element.
  std::vector<float> x = {0.5f, -0.25f, 0.1f, 0.0f};
  Int8Params p = PerVectorParams(4);
  std::vector<std::int8_t> c(4);
  CodeMeta m = Encode(p, x.data(), c.data());
  EXPECT_EQ(c[0], 127);
  EXPECT_EQ(c[1], static_cast<std::int8_t>(std::lround(-0.25 * 127 / 0.5)));
  EXPECT_EQ(c[2], static_cast<std::int8_t>(std::lround(0.1 * 127 / 0.5)));
  EXPECT_EQ(c[3], 0);
  EXPECT_FLOAT_EQ(m.alpha, 0.5f / 127.f);
  EXPECT_EQ(m.sum, c[0] + c[1] + c[2] + c[3]);
  std::vector<float> back(4);
  Decode(p, c.data(), m, back.data());
  for (int d = 0; d < 4; ++d) EXPECT_NEAR(back[d], x[d], 0.5f / 127.f);
}

TEST(Quantizer, ApproxDotIsCloseToExact) {
  const std::size_t dim = 768, n = 200;
  auto data = Gaussian(n, dim, 3, std::vector<float>(dim, 0.f), std::vector<float>(dim, 1.f));
  for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(NormalizeInPlace(&data[i * dim], dim));
  Int8Params p = PerVectorParams(dim);
  std::vector<std::int8_t> codes(dim);
  QueryCode qc;
  const KernelTable& k = Kernels();
  double err = 0;
  for (std::size_t i = 1; i < n; ++i) {
    const float* x = &data[i * dim];
    const float* q = &data[0];
    CodeMeta m = Encode(p, x, codes.data());
    EncodeQuery(p, q, &qc);
    float approx = ApproxDotFromKernel(qc, m, k.dot_u8i8(qc.biased.data(), codes.data(), dim));
    err = std::max(err, std::fabs(static_cast<double>(approx) - k.dot_f32(x, q, dim)));
  }
  EXPECT_LT(err, 0.01);  // unit vectors: absolute error in cosine
}

TEST(Quantizer, CalibrationKeepsTheSchemeWithLeastDotError) {
  const std::size_t dim = 64, n = 3000;
  std::vector<float> sd(dim), mean(dim);
  for (std::size_t d = 0; d < dim; ++d) {
    sd[d] = d % 2 ? 2.f : 0.05f;
    mean[d] = d % 3 ? 0.f : 4.f;  // a few dimensions carry a large constant part
  }
  auto data = Gaussian(n, dim, 5, mean, sd);
  auto p = Calibrate(data.data(), n, dim, 7);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->version, 7u);
  for (Int8Params other : {PerVectorParams(dim)}) {
    MeasureDotError(&other, data.data(), n);
    EXPECT_LE(p->sample_dot_error, other.sample_dot_error) << Int8SchemeName(p->scheme);
  }
  EXPECT_NE(p->scheme, Int8Scheme::kPerVector);
  EXPECT_LT(p->sample_dot_error, 0.01);
}

TEST(Quantizer, CalibrationPicksAsymmetricForOffsetData) {
  const std::size_t dim = 32, n = 3000;
  auto data = Gaussian(n, dim, 9, std::vector<float>(dim, 5.f), std::vector<float>(dim, 0.5f));
  auto p = Calibrate(data.data(), n, dim, 1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->scheme, Int8Scheme::kPerDimAsymmetric) << Int8SchemeName(p->scheme);
  // Reconstruction is tight: the codes spend their range on the data, not on zero.
  std::vector<std::int8_t> c(dim);
  std::vector<float> back(dim);
  double worst = 0;
  for (std::size_t i = 0; i < 100; ++i) {
    CodeMeta m = Encode(*p, &data[i * dim], c.data());
    Decode(*p, c.data(), m, back.data());
    for (std::size_t d = 0; d < dim; ++d)
      worst = std::max(worst, std::fabs(double(back[d]) - data[i * dim + d]));
  }
  EXPECT_LT(worst, 0.05);
}

TEST(Quantizer, ClippedComponentsAreCounted) {
  const std::size_t dim = 8, n = 1000;
  auto data = Gaussian(n, dim, 11, std::vector<float>(dim, 3.f), std::vector<float>(dim, 1.f));
  auto p = Calibrate(data.data(), n, dim, 1);
  ASSERT_TRUE(p.ok());
  ASSERT_NE(p->scheme, Int8Scheme::kPerVector);
  std::vector<float> far(dim, 1000.f);
  std::vector<std::int8_t> c(dim);
  CodeMeta m = Encode(*p, far.data(), c.data());
  EXPECT_EQ(m.clipped, dim);
  for (auto v : c) EXPECT_EQ(v, 127);
}

TEST(Quantizer, CalibrationRefusesBadInput) {
  EXPECT_FALSE(Calibrate(nullptr, 0, 4, 1).ok());
  std::vector<float> bad = {1, 2, NAN, 4};
  EXPECT_FALSE(Calibrate(bad.data(), 1, 4, 1).ok());
}

TEST(Quantizer, BinaryCodesAreSigns) {
  Int8Params p = PerVectorParams(70);
  std::vector<float> x(70, -1.f);
  x[0] = 1;
  x[65] = 2;
  std::vector<std::uint64_t> bits(BinaryWords(70));
  ASSERT_EQ(bits.size(), 2u);
  EncodeBinary(p, x.data(), bits.data());
  EXPECT_EQ(bits[0], 1u);
  EXPECT_EQ(bits[1], 2u);
}

TEST(Quantizer, NormalizeAndFinite) {
  std::vector<float> x = {3, 4};
  ASSERT_TRUE(NormalizeInPlace(x.data(), 2));
  EXPECT_FLOAT_EQ(x[0], 0.6f);
  std::vector<float> zero = {0, 0};
  EXPECT_FALSE(NormalizeInPlace(zero.data(), 2));
  std::vector<float> inf = {INFINITY, 0};
  EXPECT_FALSE(AllFinite(inf.data(), 2));
}

}  // namespace
}  // namespace semcached::vector
