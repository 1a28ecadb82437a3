#include "common/tracing.h"

#include <atomic>
#include <chrono>
#include <random>

#include "common/hash.h"

namespace semcached::tracing {
namespace {

std::atomic<Sink*> g_sink{nullptr};
std::atomic<double> g_ratio{1.0};
thread_local Span* t_current = nullptr;

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   (static_cast<std::uint64_t>(std::random_device{}()) << 32));
  return rng;
}

template <std::size_t N>
void RandomId(std::array<std::uint8_t, N>& id) {
  for (;;) {
    for (std::size_t i = 0; i < N; i += 8) {
      std::uint64_t v = Rng()();
      for (std::size_t j = 0; j < 8 && i + j < N; ++j)
        id[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
    }
    for (auto b : id)
      if (b != 0) return;  // all-zero ids are invalid
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

template <std::size_t N>
bool ParseHex(std::string_view text, std::array<std::uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  bool nonzero = false;
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = HexDigit(text[2 * i]), lo = HexDigit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    nonzero |= out[i] != 0;
  }
  return nonzero;
}

// The trace id's last 8 bytes as a number: below ratio * 2^64 is sampled, so every service
// that samples by the same ratio keeps the same traces.
bool SampledByRatio(const TraceId& id, double ratio) {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  std::uint64_t v = 0;
  for (std::size_t i = 8; i < 16; ++i) v = (v << 8) | id[i];
  return static_cast<double>(v) < ratio * 18446744073709551616.0;
}

}  // namespace

bool SpanContext::valid() const {
  for (auto b : trace_id)
    if (b != 0) return true;
  return false;
}

std::optional<SpanContext> ParseTraceparent(std::string_view header) {
  // version-traceid-parentid-flags, 2+1+32+1+16+1+2 = 55 characters; a later version may
  // append fields after a '-'.
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t'))
    header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t'))
    header.remove_suffix(1);
  if (header.size() < 55 || header[2] != '-' || header[35] != '-' || header[52] != '-')
    return std::nullopt;
  const int v_hi = HexDigit(header[0]), v_lo = HexDigit(header[1]);
  if (v_hi < 0 || v_lo < 0 || (v_hi == 15 && v_lo == 15)) return std::nullopt;  // ff is invalid
  if (v_hi == 0 && v_lo == 0 && header.size() != 55) return std::nullopt;
  if (header.size() > 55 && header[55] != '-') return std::nullopt;
  SpanContext c;
  if (!ParseHex(header.substr(3, 32), c.trace_id)) return std::nullopt;
  if (!ParseHex(header.substr(36, 16), c.span_id)) return std::nullopt;
  const int f_hi = HexDigit(header[53]), f_lo = HexDigit(header[54]);
  if (f_hi < 0 || f_lo < 0) return std::nullopt;
  c.sampled = (f_lo & 1) != 0;
  return c;
}

std::string FormatTraceparent(const SpanContext& c) {
  return "00-" + LowerHex(c.trace_id.data(), 16) + "-" + LowerHex(c.span_id.data(), 8) +
         (c.sampled ? "-01" : "-00");
}

void Configure(Sink* sink, double sample_ratio) {
  g_sink.store(sink);
  g_ratio.store(sample_ratio);
}

std::uint64_t UnixNanoNow() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::optional<SpanContext> Current() {
  if (t_current == nullptr) return std::nullopt;
  return t_current->context();
}

Span::Span(std::string_view name, SpanKind kind) {
  Span* parent = t_current;
  if (parent == nullptr || !parent->recording_) return;
  root_ = parent->root_;
  recording_ = true;
  context_.trace_id = parent->context_.trace_id;
  context_.sampled = true;
  context_.tracestate = parent->context_.tracestate;
  RandomId(context_.span_id);
  record_.parent_span_id = parent->context_.span_id;
  record_.name = std::string(name);
  record_.kind = kind;
  record_.attributes.reserve(4);
  record_.start_unix_nano = UnixNanoNow();
  Activate();
}

Span::Span(std::string_view name, SpanKind kind, const std::optional<SpanContext>& parent,
           std::uint64_t start_unix_nano) {
  root_ = this;
  if (parent && parent->valid()) {
    context_.trace_id = parent->trace_id;
    context_.tracestate = parent->tracestate;
    context_.sampled = parent->sampled;
    record_.parent_span_id = parent->span_id;
  } else {
    RandomId(context_.trace_id);
    context_.sampled = SampledByRatio(context_.trace_id, g_ratio.load(std::memory_order_relaxed));
  }
  RandomId(context_.span_id);
  recording_ = context_.sampled && g_sink.load(std::memory_order_relaxed) != nullptr;
  if (recording_) {
    record_.name = std::string(name);
    record_.kind = kind;
    record_.attributes.reserve(6);
    finished_.reserve(12);
    record_.start_unix_nano = start_unix_nano != 0 ? start_unix_nano : UnixNanoNow();
  }
  Activate();  // even unsampled: its context is what upstream calls propagate
}

void Span::Activate() {
  previous_ = t_current;
  t_current = this;
  active_ = true;
}

Span::~Span() {
  if (!active_) return;
  t_current = previous_;
  if (!recording_) return;
  record_.trace_id = context_.trace_id;
  record_.span_id = context_.span_id;
  record_.end_unix_nano = UnixNanoNow();
  if (root_ != this) {
    root_->finished_.push_back(std::move(record_));
    return;
  }
  finished_.push_back(std::move(record_));
  if (Sink* sink = g_sink.load(std::memory_order_acquire)) sink->Export(std::move(finished_));
}

void Span::Set(const char* key, std::string value) {
  if (recording_) record_.attributes.push_back({key, std::move(value)});
}
void Span::Set(const char* key, std::int64_t value) {
  if (recording_) record_.attributes.push_back({key, value});
}
void Span::Set(const char* key, double value) {
  if (recording_) record_.attributes.push_back({key, value});
}
void Span::Set(const char* key, bool value) {
  if (recording_) record_.attributes.push_back({key, value});
}
void Span::SetError(std::string_view message) {
  if (!recording_) return;
  record_.error = true;
  record_.status_message = std::string(message);
}

}  // namespace semcached::tracing
