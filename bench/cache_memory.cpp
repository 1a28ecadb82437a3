// Memory per cache entry beyond its text: an embedded cache as `semcached serve` builds it
// (built-in 512-d embedder behind the 10,000-entry embedding LRU, float originals in a file),
// filled with N entries of about 1 KB of text each; resident anonymous memory (RssAnon) is
// read before and after, and the entries' own text bytes are subtracted.
// With --persist the cache also keeps its files in --dir, and two more figures follow: how much
// resident memory writing a snapshot adds (sampled every millisecond while it runs), and what
// restoring the cache from those files leaves resident, before and after the freed heap is
// handed back (common/memory.h), as `semcached serve` does after start-up.
// Usage: cache_memory [--n 100000] [--text 1024] [--dir /tmp] [--persist]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "bench_data.h"
#include "cache/embedded/embedded_cache.h"
#include "common/memory.h"
#include "embed/builtin_embedder.h"
#include "embed/caching_embedder.h"
#include "embed/static_embedder.h"

using namespace semcached;

int main(int argc, char** argv) {
  CLI::App app("memory per cache entry beyond its text");
  std::size_t n = 100000, text = 1024;
  std::string dir = std::filesystem::temp_directory_path().string();
  app.add_option("--n", n, "entries");
  app.add_option("--text", text, "bytes of prompt + response per entry");
  app.add_option("--dir", dir, "directory for the float originals file");
  bool persist = false;
  app.add_flag("--persist", persist, "also measure a snapshot and a restore");
  std::string embedder = "ngram";
  app.add_option("--embedder", embedder, "ngram (512-d) or model2vec (the built-in 128-d model)")
      ->check(CLI::IsMember({"ngram", "model2vec"}));
  CLI11_PARSE(app, argc, argv);
  // As `semcached serve` builds it: the embedder behind the 10,000-entry embedding LRU.
  auto make_embedder = [&]() -> std::unique_ptr<embed::Embedder> {
    std::unique_ptr<embed::Embedder> inner;
    if (embedder == "model2vec")
      inner = std::move(*embed::StaticEmbedder::Load(embed::DefaultStaticModel()));
    else
      inner = std::make_unique<embed::BuiltinEmbedder>();
    return std::make_unique<embed::CachingEmbedder>(std::move(inner), 10000);
  };

  const std::string originals = dir + "/cache_memory_bench.vectors.f32";
  std::mt19937_64 rng(7);
  const char* words[] = {"router",  "password", "reset",    "account",  "balance", "invoice",
                         "refund",  "shipping", "order",    "delivery", "cancel",  "upgrade",
                         "plan",    "price",    "login",    "error",    "install", "update",
                         "battery", "screen",   "warranty", "return",   "address", "payment"};
  // Texts are built in buffers reused across entries, as a server reuses its connection's
  // read buffer: the bench's own string growth would otherwise leave holes in the heap
  // between the entries' allocations and count as the cache's memory.
  auto sentence = [&](std::string& s, std::size_t bytes) {
    s.clear();
    while (s.size() < bytes) {
      s += words[rng() % std::size(words)];
      s += ' ';
      s += std::to_string(rng() % 1000);
      s += ' ';
    }
    s.resize(bytes);
  };

  cache::CacheOptions o;
  o.id = "memory";
  cache::EmbeddedOptions eo;
  eo.originals_path = originals;
  const std::string persist_dir = dir + "/cache_memory_persist";
  if (persist) {
    std::filesystem::remove_all(persist_dir);
    std::filesystem::create_directories(persist_dir);
    eo.persist_dir = persist_dir;
    eo.fsync = cache::FsyncPolicy::kNo;
  }
  const std::size_t rss0 = bench::RssAnonBytes();
  auto first_embedder = make_embedder();
  const std::size_t dim = first_embedder->dim();
  auto made = cache::EmbeddedCache::Create(o, std::move(first_embedder), {}, eo);
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
    return 1;
  }
  auto& c = **made;
  const std::size_t rss_empty = bench::RssAnonBytes();
  std::size_t text_bytes = 0;
  const std::size_t prompt_bytes = std::min<std::size_t>(120, text / 4);
  std::size_t rss_half = 0, text_half = 0;
  std::string prompt, response, words_buffer;
  prompt.reserve(2 * text);
  response.reserve(2 * text);
  words_buffer.reserve(2 * text);
  for (std::size_t i = 0; i < n; ++i) {
    if (i == n / 2) {
      rss_half = bench::RssAnonBytes();
      text_half = text_bytes;
    }
    prompt = "question " + std::to_string(i) + ": ";
    sentence(words_buffer, prompt_bytes);
    prompt += words_buffer;
    sentence(response, text - std::min(text, prompt.size()));
    text_bytes += prompt.size() + response.size();
    auto id = c.Store(prompt, response, {}, std::nullopt);
    if (!id.ok()) {
      std::fprintf(stderr, "store %zu: %s\n", i, id.status().ToString().c_str());
      return 1;
    }
    if ((i + 1) % 10000 == 0) std::fprintf(stderr, "\r  stored %zu/%zu", i + 1, n);
  }
  std::fprintf(stderr, "\n");
  const std::size_t rss = bench::RssAnonBytes();
  const double per_entry = static_cast<double>(rss - rss_empty) / n;
  const double beyond = static_cast<double>(rss - rss_empty - text_bytes) / n;
  // The second half alone: fixed costs (the embedding LRU fills within the first 10,000)
  // drop out, leaving what one more entry costs.
  const std::size_t half = n - n / 2;
  const double marginal =
      (static_cast<double>(rss - rss_half) - static_cast<double>(text_bytes - text_half)) / half;
  std::printf(
      R"({"bench":"cache_memory","embedder":"%s","n":%zu,"dim":%zu,"text_bytes_per_entry":%.0f,"resident_bytes_per_entry":%.0f,)"
      R"("beyond_text_bytes_per_entry":%.0f,"marginal_beyond_text_bytes":%.0f,"empty_cache_bytes":%zu})"
      "\n",
      embedder.c_str(), n, dim, static_cast<double>(text_bytes) / n, per_entry, beyond, marginal,
      rss_empty - rss0);
  std::fprintf(
      stderr,
      "  %zu entries, %.0f B of text each: %.0f B resident per entry, %.0f B beyond the text "
      "(%.0f B for each entry of the second half)\n",
      n, static_cast<double>(text_bytes) / n, per_entry, beyond, marginal);
  if (persist) {
    // Snapshot: the largest resident size while it runs, against the size before.
    const std::size_t before = bench::RssAnonBytes();
    std::atomic<bool> done{false};
    std::size_t peak = before;
    std::thread sampler([&] {
      while (!done.load()) {
        peak = std::max(peak, bench::RssAnonBytes());
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    const auto snap_t0 = std::chrono::steady_clock::now();
    const Status snap = c.Snapshot();
    const double snapshot_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - snap_t0).count();
    done = true;
    sampler.join();
    if (!snap.ok()) {
      std::fprintf(stderr, "snapshot: %s\n", snap.ToString().c_str());
      return 1;
    }
    made->reset();
    ReleaseFreeMemory();
    const std::size_t base = bench::RssAnonBytes();
    const auto restore_t0 = std::chrono::steady_clock::now();
    auto restored = cache::EmbeddedCache::Create(o, make_embedder(), {}, eo);
    const double restore_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - restore_t0).count();
    if (!restored.ok() || (*restored)->Stats().entries != n) {
      std::fprintf(stderr, "restore failed\n");
      return 1;
    }
    const std::size_t untrimmed = bench::RssAnonBytes();
    ReleaseFreeMemory();
    const std::size_t trimmed = bench::RssAnonBytes();
    std::printf(
        R"({"bench":"cache_restore","embedder":"%s","n":%zu,"dim":%zu,"snapshot_extra_bytes":%zu,)"
        R"("restored_bytes":%zu,"restored_bytes_after_trim":%zu,"snapshot_seconds":%.3f,)"
        R"("restore_seconds":%.3f})"
        "\n",
        embedder.c_str(), n, dim, peak - before, untrimmed - base, trimmed - base, snapshot_s,
        restore_s);
    std::fprintf(stderr,
                 "  snapshot: %.2f s, %.1f MB more resident while writing; restore: %.2f s, %.1f MB "
                 "resident, %.1f MB after handing the freed heap back\n",
                 snapshot_s, (peak - before) / 1e6, restore_s, (untrimmed - base) / 1e6,
                 (trimmed - base) / 1e6);
    restored->reset();
    std::filesystem::remove_all(persist_dir);
  }
  std::filesystem::remove(originals);
  return 0;
}
