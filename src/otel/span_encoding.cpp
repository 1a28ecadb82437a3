#include "otel/span_encoding.h"

#include <cstdint>
#include <cstring>
#include <string_view>

namespace semcached::otel {
namespace {

enum Wire : std::uint32_t { kVarint = 0, kFixed64 = 1, kLength = 2 };

void Varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::size_t VarintSize(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void Tag(std::string& out, std::uint32_t field, Wire wire) { Varint(out, (field << 3) | wire); }

void Bytes(std::string& out, std::uint32_t field, std::string_view bytes) {
  Tag(out, field, kLength);
  Varint(out, bytes.size());
  out.append(bytes);
}

// proto3 leaves empty strings out.
void String(std::string& out, std::uint32_t field, std::string_view s) {
  if (!s.empty()) Bytes(out, field, s);
}

void Fixed64(std::string& out, std::uint32_t field, std::uint64_t v) {
  Tag(out, field, kFixed64);
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}

// One AnyValue's bytes (its oneof field is written even when it holds a default).
void AnyValue(std::string& out, const tracing::Attribute& a) {
  if (const auto* s = std::get_if<std::string>(&a.value)) {
    Bytes(out, 1, *s);
  } else if (const auto* b = std::get_if<bool>(&a.value)) {
    Tag(out, 2, kVarint);
    Varint(out, *b ? 1 : 0);
  } else if (const auto* i = std::get_if<std::int64_t>(&a.value)) {
    Tag(out, 3, kVarint);
    Varint(out, static_cast<std::uint64_t>(*i));
  } else {
    std::uint64_t bits;
    const double d = std::get<double>(a.value);
    std::memcpy(&bits, &d, sizeof bits);
    Fixed64(out, 4, bits);
  }
}

// A KeyValue as field `field` of its parent, built in `scratch`.
void KeyValue(std::string& out, std::uint32_t field, std::string_view key,
              const tracing::Attribute& a, std::string& scratch) {
  scratch.clear();
  AnyValue(scratch, a);
  const std::size_t inner = (key.empty() ? 0 : 1 + VarintSize(key.size()) + key.size()) + 1 +
                            VarintSize(scratch.size()) + scratch.size();
  Tag(out, field, kLength);
  Varint(out, inner);
  String(out, 1, key);
  Bytes(out, 2, scratch);
}

void Span(std::string& out, const tracing::SpanRecord& s, std::string& scratch) {
  Bytes(out, 1, {reinterpret_cast<const char*>(s.trace_id.data()), s.trace_id.size()});
  Bytes(out, 2, {reinterpret_cast<const char*>(s.span_id.data()), s.span_id.size()});
  bool has_parent = false;
  for (auto b : s.parent_span_id) has_parent |= b != 0;
  if (has_parent)
    Bytes(out, 4,
          {reinterpret_cast<const char*>(s.parent_span_id.data()), s.parent_span_id.size()});
  String(out, 5, s.name);
  Tag(out, 6, kVarint);
  Varint(out, static_cast<std::uint64_t>(s.kind));
  Fixed64(out, 7, s.start_unix_nano);
  Fixed64(out, 8, s.end_unix_nano);
  for (const auto& a : s.attributes) KeyValue(out, 9, a.key, a, scratch);
  if (s.error) {
    scratch.clear();
    String(scratch, 2, s.status_message);
    Tag(scratch, 3, kVarint);
    Varint(scratch, 2);  // STATUS_CODE_ERROR
    Bytes(out, 15, scratch);
  }
}

}  // namespace

std::string EncodeTraces(const std::vector<std::vector<tracing::SpanRecord>>& requests,
                         const std::vector<std::pair<std::string, std::string>>& resource,
                         const std::string& scope_version) {
  std::string scratch, value, one;
  // Resource { repeated KeyValue attributes = 1; }
  std::string resource_bytes;
  for (const auto& [key, v] : resource) {
    tracing::Attribute a{"", v};
    KeyValue(resource_bytes, 1, key, a, value);
  }
  // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
  std::string scope_spans;
  std::size_t count = 0;
  for (const auto& r : requests) count += r.size();
  scope_spans.reserve(count * 200);
  scratch.clear();
  String(scratch, 1, "semcached");
  String(scratch, 2, scope_version);
  Bytes(scope_spans, 1, scratch);
  for (const auto& spans : requests) {
    for (const auto& s : spans) {
      one.clear();
      Span(one, s, value);
      Bytes(scope_spans, 2, one);
    }
  }
  // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
  std::string resource_spans;
  resource_spans.reserve(scope_spans.size() + resource_bytes.size() + 16);
  Bytes(resource_spans, 1, resource_bytes);
  Bytes(resource_spans, 2, scope_spans);
  // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
  std::string out;
  out.reserve(resource_spans.size() + 8);
  Bytes(out, 1, resource_spans);
  return out;
}

}  // namespace semcached::otel
