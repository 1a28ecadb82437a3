// AVX-512 (F, BW, VL, DQ) + VNNI kernels. Compiled with those flags (this file only); never
// called unless the CPU reports them. Tails are handled with masked loads, not scalar loops.
#include <immintrin.h>

#include "vector/kernels.h"

namespace semcached::vector {
namespace {

inline __mmask16 Mask16(std::size_t rem) { return static_cast<__mmask16>((1u << rem) - 1u); }
inline __mmask64 Mask64(std::size_t rem) {
  return rem >= 64 ? ~__mmask64{0} : static_cast<__mmask64>((std::uint64_t{1} << rem) - 1u);
}
inline __mmask32 Mask32(std::size_t rem) {
  return rem >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((std::uint32_t{1} << rem) - 1u);
}

// Sums four accumulators into out[0..3] together: fewer shuffles than four reductions.
inline void Reduce4(__m512i a0, __m512i a1, __m512i a2, __m512i a3, std::int32_t* out) {
  __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
  __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
  __m512i t = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
  // t holds, per 128-bit lane, the partial sums [row0, row1, row2, row3].
  __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), s);
}

float DotF32(const float* a, const float* b, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    __mmask16 m = Mask16(n - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float L2sqF32(const float* a, const float* b, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
  }
  for (; i + 16 <= n; i += 16) {
    __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    __mmask16 m = Mask16(n - i);
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

// Signed x signed through VPDPBUSD: (a ^ 0x80) is a + 128 read as unsigned, so
// sum a*b = sum (a+128)*b - 128 * sum b, and sum b is one more VPDPBUSD against ones.
std::int32_t DotI8(const std::int8_t* a, const std::int8_t* b, std::size_t n) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i prod = _mm512_setzero_si512(), sum_b = _mm512_setzero_si512();
  for (std::size_t i = 0; i < n; i += 64) {
    __mmask64 m = Mask64(n - i);
    __m512i va = _mm512_maskz_loadu_epi8(m, a + i);
    __m512i vb = _mm512_maskz_loadu_epi8(m, b + i);
    prod = _mm512_dpbusd_epi32(prod, _mm512_xor_si512(va, bias), vb);
    sum_b = _mm512_dpbusd_epi32(sum_b, ones, vb);
  }
  return _mm512_reduce_add_epi32(prod) - 128 * _mm512_reduce_add_epi32(sum_b);
}

std::int32_t L2sqI8(const std::int8_t* a, const std::int8_t* b, std::size_t n) {
  __m512i acc = _mm512_setzero_si512();
  for (std::size_t i = 0; i < n; i += 32) {
    __mmask32 m = Mask32(n - i);
    __m512i va = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
    __m512i vb = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
    __m512i d = _mm512_sub_epi16(va, vb);
    acc = _mm512_dpwssd_epi32(acc, d, d);
  }
  return _mm512_reduce_add_epi32(acc);
}

std::int32_t DotU8I8(const std::uint8_t* a, const std::int8_t* b, std::size_t n) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
    s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(b + i + 64));
  }
  for (; i < n; i += 64) {
    __mmask64 m = Mask64(n - i);
    s0 = _mm512_dpbusd_epi32(s0, _mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

// Four rows per pass: each 64-byte query chunk is loaded once for four VPDPBUSDs.
void DotU8I8Many(const std::uint8_t* q, const std::int8_t* const* rows, std::size_t count,
                 std::size_t n, std::int32_t* out) {
  std::size_t r = 0;
  for (; r + 4 <= count; r += 4) {
    const std::int8_t *r0 = rows[r], *r1 = rows[r + 1], *r2 = rows[r + 2], *r3 = rows[r + 3];
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
      __m512i qv = _mm512_loadu_si512(q + i);
      a0 = _mm512_dpbusd_epi32(a0, qv, _mm512_loadu_si512(r0 + i));
      a1 = _mm512_dpbusd_epi32(a1, qv, _mm512_loadu_si512(r1 + i));
      a2 = _mm512_dpbusd_epi32(a2, qv, _mm512_loadu_si512(r2 + i));
      a3 = _mm512_dpbusd_epi32(a3, qv, _mm512_loadu_si512(r3 + i));
    }
    if (i < n) {
      __mmask64 m = Mask64(n - i);
      __m512i qv = _mm512_maskz_loadu_epi8(m, q + i);
      a0 = _mm512_dpbusd_epi32(a0, qv, _mm512_maskz_loadu_epi8(m, r0 + i));
      a1 = _mm512_dpbusd_epi32(a1, qv, _mm512_maskz_loadu_epi8(m, r1 + i));
      a2 = _mm512_dpbusd_epi32(a2, qv, _mm512_maskz_loadu_epi8(m, r2 + i));
      a3 = _mm512_dpbusd_epi32(a3, qv, _mm512_maskz_loadu_epi8(m, r3 + i));
    }
    Reduce4(a0, a1, a2, a3, out + r);
  }
  for (; r < count; ++r) out[r] = DotU8I8(q, rows[r], n);
}

// int16 query x int8 codes: widen 32 codes to int16, then one VPDPWSSD per 32 elements.
std::int32_t DotI16I8(const std::int16_t* a, const std::int8_t* b, std::size_t n) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_dpwssd_epi32(s0, _mm512_loadu_si512(a + i),
                             _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i))));
    s1 = _mm512_dpwssd_epi32(s1, _mm512_loadu_si512(a + i + 32),
                             _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 32))));
  }
  for (; i < n; i += 32) {
    __mmask32 m = Mask32(n - i);
    s0 = _mm512_dpwssd_epi32(s0, _mm512_maskz_loadu_epi16(m, a + i),
                             _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i)));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

void DotI16I8Many(const std::int16_t* q, const std::int8_t* const* rows, std::size_t count,
                  std::size_t n, std::int32_t* out) {
  std::size_t r = 0;
  for (; r + 4 <= count; r += 4) {
    const std::int8_t *r0 = rows[r], *r1 = rows[r + 1], *r2 = rows[r + 2], *r3 = rows[r + 3];
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i < n; i += 32) {
      __mmask32 m = Mask32(n - i);
      __m512i qv = _mm512_maskz_loadu_epi16(m, q + i);
      a0 = _mm512_dpwssd_epi32(a0, qv, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, r0 + i)));
      a1 = _mm512_dpwssd_epi32(a1, qv, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, r1 + i)));
      a2 = _mm512_dpwssd_epi32(a2, qv, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, r2 + i)));
      a3 = _mm512_dpwssd_epi32(a3, qv, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, r3 + i)));
    }
    Reduce4(a0, a1, a2, a3, out + r);
  }
  for (; r < count; ++r) out[r] = DotI16I8(q, rows[r], n);
}

std::uint32_t Hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < words; ++i) s += static_cast<std::uint64_t>(_mm_popcnt_u64(a[i] ^ b[i]));
  return static_cast<std::uint32_t>(s);
}

}  // namespace

const KernelTable* Avx512Kernels() {
  static const KernelTable table = {SimdLevel::kAvx512Vnni, DotF32,   L2sqF32,      DotI8,  L2sqI8, DotU8I8,
                                    DotU8I8Many,            DotI16I8, DotI16I8Many, Hamming};
  return &table;
}

}  // namespace semcached::vector
