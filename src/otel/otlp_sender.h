// Sends OTLP/HTTP protobuf bodies (metrics or traces) to a collector from a thread of its own,
// so that no request ever waits on the collector: a bounded queue that drops its oldest batch
// (and counts it) rather than grow, retries with exponential backoff on the failures OTLP/HTTP
// calls retryable (transport errors, 429, 502, 503, 504), and a last attempt at shutdown.
// Counts every attempt in semcached_otel_exports_total{signal, result} and every batch lost in
// semcached_otel_dropped_total{signal}.
// Must not: block the caller of Enqueue beyond a mutex, or retry a batch the collector refused
// as malformed (4xx other than 429).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "common/http_client.h"

namespace semcached::otel {

struct SenderOptions {
  std::string url;                   // the full URL: endpoint + "/v1/metrics" or "/v1/traces"
  std::vector<std::string> headers;  // "Name: value" (authentication for hosted collectors)
  int timeout_ms = 10'000;           // per attempt
  std::size_t max_queue = 16;        // batches waiting; the oldest is dropped beyond
  int max_attempts = 5;              // per batch, then it is dropped
  int initial_backoff_ms = 500;      // doubled per attempt, with jitter, up to max_backoff_ms
  int max_backoff_ms = 8'000;
};

class OtlpSender {
 public:
  // `signal` labels the counters: "metrics" or "traces".
  OtlpSender(std::string signal, SenderOptions options, prometheus::Registry& registry);
  ~OtlpSender();  // Stop(0) if not stopped
  OtlpSender(const OtlpSender&) = delete;
  OtlpSender& operator=(const OtlpSender&) = delete;

  void Enqueue(std::string body);
  // Sends what is queued, once each and without retries, for up to `flush_ms`, then stops.
  void Stop(int flush_ms);

 private:
  void Run();
  // One POST; whether it was accepted and, if not, whether it may be retried.
  bool Send(const std::string& body, int timeout_ms, bool* retryable);

  const std::string signal_;
  const SenderOptions options_;
  HttpClient http_{1};
  prometheus::Counter *ok_, *failed_, *dropped_;
  prometheus::Gauge* queued_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point flush_deadline_;
  std::thread thread_;
};

}  // namespace semcached::otel
