// The caching proxy's Prometheus families: requests by provider and result, what hits saved
// (USD, tokens, upstream seconds), what upstream calls cost, and upstream latency.
// Must not: be read on a request path beyond incrementing (labels are cached per provider).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace semcached::server {

struct ProxyMetrics {
  explicit ProxyMetrics(prometheus::Registry& registry);

  // One proxied request: hit, miss, bypass or upstream_error.
  void Count(const std::string& provider, const std::string& result);
  void Upstream(const std::string& provider, double seconds);
  // Request and response body bytes of one upstream call.
  void Bytes(const std::string& provider, std::size_t sent, std::size_t received);
  // The input and output tokens one upstream call used, as its response's usage says.
  void Tokens(const std::string& provider, const std::string& model, std::uint64_t input,
              std::uint64_t output);
  void Add(prometheus::Family<prometheus::Counter>* family, const std::string& provider,
           double value);

  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Family<prometheus::Counter>* saved_usd;
  prometheus::Family<prometheus::Counter>* saved_tokens;
  prometheus::Family<prometheus::Counter>* saved_seconds;
  prometheus::Family<prometheus::Counter>* spent_usd;
  prometheus::Family<prometheus::Counter>* verify_usd;
  prometheus::Family<prometheus::Counter>* verify_tokens;
  prometheus::Family<prometheus::Histogram>* upstream;
  prometheus::Family<prometheus::Histogram>* upstream_tokens;
  prometheus::Family<prometheus::Counter>* upstream_bytes;

 private:
  std::map<std::string, prometheus::Counter*> by_result_;
  std::map<std::string, prometheus::Histogram*> by_provider_;
  std::map<std::string, prometheus::Histogram*> tokens_by_model_;  // provider/model/type
  std::map<std::string, std::pair<prometheus::Counter*, prometheus::Counter*>> bytes_;
  std::mutex mu_;
};

}  // namespace semcached::server
