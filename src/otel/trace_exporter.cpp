#include "otel/trace_exporter.h"

#include <chrono>

#include "otel/span_encoding.h"

namespace semcached::otel {
namespace {

namespace pb_trace = opentelemetry::proto::trace::v1;

pb_trace::Span::SpanKind KindOf(tracing::SpanKind k) {
  switch (k) {
    case tracing::SpanKind::kServer: return pb_trace::Span::SPAN_KIND_SERVER;
    case tracing::SpanKind::kClient: return pb_trace::Span::SPAN_KIND_CLIENT;
    case tracing::SpanKind::kInternal: break;
  }
  return pb_trace::Span::SPAN_KIND_INTERNAL;
}

bool AllZero(const tracing::SpanId& id) {
  for (auto b : id)
    if (b != 0) return false;
  return true;
}

}  // namespace

void ToOtlpTraces(const std::vector<tracing::SpanRecord>& spans, const ResourceAttributes& resource,
                  const std::string& scope_version,
                  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest* out) {
  auto* rs = out->add_resource_spans();
  for (const auto& [key, value] : resource) {
    auto* kv = rs->mutable_resource()->add_attributes();
    kv->set_key(key);
    kv->mutable_value()->set_string_value(value);
  }
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("semcached");
  ss->mutable_scope()->set_version(scope_version);
  for (const auto& s : spans) {
    auto* span = ss->add_spans();
    span->set_trace_id(s.trace_id.data(), s.trace_id.size());
    span->set_span_id(s.span_id.data(), s.span_id.size());
    if (!AllZero(s.parent_span_id))
      span->set_parent_span_id(s.parent_span_id.data(), s.parent_span_id.size());
    span->set_name(s.name);
    span->set_kind(KindOf(s.kind));
    span->set_start_time_unix_nano(s.start_unix_nano);
    span->set_end_time_unix_nano(s.end_unix_nano);
    for (const auto& a : s.attributes) {
      auto* kv = span->add_attributes();
      kv->set_key(a.key);
      auto* v = kv->mutable_value();
      if (const auto* str = std::get_if<std::string>(&a.value))
        v->set_string_value(*str);
      else if (const auto* i = std::get_if<std::int64_t>(&a.value))
        v->set_int_value(*i);
      else if (const auto* d = std::get_if<double>(&a.value))
        v->set_double_value(*d);
      else
        v->set_bool_value(std::get<bool>(a.value));
    }
    if (s.error) {
      span->mutable_status()->set_code(pb_trace::Status::STATUS_CODE_ERROR);
      span->mutable_status()->set_message(s.status_message);
    }
  }
}

TraceExporter::TraceExporter(TraceExporterOptions options, prometheus::Registry& registry)
    : options_(std::move(options)), sender_("traces", options_.sender, registry) {
  dropped_spans_ = &prometheus::BuildCounter()
                        .Name("semcached_otel_dropped_spans_total")
                        .Help("Spans not exported because too many were waiting.")
                        .Register(registry)
                        .Add({});
  thread_ = std::thread([this] { Run(); });
}

TraceExporter::~TraceExporter() { Stop(0); }

void TraceExporter::Export(std::vector<tracing::SpanRecord>&& spans) {
  bool full = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || pending_spans_ + spans.size() > options_.max_pending_spans) {
      dropped_spans_->Increment(static_cast<double>(spans.size()));
      return;
    }
    pending_spans_ += spans.size();
    pending_.push_back(std::move(spans));
    full = pending_spans_ >= options_.batch_spans;
  }
  if (full) wake_.notify_one();
}

void TraceExporter::Flush(Batch& batch) {
  if (batch.empty()) return;
  sender_.Enqueue(EncodeTraces(batch, options_.resource, options_.version));
  batch.clear();
}

void TraceExporter::Run() {
  Batch batch;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms),
                   [this] { return stopping_ || pending_spans_ >= options_.batch_spans; });
    const bool last = stopping_;
    batch.swap(pending_);
    pending_spans_ = 0;
    lock.unlock();
    Flush(batch);
    lock.lock();
    if (last) return;
  }
}

void TraceExporter::Stop(int flush_ms) {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  sender_.Stop(flush_ms);
}

}  // namespace semcached::otel
