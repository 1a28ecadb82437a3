// Where LSH wins and where it loses against the HNSW index, measured on the same data.
//
// For each noise level a query is a base vector plus Gaussian noise (a near-duplicate whose
// cosine to its source is printed); "general" queries are fresh points from the same
// clusters. Reported per structure: build time per vector, memory per vector (fingerprints
// and buckets vs int8 codes and graph), recall of the source at top-1 for near-duplicates,
// recall@10 for general queries, and mean query time on one thread.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>

#include <CLI/CLI.hpp>

#include "bench_data.h"
#include "vector/hnsw_index.h"
#include "vector/kernels.h"
#include "vector/lsh.h"
#include "vector/quantizer.h"

namespace sv = semcached::vector;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"LSH vs HNSW"};
  std::size_t n = 100000, dim = 768, nq = 1000, bits = 256, tables = 16, probes = 4;
  app.add_option("--n", n);
  app.add_option("--dim", dim);
  app.add_option("--queries", nq);
  app.add_option("--bits", bits);
  app.add_option("--tables", tables);
  app.add_option("--probes", probes);
  CLI11_PARSE(app, argc, argv);

  bench::Dataset d = bench::Synthetic(n, nq, dim, 42);
  const auto& k = sv::Kernels();

  sv::LshOptions lo;
  lo.dim = dim;
  lo.bits = bits;
  lo.tables = tables;
  lo.probes = probes;
  auto lsh = std::move(*sv::LshIndex::Create(lo));
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < d.n; ++i) (void)lsh->Add(i, &d.base[i * dim], dim);
  double lsh_build = std::chrono::duration<double>(Clock::now() - t0).count();

  sv::HnswOptions ho;
  ho.dim = dim;
  ho.background_maintenance = false;
  auto hnsw = std::move(*sv::HnswIndex::Create(ho));
  t0 = Clock::now();
  for (std::size_t i = 0; i < d.n; ++i) (void)hnsw->Add(i, &d.base[i * dim], dim);
  double hnsw_build = std::chrono::duration<double>(Clock::now() - t0).count();
  auto hs = hnsw->Stats();

  std::printf("LSH (%zu bits, %zu tables, %zu probes) vs HNSW (M 16, efc 200, int8), %zu x %zu, one thread\n",
              bits, tables, probes, d.n, dim);
  std::printf("%-34s %12s %12s\n", "", "LSH", "HNSW");
  std::printf("%-34s %12.1f %12.1f\n", "build, microseconds per vector", lsh_build * 1e6 / d.n, hnsw_build * 1e6 / d.n);
  std::printf("%-34s %12.0f %12.0f\n", "memory, bytes per vector", double(lsh->MemoryBytes()) / d.n,
              double(hs.code_bytes + hs.graph_bytes) / d.n);

  std::mt19937_64 rng(9);
  std::string json = "{\"benchmark\":\"lsh_vs_hnsw\",\"n\":" + std::to_string(d.n) + ",\"dim\":" + std::to_string(dim) +
                     ",\"lsh_build_us\":" + std::to_string(lsh_build * 1e6 / d.n) +
                     ",\"hnsw_build_us\":" + std::to_string(hnsw_build * 1e6 / d.n) + ",\"rows\":[";
  for (float noise : {0.01f, 0.02f, 0.04f, 0.08f}) {
    std::normal_distribution<float> g(0, noise);
    double cos_sum = 0, lsh_hit = 0, hnsw_hit = 0, lsh_us = 0, hnsw_us = 0;
    std::vector<float> q(dim);
    for (std::size_t i = 0; i < nq; ++i) {
      std::size_t src = (i * 7919) % d.n;
      for (std::size_t j = 0; j < dim; ++j) q[j] = d.base[src * dim + j] + g(rng);
      sv::NormalizeInPlace(q.data(), dim);
      cos_sum += k.dot_f32(q.data(), &d.base[src * dim], dim);
      auto a = Clock::now();
      auto lh = lsh->Search(q.data(), dim, 1, static_cast<std::uint32_t>(bits / 4));
      auto b = Clock::now();
      sv::SearchParams p;
      p.k = 1;
      p.ef = 32;
      auto hh = hnsw->Search(q.data(), dim, p);
      auto c = Clock::now();
      lsh_us += std::chrono::duration<double, std::micro>(b - a).count();
      hnsw_us += std::chrono::duration<double, std::micro>(c - b).count();
      lsh_hit += lh.ok() && !lh->empty() && (*lh)[0].label == src;
      hnsw_hit += hh.ok() && !hh->empty() && (*hh)[0].label == src;
    }
    char line[256];
    std::snprintf(line, sizeof(line), "near-duplicate, cosine %.3f: top-1", cos_sum / nq);
    std::printf("%-34s %12.3f %12.3f\n", line, lsh_hit / nq, hnsw_hit / nq);
    std::printf("%-34s %12.1f %12.1f\n", "  query microseconds", lsh_us / nq, hnsw_us / nq);
    json += std::string(noise > 0.01f ? "," : "") + "{\"kind\":\"near-duplicate\",\"cosine\":" + std::to_string(cos_sum / nq) +
            ",\"lsh_recall\":" + std::to_string(lsh_hit / nq) + ",\"hnsw_recall\":" + std::to_string(hnsw_hit / nq) +
            ",\"lsh_us\":" + std::to_string(lsh_us / nq) + ",\"hnsw_us\":" + std::to_string(hnsw_us / nq) + "}";
  }
  // General top-10 queries.
  auto gt = bench::GroundTruth(d, 10, "");
  double lsh_r = 0, hnsw_r = 0, lsh_us = 0, hnsw_us = 0;
  for (std::size_t i = 0; i < d.nq; ++i) {
    std::set<std::uint64_t> truth(gt.begin() + i * 10, gt.begin() + i * 10 + 10);
    auto a = Clock::now();
    auto lh = lsh->Search(&d.queries[i * dim], dim, 10, static_cast<std::uint32_t>(bits));
    auto b = Clock::now();
    sv::SearchParams p;
    p.k = 10;
    p.ef = 64;
    auto hh = hnsw->Search(&d.queries[i * dim], dim, p);
    auto c = Clock::now();
    lsh_us += std::chrono::duration<double, std::micro>(b - a).count();
    hnsw_us += std::chrono::duration<double, std::micro>(c - b).count();
    for (auto& h : *lh) lsh_r += truth.count(h.label);
    for (auto& h : *hh) hnsw_r += truth.count(h.label);
  }
  std::printf("%-34s %12.3f %12.3f\n", "general queries: recall@10", lsh_r / d.nq / 10, hnsw_r / d.nq / 10);
  std::printf("%-34s %12.1f %12.1f\n", "  query microseconds", lsh_us / d.nq, hnsw_us / d.nq);
  json += ",{\"kind\":\"general\",\"lsh_recall\":" + std::to_string(lsh_r / d.nq / 10) +
          ",\"hnsw_recall\":" + std::to_string(hnsw_r / d.nq / 10) + ",\"lsh_us\":" + std::to_string(lsh_us / d.nq) +
          ",\"hnsw_us\":" + std::to_string(hnsw_us / d.nq) + "}]}";
  std::FILE* f = std::fopen("bench/results/lsh.json", "w");
  if (f) {
    std::fprintf(f, "%s\n", json.c_str());
    std::fclose(f);
  }
  return 0;
}
