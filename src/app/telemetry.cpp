#include "app/telemetry.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include <spdlog/spdlog.h>

#include "common/tracing.h"

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

// The resource attributes of this process, from the configuration.
otel::ResourceAttributes Resource(const OtelConfig& config) {
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

}  // namespace

Telemetry::Telemetry(const OtelConfig& config, server::Metrics& metrics)
    : flush_ms_(std::min(config.timeout_ms, 5'000)) {
  tracing::Configure(nullptr, config.trace_sample_ratio);
  if (config.endpoint.empty()) return;
  otel::SenderOptions sender;
  if (auto headers = ParseKeyValues(config.headers); headers.ok()) {
    for (const auto& [k, v] : *headers) sender.headers.push_back(k + ": " + v);
  }
  sender.timeout_ms = config.timeout_ms;
  sender.max_queue = static_cast<std::size_t>(config.max_queue);
  const otel::ResourceAttributes resource = Resource(config);
  const std::string base = TrimSlash(config.endpoint);

  if (config.traces) {
    otel::TraceExporterOptions t;
    t.sender = sender;
    t.sender.url = base + "/v1/traces";
    t.resource = resource;
    t.version = SEMCACHED_VERSION;
    traces_ = std::make_unique<otel::TraceExporter>(std::move(t), metrics.registry());
    tracing::Configure(traces_.get(), config.trace_sample_ratio);
    spdlog::info("otel: traces (sample ratio {}) to {}/v1/traces", config.trace_sample_ratio, base);
  }
  otel::MetricsExporterOptions m;
  m.sender = sender;
  m.sender.url = base + "/v1/metrics";
  m.export_interval_ms = config.export_interval_ms;
  m.resource = resource;
  m.version = SEMCACHED_VERSION;
  m.start_unix_nano = otel::UnixNanoNow();
  spdlog::info("otel: metrics every {} ms to {}", config.export_interval_ms, m.sender.url);
  metrics_ = std::make_unique<otel::MetricsExporter>(
      std::move(m), [&metrics] { return metrics.Collect(); }, metrics.registry());
}

void Telemetry::Stop() {
  // Requests have finished: no span is recorded after this.
  tracing::Configure(nullptr, 0);
  if (traces_) traces_->Stop(flush_ms_);
  if (metrics_) metrics_->Stop(flush_ms_);
  traces_.reset();
  metrics_.reset();
}

}  // namespace semcached::app
