// Receives finished request spans (common/tracing.h's Sink), batches them, converts each batch
// to an OTLP ExportTraceServiceRequest and hands it to an OtlpSender for /v1/traces. A batch
// goes out every second, or sooner once 2048 spans wait; past 16384 waiting spans new ones are
// dropped and counted (semcached_otel_dropped_spans_total), so a slow collector costs memory
// that is bounded, and requests never wait.
// Must not: block in Export beyond one short mutex.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "common/tracing.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otel/otlp_metrics.h"
#include "otel/otlp_sender.h"

namespace semcached::otel {

struct TraceExporterOptions {
  SenderOptions sender;  // its url ends in /v1/traces
  ResourceAttributes resource;
  std::string version;
  int flush_interval_ms = 1'000;
  std::size_t batch_spans = 2048;
  std::size_t max_pending_spans = 16'384;
};

// Fills `out` with one resource's spans through the generated classes: the reference the
// exporter's own encoding (span_encoding.h) is tested against.
void ToOtlpTraces(const std::vector<tracing::SpanRecord>& spans, const ResourceAttributes& resource,
                  const std::string& scope_version,
                  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest* out);

class TraceExporter final : public tracing::Sink {
 public:
  TraceExporter(TraceExporterOptions options, prometheus::Registry& registry);
  ~TraceExporter() override;  // Stop(0) if not stopped
  void Export(std::vector<tracing::SpanRecord>&& spans) override;
  // Sends what waits, for up to `flush_ms`, then stops.
  void Stop(int flush_ms);

 private:
  void Run();
  using Batch = std::vector<std::vector<tracing::SpanRecord>>;  // requests' spans, as they came
  void Flush(Batch& batch);

  const TraceExporterOptions options_;
  OtlpSender sender_;
  prometheus::Counter* dropped_spans_;
  std::mutex mu_;
  std::condition_variable wake_;
  Batch pending_;
  std::size_t pending_spans_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace semcached::otel
