#include "server/proxy_routes.h"

#include <charconv>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace semcached::server {
namespace {

using nlohmann::json;

bool HasDirective(std::string_view header, std::string_view directive) {
  return header.find(directive) != std::string_view::npos;
}

// One provider's wire format: how its requests are keyed, where they go, which headers pass
// through, which answers may be stored, and how its errors look (so SDKs raise their own
// error types).
struct ProviderSpec {
  std::string name;
  std::string base_url;
  std::function<Result<llm::ChatKey>(const json& body, const HttpRequest& req)> key;
  std::function<std::string(const HttpRequest& req)> upstream_path;
  std::vector<std::string> pass_headers;
  // When the client sends no key: the header to send the configured key in, and the key.
  std::string key_header;
  std::string configured_key;
  std::function<bool(const json& answer)> storable;
  // Streams: the events as received → the one answer they stand for (nullopt: incomplete or
  // not storable); and a stored answer → the events to replay it (the request may ask for
  // extras, such as OpenAI's usage chunk).
  std::function<std::optional<json>(std::string_view events)> assemble;
  std::function<std::vector<std::string>(const json& answer, const json& request)> replay;
  std::function<HttpResponse(int status, const std::string& message)> error;
};

struct ProxyMetrics {
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Family<prometheus::Counter>* saved_usd;
  prometheus::Family<prometheus::Counter>* saved_tokens;
  prometheus::Family<prometheus::Counter>* saved_seconds;
  prometheus::Family<prometheus::Counter>* spent_usd;
  void Add(prometheus::Family<prometheus::Counter>* family, const std::string& provider,
           double value) {
    if (value <= 0) return;
    std::lock_guard lock(mu);  // Add() hashes labels under the family's own lock; rare enough here
    family->Add({{"provider", provider}}).Increment(value);
  }
  prometheus::Family<prometheus::Histogram>* upstream;
  std::map<std::string, prometheus::Counter*> by_result;
  std::map<std::string, prometheus::Histogram*> by_provider;
  std::mutex mu;
  void Count(const std::string& provider, const std::string& result) {
    prometheus::Counter* c;
    {
      std::lock_guard lock(mu);
      auto& slot = by_result[provider + "/" + result];
      if (slot == nullptr) slot = &requests->Add({{"provider", provider}, {"result", result}});
      c = slot;
    }
    c->Increment();
  }
  void Upstream(const std::string& provider, double seconds) {
    prometheus::Histogram* h;
    {
      std::lock_guard lock(mu);
      auto& slot = by_provider[provider];
      if (slot == nullptr) {
        slot = &upstream->Add(
            {{"provider", provider}},
            prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
      }
      h = slot;
    }
    h->Observe(seconds);
  }
};

// What a stored answer carries beside its scope (attributes a search never asks for): the
// upstream call's time and token counts, which a hit reports as saved without parsing the answer.
cache::Attributes EntryAttributes(cache::Attributes scope, double upstream_seconds,
                                  const std::optional<llm::Usage>& usage) {
  scope["upstream_ms"] = std::to_string(static_cast<long long>(upstream_seconds * 1000 + 0.5));
  if (usage) {
    scope["input_tokens"] = std::to_string(usage->input_tokens);
    scope["output_tokens"] = std::to_string(usage->output_tokens);
  }
  return scope;
}

HttpResponse Proxy(const HttpRequest& req, const ProviderSpec& p, cache::CacheRegistry& registry,
                   const ProxyOptions& opt, ProxyMetrics& pm) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return p.error(400, "the request body is not valid JSON");
  auto key = p.key(body, req);
  if (!key.ok()) return p.error(400, key.status().message());
  const std::string_view cache_control = req.Header("cache-control");
  const bool no_cache = HasDirective(cache_control, "no-cache");
  const bool no_store = HasDirective(cache_control, "no-store");
  std::shared_ptr<cache::Cache> store;
  if (auto found = registry.Find(opt.cache_id); found.ok()) store = *found;
  // Streams are cached for OpenAI: assembled on a miss, replayed as its events on a hit.
  const bool stream_cacheable = static_cast<bool>(p.assemble);
  const std::string bypass_reason = !key->cacheable ? key->why_not
                                    : key->stream && !stream_cacheable
                                        ? "streaming responses of this provider are not cached yet"
                                    : !store ? "the proxy's cache does not exist"
                                             : "";
  cache::Attributes scope = {{"provider", p.name}, {"model", key->model}, {"scope", key->scope}};
  // Always present, so an entry of one namespace never answers a search of none.
  scope["namespace"] = std::string(req.Header("x-semcached-namespace"));

