// The Redis 8 path measured against Redis itself, in one run on one server:
//  - insert: VADD one at a time (a round trip each) vs pipelined batches (AddBatch);
//  - search: VSIM through semcached's pooled client vs raw blocking hiredis calls with the
//    same bytes on one connection, so the client's own overhead shows as a ratio; p50/p95/p99
//    and QPS, sequential and with concurrent callers;
//  - quality: recall@10 of Redis VSIM against exact ground truth at several EF values (the
//    Redis baseline for the vector engine's tables).
// Usage: redis_bench --port P [--n 10000,100000] [--dim 768] [--quant q8,noquant]
// One JSON object per measurement on stdout; a table on stderr.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "bench_data.h"
#include "redis/client.h"
#include "store/redis_store.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Latency {
  double p50 = 0, p95 = 0, p99 = 0, mean = 0;
};

Latency Summarize(std::vector<double> us) {
  Latency l;
  if (us.empty()) return l;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    return us[std::min(us.size() - 1, static_cast<std::size_t>(p * us.size()))];
  };
  l.p50 = pct(0.50);
  l.p95 = pct(0.95);
  l.p99 = pct(0.99);
  double sum = 0;
  for (double v : us) sum += v;
  l.mean = sum / us.size();
  return l;
}

std::vector<std::size_t> ParseList(const std::string& s) {
  std::vector<std::size_t> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) out.push_back(std::stoul(part));
  return out;
}

std::vector<std::string> ParseWords(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) out.push_back(part);
  return out;
}

long long UsedMemory(semcached::redis::Client& c) {
  auto r = c.Execute({"INFO", "memory"});
  if (!r.ok()) return 0;
  auto pos = r->str.find("used_memory:");
  return pos == std::string::npos ? 0 : std::atoll(r->str.c_str() + pos + 12);
}

// Raw hiredis: one blocking connection, the same argument bytes, no pool, no conversion.
struct RawHiredis {
  redisContext* c;
  explicit RawHiredis(int port) : c(redisConnect("127.0.0.1", port)) {
    if (c == nullptr || c->err) {
      std::fprintf(stderr, "raw hiredis: cannot connect\n");
      std::exit(1);
    }
  }
  ~RawHiredis() { redisFree(c); }
  bool Call(const semcached::redis::Args& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    bool ok = r != nullptr && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    return ok;
  }
  // `depth` commands written, then `depth` replies read: redis-benchmark's -P.
  bool Pipelined(const std::vector<semcached::redis::Args>& batch) {
    for (const auto& args : batch) {
      std::vector<const char*> argv;
      std::vector<std::size_t> lens;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
    }
    bool ok = true;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      void* r = nullptr;
      if (redisGetReply(c, &r) != REDIS_OK) return false;
      ok = ok && static_cast<redisReply*>(r)->type != REDIS_REPLY_ERROR;
      freeReplyObject(r);
    }
    return ok;
  }
};

semcached::store::SearchRequest Top(std::size_t k, std::size_t ef = 0) {
  semcached::store::SearchRequest r;
  r.k = k;
  r.ef = ef;
  return r;
}

