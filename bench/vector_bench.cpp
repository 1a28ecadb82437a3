// Vector search benchmark: one engine per process, so resident memory is measured cleanly.
//
//   vector_bench --data synthetic --dim 768 --n 100000 --engine semcached --ef 16,32,64,128
//   vector_bench --data glove --engine hnswlib
//
// Engines: semcached (int8 HNSW, re-scored with float32), semcached-int8 (no re-scoring),
// hnswlib (float32 HNSW, Debian's libhnswlib-dev, same M and ef_construction), brute
// (exact float32 scan), int8scan (exact scan of per-vector Q8 codes, one thread).
// Prints one JSON object per line: build seconds, resident bytes per vector (RssAnon growth
// while building, so file-backed originals do not count), and per ef: recall@10 against
// exact ground truth, single-thread QPS, p50/p95/p99 latency in microseconds.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_data.h"
#include "hnswlib_baseline.h"
#include "vector/hnsw_index.h"
#include "vector/kernels.h"
#include "vector/quantizer.h"

namespace sv = semcached::vector;
using Clock = std::chrono::steady_clock;
using namespace bench;

namespace {

struct Row {
  std::size_t ef = 0;
  double recall = 0, qps = 0, p50 = 0, p95 = 0, p99 = 0;
};

template <typename SearchFn>
Row Measure(const Dataset& d, const std::vector<std::uint32_t>& gt, std::size_t k, std::size_t ef,
            SearchFn&& search) {
  std::vector<double> lat(d.nq);
  std::vector<std::uint32_t> got;
  double hits = 0;
  auto start = Clock::now();
  for (std::size_t q = 0; q < d.nq; ++q) {
    auto t0 = Clock::now();
    got.clear();
    search(&d.queries[q * d.dim], ef, &got);
    lat[q] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    std::set<std::uint32_t> truth(gt.begin() + static_cast<std::ptrdiff_t>(q * k),
                                  gt.begin() + static_cast<std::ptrdiff_t>(q * k + k));
    for (auto id : got) hits += truth.count(id);
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))]; };
  Row r;
  r.ef = ef;
  r.recall = hits / static_cast<double>(d.nq * k);
  r.qps = static_cast<double>(d.nq) / secs;
  r.p50 = pct(0.50);
  r.p95 = pct(0.95);
  r.p99 = pct(0.99);
  return r;
}

