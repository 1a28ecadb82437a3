// Turns the [otel] configuration into running OpenTelemetry exporters: the resource that names
// this process (service.name, service.instance.id, service.version and any extra attributes)
// and the metrics exporter over OTLP/HTTP.
// Must not: start anything while otel.endpoint is empty.
#pragma once

#include <memory>

#include "app/config.h"
#include "otel/metrics_exporter.h"
#include "server/metrics.h"

namespace semcached::app {

// The resource attributes of this process, from the configuration.
otel::ResourceAttributes TelemetryResource(const OtelConfig& config);

// Null when otel.endpoint is empty. The exporter's own counters go to `metrics`.
std::unique_ptr<otel::MetricsExporter> StartMetricsExport(const OtelConfig& config,
                                                          server::Metrics& metrics);

}  // namespace semcached::app
