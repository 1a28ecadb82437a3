// The hnswlib baseline (Debian's libhnswlib-dev), in its own translation unit so it can be
// compiled with the instruction sets hnswlib picks its kernels by at compile time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace bench {

class HnswlibBaseline {
 public:
  // Inner-product space over normalized vectors (cosine), like our index.
  HnswlibBaseline(std::size_t dim, std::size_t capacity, std::size_t M, std::size_t efc);
  ~HnswlibBaseline();
  void Add(const float* v, std::size_t label);  // thread-safe, as hnswlib's addPoint
  void SetEf(std::size_t ef);
  void Search(const float* q, std::size_t k, std::vector<std::uint32_t>* out) const;
  // Whether this CPU can run the flags the baseline was compiled with.
  static bool Supported();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace bench
