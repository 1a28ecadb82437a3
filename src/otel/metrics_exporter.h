// Pushes semcached's metrics to an OpenTelemetry collector: every export interval, what
// /metrics would show is collected, converted (otlp_metrics.h) and handed to an OtlpSender.
// Its own thread does the collecting; requests never wait on it.
// Must not: hold what it collects between intervals (each export is built afresh).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "otel/otlp_metrics.h"
#include "otel/otlp_sender.h"

namespace semcached::otel {

struct MetricsExporterOptions {
  SenderOptions sender;  // its url ends in /v1/metrics
  int export_interval_ms = 15'000;
  ResourceAttributes resource;
  std::string version;  // the instrumentation scope's version
  std::uint64_t start_unix_nano = 0;
};

class MetricsExporter {
 public:
  using Collect = std::function<std::vector<prometheus::MetricFamily>()>;
  MetricsExporter(MetricsExporterOptions options, Collect collect, prometheus::Registry& registry);
  ~MetricsExporter();  // Stop(0) if not stopped

  // One last export of the current figures, sent for up to `flush_ms`.
  void Stop(int flush_ms);

 private:
  void Run();
  void ExportOnce();

  const MetricsExporterOptions options_;
  const Collect collect_;
  OtlpSender sender_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// Nanoseconds since the Unix epoch, now.
std::uint64_t UnixNanoNow();

}  // namespace semcached::otel
