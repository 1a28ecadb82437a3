// Distributed tracing without a tracing library in the core: W3C trace context (traceparent,
// tracestate), head sampling, and spans that any layer can open around its work. A request's
// root span is opened by the HTTP server from the request's traceparent (a new trace when
// absent); every Span opened on the same thread while it is active becomes its descendant, so
// the cache's stages, the Redis client's commands and the HTTP client's upstream calls need no
// context passed through their signatures. When the request ends, its finished spans go to the
// Sink (otel/trace_exporter.h) in one batch.
// Cost when nothing is sampled: a thread-local read per Span; ids are still made so that the
// trace id can be returned to the client and propagated upstream.
// Must not: know about OTLP, HTTP or Redis (those layers call it), or block.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace semcached::tracing {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

enum class SpanKind : std::uint8_t { kInternal = 1, kServer = 2, kClient = 3 };

struct SpanContext {
  TraceId trace_id{};
  SpanId span_id{};
  bool sampled = false;
  std::string tracestate;  // passed on unchanged
  bool valid() const;
};

// A traceparent header ("00-<32 hex>-<16 hex>-<2 hex>"); nullopt when malformed or all-zero
// ids, as the W3C recommendation says to then start a new trace. Later versions are read by
// their first four fields.
std::optional<SpanContext> ParseTraceparent(std::string_view header);
std::string FormatTraceparent(const SpanContext& context);

struct Attribute {
  const char* key;  // a string literal: every caller names its attributes by constants
  std::variant<std::string, std::int64_t, double, bool> value;
};

struct SpanRecord {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // all zero: a root without a remote parent
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  std::uint64_t start_unix_nano = 0, end_unix_nano = 0;
  std::vector<Attribute> attributes;
  bool error = false;
  std::string status_message;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // One request's finished spans (its root last). Called on the request's thread: must not block.
  virtual void Export(std::vector<SpanRecord>&& spans) = 0;
};

// At start-up, before requests: where sampled spans go (null: nowhere, nothing is recorded) and
// the share of new traces sampled (0..1). A request whose traceparent names a parent follows
// the parent's sampled flag.
void Configure(Sink* sink, double sample_ratio);

std::uint64_t UnixNanoNow();

class Span {
 public:
  // A child of this thread's active span; records nothing if there is none or it is not sampled.
  explicit Span(std::string_view name, SpanKind kind = SpanKind::kInternal);
  // The root of a request: continues `parent` (from traceparent) or starts a new trace, with
  // the sampling decision made here. `start_unix_nano` 0: now.
  Span(std::string_view name, SpanKind kind, const std::optional<SpanContext>& parent,
       std::uint64_t start_unix_nano);
  ~Span();
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

  bool recording() const { return recording_; }
  const SpanContext& context() const { return context_; }

  // Keys are string literals (kept by pointer); values are copied.
  void Set(const char* key, std::string value);
  void Set(const char* key, const char* value) { Set(key, std::string(value)); }
  void Set(const char* key, std::int64_t value);
  void Set(const char* key, int value) { Set(key, static_cast<std::int64_t>(value)); }
  void Set(const char* key, std::size_t value) { Set(key, static_cast<std::int64_t>(value)); }
  void Set(const char* key, double value);
  void Set(const char* key, bool value);
  void SetError(std::string_view message);
  // For a root whose name costs a string to build: named once it is known to be recorded.
  void SetName(std::string name) {
    if (recording_) record_.name = std::move(name);
  }

 private:
  void Activate();
  bool active_ = false;  // this span is the thread's current one (roots, and recording children)
  bool recording_ = false;
  SpanContext context_;
  Span* previous_ = nullptr;
  Span* root_ = nullptr;              // the request's root span (this, for a root)
  std::vector<SpanRecord> finished_;  // a root's: its descendants that have ended
  SpanRecord record_;
};

// The context of this thread's active span, to propagate (traceparent); nullopt outside a
// request.
std::optional<SpanContext> Current();

}  // namespace semcached::tracing