  if (bypass_reason.empty() && !no_cache) {
    cache::SearchQuery q;
    q.prompt = key->prompt;
    q.attributes = scope;
    q.estimate_savings = false;  // the stored answer's usage says what a hit saves
    if (auto t = req.Header("x-semcached-threshold"); !t.empty()) {
      float v = 0;
      if (std::from_chars(t.data(), t.data() + t.size(), v).ec == std::errc()) q.threshold = v;
    }
    auto hits = store->Search(q);
    if (!hits.ok()) {
      spdlog::warn("proxy: cache lookup failed, going upstream: {}",
                   hits.status().message());  // fail-open
    } else if (!hits->empty()) {
      const cache::Hit& hit = hits->front();
      pm.Count(p.name, "hit");
      // What this hit saved: the stored answer's own usage at the model's price, and the time
      // its upstream call took, both recorded as attributes when it was stored (entries from
      // before that have their answer parsed instead).
      auto number = [&hit](const char* name) -> std::optional<double> {
        auto v = hit.entry->attribute(name);
        if (!v) return std::nullopt;
        return std::strtod(std::string(*v).c_str(), nullptr);
      };
      json stored;
      std::optional<llm::Usage> usage;
      if (auto in = number("input_tokens"), out = number("output_tokens"); in && out) {
        usage = llm::Usage{static_cast<std::uint64_t>(*in), static_cast<std::uint64_t>(*out)};
      } else {
        stored = json::parse(hit.entry->response(), nullptr, false);
        usage = llm::UsageOf(p.name, stored);
      }
      const double usd = usage ? opt.prices.Cost(key->model, *usage) : 0;
      const double seconds = number("upstream_ms").value_or(0) / 1000;
      const std::uint64_t tokens = usage ? usage->input_tokens + usage->output_tokens : 0;
      store->RecordSavings(tokens, usd, seconds);
      pm.Add(pm.saved_usd, p.name, usd);
      pm.Add(pm.saved_tokens, p.name, static_cast<double>(tokens));
      pm.Add(pm.saved_seconds, p.name, seconds);
      std::vector<std::pair<std::string, std::string>> hit_headers = {
          {"x-semcached-cache", "hit"},
          {"x-semcached-similarity", std::to_string(hit.similarity)},
          {"x-semcached-entry-id", hit.id}};
      if (key->stream) {
        if (stored.is_null()) stored = json::parse(hit.entry->response(), nullptr, false);
        HttpResponse r;
        r.stream = [events = p.replay(stored, body), hit_headers](ResponseStream& out) {
          if (!out.Begin(200, "text/event-stream", hit_headers)) return;
          for (const auto& e : events) {
            if (!out.Write(e)) return;
          }
        };
        return r;
      }
      HttpResponse r = HttpResponse::Json(200, std::string(hit.entry->response()));
      r.headers = std::move(hit_headers);
      return r;
    }
  }

