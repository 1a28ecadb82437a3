#include "app/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/durable_file.h"

namespace semcached::app {
namespace {

using nlohmann::json;

struct Point {
  double x, y;
};

// A line through measured points (least squares; one point: through the origin's slope is
// unknown, so the point's value is kept), read at x.
double Fit(const std::vector<Point>& points, double x) {
  if (points.empty()) return 0;
  if (points.size() == 1) return points[0].y;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& p : points) {
    sx += p.x;
    sy += p.y;
    sxx += p.x * p.x;
    sxy += p.x * p.y;
  }
  const double n = static_cast<double>(points.size());
  const double den = n * sxx - sx * sx;
  if (std::fabs(den) < 1e-12) return sy / n;
  const double b = (n * sxy - sx * sy) / den;
  return (sy - b * sx) / n + b * x;
}

std::string Human(double bytes) {
  char b[64];
  if (bytes >= 1024.0 * 1024 * 1024)
    std::snprintf(b, sizeof b, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  else if (bytes >= 1024.0 * 1024)
    std::snprintf(b, sizeof b, "%.1f MiB", bytes / (1024.0 * 1024));
  else
    std::snprintf(b, sizeof b, "%.1f KiB", bytes / 1024.0);
  return b;
}

std::string Num(double v, int digits = 0) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// What the process holds before any entry (the built-in model, buffers, the embedding LRU):
// not part of the per-entry figures.
constexpr double kProcessBaseBytes = 64.0 * 1024 * 1024;
// A Redis hash per entry holds its text and a dozen small fields; Redis's own overhead on it.
constexpr double kRedisHashOverheadBytes = 250;

}  // namespace

Status RunPlan(const PlanOptions& o) {
  if (o.entries == 0) return InvalidArgument("--entries is required (how many cache entries)");
  if (o.dim == 0) return InvalidArgument("--dim is required (the embedder's dimensions)");
  if (o.store != "embedded" && o.store != "redis")
    return InvalidArgument("--store must be embedded or redis, not '" + o.store + "'");
  if (o.shards == 0) return InvalidArgument("--shards must be at least 1");
  if (o.store == "embedded" && o.shards != 1)
    return InvalidArgument("--shards applies to --store redis (an embedded cache is one process)");
  if (!(o.exact_share >= 0 && o.exact_share <= 1))
    return InvalidArgument("--exact-share must be within 0 and 1");
  std::string text = BuiltinCapacityFigures();
  std::string source = "built-in figures";
  if (!o.figures_file.empty()) {
    auto read = ReadWholeFile(o.figures_file);
    if (!read.ok()) return read.status();
    text = std::move(*read);
    source = o.figures_file;
  }
  const json f = json::parse(text, nullptr, false);
  if (f.is_discarded() || !f.is_object()) return InvalidArgument(source + " is not JSON");
  if (!f.contains("measured"))
    return FailedPrecondition("no figures in " + source +
                              ": run the benchmarks (make bench, then python3 bench/capacity.py "
                              "--install) and rebuild, or pass --figures FILE");

  const double n = static_cast<double>(o.entries);
  const double d = static_cast<double>(o.dim);
  const double text_per_entry = static_cast<double>(o.prompt_bytes + o.response_bytes);
  json out = {{"entries", o.entries}, {"dim", o.dim}, {"store", o.store}};
  std::vector<std::string> assumptions;
  const auto& m = f.value("measured", json::object());
  assumptions.push_back("figures: " + source + ", measured " + m.value("date", "?") +
                        " at commit " + m.value("commit", "?") + " on " +
                        std::to_string(m.value("cores", 0)) + " cores (" + m.value("how", "") +
                        ")");
  assumptions.push_back("text per entry: prompt " + std::to_string(o.prompt_bytes) +
                        " B + response " + std::to_string(o.response_bytes) +
                        " B, no attributes (--prompt-bytes, --response-bytes)");

  std::vector<Point> beyond;
  for (const auto& p : f.value("embedded_bytes_beyond_text", json::array()))
    beyond.push_back({p.value("dim", 0.0), p.value("bytes", 0.0)});
  const double beyond_bytes = Fit(beyond, d);
  std::string dims;
  for (const auto& p : beyond)
    dims += (dims.empty() ? "" : ", ") + Num(p.y) + " B at " + Num(p.x) + "-d";
  if (o.store == "embedded") {
    const double per_entry = text_per_entry + beyond_bytes;
    const double memory = kProcessBaseBytes + n * per_entry;
    out["memoryBytes"] = memory;
    out["bytesPerEntry"] = per_entry;
    out["diskBytes"] = n * (d * 4 + text_per_entry + beyond_bytes * 0.5);
    assumptions.push_back("beyond its text an entry costs " + Num(beyond_bytes) +
                          " B resident at " + Num(d) + "-d, on the line through the measured " +
                          dims + " (int8 codes, links, maps; float32 originals file-backed)");
    assumptions.push_back("the process itself: " + Human(kProcessBaseBytes) +
                          " (built-in model, buffers, embedding LRU), not in the per-entry figure");
    assumptions.push_back(
        "disk: float32 originals (dim x 4 B per entry) and the snapshot of text "
        "and index (about half the resident figure per entry)");
  } else {
    std::vector<Point> redis;
    double measured_dim = 0, measured = 0;
    for (const auto& p : f.value("redis_bytes_per_vector", json::array())) {
      if (p.value("quant", "") != "q8") continue;
      measured_dim = p.value("dim", 0.0);
      measured = std::max(measured, p.value("bytes", 0.0));
    }
    if (measured_dim == 0) return InvalidArgument(source + " has no Redis q8 figure");
    // Q8 stores one byte per dimension: the rest (graph, names) does not grow with dim.
    const double vector_bytes = std::max(0.0, measured - measured_dim) + d;
    const double per_entry = vector_bytes + text_per_entry + kRedisHashOverheadBytes;
    const double per_shard = n / static_cast<double>(o.shards) * per_entry;
    out["redisBytesPerShard"] = per_shard;
    out["redisBytesPerEntry"] = per_entry;
    out["shards"] = o.shards;
    out["memoryBytes"] = kProcessBaseBytes;  // each semcached instance: its vectors are in Redis
    assumptions.push_back("a vector in a Redis vector set (Q8) costs " + Num(vector_bytes) +
                          " B at " + Num(d) + "-d: " + Num(measured) + " B measured at " +
                          Num(measured_dim) + "-d, one byte per dimension of it");
    assumptions.push_back("an entry's hash: its text plus " + Num(kRedisHashOverheadBytes) +
                          " B of fields and Redis overhead (not measured)");
    assumptions.push_back("entries spread evenly over " + std::to_string(o.shards) +
                          " shard(s) by hash slot; leave Redis maxmemory 30% above this");
  }

  // Snapshot and restore: measured rates, linear in entries and in bytes per entry.
  double snap_rate = 0, restore_rate = 0, snap_dim = 0;
  for (const auto& p : f.value("snapshot", json::array())) {
    const double entries = p.value("entries", 0.0);
    const double s = p.value("seconds", 0.0), r = p.value("restore_seconds", 0.0);
    if (entries <= 0 || s <= 0 || r <= 0) continue;
    if (snap_dim == 0 || std::fabs(p.value("dim", 0.0) - d) < std::fabs(snap_dim - d)) {
      snap_dim = p.value("dim", 0.0);
      snap_rate = entries / s;
      restore_rate = entries / r;
    }
  }
  if (o.store == "embedded" && snap_rate > 0) {
    out["snapshotSeconds"] = n / snap_rate;
    out["restoreSeconds"] = n / restore_rate;
    assumptions.push_back("snapshot " + Num(snap_rate) + " entries/s, restore " +
                          Num(restore_rate) + " entries/s, as measured at " + Num(snap_dim) +
                          "-d (one core, a local disk)");
  }

  if (o.qps > 0) {
    double exact = 0, semantic = 0, at = -1, cores = 2;
    for (const auto& p : f.value("http_requests_per_second", json::array())) {
      const double e = p.value("entries", 0.0);
      if (p.value("embedder", "") != "model2vec") continue;
      if (at < 0 || std::fabs(std::log(e) - std::log(n)) < std::fabs(std::log(at) - std::log(n))) {
        at = e;
        exact = p.value("exact", 0.0);
        semantic = p.value("semantic", 0.0);
        cores = p.value("io_threads", 2.0);
      }
    }
    if (exact <= 0 || semantic <= 0) return InvalidArgument(source + " has no HTTP figure");
    const double core_seconds = cores * (o.exact_share / exact + (1 - o.exact_share) / semantic);
    out["cores"] = o.qps * core_seconds;
    out["qps"] = o.qps;
    assumptions.push_back("a core answers " + Num(exact / cores) + " exact hits/s or " +
                          Num(semantic / cores) +
                          " semantic lookups/s (a miss costs no more), "
                          "as measured over HTTP with " +
                          Num(cores) + " I/O threads at " + Num(at) +
                          " entries (the load generator on the same cores: a "
                          "conservative figure)");
    assumptions.push_back(
        Num(100 * o.exact_share) + "% of requests are exact hits (--exact-share)" +
        std::string(o.store == "redis" ? "; with the Redis store the search runs in Redis, "
                                         "so semcached's own share is lower"
                                       : ""));
  }
  out["assumptions"] = assumptions;
  if (o.json) {
    std::cout << out.dump(2) << "\n";
    return Status::Ok();
  }
  std::printf("Plan: %zu entries, %zu-d, %s store%s\n", o.entries, o.dim, o.store.c_str(),
              o.store == "redis" ? (", " + std::to_string(o.shards) + " shard(s)").c_str() : "");
  if (o.store == "embedded") {
    std::printf("  memory per instance   %s (%s per entry)\n", Human(out["memoryBytes"]).c_str(),
                Human(out["bytesPerEntry"]).c_str());
    std::printf("  disk                  %s\n", Human(out["diskBytes"]).c_str());
    if (out.contains("snapshotSeconds"))
      std::printf("  snapshot / restore    %.1f s / %.1f s\n", out["snapshotSeconds"].get<double>(),
                  out["restoreSeconds"].get<double>());
  } else {
    std::printf("  Redis memory per shard %s (%s per entry)\n",
                Human(out["redisBytesPerShard"]).c_str(), Human(out["redisBytesPerEntry"]).c_str());
    std::printf("  each semcached        %s\n", Human(out["memoryBytes"]).c_str());
  }
  if (out.contains("cores"))
    std::printf("  CPU for %.0f req/s     %.2f cores\n", o.qps, out["cores"].get<double>());
  std::printf("Assumptions:\n");
  for (const auto& a : assumptions) std::printf("  - %s\n", a.c_str());
  return Status::Ok();
}

}  // namespace semcached::app
