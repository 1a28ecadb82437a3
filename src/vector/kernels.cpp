#include "vector/kernels.h"

namespace semcached::vector {

const KernelTable* KernelsFor(SimdLevel level) {
  if (level > DetectedSimdLevel()) return nullptr;
  switch (level) {
    case SimdLevel::kScalar: return &ScalarKernels();
    case SimdLevel::kAvx2: return Avx2Kernels();
    case SimdLevel::kAvx512Vnni: return Avx512Kernels();
  }
  return nullptr;
}

const KernelTable& Kernels() {
  static const KernelTable* table = [] {
    // Highest compiled level not above the active one.
    for (int l = static_cast<int>(ActiveSimdLevel()); l > 0; --l) {
      if (const KernelTable* t = KernelsFor(static_cast<SimdLevel>(l))) return t;
    }
    return &ScalarKernels();
  }();
  return *table;
}

}  // namespace semcached::vector
