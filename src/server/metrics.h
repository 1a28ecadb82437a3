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
  // Blocking handlers posted to the worker pool and not started yet, and those running.
  prometheus::Gauge& worker_queue() { return *worker_queue_; }
  prometheus::Gauge& workers_busy() { return *workers_busy_; }
  void SetWorkerThreads(int n) { worker_threads_->Set(n); }

  // The latency objective (server.latency_objective_ms): requests answered within it are
  // counted per route, so an SLO's error ratio is one division (deploy/prometheus/alerts.yml).
  // Set at start-up, before requests.
  void SetLatencyObjective(double seconds);

  // Static labels for semcached_build_info (version, git, simd level).
  void SetBuildInfo(const std::string& version, const std::string& git, const std::string& simd);

  // Families computed at scrape time (pool sizes, breaker states); add at start-up only.
  using Collector = std::function<std::vector<prometheus::MetricFamily>()>;
  void AddCollector(Collector collector) { collectors_.push_back(std::move(collector)); }

  // Every family: the registry's, the process's and the collectors'. What /metrics renders
  // and the OTLP exporter (otel/) converts.
  std::vector<prometheus::MetricFamily> Collect() const;
  // Everything, in the Prometheus text exposition format.
  std::string Render() const;

 private:
  struct PerRoute {
    prometheus::Counter* count;
    prometheus::Histogram* latency;
    prometheus::Counter* within_objective;
  };

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Gauge>* build_info_;
  prometheus::Family<prometheus::Gauge>* simd_;
  prometheus::Family<prometheus::Counter>* within_objective_;
  prometheus::Gauge* open_connections_;
  prometheus::Counter* rejected_connections_;
  prometheus::Gauge *worker_queue_, *workers_busy_, *worker_threads_, *objective_;
  double objective_seconds_ = 0.1;

  // Family::Add hashes the labels under a lock; the common (route, method, status) triples
  // are cached here after their first use.
  std::vector<Collector> collectors_;
  std::mutex cache_mu_;
  std::unordered_map<std::string, PerRoute> cache_;
};

}  // namespace semcached::server
