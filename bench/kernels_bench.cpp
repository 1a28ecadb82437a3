// Distance kernel throughput per instruction set, with the data in cache.
//
// Each benchmark scores one query against ROWS vectors of DIM dimensions that fit in L2
// (768 x 1024 int8 = 768 KiB), so the figure is the kernel's, not the memory bus's.
// items_per_second is distances per second on one thread. The scalar level is the baseline.
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "vector/kernels.h"

namespace semcached::vector {
namespace {

constexpr std::size_t kRows = 1024;

struct Data {
  explicit Data(std::size_t dim) : dim(dim) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> s8(-127, 127), u8(0, 255);
    std::normal_distribution<float> f(0, 1);
    codes.resize(kRows * dim);
    floats.resize(kRows * dim);
    for (auto& x : codes) x = static_cast<std::int8_t>(s8(rng));
    for (auto& x : floats) x = f(rng);
    query.resize(dim);
    for (auto& x : query) x = static_cast<std::uint8_t>(u8(rng));
    fquery.resize(dim);
    for (auto& x : fquery) x = f(rng);
    for (std::size_t r = 0; r < kRows; ++r) rows.push_back(codes.data() + r * dim);
  }
  std::size_t dim;
  std::vector<std::int8_t> codes;
  std::vector<float> floats;
  std::vector<std::uint8_t> query;
  std::vector<float> fquery;
  std::vector<const std::int8_t*> rows;
};

const KernelTable* TableOrSkip(benchmark::State& state, SimdLevel level) {
  const KernelTable* t = KernelsFor(level);
  if (t == nullptr) state.SkipWithError("level not supported on this CPU");
  return t;
}

void BM_DotF32(benchmark::State& state, SimdLevel level) {
  const KernelTable* t = TableOrSkip(state, level);
  if (!t) return;
  Data d(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    float acc = 0;
    for (std::size_t r = 0; r < kRows; ++r) acc += t->dot_f32(d.fquery.data(), d.floats.data() + r * d.dim, d.dim);
    benchmark::DoNotOptimize(acc);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
}

void BM_DotU8I8(benchmark::State& state, SimdLevel level) {
  const KernelTable* t = TableOrSkip(state, level);
  if (!t) return;
  Data d(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    std::int32_t acc = 0;
    for (std::size_t r = 0; r < kRows; ++r) acc += t->dot_u8i8(d.query.data(), d.rows[r], d.dim);
    benchmark::DoNotOptimize(acc);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
}

void BM_DotU8I8Many(benchmark::State& state, SimdLevel level) {
  const KernelTable* t = TableOrSkip(state, level);
  if (!t) return;
  Data d(static_cast<std::size_t>(state.range(0)));
  std::vector<std::int32_t> out(kRows);
  for (auto _ : state) {
    t->dot_u8i8_many(d.query.data(), d.rows.data(), kRows, d.dim, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
}

void BM_Hamming(benchmark::State& state, SimdLevel level) {
  const KernelTable* t = TableOrSkip(state, level);
  if (!t) return;
  std::size_t words = static_cast<std::size_t>(state.range(0)) / 64;
  std::vector<std::uint64_t> codes(kRows * words, 0x5555AAAA1234ULL), q(words, 0xFFFF0000FFFFULL);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] ^= i * 0x9E3779B97F4A7C15ULL;
  for (auto _ : state) {
    std::uint32_t acc = 0;
    for (std::size_t r = 0; r < kRows; ++r) acc += t->hamming(q.data(), codes.data() + r * words, words);
    benchmark::DoNotOptimize(acc);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
}

#define SEMCACHED_KERNEL_BENCH(fn)                                                          \
  BENCHMARK_CAPTURE(fn, scalar, SimdLevel::kScalar)->Arg(768)->Arg(1536)->Arg(100);        \
  BENCHMARK_CAPTURE(fn, avx2, SimdLevel::kAvx2)->Arg(768)->Arg(1536)->Arg(100);            \
  BENCHMARK_CAPTURE(fn, avx512, SimdLevel::kAvx512Vnni)->Arg(768)->Arg(1536)->Arg(100)

SEMCACHED_KERNEL_BENCH(BM_DotF32);
SEMCACHED_KERNEL_BENCH(BM_DotU8I8);
SEMCACHED_KERNEL_BENCH(BM_DotU8I8Many);
BENCHMARK_CAPTURE(BM_Hamming, scalar, SimdLevel::kScalar)->Arg(768);
BENCHMARK_CAPTURE(BM_Hamming, avx2, SimdLevel::kAvx2)->Arg(768);
BENCHMARK_CAPTURE(BM_Hamming, avx512, SimdLevel::kAvx512Vnni)->Arg(768);

}  // namespace
}  // namespace semcached::vector

BENCHMARK_MAIN();
