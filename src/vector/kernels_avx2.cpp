// AVX2 + FMA kernels. Compiled with -mavx2 -mfma -mpopcnt (this file only); never called
// unless the CPU reports those features.
#include <immintrin.h>

#include "vector/kernels.h"

namespace semcached::vector {
namespace {

inline float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 shuf = _mm_movehdup_ps(lo);
  __m128 sums = _mm_add_ps(lo, shuf);
  shuf = _mm_movehl_ps(shuf, sums);
  return _mm_cvtss_f32(_mm_add_ss(sums, shuf));
}

inline std::int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

float DotF32(const float* a, const float* b, std::size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float L2sqF32(const float* a, const float* b, std::size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) {
    float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

inline __m256i Load16I8(const std::int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i Load16U8(const std::uint8_t* p) {
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

std::int32_t DotI8(const std::int8_t* a, const std::int8_t* b, std::size_t n) {
  __m256i acc = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(Load16I8(a + i), Load16I8(b + i)));
  std::int32_t s = HorizontalSum(acc);
  for (; i < n; ++i) s += std::int32_t{a[i]} * std::int32_t{b[i]};
  return s;
}

std::int32_t L2sqI8(const std::int8_t* a, const std::int8_t* b, std::size_t n) {
  __m256i acc = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i d = _mm256_sub_epi16(Load16I8(a + i), Load16I8(b + i));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
  }
  std::int32_t s = HorizontalSum(acc);
  for (; i < n; ++i) {
    std::int32_t d = std::int32_t{a[i]} - std::int32_t{b[i]};
    s += d * d;
  }
  return s;
}

std::int32_t DotU8I8(const std::uint8_t* a, const std::int8_t* b, std::size_t n) {
  __m256i acc = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(Load16U8(a + i), Load16I8(b + i)));
  std::int32_t s = HorizontalSum(acc);
  for (; i < n; ++i) s += std::int32_t{a[i]} * std::int32_t{b[i]};
  return s;
}

// Four rows per pass sharing each 16-element query load; `Query` widens 16 query elements
// to int16 and `dot` is the one-row kernel for the leftover rows.
template <typename Q, typename LoadQuery, typename OneRow>
void FourRows(const Q* q, const std::int8_t* const* rows, std::size_t count, std::size_t n,
              std::int32_t* out, LoadQuery load_query, OneRow dot) {
  std::size_t r = 0;
  for (; r + 4 <= count; r += 4) {
    const std::int8_t *r0 = rows[r], *r1 = rows[r + 1], *r2 = rows[r + 2], *r3 = rows[r + 3];
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m256i qv = load_query(q + i);
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(qv, Load16I8(r0 + i)));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(qv, Load16I8(r1 + i)));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(qv, Load16I8(r2 + i)));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(qv, Load16I8(r3 + i)));
    }
    std::int32_t s0 = HorizontalSum(a0), s1 = HorizontalSum(a1), s2 = HorizontalSum(a2),
                 s3 = HorizontalSum(a3);
    for (; i < n; ++i) {
      std::int32_t qi = q[i];
      s0 += qi * r0[i];
      s1 += qi * r1[i];
      s2 += qi * r2[i];
      s3 += qi * r3[i];
    }
    out[r] = s0;
    out[r + 1] = s1;
    out[r + 2] = s2;
    out[r + 3] = s3;
  }
  for (; r < count; ++r) out[r] = dot(q, rows[r], n);
}

void DotU8I8Many(const std::uint8_t* q, const std::int8_t* const* rows, std::size_t count,
                 std::size_t n, std::int32_t* out) {
  FourRows(q, rows, count, n, out, Load16U8, DotU8I8);
}

inline __m256i Load16I16(const std::int16_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

std::int32_t DotI16I8(const std::int16_t* a, const std::int8_t* b, std::size_t n) {
  __m256i acc = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(Load16I16(a + i), Load16I8(b + i)));
  std::int32_t s = HorizontalSum(acc);
  for (; i < n; ++i) s += std::int32_t{a[i]} * std::int32_t{b[i]};
  return s;
}

void DotI16I8Many(const std::int16_t* q, const std::int8_t* const* rows, std::size_t count,
                  std::size_t n, std::int32_t* out) {
  FourRows(q, rows, count, n, out, Load16I16, DotI16I8);
}

std::uint32_t Hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < words; ++i) s += static_cast<std::uint64_t>(_mm_popcnt_u64(a[i] ^ b[i]));
  return static_cast<std::uint32_t>(s);
}

}  // namespace

const KernelTable* Avx2Kernels() {
  static const KernelTable table = {SimdLevel::kAvx2, DotF32,   L2sqF32,      DotI8,  L2sqI8, DotU8I8,
                                    DotU8I8Many,      DotI16I8, DotI16I8Many, Hamming};
  return &table;
}

}  // namespace semcached::vector
