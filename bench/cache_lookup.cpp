// What one lookup costs in process, by stage: an embedded cache as `semcached serve` builds it
// (the embedder behind the 10,000-entry embedding LRU), filled with N entries whose prompts are
// cache_http.sh's ("How do I <verb> the <adjective> <noun> in the <place>?", words from
// bench/bench_words.txt), then exact hits (the stored wording) and semantic hits (a rewording)
// timed one thread, one lookup at a time, interleaved in rounds. The figures say where a
// semantic hit's time goes (normalize, embed, search, guards) and its cost against an exact
// hit's in the same run, without the HTTP stack or the machine's other load in the way.
// Usage: cache_lookup [--n 100000] [--lookups 20000] [--embedder model2vec|ngram] [--ef 24]
// [--words F]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cache/embedded/embedded_cache.h"
#include "embed/builtin_embedder.h"
#include "embed/caching_embedder.h"
#include "embed/static_embedder.h"

using namespace semcached;

namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("in-process cost of exact and semantic cache hits, by stage");
  std::size_t n = 100000, lookups = 20000;
  std::string embedder = "model2vec";
  std::string words_path = "bench/bench_words.txt";
  app.add_option("--n", n, "entries");
  app.add_option("--lookups", lookups, "lookups of each kind");
  app.add_option("--embedder", embedder, "model2vec (the default model) or ngram")
      ->check(CLI::IsMember({"ngram", "model2vec"}));
  app.add_option("--words", words_path, "bench_words.txt");
  std::size_t ef = cache::CacheOptions{}.search_ef;
  app.add_option("--ef", ef, "search_ef of the cache");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::vector<std::string>> lists;
  std::ifstream in(words_path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ws(line);
    lists.emplace_back();
    for (std::string w; ws >> w;) lists.back().push_back(w);
  }
  if (lists.size() < 4) {
    std::fprintf(stderr, "cache_lookup: %s must have four lines of words\n", words_path.c_str());
    return 2;
  }
  auto words = [&](std::size_t i) {
    std::uint64_t j = (static_cast<std::uint64_t>(i) * 2654435761ull) % 100000000ull;
    std::vector<std::string> out;
    for (int k = 0; k < 4; ++k) {
      out.push_back(lists[static_cast<std::size_t>(k)][j % 100]);
      j /= 100;
    }
    return out;
  };
  std::unique_ptr<embed::Embedder> inner;
  if (embedder == "model2vec")
    inner = std::move(*embed::StaticEmbedder::Load(embed::DefaultStaticModel()));
  else
    inner = std::make_unique<embed::BuiltinEmbedder>();
  cache::CacheOptions o;
  o.id = "lookup";
  o.similarity_threshold = 0.7f;  // as cache_http.sh: the rewordings below are hits
  o.search_ef = ef;
  auto made = cache::EmbeddedCache::Create(
      o, std::make_unique<embed::CachingEmbedder>(std::move(inner), 10000), {}, {});
  if (!made.ok()) {
    std::fprintf(stderr, "cache_lookup: %s\n", made.status().ToString().c_str());
    return 1;
  }
  auto& c = **made;
  const std::string answer(900, 'y');
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    auto w = words(i);
    auto id = c.Store("How do I " + w[0] + " the " + w[1] + " " + w[2] + " in the " + w[3] + "?",
                      answer, {}, std::nullopt);
    if (!id.ok()) {
      std::fprintf(stderr, "cache_lookup: store: %s\n", id.status().ToString().c_str());
      return 1;
    }
    if (i && i % 20000 == 0) std::fprintf(stderr, "  %zu stored\n", i);
  }
  std::fprintf(stderr, "  %zu stored in %.1f s\n", n,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  std::mt19937_64 rng(11);
  struct Kind {
    const char* name;
    const char* place;  // "the" (the stored wording) or "my" (a rewording)
    cache::Strategy tier;
    std::vector<double> total, normalize, embed, search, guards;
    std::size_t wrong = 0;
  };
  std::vector<Kind> kinds = {
      {"exact hit", "the", cache::Strategy::kExact, {}, {}, {}, {}, {}},
      {"semantic hit", "my", cache::Strategy::kSemantic, {}, {}, {}, {}, {}}};
  constexpr std::size_t kRound = 1000;
  for (std::size_t done = 0; done < lookups; done += kRound) {
    for (auto& k : kinds) {
      for (std::size_t r = 0; r < kRound; ++r) {
        auto w = words(rng() % n);
        cache::SearchQuery q;
        q.prompt =
            "How do I " + w[0] + " the " + w[1] + " " + w[2] + " in " + k.place + " " + w[3] + "?";
        cache::LookupTrace t;
        const auto s = std::chrono::steady_clock::now();
        auto hit = c.Search(q, &t);
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count();
        if (!hit.ok() || hit->empty() || t.hit_tier != k.tier) ++k.wrong;
        k.total.push_back(us);
        k.normalize.push_back(t.normalize_us);
        k.embed.push_back(t.embed_us);
        k.search.push_back(t.search_us);
        k.guards.push_back(t.guards_us);
      }
    }
  }
  std::printf(
      "%s embedder, %zu entries, search_ef %zu, %zu lookups of each kind, one thread (µs)\n",
      embedder.c_str(), n, ef, lookups);
  std::printf("%-14s %8s %8s %10s %8s %8s %8s %s\n", "", "p50", "p99", "normalize", "embed",
              "search", "guards", "(stage medians)");
  for (auto& k : kinds) {
    std::printf("%-14s %8.2f %8.2f %10.2f %8.2f %8.2f %8.2f %s\n", k.name, Median(k.total),
                Percentile(k.total, 0.99), Median(k.normalize), Median(k.embed), Median(k.search),
                Median(k.guards),
                k.wrong ? ("  " + std::to_string(k.wrong) + " not this tier").c_str() : "");
  }
  std::printf("semantic / exact cost (p50): %.2f\n",
              Median(kinds[1].total) / std::max(1e-9, Median(kinds[0].total)));
  return 0;
}
