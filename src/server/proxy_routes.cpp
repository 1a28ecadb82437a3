#include "server/proxy_routes.h"

#include <charconv>
#include <memory>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace semcached::server {
namespace {

using nlohmann::json;

// Errors in OpenAI's own shape, so the SDK raises its usual error types.
HttpResponse OpenAiError(int status, const std::string& type, const std::string& message) {
  json body = {
      {"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}};
  return HttpResponse::Json(status, body.dump());
}

bool HasDirective(std::string_view header, std::string_view directive) {
  return header.find(directive) != std::string_view::npos;
}

// A stored answer must be whole and clean: finished normally, no refusal, no tool call left
// half-done.
bool Storable(const json& body) {
  if (!body.is_object() || !body.contains("choices") || !body["choices"].is_array() ||
      body["choices"].size() != 1) {
    return false;
  }
  const json& choice = body["choices"][0];
  if (choice.value("finish_reason", "") != "stop") return false;
  const json& message = choice.value("message", json::object());
  if (message.contains("refusal") && !message["refusal"].is_null()) return false;
  return message.contains("content") && message["content"].is_string();
}

struct ProxyMetrics {
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Histogram* upstream_seconds;
  std::map<std::string, prometheus::Counter*> by_result;
  std::mutex mu;
  void Count(const std::string& result) {
    prometheus::Counter* c;
    {
      std::lock_guard lock(mu);
      auto& slot = by_result[result];
      if (slot == nullptr) slot = &requests->Add({{"provider", "openai"}, {"result", result}});
      c = slot;
    }
    c->Increment();
  }
};

}  // namespace

void AddProxyRoutes(Router& router, cache::CacheRegistry& registry, Metrics& metrics,
                    ProxyOptions options) {
  auto opt = std::make_shared<ProxyOptions>(std::move(options));
  auto pm = std::make_shared<ProxyMetrics>();
  pm->requests =
      &prometheus::BuildCounter()
           .Name("semcached_proxy_requests_total")
           .Help("Proxied LLM requests by provider and result: hit, miss, bypass, upstream_error.")
           .Register(metrics.registry());
  pm->upstream_seconds =
      &prometheus::BuildHistogram()
           .Name("semcached_proxy_upstream_seconds")
           .Help("Time of upstream LLM calls made on misses and bypasses.")
           .Register(metrics.registry())
           .Add({{"provider", "openai"}}, prometheus::Histogram::BucketBoundaries{
                                              0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});

  router.Add(
      "POST", "/v1/chat/completions",
      [&registry, opt, pm](const HttpRequest& req) {
        json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (body.is_discarded())
          return OpenAiError(400, "invalid_request_error", "the request body is not valid JSON");
        auto key = llm::OpenAiChatKey(body, opt->policy);
        if (!key.ok()) return OpenAiError(400, "invalid_request_error", key.status().message());
        const std::string_view cache_control = req.Header("cache-control");
        const bool no_cache = HasDirective(cache_control, "no-cache");
        const bool no_store = HasDirective(cache_control, "no-store");
        std::shared_ptr<cache::Cache> store;
        if (auto found = registry.Find(opt->cache_id); found.ok()) store = *found;
        std::string bypass_reason = !key->cacheable ? key->why_not
                                    : key->stream   ? "streaming responses are not cached yet"
                                    : !store        ? "the proxy's cache does not exist"
                                                    : "";
        cache::Attributes scope = {
            {"provider", "openai"}, {"model", key->model}, {"scope", key->scope}};
        if (auto ns = req.Header("x-semcached-namespace"); !ns.empty())
          scope["namespace"] = std::string(ns);

        if (bypass_reason.empty() && !no_cache) {
          cache::SearchQuery q;
          q.prompt = key->prompt;
          q.attributes = scope;
          if (auto t = req.Header("x-semcached-threshold"); !t.empty()) {
            float v = 0;
            if (std::from_chars(t.data(), t.data() + t.size(), v).ec == std::errc())
              q.threshold = v;
          }
          auto hits = store->Search(q);
          if (!hits.ok()) {
            spdlog::warn("proxy: cache lookup failed, going upstream: {}",
                         hits.status().message());  // fail-open
          } else if (!hits->empty()) {
            const cache::Hit& hit = hits->front();
            pm->Count("hit");
            HttpResponse r = HttpResponse::Json(200, hit.entry->response);
            r.headers.emplace_back("x-semcached-cache", "hit");
            r.headers.emplace_back("x-semcached-similarity", std::to_string(hit.similarity));
            r.headers.emplace_back("x-semcached-entry-id", hit.id);
            return r;
          }
        }

        std::vector<std::string> headers{"Content-Type: application/json"};
        for (const char* name :
             {"authorization", "openai-organization", "openai-project", "openai-beta"}) {
          if (auto v = req.Header(name); !v.empty())
            headers.push_back(std::string(name) + ": " + std::string(v));
        }
        auto up = llm::PostUpstream(opt->openai_base_url + "/v1/chat/completions", headers,
                                    req.body, opt->upstream);
        if (!up.ok()) {
          pm->Count("upstream_error");
          const bool timeout = up.status().code() == ErrorCode::kDeadlineExceeded;
          return OpenAiError(timeout ? 504 : 502, "upstream_error", up.status().message());
        }
        pm->upstream_seconds->Observe(up->seconds);
        const bool miss = bypass_reason.empty();
        if (miss && up->status == 200 && !no_store) {
          json answer = json::parse(up->body, nullptr, false);
          if (Storable(answer)) {
            std::optional<std::int64_t> ttl;
            if (auto t = req.Header("x-semcached-ttl-ms"); !t.empty()) {
              std::int64_t v = 0;
              if (std::from_chars(t.data(), t.data() + t.size(), v).ec == std::errc() && v > 0)
                ttl = v;
            }
            auto stored = store->Store(key->prompt, up->body, scope, ttl);
            if (!stored.ok())
              spdlog::warn("proxy: the answer was not stored: {}", stored.status().message());
          }
        }
        pm->Count(up->status >= 400 ? "upstream_error" : miss ? "miss" : "bypass");
        HttpResponse r;
        r.status = up->status;
        r.content_type = up->content_type.empty() ? "application/json" : up->content_type;
        r.body = std::move(up->body);
        r.headers.emplace_back("x-semcached-cache", miss ? "miss" : "bypass");
        if (!miss) r.headers.emplace_back("x-semcached-bypass-reason", bypass_reason);
        return r;
      },
      /*blocking=*/true);
}

}  // namespace semcached::server
