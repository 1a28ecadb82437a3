// Prometheus metrics of the process and of the HTTP server, rendered in the text format.
//
// One prometheus-cpp Registry holds every family; other modules add their own families to it
// through registry(). Process figures (resident memory, CPU seconds, open files) are read
// from /proc when scraped, so they cost nothing between scrapes.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace semcached::server {

// A family with one unlabelled counter or gauge, for scrape-time collectors.
prometheus::MetricFamily SingleValueFamily(const std::string& name, const std::string& help,
                                           prometheus::MetricType type, double value);

class Metrics {
 public:
  Metrics();

  prometheus::Registry& registry() { return *registry_; }

  // One finished request: counts it and records its latency under its route pattern.
  void ObserveRequest(const std::string& route, const std::string& method, int status,
                      double seconds);

  prometheus::Gauge& open_connections() { return *open_connections_; }
  prometheus::Counter& rejected_connections() { return *rejected_connections_; }

  // Static labels for semcached_build_info (version, git, simd level).
  void SetBuildInfo(const std::string& version, const std::string& git, const std::string& simd);

  // Families computed at scrape time (pool sizes, breaker states); add at start-up only.
  using Collector = std::function<std::vector<prometheus::MetricFamily>()>;
  void AddCollector(Collector collector) { collectors_.push_back(std::move(collector)); }

  // Everything, in the Prometheus text exposition format.
  std::string Render() const;

 private:
  struct PerRoute {
    prometheus::Counter* count;
    prometheus::Histogram* latency;
  };

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Gauge>* build_info_;
  prometheus::Family<prometheus::Gauge>* simd_;
  prometheus::Gauge* open_connections_;
  prometheus::Counter* rejected_connections_;

  // Family::Add hashes the labels under a lock; the common (route, method, status) triples
  // are cached here after their first use.
  std::vector<Collector> collectors_;
  std::mutex cache_mu_;
  std::unordered_map<std::string, PerRoute> cache_;
};

}  // namespace semcached::server
