// The OTLP ExportTraceServiceRequest of a batch of spans, written straight into protobuf wire
// bytes. Why not the generated classes: a busy server finishes hundreds of thousands of spans a
// second, and building a message tree for each to serialize it once cost several times what
// writing the bytes does (bench/otel_overhead.mjs). The output is byte for byte what the
// generated classes serialize (ToOtlpTraces in trace_exporter.h): a unit test compares the two,
// and the e2e test decodes it with protobufjs.
// Must not: depend on anything but the span records (no protobuf runtime).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/tracing.h"

namespace semcached::otel {

// `requests`: each request's spans, as the tracer hands them over.
std::string EncodeTraces(const std::vector<std::vector<tracing::SpanRecord>>& requests,
                         const std::vector<std::pair<std::string, std::string>>& resource,
                         const std::string& scope_version);

}  // namespace semcached::otel
