#include "vector/cpu_features.h"
#include "common/enum_names.h"

#include <algorithm>
#include <cstdlib>

namespace semcached::vector {

namespace {
constexpr EnumName<SimdLevel> kSimdLevels[] = {
    {SimdLevel::kScalar, "scalar"}, {SimdLevel::kAvx2, "avx2"}, {SimdLevel::kAvx512Vnni, "avx512"}};
}  // namespace

std::string_view SimdLevelName(SimdLevel level) { return NameOf(kSimdLevels, level, "scalar"); }

bool ParseSimdLevel(std::string_view text, SimdLevel* out) {
  return ValueOf(kSimdLevels, text, out);
}

SimdLevel DetectedSimdLevel() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni");
  if (avx512) return SimdLevel::kAvx512Vnni;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::kAvx2;
#endif
  return SimdLevel::kScalar;
}

SimdLevel ActiveSimdLevel() {
  static const SimdLevel level = [] {
    SimdLevel detected = DetectedSimdLevel();
    const char* forced = std::getenv("SEMCACHED_SIMD");
    SimdLevel cap;
    if (forced != nullptr && ParseSimdLevel(forced, &cap)) {
      return std::min(detected, cap);
    }
    return detected;
  }();
  return level;
}

}  // namespace semcached::vector
