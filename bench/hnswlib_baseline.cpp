#include "hnswlib_baseline.h"

#include <hnswlib/hnswlib.h>

namespace bench {

struct HnswlibBaseline::State {
  explicit State(std::size_t dim) : space(dim) {}
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
};

HnswlibBaseline::HnswlibBaseline(std::size_t dim, std::size_t capacity, std::size_t M, std::size_t efc)
    : s_(std::make_unique<State>(dim)) {
  s_->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(&s_->space, capacity, M, efc, 100);
}

HnswlibBaseline::~HnswlibBaseline() = default;

void HnswlibBaseline::Add(const float* v, std::size_t label) { s_->index->addPoint(v, label); }

void HnswlibBaseline::SetEf(std::size_t ef) { s_->index->setEf(ef); }

void HnswlibBaseline::Search(const float* q, std::size_t k, std::vector<std::uint32_t>* out) const {
  auto r = s_->index->searchKnn(q, k);
  while (!r.empty()) {
    out->push_back(static_cast<std::uint32_t>(r.top().second));
    r.pop();
  }
}

bool HnswlibBaseline::Supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

}  // namespace bench
