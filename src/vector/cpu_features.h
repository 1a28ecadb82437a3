// CPU feature detection for the vector kernels.
//
// The instruction set used by every kernel is chosen once, at start-up, from what the CPU
// reports, capped by the SEMCACHED_SIMD environment variable (scalar | avx2 | avx512) so a
// lower level can be forced for testing or for a machine that throttles on AVX-512. This
// file only detects and names levels; it never dispatches a kernel itself.
#pragma once

#include <string_view>

namespace semcached::vector {

enum class SimdLevel {
  kScalar = 0,
  kAvx2 = 1,        // AVX2 + FMA
  kAvx512Vnni = 2,  // AVX-512 F/BW/VL/DQ + VNNI
};

std::string_view SimdLevelName(SimdLevel level);

// Parses "scalar", "avx2" or "avx512"; false when the text names no level.
bool ParseSimdLevel(std::string_view text, SimdLevel* out);

// What the CPU supports, ignoring any override.
SimdLevel DetectedSimdLevel();

// The level kernels use: the detected level, lowered by SEMCACHED_SIMD when set. Computed on
// first call and fixed afterwards. An unparsable SEMCACHED_SIMD is ignored here; the
// configuration loader refuses it at start-up with a message.
SimdLevel ActiveSimdLevel();

}  // namespace semcached::vector
