#include "server/proxy_metrics.h"

namespace semcached::server {
namespace {
const std::string kOtherModel = "other";
}  // namespace

ProxyMetrics::ProxyMetrics(prometheus::Registry& registry) {
  requests = &prometheus::BuildCounter()
                  .Name("semcached_proxy_requests_total")
                  .Help(
                      "Proxied LLM requests by provider and result: hit, miss, bypass, "
                      "upstream_error, shadow and verify (a hit held back, answered upstream).")
                  .Register(registry);
  saved_usd = &prometheus::BuildCounter()
                   .Name("semcached_proxy_cost_saved_usd_total")
                   .Help(
                       "USD of the upstream calls that cache hits replaced: the stored "
                       "answer's usage at the model's price.")
                   .Register(registry);
  saved_tokens =
      &prometheus::BuildCounter()
           .Name("semcached_proxy_tokens_saved_total")
           .Help("Input and output tokens of the upstream calls that cache hits replaced.")
           .Register(registry);
  saved_seconds = &prometheus::BuildCounter()
                       .Name("semcached_proxy_latency_saved_seconds_total")
                       .Help("Upstream time of the calls that cache hits replaced.")
                       .Register(registry);
  spent_usd = &prometheus::BuildCounter()
                   .Name("semcached_proxy_cost_usd_total")
                   .Help("USD of the upstream calls made (usage at the model's price).")
                   .Register(registry);
  verify_usd = &prometheus::BuildCounter()
                    .Name("semcached_proxy_verification_cost_usd_total")
                    .Help(
                        "USD of the upstream calls made to verify (or shadow) a hit the "
                        "cache held back: part of semcached_proxy_cost_usd_total.")
                    .Register(registry);
  verify_tokens = &prometheus::BuildCounter()
                       .Name("semcached_proxy_verification_tokens_total")
                       .Help(
                           "Input and output tokens of the upstream calls made to verify (or "
                           "shadow) a hit the cache held back.")
                       .Register(registry);
  upstream = &prometheus::BuildHistogram()
                  .Name("semcached_proxy_upstream_seconds")
                  .Help("Time of upstream LLM calls made on misses and bypasses, by provider.")
                  .Register(registry);
  upstream_bytes = &prometheus::BuildCounter()
                        .Name("semcached_proxy_upstream_bytes_total")
                        .Help(
                            "Body bytes of upstream LLM calls, by provider and direction (sent, "
                            "received).")
                        .Register(registry);
  upstream_tokens = &prometheus::BuildHistogram()
                         .Name("semcached_proxy_upstream_tokens")
                         .Help(
                             "Tokens per upstream LLM call, by provider, model and type "
                             "(input, output), from the response's usage.")
                         .Register(registry);
}

void ProxyMetrics::Bytes(const std::string& provider, std::size_t sent, std::size_t received) {
  std::pair<prometheus::Counter*, prometheus::Counter*> c;
  {
    std::lock_guard lock(mu_);
    auto& slot = bytes_[provider];
    if (slot.first == nullptr) {
      slot.first = &upstream_bytes->Add({{"provider", provider}, {"direction", "sent"}});
      slot.second = &upstream_bytes->Add({{"provider", provider}, {"direction", "received"}});
    }
    c = slot;
  }
  c.first->Increment(static_cast<double>(sent));
  c.second->Increment(static_cast<double>(received));
}

void ProxyMetrics::Tokens(const std::string& provider, const std::string& model,
                          std::uint64_t input, std::uint64_t output) {
  prometheus::Histogram *in, *out;
  {
    std::lock_guard lock(mu_);
    // The model comes from the client: past 64 of them, the rest share one series.
    constexpr std::size_t kMaxModelSeries = 64 * 2;
    const bool known = tokens_by_model_.count(provider + "/" + model + "/input") > 0;
    const std::string& label =
        known || tokens_by_model_.size() < kMaxModelSeries ? model : kOtherModel;
    auto slot = [&](const char* type) {
      auto& h = tokens_by_model_[provider + "/" + label + "/" + type];
      if (h == nullptr) {
        h = &upstream_tokens->Add({{"provider", provider}, {"model", label}, {"type", type}},
                                  prometheus::Histogram::BucketBoundaries{
                                      16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576});
      }
      return h;
    };
    in = slot("input");
    out = slot("output");
  }
  in->Observe(static_cast<double>(input));
  out->Observe(static_cast<double>(output));
}

void ProxyMetrics::Add(prometheus::Family<prometheus::Counter>* family, const std::string& provider,
                       double value) {
  if (value <= 0) return;
  std::lock_guard lock(mu_);  // Add() hashes labels under the family's own lock; rare enough
  family->Add({{"provider", provider}}).Increment(value);
}

void ProxyMetrics::Count(const std::string& provider, const std::string& result) {
  prometheus::Counter* c;
  {
    std::lock_guard lock(mu_);
    auto& slot = by_result_[provider + "/" + result];
    if (slot == nullptr) slot = &requests->Add({{"provider", provider}, {"result", result}});
    c = slot;
  }
  c->Increment();
}

void ProxyMetrics::Upstream(const std::string& provider, double seconds) {
  prometheus::Histogram* h;
  {
    std::lock_guard lock(mu_);
    auto& slot = by_provider_[provider];
    if (slot == nullptr) {
      slot = &upstream->Add(
          {{"provider", provider}},
          prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
    }
    h = slot;
  }
  h->Observe(seconds);
}

}  // namespace semcached::server