void Emit(const std::string& json) { std::cout << json << std::endl; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Redis 8 vector sets through semcached's client vs raw calls");
  int port = 6379;
  std::string ns = "10000,100000", quants = "q8,noquant", efs = "32,64,128";
  std::size_t dim = 768, nq = 1000, sequential_inserts = 3000, batch = 500;
  int threads = 4;
  bool cas = false;
  app.add_option("--port", port, "Redis 8 port")->required();
  app.add_option("--n", ns, "collection sizes");
  app.add_option("--dim", dim, "dimensions");
  app.add_option("--queries", nq, "queries per measurement");
  app.add_option("--quant", quants, "q8,noquant,bin");
  app.add_option("--ef", efs, "VSIM EF values for the recall table");
  app.add_option("--sequential-inserts", sequential_inserts, "elements inserted one at a time");
  app.add_option("--batch", batch, "pipelined batch size");
  app.add_option("--threads", threads, "concurrent callers for the throughput row");
  app.add_option(
      "--cas", cas,
      "VADD with CAS (neighbour search on Redis worker threads; unsafe with AOF on 8.0.2)");
  CLI11_PARSE(app, argc, argv);

  semcached::redis::ClientOptions co;
  co.port = port;
  co.pool_min = static_cast<std::size_t>(threads);
  co.command_timeout_ms = 60000;
  auto client = std::move(*semcached::redis::Client::Create(co));
  RawHiredis raw(port);

  for (std::size_t n : ParseList(ns)) {
    auto data = bench::Synthetic(n, nq, dim, 42);
    auto truth = bench::GroundTruth(data, 10, "");
    for (const auto& qname : ParseWords(quants)) {
      semcached::store::RedisStoreOptions so;
      so.collection = "bench-" + std::to_string(n) + "-" + qname;
      so.collection_options.dim = dim;
      so.collection_options.quantization = *semcached::store::ParseQuantization(qname);
      so.batch_size = batch;
      so.threaded_insert = cas;
      auto store = std::move(*semcached::store::RedisVectorStore::Open(*client, so));
      (void)store->Clear();
      const long long mem_before = UsedMemory(*client);
      auto element = [&](std::size_t i) {
        return semcached::store::Element{
            std::to_string(i),
            std::vector<float>(data.base.begin() + i * dim, data.base.begin() + (i + 1) * dim), ""};
      };

      // Insert: pipelined batches up to the last 2 x `seq` elements; then `seq` one at a time
      // and `seq` pipelined, so both rates are taken at about the same graph size (inserting
      // into a bigger graph costs more).
      const std::size_t seq = std::min(sequential_inserts, n / 4);
      double seq_s = 0, batch_s = 0;
      std::size_t done = 0;
      auto pipelined = [&](std::size_t upto) -> bool {
        while (done < upto) {
          std::vector<semcached::store::Element> chunk;
          for (std::size_t i = done; i < std::min(upto, done + 10 * batch); ++i)
            chunk.push_back(element(i));
          for (const auto& st : store->AddBatch(chunk)) {
            if (!st.ok()) {
              std::fprintf(stderr, "insert failed: %s\n", st.ToString().c_str());
              return false;
            }
          }
          done += chunk.size();
          std::fprintf(stderr, "\r  %s n=%zu: inserted %zu/%zu", qname.c_str(), n, done, n);
        }
        return true;
      };
      if (!pipelined(n - 2 * seq)) return 1;
      auto t0 = Clock::now();
      for (std::size_t i = done; i < n - seq; ++i) {
        if (!store->Add(element(i)).ok()) return 1;
      }
      done = n - seq;
      seq_s = std::chrono::duration<double>(Clock::now() - t0).count();
      t0 = Clock::now();
      if (!pipelined(n)) return 1;
      batch_s = std::chrono::duration<double>(Clock::now() - t0).count();
      std::fprintf(stderr, "\n");
      const double seq_rate = seq / seq_s, batch_rate = seq / batch_s;
      const long long bytes = UsedMemory(*client) - mem_before;
      char line[1024];
      std::snprintf(
          line, sizeof line,
          R"({"bench":"redis_insert","n":%zu,"dim":%zu,"quant":"%s","sequential_per_s":%.0f,)"
          R"("pipelined_per_s":%.0f,"ratio":%.2f,"batch":%zu,"redis_bytes_per_vector":%.0f})",
          n, dim, qname.c_str(), seq_rate, batch_rate, batch_rate / seq_rate, batch,
          static_cast<double>(bytes) / n);
      Emit(line);
      std::fprintf(stderr,
                   "  insert %-7s n=%-6zu sequential %8.0f/s  pipelined %8.0f/s  ratio %.2fx  "
                   "Redis %.0f B/vector\n",
                   qname.c_str(), n, seq_rate, batch_rate, batch_rate / seq_rate,
                   static_cast<double>(bytes) / n);

      // Why pipelining cannot speed VADD up much: the server spends far longer inserting into
      // its graph than a round trip costs. A cheap write (VSETATTR) shows what pipelining
      // does when round trips dominate; PING gives the round trip itself.
      std::vector<double> ping_us;
      for (int i = 0; i < 2000; ++i) {
        auto a = Clock::now();
        if (!raw.Call({"PING"})) return 1;
        ping_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
      }
      const double rtt_us = Summarize(ping_us).p50;
      const std::size_t cheap = std::min<std::size_t>(n, 5000);
      t0 = Clock::now();
      for (std::size_t i = 0; i < cheap; ++i) {
        if (!client->Execute({"VSETATTR", store->key(), std::to_string(i), R"({"seq":1})"}).ok())
          return 1;
      }
      const double cheap_seq = cheap / std::chrono::duration<double>(Clock::now() - t0).count();
      t0 = Clock::now();
      for (std::size_t start = 0; start < cheap; start += batch) {
        std::vector<semcached::redis::Args> cmds;
        for (std::size_t i = start; i < std::min(cheap, start + batch); ++i) {
          cmds.push_back({"VSETATTR", store->key(), std::to_string(i), R"({"seq":2})"});
        }
        for (const auto& r : client->ExecuteMany(std::move(cmds))) {
          if (!r.ok()) return 1;
        }
      }
      const double cheap_pipe = cheap / std::chrono::duration<double>(Clock::now() - t0).count();
      const double vadd_us = 1e6 / seq_rate;
      std::snprintf(
          line, sizeof line,
          R"({"bench":"redis_pipelining","n":%zu,"quant":"%s","rtt_p50_us":%.1f,"vadd_us":%.1f,)"
          R"("vadd_pipelining_bound":%.2f,"vsetattr_sequential_per_s":%.0f,"vsetattr_pipelined_per_s":%.0f,)"
          R"("vsetattr_ratio":%.2f})",
          n, qname.c_str(), rtt_us, vadd_us, vadd_us / std::max(1.0, vadd_us - rtt_us), cheap_seq,
          cheap_pipe, cheap_pipe / cheap_seq);
      Emit(line);
      std::fprintf(stderr,
                   "  pipelining: round trip %.0f us, VADD %.0f us each -> at most %.2fx from "
                   "pipelining VADD; "
                   "VSETATTR sequential %.0f/s, pipelined %.0f/s (%.1fx)\n",
                   rtt_us, vadd_us, vadd_us / std::max(1.0, vadd_us - rtt_us), cheap_seq,
                   cheap_pipe, cheap_pipe / cheap_seq);

      // Search latency: raw hiredis vs our client, same VSIM bytes, one caller, interleaved
      // query by query so both see the same server state and noise.
      std::vector<double> raw_us, ours_us;
      for (std::size_t q = 0; q < nq; ++q) {
        std::span<const float> query(data.queries.data() + q * dim, dim);
        auto args = store->VsimArgs(query, Top(10));
        // Alternate which goes first, so neither always finds the server's caches warm.
        for (int turn = 0; turn < 2; ++turn) {
          const bool raw_turn = (turn == 0) == (q % 2 == 0);
          auto a = Clock::now();
          bool ok = raw_turn ? raw.Call(args) : store->Search(query, Top(10)).ok();
          auto us = std::chrono::duration<double, std::micro>(Clock::now() - a).count();
          if (!ok) return 1;
          (raw_turn ? raw_us : ours_us).push_back(us);
        }
      }
      const Latency lr = Summarize(raw_us), lo = Summarize(ours_us);
      std::snprintf(
          line, sizeof line,
          R"({"bench":"redis_vsim_latency","n":%zu,"dim":%zu,"quant":"%s","raw_p50_us":%.1f,"raw_p95_us":%.1f,)"
          R"("raw_p99_us":%.1f,"ours_p50_us":%.1f,"ours_p95_us":%.1f,"ours_p99_us":%.1f,"overhead_ratio_p50":%.3f,)"
          R"("overhead_ratio_mean":%.3f})",
          n, dim, qname.c_str(), lr.p50, lr.p95, lr.p99, lo.p50, lo.p95, lo.p99, lo.p50 / lr.p50,
          lo.mean / lr.mean);
      Emit(line);
      std::fprintf(stderr,
                   "  VSIM    %-7s n=%-6zu raw p50/p95/p99 %6.0f/%6.0f/%6.0f us   ours "
                   "%6.0f/%6.0f/%6.0f us   "
                   "ratio p50 %.3f mean %.3f\n",
                   qname.c_str(), n, lr.p50, lr.p95, lr.p99, lo.p50, lo.p95, lo.p99,
                   lo.p50 / lr.p50, lo.mean / lr.mean);

      // Throughput with concurrent callers (ours) vs raw pipelining of the same depth.
      std::atomic<std::size_t> next{0};
      const std::size_t total = nq * 2;
      t0 = Clock::now();
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
          for (std::size_t i = next.fetch_add(1); i < total; i = next.fetch_add(1)) {
            std::span<const float> query(data.queries.data() + (i % nq) * dim, dim);
            (void)store->Search(query, Top(10));
          }
        });
      }
      for (auto& t : pool) t.join();
      const double ours_qps = total / std::chrono::duration<double>(Clock::now() - t0).count();
      t0 = Clock::now();
      for (std::size_t i = 0; i < total; i += static_cast<std::size_t>(threads)) {
        std::vector<semcached::redis::Args> group;
        for (int t = 0; t < threads && i + t < total; ++t) {
          std::span<const float> query(data.queries.data() + ((i + t) % nq) * dim, dim);
          group.push_back(store->VsimArgs(query, Top(10)));
        }
        if (!raw.Pipelined(group)) return 1;
      }
      const double raw_qps = total / std::chrono::duration<double>(Clock::now() - t0).count();
      std::snprintf(
          line, sizeof line,
          R"({"bench":"redis_vsim_throughput","n":%zu,"dim":%zu,"quant":"%s","callers":%d,"ours_qps":%.0f,)"
          R"("raw_pipelined_qps":%.0f,"ratio":%.3f})",
          n, dim, qname.c_str(), threads, ours_qps, raw_qps, ours_qps / raw_qps);
      Emit(line);
      std::fprintf(stderr,
                   "  VSIM    %-7s n=%-6zu %d callers: ours %6.0f QPS, raw pipelined (-P %d) %6.0f "
                   "QPS, ratio %.3f\n",
                   qname.c_str(), n, threads, ours_qps, threads, raw_qps, ours_qps / raw_qps);

      // Recall@10 of Redis itself against exact ground truth.
      for (std::size_t ef : ParseList(efs)) {
        std::size_t found = 0;
        std::vector<double> us;
        for (std::size_t q = 0; q < nq; ++q) {
          std::span<const float> query(data.queries.data() + q * dim, dim);
          auto a = Clock::now();
          auto hits = store->Search(query, Top(10, ef));
          us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
          if (!hits.ok()) return 1;
          for (const auto& h : *hits) {
            const auto id = static_cast<std::uint32_t>(std::stoul(h.id));
            found += std::count(truth.begin() + q * 10, truth.begin() + (q + 1) * 10, id);
          }
        }
        const Latency l = Summarize(us);
        const double recall = static_cast<double>(found) / (nq * 10);
        std::snprintf(
            line, sizeof line,
            R"({"bench":"redis_vsim_recall","engine":"redis-%s","n":%zu,"dim":%zu,"ef":%zu,"recall":%.4f,)"
            R"("qps":%.0f,"p50_us":%.1f,"p99_us":%.1f})",
            qname.c_str(), n, dim, ef, recall, 1e6 / l.mean, l.p50, l.p99);
        Emit(line);
        std::fprintf(stderr,
                     "  recall  %-7s n=%-6zu EF %-4zu recall@10 %.4f  %6.0f QPS (one caller)  p99 "
                     "%6.0f us\n",
                     qname.c_str(), n, ef, recall, 1e6 / l.mean, l.p99);
      }
      (void)store->Clear();
    }
  }
  return 0;
}
