// Distance kernels: the inner loops of every search, one implementation per instruction set.
//
// Each instruction set lives in its own source file compiled with its own flags
// (kernels_scalar.cpp, kernels_avx2.cpp, kernels_avx512.cpp), so the rest of the program is
// built for the baseline CPU. The table for the best level the CPU supports (capped by
// SEMCACHED_SIMD) is chosen once, on first use, and its level is reported in /metrics.
// Every kernel is tested against the scalar reference at every level the CPU has.
//
// Integer kernels are exact (int32 accumulation; with int8 inputs no dimension below 2^16
// can overflow). Float kernels may differ from the scalar ones by rounding order only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vector/cpu_features.h"

namespace semcached::vector {

struct KernelTable {
  SimdLevel level;

  // float32: sum a[i]*b[i], and sum (a[i]-b[i])^2.
  float (*dot_f32)(const float* a, const float* b, std::size_t n);
  float (*l2sq_f32)(const float* a, const float* b, std::size_t n);

  // int8 x int8: sum a[i]*b[i], and sum (a[i]-b[i])^2.
  std::int32_t (*dot_i8)(const std::int8_t* a, const std::int8_t* b, std::size_t n);
  std::int32_t (*l2sq_i8)(const std::int8_t* a, const std::int8_t* b, std::size_t n);

  // uint8 x int8: sum a[i]*b[i]. With a query biased by +128 into uint8 and a per-vector
  // stored sum of its codes, dot_i8(q, x) = dot_u8i8(q + 128, x) - 128 * sum(x): the form
  // that VNNI's VPDPBUSD computes in one instruction per 64 bytes.
  std::int32_t (*dot_u8i8)(const std::uint8_t* a, const std::int8_t* b, std::size_t n);

  // The same against many vectors at once (rows[i] -> out[i]), sharing each query load.
  void (*dot_u8i8_many)(const std::uint8_t* q, const std::int8_t* const* rows, std::size_t count,
                        std::size_t n, std::int32_t* out);

  // int16 x int8: sum a[i]*b[i], for a query kept at 14 bits against int8 codes (the query's
  // rounding error is then 64x smaller than an int8 query's). |a[i]| <= 8191 keeps any
  // dimension below 2^11 free of int32 overflow.
  std::int32_t (*dot_i16i8)(const std::int16_t* a, const std::int8_t* b, std::size_t n);
  void (*dot_i16i8_many)(const std::int16_t* q, const std::int8_t* const* rows, std::size_t count,
                         std::size_t n, std::int32_t* out);

  // Bits that differ between two codes of `words` 64-bit words.
  std::uint32_t (*hamming)(const std::uint64_t* a, const std::uint64_t* b, std::size_t words);
};

// The table in use: chosen once from ActiveSimdLevel().
const KernelTable& Kernels();

// The table for one level, or nullptr if that level was not compiled in or the CPU lacks it.
const KernelTable* KernelsFor(SimdLevel level);

// Per-level tables, defined in their own files.
const KernelTable& ScalarKernels();
const KernelTable* Avx2Kernels();    // nullptr when not compiled
const KernelTable* Avx512Kernels();  // nullptr when not compiled

}  // namespace semcached::vector
