// Converts the Prometheus families semcached collects (server/metrics.h: Collect) into one OTLP
// ExportMetricsServiceRequest, so an OpenTelemetry collector receives the same instruments as
// /metrics.
//
// Names: where OpenTelemetry has a semantic convention for an instrument, the OTLP metric takes
// its name, unit and attribute names (http.server.request.duration, process.cpu.time,
// db.client.operation.duration, gen_ai.client.operation.duration, gen_ai.client.token.usage);
// every other family becomes "semcached.<area>.<rest>" with its unit suffix moved into the
// unit field (semcached_cache_stage_seconds -> semcached.cache.stage, unit "s"). The Prometheus
// names on /metrics do not change.
// Temporality: cumulative, from the process's start, as Prometheus counters are.
// Must not: collect (the caller passes what it collected) or send anything.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"

namespace semcached::otel {

// What a resource says about this process (service.name, service.instance.id, ...).
using ResourceAttributes = std::vector<std::pair<std::string, std::string>>;

struct ConvertedName {
  std::string name;
  std::string unit;
};
// The OTLP name and unit of a Prometheus family (see the header comment).
ConvertedName OtlpName(const std::string& prometheus_name);

opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest ToOtlp(
    const std::vector<prometheus::MetricFamily>& families, const ResourceAttributes& resource,
    const std::string& scope_version, std::uint64_t start_unix_nano, std::uint64_t now_unix_nano);

}  // namespace semcached::otel
