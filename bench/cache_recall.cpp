// How deep the semantic tier's graph walk must go (search_ef): N cache prompts of the kind
// bench/cache_http.sh stores, embedded by the built-in embedder into the cache's HNSW index
// (int8 walk, float re-scoring as the cache does it), each of Q reworded queries searched at
// several ef; recall@1 against an exact float32 scan of the same index in the same run (the
// baseline), with the time per search.
// Usage: cache_recall [--n 50000] [--queries 500] [--ef 8,16,24,32,64]
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "embed/builtin_embedder.h"
#include "vector/hnsw_index.h"

using namespace semcached;

int main(int argc, char** argv) {
  CLI::App app("recall@1 of the semantic tier's index walk per search_ef");
  std::size_t n = 50000, queries = 500;
  std::string efs = "8,16,24,32,64";
  app.add_option("--n", n, "entries");
  app.add_option("--queries", queries, "reworded queries");
  app.add_option("--ef", efs, "comma-separated ef values");
  CLI11_PARSE(app, argc, argv);

  auto prompt = [](std::size_t i) {
    return "how do i configure service " + std::to_string(i) + " for region " +
           std::to_string(i % 97);
  };
  embed::BuiltinEmbedder embedder;
  for (std::size_t i = 0; i < n; ++i) embedder.Observe(prompt(i));
  vector::HnswOptions io;
  io.dim = embedder.dim();
  auto index = vector::HnswIndex::Create(io);
  if (!index.ok()) return 1;
  for (std::size_t i = 0; i < n; ++i) {
    auto v = embedder.Embed(prompt(i));
    if (!v.ok() || !(*index)->Add(i, v->data(), v->size()).ok()) return 1;
    if ((i + 1) % 10000 == 0) std::fprintf(stderr, "\r  indexed %zu/%zu", i + 1, n);
  }
  std::fprintf(stderr, "\n");

  std::mt19937 rng(2);
  std::vector<std::vector<float>> qs;
  std::vector<std::uint64_t> truth;
  for (std::size_t q = 0; q < queries; ++q) {
    const std::size_t i = rng() % n;
    auto v = embedder.Embed("configure service " + std::to_string(i) + " for region " +
                            std::to_string(i % 97));
    vector::SearchParams exact;
    exact.k = 1;
    exact.precision = vector::Precision::kExact;
    auto t = (*index)->Search(v->data(), v->size(), exact);
    if (!t.ok() || t->empty()) return 1;
    truth.push_back((*t)[0].label);
    qs.push_back(std::move(*v));
  }

  std::printf("%8s %12s %14s\n", "ef", "recall@1", "us/search");
  std::stringstream list(efs);
  for (std::string item; std::getline(list, item, ',');) {
    const std::size_t ef = std::stoul(item);
    std::size_t agree = 0;
    auto start = std::chrono::steady_clock::now();
    for (std::size_t q = 0; q < qs.size(); ++q) {
      vector::SearchParams p;  // as the cache searches: 4 candidates, int8 walk, re-scored
      p.k = 4;
      p.ef = ef;
      auto h = (*index)->Search(qs[q].data(), qs[q].size(), p);
      if (h.ok() && !h->empty() && (*h)[0].label == truth[q]) ++agree;
    }
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count() /
        static_cast<double>(qs.size());
    const double recall = static_cast<double>(agree) / static_cast<double>(qs.size());
    std::printf("%8zu %12.3f %14.1f\n", ef, recall, us);
    std::fprintf(
        stderr,
        R"({"bench":"cache_recall","n":%zu,"ef":%zu,"recall_at_1":%.4f,"us_per_search":%.1f})"
        "\n",
        n, ef, recall, us);
  }
  return 0;
}
