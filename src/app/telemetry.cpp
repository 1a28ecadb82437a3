#include "app/telemetry.h"

#include <cstdio>
#include <random>

#include <spdlog/spdlog.h>

namespace semcached::app {
namespace {

// A version 4 UUID: service.instance.id must tell apart every process, restarts included.
std::string RandomUuid() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  const std::uint64_t hi = (rng() & ~0xF000ULL) | 0x4000ULL;                         // version 4
  const std::uint64_t lo = (rng() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant
  char out[37];
  std::snprintf(out, sizeof out, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return out;
}

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

otel::ResourceAttributes TelemetryResource(const OtelConfig& config) {
  otel::ResourceAttributes out = {
      {"service.name", config.service_name},
      {"service.instance.id",
       config.service_instance_id.empty() ? RandomUuid() : config.service_instance_id},
      {"service.version", SEMCACHED_VERSION},
      {"telemetry.sdk.name", "semcached"},
      {"telemetry.sdk.language", "cpp"},
      {"telemetry.sdk.version", SEMCACHED_VERSION}};
  if (auto extra = ParseKeyValues(config.resource_attributes); extra.ok()) {
    for (auto& [k, v] : *extra) out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

std::unique_ptr<otel::MetricsExporter> StartMetricsExport(const OtelConfig& config,
                                                          server::Metrics& metrics) {
  if (config.endpoint.empty()) return nullptr;
  otel::MetricsExporterOptions o;
  o.sender.url = TrimSlash(config.endpoint) + "/v1/metrics";
  if (auto headers = ParseKeyValues(config.headers); headers.ok()) {
    for (const auto& [k, v] : *headers) o.sender.headers.push_back(k + ": " + v);
  }
  o.sender.timeout_ms = config.timeout_ms;
  o.sender.max_queue = static_cast<std::size_t>(config.max_queue);
  o.export_interval_ms = config.export_interval_ms;
  o.resource = TelemetryResource(config);
  o.version = SEMCACHED_VERSION;
  o.start_unix_nano = otel::UnixNanoNow();
  spdlog::info("otel: metrics every {} ms to {}", config.export_interval_ms, o.sender.url);
  return std::make_unique<otel::MetricsExporter>(
      std::move(o), [&metrics] { return metrics.Collect(); }, metrics.registry());
}

}  // namespace semcached::app
