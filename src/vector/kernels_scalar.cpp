// The reference kernels: plain loops, the definition the SIMD versions are tested against.
#include "vector/kernels.h"

namespace semcached::vector {
namespace {

float DotF32(const float* a, const float* b, std::size_t n) {
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float L2sqF32(const float* a, const float* b, std::size_t n) {
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

std::int32_t DotI8(const std::int8_t* a, const std::int8_t* b, std::size_t n) {
  std::int32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::int32_t{a[i]} * std::int32_t{b[i]};
  return s;
}

std::int32_t L2sqI8(const std::int8_t* a, const std::int8_t* b, std::size_t n) {
  std::int32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t d = std::int32_t{a[i]} - std::int32_t{b[i]};
    s += d * d;
  }
  return s;
}

std::int32_t DotU8I8(const std::uint8_t* a, const std::int8_t* b, std::size_t n) {
  std::int32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::int32_t{a[i]} * std::int32_t{b[i]};
  return s;
}

void DotU8I8Many(const std::uint8_t* q, const std::int8_t* const* rows, std::size_t count,
                 std::size_t n, std::int32_t* out) {
  for (std::size_t r = 0; r < count; ++r) out[r] = DotU8I8(q, rows[r], n);
}

std::int32_t DotI16I8(const std::int16_t* a, const std::int8_t* b, std::size_t n) {
  std::int32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::int32_t{a[i]} * std::int32_t{b[i]};
  return s;
}

void DotI16I8Many(const std::int16_t* q, const std::int8_t* const* rows, std::size_t count,
                  std::size_t n, std::int32_t* out) {
  for (std::size_t r = 0; r < count; ++r) out[r] = DotI16I8(q, rows[r], n);
}

std::uint32_t Hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) {
  std::uint32_t s = 0;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t x = a[i] ^ b[i];
    while (x != 0) {  // no popcnt instruction assumed at this level
      x &= x - 1;
      ++s;
    }
  }
  return s;
}

}  // namespace

const KernelTable& ScalarKernels() {
  static const KernelTable table = {SimdLevel::kScalar, DotF32,  L2sqF32,      DotI8,  L2sqI8, DotU8I8,
                                    DotU8I8Many,        DotI16I8, DotI16I8Many, Hamming};
  return table;
}

}  // namespace semcached::vector
