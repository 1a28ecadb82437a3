#include "otel/otlp_metrics.h"
#include "otel/span_encoding.h"
#include "otel/trace_exporter.h"

#include <limits>

#include <gtest/gtest.h>

namespace semcached::otel {
namespace {

TEST(OtlpMetrics, NamesFollowTheConventionsOrMoveTheUnitOutOfTheName) {
  EXPECT_EQ(OtlpName("semcached_http_request_duration_seconds").name,
            "http.server.request.duration");
  EXPECT_EQ(OtlpName("semcached_proxy_upstream_tokens").name, "gen_ai.client.token.usage");
  EXPECT_EQ(OtlpName("semcached_proxy_upstream_tokens").unit, "{token}");
  EXPECT_EQ(OtlpName("process_cpu_seconds_total").name, "process.cpu.time");
  const auto lookups = OtlpName("semcached_cache_lookups_total");
  EXPECT_EQ(lookups.name, "semcached.cache.lookups");
  EXPECT_EQ(lookups.unit, "1");
  const auto stage = OtlpName("semcached_cache_stage_seconds");
  EXPECT_EQ(stage.name, "semcached.cache.stage");
  EXPECT_EQ(stage.unit, "s");
  EXPECT_EQ(OtlpName("semcached_cache_memory_bytes").unit, "By");
  EXPECT_EQ(OtlpName("semcached_cache_cost_saved_usd_total").name, "semcached.cache.cost_saved");
  EXPECT_EQ(OtlpName("semcached_redis_pool_busy_connections").name,
            "semcached.redis.pool_busy_connections");
}

TEST(OtlpMetrics, HistogramBucketsBecomePerBucketCountsAndLabelsAttributes) {
  prometheus::MetricFamily f;
  f.name = "semcached_http_request_duration_seconds";
  f.help = "h";
  f.type = prometheus::MetricType::Histogram;
  prometheus::ClientMetric m;
  m.label = {{"route", "/x"}, {"method", "GET"}, {"status", "404"}};
  m.histogram.sample_count = 6;
  m.histogram.sample_sum = 0.5;
  m.histogram.bucket = {{1, 0.01}, {4, 0.1}, {6, std::numeric_limits<double>::infinity()}};
  f.metric.push_back(m);
  const auto req = ToOtlp({f}, {{"service.name", "semcached"}}, "1.0", 10, 20);
  const auto& metric = req.resource_metrics(0).scope_metrics(0).metrics(0);
  ASSERT_TRUE(metric.has_histogram());
  const auto& p = metric.histogram().data_points(0);
  ASSERT_EQ(p.explicit_bounds_size(), 2);
  EXPECT_DOUBLE_EQ(p.explicit_bounds(1), 0.1);
  ASSERT_EQ(p.bucket_counts_size(), 3);
  EXPECT_EQ(p.bucket_counts(0), 1u);
  EXPECT_EQ(p.bucket_counts(1), 3u);
  EXPECT_EQ(p.bucket_counts(2), 2u);
  EXPECT_EQ(p.count(), 6u);
  EXPECT_EQ(p.start_time_unix_nano(), 10u);
  EXPECT_EQ(p.time_unix_nano(), 20u);
  ASSERT_EQ(p.attributes_size(), 3);
  EXPECT_EQ(p.attributes(0).key(), "http.route");
  EXPECT_EQ(p.attributes(2).key(), "http.response.status_code");
  EXPECT_EQ(p.attributes(2).value().int_value(), 404);
  EXPECT_EQ(req.resource_metrics(0).resource().attributes(0).value().string_value(), "semcached");
}

TEST(OtlpMetrics, CountersAreMonotonicCumulativeSumsAndGaugesGauges) {
  prometheus::MetricFamily counter{
      "semcached_cache_stores_total", "s", prometheus::MetricType::Counter, {}};
  prometheus::ClientMetric c;
  c.label = {{"cache", "a"}};
  c.counter.value = 7;
  counter.metric.push_back(c);
  prometheus::MetricFamily gauge{"semcached_cache_entries", "e", prometheus::MetricType::Gauge, {}};
  prometheus::ClientMetric g;
  g.gauge.value = 3;
  gauge.metric.push_back(g);
  prometheus::MetricFamily empty{"semcached_unused", "u", prometheus::MetricType::Gauge, {}};
  const auto req = ToOtlp({counter, gauge, empty}, {}, "1.0", 1, 2);
  const auto& metrics = req.resource_metrics(0).scope_metrics(0).metrics();
  ASSERT_EQ(metrics.size(), 2);  // a family without samples is left out
  EXPECT_TRUE(metrics[0].sum().is_monotonic());
  EXPECT_EQ(metrics[0].sum().aggregation_temporality(),
            opentelemetry::proto::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  EXPECT_DOUBLE_EQ(metrics[0].sum().data_points(0).as_double(), 7);
  EXPECT_DOUBLE_EQ(metrics[1].gauge().data_points(0).as_double(), 3);
}

}  // namespace
}  // namespace semcached::otel

namespace semcached::otel {
namespace {

TEST(OtlpTraces, OwnEncodingIsByteForByteWhatTheGeneratedClassesWrite) {
  std::vector<tracing::SpanRecord> spans(3);
  for (std::size_t i = 0; i < spans.size(); ++i) {
    auto& s = spans[i];
    for (std::size_t b = 0; b < 16; ++b) s.trace_id[b] = static_cast<std::uint8_t>(b + 1);
    for (std::size_t b = 0; b < 8; ++b) s.span_id[b] = static_cast<std::uint8_t>(0xA0 + b + i);
    s.start_unix_nano = 1'764'300'000'000'000'000ULL + i;
    s.end_unix_nano = s.start_unix_nano + 12345;
  }
  spans[0].name = "cache.lookup";
  spans[0].parent_span_id = spans[2].span_id;
  spans[0].attributes = {{"semcached.cache.id", std::string("docs")},
                         {"semcached.cache.hit", false},
                         {"semcached.cache.candidates", std::int64_t{0}},
                         {"semcached.cache.similarity", 0.8125},
                         {"big", std::int64_t{-3}},
                         {"long", std::string(300, 'x')}};
  spans[1].name = "POST";
  spans[1].kind = tracing::SpanKind::kClient;
  spans[1].error = true;
  spans[1].status_message = "timeout";
  spans[2].name = "POST /v1/chat/completions";
  spans[2].kind = tracing::SpanKind::kServer;
  spans[2].error = true;  // an error without a message
  const ResourceAttributes resource = {{"service.name", "semcached"}, {"service.version", "1"}};
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest reference;
  ToOtlpTraces(spans, resource, "1.2.3", &reference);
  // Handed over as two requests' spans.
  std::vector<std::vector<tracing::SpanRecord>> requests = {{spans[0]}, {spans[1], spans[2]}};
  EXPECT_EQ(EncodeTraces(requests, resource, "1.2.3"), reference.SerializeAsString());
  EXPECT_EQ(EncodeTraces({}, resource, "1.2.3"), [&] {
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest empty;
    ToOtlpTraces({}, resource, "1.2.3", &empty);
    return empty.SerializeAsString();
  }());
}

}  // namespace
}  // namespace semcached::otel
