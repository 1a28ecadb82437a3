#include "server/redis_metrics.h"

namespace semcached::server {

namespace {

const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  return b;
}

}  // namespace

RedisMetrics::RedisMetrics(Metrics& metrics) {
  latency_ = &prometheus::BuildHistogram()
                  .Name("semcached_redis_command_duration_seconds")
                  .Help("Redis command latency seen by semcached, retries included, by command.")
                  .Register(metrics.registry());
  errors_ =
      &prometheus::BuildCounter()
           .Name("semcached_redis_command_errors_total")
           .Help(
               "Redis commands that failed, by kind: connect, io, timeout, circuit_open, shutdown, "
               "server (an error reply).")
           .Register(metrics.registry());
  // Every kind at zero from the start, so rates and alerts see a series before the first error.
  for (auto kind : {redis::FailureKind::kConnect, redis::FailureKind::kIo,
                    redis::FailureKind::kTimeout, redis::FailureKind::kCircuitOpen,
                    redis::FailureKind::kShutdown, redis::FailureKind::kServer})
    by_kind_[static_cast<int>(kind)] = &errors_->Add({{"kind", redis::FailureKindName(kind)}});
  retries_ = &prometheus::BuildCounter()
                  .Name("semcached_redis_retries_total")
                  .Help("Redis commands sent again after a transient error.")
                  .Register(metrics.registry())
                  .Add({});
  metrics.AddCollector([this] {
    std::vector<prometheus::MetricFamily> out;
    std::function<redis::ClientStats()> source;
    {
      std::lock_guard lock(mu_);
      source = source_;
    }
    if (!source) return out;
    const redis::ClientStats s = source();
    using T = prometheus::MetricType;
    out.push_back(SingleValueFamily("semcached_redis_pool_connections",
                                    "Open, ready Redis connections.", T::Gauge,
                                    static_cast<double>(s.connections)));
    out.push_back(SingleValueFamily("semcached_redis_pool_busy_connections",
                                    "Redis connections with at least one command in flight.",
                                    T::Gauge, static_cast<double>(s.connections_busy)));
    out.push_back(SingleValueFamily("semcached_redis_commands_in_flight",
                                    "Redis commands awaiting a reply.", T::Gauge,
                                    static_cast<double>(s.in_flight)));
    out.push_back(SingleValueFamily("semcached_redis_commands_waiting",
                                    "Redis commands waiting for a connection.", T::Gauge,
                                    static_cast<double>(s.waiting)));
    out.push_back(
        SingleValueFamily("semcached_redis_breaker_state",
                          "Circuit breaker: 0 closed, 1 open, 2 half-open (worst over nodes).",
                          T::Gauge, static_cast<double>(static_cast<int>(s.breaker))));
    out.push_back(SingleValueFamily("semcached_redis_breaker_opened_total",
                                    "Times the Redis circuit breaker opened.", T::Counter,
                                    static_cast<double>(s.breaker_opened)));
    out.push_back(SingleValueFamily("semcached_redis_connects_total", "Redis connections opened.",
                                    T::Counter, static_cast<double>(s.connects)));
    out.push_back(SingleValueFamily("semcached_redis_sent_bytes_total",
                                    "RESP bytes written to Redis (before TLS).", T::Counter,
                                    static_cast<double>(s.bytes_sent)));
    out.push_back(SingleValueFamily("semcached_redis_received_bytes_total",
                                    "RESP bytes read from Redis (after TLS).", T::Counter,
                                    static_cast<double>(s.bytes_received)));
    return out;
  });
}

void RedisMetrics::SetStatsSource(std::function<redis::ClientStats()> source) {
  std::lock_guard lock(mu_);
  source_ = std::move(source);
}

prometheus::Histogram& RedisMetrics::LatencyFor(std::string_view command) {
  std::lock_guard lock(mu_);
  auto it = by_command_.find(std::string(command));
  if (it != by_command_.end()) return *it->second;
  // Commands come from our own code, but keep the label set bounded all the same.
  std::string label = by_command_.size() < 64 ? std::string(command) : "OTHER";
  auto& h = latency_->Add({{"command", label}}, Buckets());
  by_command_.emplace(std::string(command), &h);
  return h;
}

void RedisMetrics::OnCommand(std::string_view command, double seconds, redis::FailureKind outcome) {
  LatencyFor(command).Observe(seconds);
  if (outcome == redis::FailureKind::kNone) return;
  prometheus::Counter* counter;
  {
    std::lock_guard lock(mu_);
    auto& slot = by_kind_[static_cast<int>(outcome)];
    if (slot == nullptr) slot = &errors_->Add({{"kind", redis::FailureKindName(outcome)}});
    counter = slot;
  }
  counter->Increment();
}

void RedisMetrics::OnRetry(std::string_view) { retries_->Increment(); }

}  // namespace semcached::server
