// Turns the [otel] configuration into running OpenTelemetry exporters: the resource that names
// this process (service.name, service.instance.id, service.version and any extra attributes)
// and the metrics and trace exporters over OTLP/HTTP.
// Must not: start anything while otel.endpoint is empty.
#pragma once

#include <memory>

#include "app/config.h"
#include "otel/metrics_exporter.h"
#include "otel/trace_exporter.h"
#include "server/metrics.h"

namespace semcached::app {

// What runs while the server does; Stop sends the last batches.
class Telemetry {
 public:
  // Starts nothing when otel.endpoint is empty (trace context is still read and propagated).
  Telemetry(const OtelConfig& config, server::Metrics& metrics);
  ~Telemetry() { Stop(); }
  void Stop();

 private:
  int flush_ms_;
  std::unique_ptr<otel::TraceExporter> traces_;
  std::unique_ptr<otel::MetricsExporter> metrics_;
};

}  // namespace semcached::app
