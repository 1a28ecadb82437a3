// Data sets and measurements the benchmarks share: synthetic clustered vectors, the
// GloVe-derived word vectors (bench/fetch_glove.sh), exact ground truth, resident memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct Dataset {
  std::string name;
  std::size_t dim = 0;
  std::size_t n = 0;
  std::size_t nq = 0;
  std::vector<float> base;     // normalized
  std::vector<float> queries;  // normalized
};

// Anonymous resident memory of this process (file-backed pages excluded).
std::size_t RssAnonBytes();

// Clustered Gaussian data; queries are drawn from the same clusters (in-distribution).
Dataset Synthetic(std::size_t n, std::size_t nq, std::size_t dim, std::uint64_t seed);

// GloVe-100 from data_dir; n_limit / nq_limit 0 = all. Exits with a message when missing.
Dataset Glove(const std::string& data_dir, std::size_t n_limit, std::size_t nq_limit);

// Exact top-k (cosine) for every query, cached in `cache` when not empty.
std::vector<std::uint32_t> GroundTruth(const Dataset& d, std::size_t k, const std::string& cache);

}  // namespace bench