template <typename Fn>
void Parallel(std::size_t n, std::size_t threads, Fn&& fn) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    });
  }
  for (auto& t : pool) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"semcached vector benchmark"};
  std::string data = "synthetic", engine = "semcached", data_dir = ".deps/bench-data", ef_list = "16,32,64,128,256";
  std::string originals_dir;
  std::size_t dim = 768, n = 10000, nq = 1000, M = 16, efc = 200, k = 10, threads = 2;
  app.add_option("--data", data, "synthetic | glove");
  app.add_option("--engine", engine, "semcached | semcached-int8 | hnswlib | brute | int8scan");
  app.add_option("--dim", dim);
  app.add_option("--n", n, "base vectors (glove: 0 = all)");
  app.add_option("--queries", nq);
  app.add_option("--M", M);
  app.add_option("--efc", efc);
  app.add_option("--ef", ef_list);
  app.add_option("--k", k);
  app.add_option("--threads", threads, "threads used to build (search is always one thread)");
  app.add_option("--data-dir", data_dir);
  app.add_option("--originals-dir", originals_dir, "keep float32 originals in a file here");
  bool exact_construction = false;
  app.add_flag("--exact-construction", exact_construction, "semcached: choose links by float32 distances");
  bool wide_query = false;
  app.add_flag("--wide-query", wide_query, "semcached: walk with a 14-bit query (int16 x int8)");
  CLI11_PARSE(app, argc, argv);

  Dataset d = data == "glove" ? Glove(data_dir, n == 10000 ? 0 : n, nq) : Synthetic(n, nq, dim, 42);
  std::vector<std::size_t> efs;
  {
    std::stringstream ss(ef_list);
    std::string tok;
    while (std::getline(ss, tok, ',')) efs.push_back(std::stoul(tok));
  }
  std::string cache = data_dir + "/gt-" + d.name + "-" + std::to_string(d.n) + "-" + std::to_string(d.nq) + "-" + std::to_string(k) + ".u32";
  auto gt = GroundTruth(d, k, cache);
  std::fprintf(stderr, "[%s] %s: %zu x %zu, %zu queries; kernels %s\n", engine.c_str(), d.name.c_str(), d.n,
               d.dim, d.nq, std::string(sv::SimdLevelName(sv::Kernels().level)).c_str());

  std::vector<Row> rows;
  double build_s = 0;
  double floor_ms = 0;  // int8scan: measured streaming-read time of the codes
  std::size_t rss_before = RssAnonBytes(), rss_after = rss_before;
  auto print = [&](const std::string& eng) {
    for (const Row& r : rows) {
      std::printf("{\"engine\":\"%s\",\"data\":\"%s\",\"n\":%zu,\"dim\":%zu,\"M\":%zu,\"efc\":%zu,"
                  "\"originals\":\"%s\",\"build_s\":%.2f,\"bytes_per_vector\":%.0f,\"ef\":%zu,\"recall\":%.4f,\"qps\":%.0f,"
                  "\"p50_us\":%.1f,\"p95_us\":%.1f,\"p99_us\":%.1f,\"floor_ms\":%.2f}\n",
                  eng.c_str(), d.name.c_str(), d.n, d.dim, M, efc,
                  originals_dir.empty() ? "ram" : "disk", build_s,
                  static_cast<double>(rss_after - rss_before) / static_cast<double>(d.n), r.ef, r.recall,
                  r.qps, r.p50, r.p95, r.p99, floor_ms);
    }
    std::fflush(stdout);
  };

  if (engine == "semcached" || engine == "semcached-int8") {
    sv::HnswOptions o;
    o.dim = d.dim;
    o.M = M;
    o.ef_construction = efc;
    o.background_maintenance = false;
    o.drift_window = std::size_t{1} << 40;  // a fixed benchmark: calibrate once
    if (!originals_dir.empty()) o.originals_path = originals_dir + "/bench-originals.f32";
    o.exact_construction = exact_construction;
    o.wide_query = wide_query;
    auto created = sv::HnswIndex::Create(o);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    auto& index = *created;
    auto t0 = Clock::now();
    // The first vectors go in alone: they are buffered until calibration.
    std::size_t head = std::min(d.n, o.calibration_threshold);
    for (std::size_t i = 0; i < head; ++i) (void)index->Add(i, &d.base[i * d.dim], d.dim);
    Parallel(d.n - head, threads, [&](std::size_t i) {
      (void)index->Add(head + i, &d.base[(head + i) * d.dim], d.dim);
    });
    build_s = std::chrono::duration<double>(Clock::now() - t0).count();
    rss_after = RssAnonBytes();
    auto st = index->Stats();
    std::fprintf(stderr, "[%s] built in %.1f s; scheme %s; code bytes/vec %.0f, graph bytes/vec %.0f, originals %s\n",
                 engine.c_str(), build_s, sv::Int8SchemeName(st.scheme), double(st.code_bytes) / d.n,
                 double(st.graph_bytes) / d.n, st.originals_on_disk ? "on disk" : "in RAM");
    sv::SearchParams p;
    p.k = k;
    p.precision = engine == "semcached" ? sv::Precision::kInt8Rescore : sv::Precision::kInt8;
    p.oversample = 1;  // same ef as the baseline: ef alone sets how many are re-scored
    for (std::size_t ef : efs) {
      p.ef = ef;
      rows.push_back(Measure(d, gt, k, ef, [&](const float* q, std::size_t, std::vector<std::uint32_t>* out) {
        auto r = index->Search(q, d.dim, p);
        for (const auto& h : *r) out->push_back(static_cast<std::uint32_t>(h.label));
      }));
    }
    print(engine + (exact_construction ? "-exactbuild" : "") + (wide_query ? "-wide" : ""));
  } else if (engine == "hnswlib") {
    if (!bench::HnswlibBaseline::Supported()) {
      std::fprintf(stderr, "[hnswlib] skipped: the baseline is built for AVX-512, which this CPU lacks\n");
      return 0;
    }
    auto t0 = Clock::now();
    bench::HnswlibBaseline h(d.dim, d.n, M, efc);
    h.Add(&d.base[0], 0);
    Parallel(d.n - 1, threads, [&](std::size_t i) { h.Add(&d.base[(i + 1) * d.dim], i + 1); });
    build_s = std::chrono::duration<double>(Clock::now() - t0).count();
    rss_after = RssAnonBytes();
    for (std::size_t ef : efs) {
      h.SetEf(ef);
      rows.push_back(Measure(d, gt, k, ef, [&](const float* q, std::size_t, std::vector<std::uint32_t>* out) {
        h.Search(q, k, out);
      }));
    }
    print(engine);
  } else if (engine == "brute" || engine == "int8scan") {
    const auto& kern = sv::Kernels();
    std::vector<std::int8_t> codes;
    std::vector<sv::CodeMeta> metas;
    sv::Int8Params q8 = sv::PerVectorParams(d.dim);
    auto t0 = Clock::now();
    if (engine == "int8scan") {
      codes.resize(d.n * d.dim);
      metas.resize(d.n);
      for (std::size_t i = 0; i < d.n; ++i) metas[i] = sv::Encode(q8, &d.base[i * d.dim], &codes[i * d.dim]);
    }
    build_s = std::chrono::duration<double>(Clock::now() - t0).count();
    rss_after = RssAnonBytes();
    if (engine == "int8scan") {
      // The memory-bandwidth floor of this scan on this machine, in the same run: the best
      // of five plain passes reading every code byte once, doing nothing else.
      double best = 1e9;
      for (int pass = 0; pass < 5; ++pass) {
        auto a = Clock::now();
        const auto* w = reinterpret_cast<const std::uint64_t*>(codes.data());
        std::uint64_t acc = 0;
        for (std::size_t i = 0; i < codes.size() / 8; ++i) acc += w[i];
        volatile std::uint64_t sink = acc;
        (void)sink;
        best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - a).count());
      }
      std::fprintf(stderr, "[int8scan] streaming read of %zu MB: %.1f ms (%.1f GB/s)\n", codes.size() >> 20, best,
                   static_cast<double>(codes.size()) / best / 1e6);
      floor_ms = best;
    }
    std::size_t nq_used = engine == "int8scan" ? std::min<std::size_t>(d.nq, 200) : std::min<std::size_t>(d.nq, 200);
    Dataset sub = d;
    sub.nq = nq_used;
    sv::QueryCode qc;
    std::vector<std::pair<float, std::uint32_t>> heap;
    rows.push_back(Measure(sub, gt, k, 0, [&](const float* q, std::size_t, std::vector<std::uint32_t>* out) {
      heap.clear();
      auto consider = [&](float dist, std::uint32_t id) {
        if (heap.size() < k) {
          heap.emplace_back(dist, id);
          std::push_heap(heap.begin(), heap.end());
        } else if (dist < heap.front().first) {
          std::pop_heap(heap.begin(), heap.end());
          heap.back() = {dist, id};
          std::push_heap(heap.begin(), heap.end());
        }
      };
      if (engine == "brute") {
        for (std::size_t i = 0; i < d.n; ++i) consider(-kern.dot_f32(q, &d.base[i * d.dim], d.dim), static_cast<std::uint32_t>(i));
      } else {
        sv::EncodeQuery(q8, q, &qc);
        for (std::size_t i = 0; i < d.n; ++i) {
          std::int32_t kd = kern.dot_u8i8(qc.biased.data(), &codes[i * d.dim], d.dim);
          consider(-sv::ApproxDotFromKernel(qc, metas[i], kd), static_cast<std::uint32_t>(i));
        }
      }
      for (auto& [dist, id] : heap) out->push_back(id);
    }));
    print(engine);
  } else {
    std::fprintf(stderr, "unknown engine %s\n", engine.c_str());
    return 2;
  }
  return 0;
}
