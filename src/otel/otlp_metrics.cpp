#include "otel/otlp_metrics.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <limits>
#include <string_view>

namespace semcached::otel {
namespace {

namespace pb_metrics = opentelemetry::proto::metrics::v1;
namespace pb_common = opentelemetry::proto::common::v1;

struct Convention {
  std::string_view prometheus;
  std::string_view name;
  std::string_view unit;
  // Prometheus label -> attribute; labels not listed keep their names.
  std::array<std::pair<std::string_view, std::string_view>, 3> labels;
  // An attribute every point carries (db.system.name = redis, ...); empty: none.
  std::pair<std::string_view, std::string_view> constant;
};

// The families with an OpenTelemetry semantic convention.
constexpr Convention kConventions[] = {
    {"semcached_http_request_duration_seconds",
     "http.server.request.duration",
     "s",
     {{{"route", "http.route"},
       {"method", "http.request.method"},
       {"status", "http.response.status_code"}}},
     {}},
    {"semcached_http_open_connections", "http.server.active_connections", "{connection}", {}, {}},
    {"semcached_redis_command_duration_seconds",
     "db.client.operation.duration",
     "s",
     {{{"command", "db.operation.name"}}},
     {"db.system.name", "redis"}},
    {"semcached_proxy_upstream_seconds",
     "gen_ai.client.operation.duration",
     "s",
     {{{"provider", "gen_ai.provider.name"}}},
     {"gen_ai.operation.name", "chat"}},
    {"semcached_proxy_upstream_tokens",
     "gen_ai.client.token.usage",
     "{token}",
     {{{"provider", "gen_ai.provider.name"},
       {"model", "gen_ai.request.model"},
       {"type", "gen_ai.token.type"}}},
     {"gen_ai.operation.name", "chat"}},
    {"process_cpu_seconds_total", "process.cpu.time", "s", {}, {}},
    {"process_resident_memory_bytes", "process.memory.usage", "By", {}, {}},
    {"process_virtual_memory_bytes", "process.memory.virtual", "By", {}, {}},
    {"process_threads", "process.thread.count", "{thread}", {}, {}},
    {"process_open_fds", "process.unix.file_descriptor.count", "{file_descriptor}", {}, {}},
};

const Convention* ConventionFor(const std::string& name) {
  for (const auto& c : kConventions)
    if (c.prometheus == name) return &c;
  return nullptr;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void SetAttribute(pb_common::KeyValue* kv, std::string_view key, const std::string& value,
                  bool integer) {
  kv->set_key(std::string(key));
  if (integer) {
    char* end = nullptr;
    const long long n = std::strtoll(value.c_str(), &end, 10);
    if (!value.empty() && end != nullptr && *end == '\0') {
      kv->mutable_value()->set_int_value(n);
      return;
    }
  }
  kv->mutable_value()->set_string_value(value);
}

template <typename Point>
void AddAttributes(Point* point, const prometheus::ClientMetric& m, const Convention* c) {
  for (const auto& label : m.label) {
    std::string_view key = label.name;
    if (c != nullptr) {
      for (const auto& [from, to] : c->labels)
        if (!from.empty() && from == label.name) key = to;
    }
    // OpenTelemetry's HTTP conventions carry the status code as an integer.
    SetAttribute(point->add_attributes(), key, label.value, key == "http.response.status_code");
  }
  if (c != nullptr && !c->constant.first.empty())
    SetAttribute(point->add_attributes(), c->constant.first, std::string(c->constant.second),
                 false);
}

}  // namespace

ConvertedName OtlpName(const std::string& prometheus_name) {
  if (const Convention* c = ConventionFor(prometheus_name))
    return {std::string(c->name), std::string(c->unit)};
  std::string_view n = prometheus_name;
  if (EndsWith(n, "_total")) n.remove_suffix(6);
  std::string unit = "1";
  static constexpr std::pair<std::string_view, std::string_view> kUnits[] = {
      {"_seconds", "s"}, {"_bytes", "By"}, {"_usd", "{USD}"}};
  for (const auto& [suffix, u] : kUnits) {
    if (EndsWith(n, suffix)) {
      n.remove_suffix(suffix.size());
      unit = u;
      break;
    }
  }
  // semcached_<area>_<rest> -> semcached.<area>.<rest>
  std::string out(n);
  if (out.rfind("semcached_", 0) == 0) {
    out[9] = '.';
    const auto second = out.find('_', 10);
    if (second != std::string::npos) out[second] = '.';
  }
  return {out, unit};
}

opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest ToOtlp(
    const std::vector<prometheus::MetricFamily>& families, const ResourceAttributes& resource,
    const std::string& scope_version, std::uint64_t start_unix_nano, std::uint64_t now_unix_nano) {
  opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest req;
  auto* rm = req.add_resource_metrics();
  for (const auto& [key, value] : resource)
    SetAttribute(rm->mutable_resource()->add_attributes(), key, value, false);
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("semcached");
  sm->mutable_scope()->set_version(scope_version);

  for (const auto& f : families) {
    if (f.metric.empty()) continue;
    const Convention* c = ConventionFor(f.name);
    const ConvertedName converted = OtlpName(f.name);
    auto* metric = sm->add_metrics();
    metric->set_name(converted.name);
    metric->set_unit(converted.unit);
    metric->set_description(f.help);
    auto number_point = [&](pb_metrics::NumberDataPoint* p, const prometheus::ClientMetric& m,
                            double value) {
      p->set_start_time_unix_nano(start_unix_nano);
      p->set_time_unix_nano(now_unix_nano);
      p->set_as_double(value);
      AddAttributes(p, m, c);
    };
    switch (f.type) {
      case prometheus::MetricType::Counter: {
        auto* sum = metric->mutable_sum();
        sum->set_aggregation_temporality(pb_metrics::AGGREGATION_TEMPORALITY_CUMULATIVE);
        sum->set_is_monotonic(true);
        for (const auto& m : f.metric) number_point(sum->add_data_points(), m, m.counter.value);
        break;
      }
      case prometheus::MetricType::Histogram: {
        auto* h = metric->mutable_histogram();
        h->set_aggregation_temporality(pb_metrics::AGGREGATION_TEMPORALITY_CUMULATIVE);
        for (const auto& m : f.metric) {
          auto* p = h->add_data_points();
          p->set_start_time_unix_nano(start_unix_nano);
          p->set_time_unix_nano(now_unix_nano);
          p->set_count(m.histogram.sample_count);
          p->set_sum(m.histogram.sample_sum);
          // Prometheus buckets are cumulative and end with +Inf; OTLP's are per bucket, with
          // one more count than bounds.
          std::uint64_t below = 0;
          for (const auto& b : m.histogram.bucket) {
            if (b.upper_bound != std::numeric_limits<double>::infinity())
              p->add_explicit_bounds(b.upper_bound);
            p->add_bucket_counts(b.cumulative_count - std::min(below, b.cumulative_count));
            below = std::max(below, b.cumulative_count);
          }
          AddAttributes(p, m, c);
        }
        break;
      }
      case prometheus::MetricType::Summary: {
        auto* s = metric->mutable_summary();
        for (const auto& m : f.metric) {
          auto* p = s->add_data_points();
          p->set_start_time_unix_nano(start_unix_nano);
          p->set_time_unix_nano(now_unix_nano);
          p->set_count(m.summary.sample_count);
          p->set_sum(m.summary.sample_sum);
          for (const auto& q : m.summary.quantile) {
            auto* v = p->add_quantile_values();
            v->set_quantile(q.quantile);
            v->set_value(q.value);
          }
          AddAttributes(p, m, c);
        }
        break;
      }
      case prometheus::MetricType::Gauge:
      case prometheus::MetricType::Untyped: {
        auto* g = metric->mutable_gauge();
        for (const auto& m : f.metric) {
          const double v =
              f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.untyped.value;
          number_point(g->add_data_points(), m, v);
        }
        break;
      }
    }
  }
  return req;
}

}  // namespace semcached::otel
