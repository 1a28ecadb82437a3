// Redis client metrics on /metrics: per-command latency, errors by kind, retries, and the
// pools' size, use and breaker state read at scrape time.
//
// Why here: the Redis client (src/redis/) reports through a small observer interface and
// knows nothing of Prometheus; this adapter is where the two meet.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "redis/client.h"
#include "server/metrics.h"

namespace semcached::server {

class RedisMetrics final : public redis::ClientObserver {
 public:
  explicit RedisMetrics(Metrics& metrics);

  void OnCommand(std::string_view command, double seconds, redis::FailureKind outcome) override;
  void OnRetry(std::string_view command) override;

  // Where the pool figures come from (one client, or the sum over a cluster's nodes).
  void SetStatsSource(std::function<redis::ClientStats()> source);
  redis::ClientStats Stats() const { return source_ ? source_() : redis::ClientStats{}; }

 private:
  prometheus::Histogram& LatencyFor(std::string_view command);

  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Counter* retries_;
  std::mutex mu_;
  std::unordered_map<std::string, prometheus::Histogram*> by_command_;
  std::unordered_map<int, prometheus::Counter*> by_kind_;
  std::function<redis::ClientStats()> source_;
};

}  // namespace semcached::server
