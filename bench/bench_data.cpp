#include "bench_data.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "vector/kernels.h"
#include "vector/quantizer.h"

namespace sv = semcached::vector;

namespace bench {
namespace {
void Normalize(std::vector<float>& v, std::size_t dim, std::size_t* zeros) {
  std::size_t rows = v.size() / dim;
  std::vector<float> out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < rows; ++i) {
    float* r = &v[i * dim];
    if (sv::NormalizeInPlace(r, dim)) {
      out.insert(out.end(), r, r + dim);
    } else {
      ++*zeros;
    }
  }
  v.swap(out);
}

bool ReadF32(const std::string& path, std::vector<float>* out, std::size_t* rows, std::size_t* dim) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  std::uint32_t hdr[2];
  bool ok = std::fread(hdr, 4, 2, f) == 2;
  if (ok) {
    *rows = hdr[0];
    *dim = hdr[1];
    out->resize(std::size_t{hdr[0]} * hdr[1]);
    ok = std::fread(out->data(), 4, out->size(), f) == out->size();
  }
  std::fclose(f);
  return ok;
}

// Normalizes base and queries (dropping zero vectors) and sets the counts.
Dataset Finish(Dataset d) {
  std::size_t zeros = 0;
  Normalize(d.base, d.dim, &zeros);
  Normalize(d.queries, d.dim, &zeros);
  d.n = d.base.size() / d.dim;
  d.nq = d.queries.size() / d.dim;
  return d;
}

}  // namespace

std::size_t RssAnonBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("RssAnon:", 0) == 0) {
      std::istringstream is(line.substr(8));
      std::size_t kb = 0;
      is >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

// Clustered Gaussian data; queries are drawn from the same clusters (in-distribution).
Dataset Synthetic(std::size_t n, std::size_t nq, std::size_t dim, std::uint64_t seed) {
  Dataset d;
  d.name = "synthetic-" + std::to_string(dim);
  d.dim = dim;
  const std::size_t clusters = std::max<std::size_t>(16, n / 1000);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> centers(clusters * dim);
  for (auto& c : centers) c = g(rng);
  std::uniform_int_distribution<std::size_t> pick(0, clusters - 1);
  auto gen = [&](std::size_t rows, std::vector<float>& out) {
    out.resize(rows * dim);
    for (std::size_t i = 0; i < rows; ++i) {
      const float* c = &centers[pick(rng) * dim];
      for (std::size_t j = 0; j < dim; ++j) out[i * dim + j] = c[j] + 0.6f * g(rng);
    }
  };
  gen(n, d.base);
  gen(nq, d.queries);
  return Finish(std::move(d));
}

Dataset Glove(const std::string& dir, std::size_t n_limit, std::size_t nq_limit) {
  Dataset d;
  d.name = "glove-100";
  std::size_t rows, dim, qrows, qdim;
  if (!ReadF32(dir + "/glove100.base.f32", &d.base, &rows, &dim) ||
      !ReadF32(dir + "/glove100.query.f32", &d.queries, &qrows, &qdim)) {
    std::fprintf(stderr, "vector_bench: GloVe data missing in %s: run bench/fetch_glove.sh\n", dir.c_str());
    std::exit(2);
  }
  d.dim = dim;
  if (n_limit && n_limit < rows) d.base.resize(n_limit * dim);
  if (nq_limit && nq_limit < qrows) d.queries.resize(nq_limit * dim);
  return Finish(std::move(d));
}

// Exact top-k by cosine, two threads, cached beside the data.
std::vector<std::uint32_t> GroundTruth(const Dataset& d, std::size_t k, const std::string& cache) {
  std::vector<std::uint32_t> gt(d.nq * k);
  if (!cache.empty()) {
    std::ifstream in(cache, std::ios::binary);
    if (in.read(reinterpret_cast<char*>(gt.data()), static_cast<std::streamsize>(gt.size() * 4))) return gt;
  }
  const auto& kern = sv::Kernels();
  auto work = [&](std::size_t from, std::size_t to) {
    std::vector<std::pair<float, std::uint32_t>> scored(d.n);
    for (std::size_t q = from; q < to; ++q) {
      for (std::size_t i = 0; i < d.n; ++i) {
        scored[i] = {-kern.dot_f32(&d.queries[q * d.dim], &d.base[i * d.dim], d.dim),
                     static_cast<std::uint32_t>(i)};
      }
      std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k), scored.end());
      for (std::size_t j = 0; j < k; ++j) gt[q * k + j] = scored[j].second;
    }
  };
  std::thread t(work, 0, d.nq / 2);
  work(d.nq / 2, d.nq);
  t.join();
  if (!cache.empty()) {
    std::ofstream out(cache, std::ios::binary);
    out.write(reinterpret_cast<const char*>(gt.data()), static_cast<std::streamsize>(gt.size() * 4));
  }
  return gt;
}

}  // namespace bench