  std::vector<std::string> headers{"Content-Type: application/json"};
  bool has_key = false;
  for (const auto& name : p.pass_headers) {
    if (auto v = req.Header(name); !v.empty()) {
      headers.push_back(name + ": " + std::string(v));
      has_key =
          has_key || name == "authorization" || name == "x-api-key" || name == "x-goog-api-key";
    }
  }
  if (!has_key && req.query.find("key=") == std::string::npos && !p.configured_key.empty()) {
    headers.push_back(p.key_header + ": " + p.configured_key);
  }
  const bool miss = bypass_reason.empty();
  std::optional<std::int64_t> ttl;
  if (auto t = req.Header("x-semcached-ttl-ms"); !t.empty()) {
    std::int64_t v = 0;
    if (std::from_chars(t.data(), t.data() + t.size(), v).ec == std::errc() && v > 0) ttl = v;
  }
  if (key->stream) {
    // Pieces reach the client as they arrive; a stream that completed normally is assembled
    // into one answer and stored.
    HttpResponse r;
    r.stream = [&p, &opt, &pm, url = p.base_url + p.upstream_path(req), headers,
                request_body = req.body, store = miss && !no_store ? store : nullptr,
                prompt = key->prompt, model = key->model, scope, ttl,
                bypass_reason](ResponseStream& out) {
      std::string seen;
      bool begun = false;
      auto up = llm::PostUpstreamStreaming(
          url, headers, request_body, opt.upstream,
          [&](int status, const std::string& content_type, std::string_view piece) {
            if (!begun) {
              begun = true;
              std::vector<std::pair<std::string, std::string>> h = {
                  {"x-semcached-cache", bypass_reason.empty() ? "miss" : "bypass"}};
              if (!bypass_reason.empty())
                h.emplace_back("x-semcached-bypass-reason", bypass_reason);
              if (!out.Begin(status, content_type.empty() ? "text/event-stream" : content_type, h))
                return false;
            }
            if (store) seen.append(piece);
            return out.Write(piece);
          });
      if (!up.ok()) {
        pm.Count(p.name, "upstream_error");
        if (!begun) {
          HttpResponse e = p.error(up.status().code() == ErrorCode::kDeadlineExceeded ? 504 : 502,
                                   up.status().message());
          if (out.Begin(e.status, e.content_type, {{"x-semcached-cache", "miss"}}))
            out.Write(e.body);
        }
        return;  // a stream cut short is never stored
      }
      pm.Upstream(p.name, up->seconds);
      pm.Count(p.name, up->status >= 400       ? "upstream_error"
                       : bypass_reason.empty() ? "miss"
                                               : "bypass");
      if (!store || up->status != 200) return;
      auto assembled = p.assemble(seen);
      if (!assembled) return;  // truncated, refused or not finished with "stop"
      const auto usage = llm::UsageOf(p.name, *assembled);
      if (usage) pm.Add(pm.spent_usd, p.name, opt.prices.Cost(model, *usage));
      auto stored =
          store->Store(prompt, assembled->dump(), EntryAttributes(scope, up->seconds, usage), ttl);
      if (!stored.ok())
        spdlog::warn("proxy: the streamed answer was not stored: {}", stored.status().message());
    };
    return r;
  }
  auto up = llm::PostUpstream(p.base_url + p.upstream_path(req), headers, req.body, opt.upstream);
  if (!up.ok()) {
    pm.Count(p.name, "upstream_error");
    return p.error(up.status().code() == ErrorCode::kDeadlineExceeded ? 504 : 502,
                   up.status().message());
  }
  pm.Upstream(p.name, up->seconds);
  json answer = json::parse(up->body, nullptr, false);
  const auto usage = up->status == 200 ? llm::UsageOf(p.name, answer) : std::nullopt;
  if (usage) pm.Add(pm.spent_usd, p.name, opt.prices.Cost(key->model, *usage));
  if (miss && up->status == 200 && !no_store) {
    if (p.storable(answer)) {
      auto stored =
          store->Store(key->prompt, up->body, EntryAttributes(scope, up->seconds, usage), ttl);
      if (!stored.ok())
        spdlog::warn("proxy: the answer was not stored: {}", stored.status().message());
    }
  }
  pm.Count(p.name, up->status >= 400 ? "upstream_error" : miss ? "miss" : "bypass");
  HttpResponse r;
  r.status = up->status;
  r.content_type = up->content_type.empty() ? "application/json" : up->content_type;
  r.body = std::move(up->body);
  r.headers.emplace_back("x-semcached-cache", miss ? "miss" : "bypass");
  if (!miss) r.headers.emplace_back("x-semcached-bypass-reason", bypass_reason);
  return r;
}

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
  pm->saved_usd = &prometheus::BuildCounter()
                       .Name("semcached_proxy_cost_saved_usd_total")
                       .Help(
                           "USD of the upstream calls that cache hits replaced: the stored "
                           "answer's usage at the "
                           "model's price.")
                       .Register(metrics.registry());
  pm->saved_tokens =
      &prometheus::BuildCounter()
           .Name("semcached_proxy_tokens_saved_total")
           .Help("Input and output tokens of the upstream calls that cache hits replaced.")
           .Register(metrics.registry());
  pm->saved_seconds = &prometheus::BuildCounter()
                           .Name("semcached_proxy_latency_saved_seconds_total")
                           .Help("Upstream time of the calls that cache hits replaced.")
                           .Register(metrics.registry());
  pm->spent_usd = &prometheus::BuildCounter()
                       .Name("semcached_proxy_cost_usd_total")
                       .Help("USD of the upstream calls made (usage at the model's price).")
                       .Register(metrics.registry());
  pm->upstream = &prometheus::BuildHistogram()
                      .Name("semcached_proxy_upstream_seconds")
                      .Help("Time of upstream LLM calls made on misses and bypasses, by provider.")
                      .Register(metrics.registry());
  const auto& policy = opt->policy;

  auto openai = std::make_shared<ProviderSpec>();
  openai->name = "openai";
  openai->base_url = opt->openai_base_url;
  openai->key = [&policy](const json& b, const HttpRequest&) {
    return llm::OpenAiChatKey(b, policy);
  };
  openai->upstream_path = [](const HttpRequest&) { return std::string("/v1/chat/completions"); };
  openai->pass_headers = {"authorization", "openai-organization", "openai-project", "openai-beta"};
  openai->key_header = "authorization";
  if (!opt->openai_api_key.empty()) openai->configured_key = "Bearer " + opt->openai_api_key;
  openai->storable = llm::OpenAiStorable;
  openai->assemble = llm::OpenAiAssembleStream;
  openai->replay = [](const json& answer, const json& request) {
    return llm::OpenAiReplayEvents(
        answer, request.value("stream_options", json::object()).value("include_usage", false));
  };
  openai->error = [](int status, const std::string& message) {
    json body = {{"error",
                  {{"message", message},
                   {"type", status == 400 ? "invalid_request_error" : "upstream_error"},
                   {"param", nullptr},
                   {"code", nullptr}}}};
    return HttpResponse::Json(status, body.dump());
  };

  auto anthropic = std::make_shared<ProviderSpec>();
  anthropic->name = "anthropic";
  anthropic->base_url = opt->anthropic_base_url;
  anthropic->key = [&policy](const json& b, const HttpRequest&) {
    return llm::AnthropicChatKey(b, policy);
  };
  anthropic->upstream_path = [](const HttpRequest&) { return std::string("/v1/messages"); };
  anthropic->pass_headers = {"x-api-key", "authorization", "anthropic-version", "anthropic-beta"};
  anthropic->key_header = "x-api-key";
  anthropic->configured_key = opt->anthropic_api_key;
  anthropic->storable = llm::AnthropicStorable;
  anthropic->assemble = llm::AnthropicAssembleStream;
  anthropic->replay = [](const json& answer, const json&) {
    return llm::AnthropicReplayEvents(answer);
  };
  anthropic->error = [](int status, const std::string& message) {
    json body = {
        {"type", "error"},
        {"error",
         {{"type", status == 400 ? "invalid_request_error" : "api_error"}, {"message", message}}}};
    return HttpResponse::Json(status, body.dump());
  };

  auto gemini = std::make_shared<ProviderSpec>();
  gemini->name = "gemini";
  gemini->base_url = opt->gemini_base_url;
  gemini->key = [&policy](const json& b, const HttpRequest& req) {
    return llm::GeminiChatKey(b, req.path_params.at("model"), policy);
  };
  gemini->upstream_path = [](const HttpRequest& req) {
    std::string path = "/v1beta/models/" + req.path_params.at("model") + ":generateContent";
    if (!req.query.empty()) path += "?" + req.query;  // ?key=... stays between client and provider
    return path;
  };
  gemini->pass_headers = {"x-goog-api-key", "authorization", "x-goog-api-client"};
  gemini->key_header = "x-goog-api-key";
  gemini->configured_key = opt->gemini_api_key;
  gemini->storable = llm::GeminiStorable;
  gemini->assemble = llm::GeminiAssembleStream;
  gemini->replay = [](const json& answer, const json&) { return llm::GeminiReplayEvents(answer); };
  gemini->error = [](int status, const std::string& message) {
    json body = {{"error",
                  {{"code", status},
                   {"message", message},
                   {"status", status == 400   ? "INVALID_ARGUMENT"
                              : status == 504 ? "DEADLINE_EXCEEDED"
                                              : "UNAVAILABLE"}}}};
    return HttpResponse::Json(status, body.dump());
  };

  // The Responses API: its own request and answer shapes; its streams pass through uncached.
  auto responses = std::make_shared<ProviderSpec>(*openai);
  responses->name = "openai-responses";
  responses->key = [&policy](const json& b, const HttpRequest&) {
    return llm::OpenAiResponsesKey(b, policy);
  };
  responses->upstream_path = [](const HttpRequest&) { return std::string("/v1/responses"); };
  responses->storable = llm::OpenAiResponsesStorable;
  responses->assemble = nullptr;
  responses->replay = nullptr;

  // Gemini streams on its own route (usually ?alt=sse): the same request, keyed the same way,
  // passed through as it arrives.
  auto gemini_stream = std::make_shared<ProviderSpec>(*gemini);
  gemini_stream->key = [&policy](const json& b, const HttpRequest& req) -> Result<llm::ChatKey> {
    auto k = llm::GeminiChatKey(b, req.path_params.at("model"), policy);
    if (k.ok()) k->stream = true;
    return k;
  };
  gemini_stream->upstream_path = [](const HttpRequest& req) {
    std::string path = "/v1beta/models/" + req.path_params.at("model") + ":streamGenerateContent";
    if (!req.query.empty()) path += "?" + req.query;
    return path;
  };

  for (auto [path, spec] :
       {std::pair{"/v1/chat/completions", openai}, std::pair{"/v1/responses", responses},
        std::pair{"/v1/messages", anthropic},
        std::pair{"/v1beta/models/{model}:generateContent", gemini},
        std::pair{"/v1beta/models/{model}:streamGenerateContent", gemini_stream}}) {
    router.Add(
        "POST", path,
        [&registry, opt, pm, spec](const HttpRequest& req) {
          return Proxy(req, *spec, registry, *opt, *pm);
        },
        /*blocking=*/true);
  }
}

}  // namespace semcached::server
