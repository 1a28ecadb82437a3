#include "server/proxy_routes.h"

#include <charconv>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/tracing.h"
#include "llm/chat_request.h"
#include "llm/providers.h"
#include "server/proxy_metrics.h"

namespace semcached::server {
namespace {

// An upstream call's span, by OpenTelemetry's GenAI conventions ("chat MODEL", a client span);
// the HTTP client's span is its child.
void DescribeChat(tracing::Span& span, const std::string& provider, const std::string& model) {
  if (!span.recording()) return;
  span.Set("gen_ai.operation.name", "chat");
  span.Set("gen_ai.provider.name", provider);
  span.Set("gen_ai.request.model", model);
}

void EndChat(tracing::Span& span, int status, const std::optional<llm::Usage>& usage) {
  if (status >= 400) span.SetError("upstream HTTP " + std::to_string(status));
  if (!usage || !span.recording()) return;
  span.Set("gen_ai.usage.input_tokens", static_cast<std::int64_t>(usage->input_tokens));
  span.Set("gen_ai.usage.output_tokens", static_cast<std::int64_t>(usage->output_tokens));
}

using nlohmann::json;

bool HasDirective(std::string_view header, std::string_view directive) {
  return header.find(directive) != std::string_view::npos;
}

// One provider route as this deployment serves it: the wire format (llm/providers.h) with
// the upstream's base URL and the key used for clients that send none.
struct ProviderSpec {
  Result<llm::ChatKey> key(const json& body, const HttpRequest& req) const {
    return wire.key(body, Model(req), policy);
  }
  std::string upstream_path(const HttpRequest& req) const {
    return wire.upstream_path(Model(req), req.query);
  }
  HttpResponse error(int status, const std::string& message) const {
    return HttpResponse::Json(status, wire.error_body(status, message));
  }
  static std::string Model(const HttpRequest& req) {
    auto model = req.path_params.find("model");
    return model == req.path_params.end() ? std::string() : model->second;
  }

  const llm::ProviderWire& wire;
  std::string base_url;
  std::string configured_key;  // with the wire's prefix; empty: none configured
  const llm::CachePolicy& policy;
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

// The prompt each recent hit was served for, so that a later request's
// `x-semcached-feedback: ENTRY_ID=wrong` can label that answer for that prompt. Bounded: the
// oldest are forgotten first.
class ServedPrompts {
 public:
  void Remember(const std::string& entry_id, const std::string& prompt) {
    std::lock_guard lock(mu_);
    auto [it, fresh] = prompts_.insert_or_assign(entry_id, prompt);
    if (fresh) order_.push_back(entry_id);
    while (order_.size() > kMost) {
      prompts_.erase(order_.front());
      order_.pop_front();
    }
  }
  std::optional<std::string> Find(const std::string& entry_id) const {
    std::lock_guard lock(mu_);
    auto it = prompts_.find(entry_id);
    if (it == prompts_.end()) return std::nullopt;
    return it->second;
  }

 private:
  static constexpr std::size_t kMost = 10000;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::string> prompts_;
  std::deque<std::string> order_;
};

// `x-semcached-feedback: ID=correct|wrong[, ...]`: labels on answers served earlier (the
// application learnt since that one was right or wrong); how many were recorded.
int RecordFeedbackHeader(std::string_view header, cache::Cache& store, const ServedPrompts& served,
                         const cache::Attributes& scope, const std::string& split_key) {
  int recorded = 0;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string id(item.substr(0, eq));
    const std::string_view label = item.substr(eq + 1);
    if (label != "correct" && label != "wrong") continue;
    auto prompt = served.Find(id);
    if (!prompt) {
      spdlog::info("proxy: feedback on entry {} that this instance has not served lately", id);
      continue;
    }
    auto done = store.RecordFeedback(id, {*prompt, label == "correct", scope, split_key});
    if (done.ok()) {
      ++recorded;
    } else {
      spdlog::info("proxy: feedback on entry {} not recorded: {}", id, done.status().message());
    }
  }
  return recorded;
}

// The key that places a request in an experiment arm (cache/experiment.h): the
// x-semcached-split-key header, else the end user the request names (OpenAI's `user`,
// Anthropic's `metadata.user_id`); empty: none.
std::string SplitKey(const HttpRequest& req, const json& body) {
  if (auto h = req.Header("x-semcached-split-key"); !h.empty()) return std::string(h);
  if (auto it = body.find("user"); it != body.end() && it->is_string()) return *it;
  if (auto m = body.find("metadata"); m != body.end() && m->is_object()) {
    if (auto it = m->find("user_id"); it != m->end() && it->is_string()) return *it;
  }
  return {};
}

// The request's time so far, counted to the experiment arm that served it (none: -1).
void RecordArmLatency(cache::Cache* store, int arm, std::chrono::steady_clock::time_point started) {
  if (store && arm >= 0)
    store->RecordArmLatency(
        arm, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

HttpResponse Proxy(const HttpRequest& req, const ProviderSpec& p, cache::CacheRegistry& registry,
                   const ProxyOptions& opt, ProxyMetrics& pm, ServedPrompts& served) {
  const auto started = std::chrono::steady_clock::now();
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
  const bool stream_cacheable = static_cast<bool>(p.wire.assemble);
  const std::string bypass_reason = !key->cacheable ? key->why_not
                                    : key->stream && !stream_cacheable
                                        ? "streaming responses of this provider are not cached yet"
                                    : !store ? "the proxy's cache does not exist"
                                             : "";
  cache::Attributes scope = {
      {"provider", p.wire.name}, {"model", key->model}, {"scope", key->scope}};
  // Always present, so an entry of one namespace never answers a search of none.
  scope["namespace"] = std::string(req.Header("x-semcached-namespace"));

  const std::string split_key = SplitKey(req, body);
  int feedback_recorded = -1;
  if (auto f = req.Header("x-semcached-feedback"); !f.empty() && store)
    feedback_recorded = RecordFeedbackHeader(f, *store, served, scope, split_key);
  // The experiment arm that serves the request (-1: none): told in x-semcached-arm, and the
  // request's whole time, upstream included, counted to it.
  int arm = -1;
  std::string arm_name;
  auto count_latency = [&store, &arm, started] { RecordArmLatency(store.get(), arm, started); };

  // A hit the cache found but held back (shadow mode, or verification): the request goes
  // upstream, and the model's answer is compared with the cached one.
  std::optional<cache::Hit> withheld;
  std::string withheld_reason;
  if (bypass_reason.empty() && !no_cache) {
    cache::SearchQuery q;
    q.prompt = key->prompt;
    q.attributes = scope;
    q.estimate_savings = false;  // the stored answer's usage says what a hit saves
    q.shadow = req.Header("x-semcached-mode") == "shadow";
    q.can_verify = !key->stream;  // streamed answers are not compared yet
    q.split_key = split_key;
    cache::LookupTrace trace;
    if (auto t = req.Header("x-semcached-threshold"); !t.empty()) {
      float v = 0;
      if (std::from_chars(t.data(), t.data() + t.size(), v).ec == std::errc()) q.threshold = v;
    }
    auto hits = store->Search(q, &trace);
    arm = trace.arm;
    arm_name = trace.arm_name;
    if (hits.ok() && trace.withheld) {
      withheld = std::move(trace.withheld);
      withheld_reason = cache::WithheldName(trace.withheld_reason);
    }
    if (!hits.ok()) {
      spdlog::warn("proxy: cache lookup failed, going upstream: {}",
                   hits.status().message());  // fail-open
    } else if (!hits->empty()) {
      const cache::Hit& hit = hits->front();
      pm.Count(p.wire.name, "hit");
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
        usage = llm::UsageOf(p.wire.name, stored);
      }
      const double usd = usage ? opt.prices.Cost(key->model, *usage) : 0;
      const double seconds = number("upstream_ms").value_or(0) / 1000;
      const std::uint64_t tokens = usage ? usage->input_tokens + usage->output_tokens : 0;
      store->RecordSavings(tokens, usd, seconds, hit.arm);
      pm.Add(pm.saved_usd, p.wire.name, usd);
      pm.Add(pm.saved_tokens, p.wire.name, static_cast<double>(tokens));
      pm.Add(pm.saved_seconds, p.wire.name, seconds);
      served.Remember(hit.id, key->prompt);
      std::vector<std::pair<std::string, std::string>> hit_headers = {
          {"x-semcached-cache", "hit"},
          {"x-semcached-similarity", std::to_string(hit.similarity)},
          {"x-semcached-entry-id", hit.id}};
      if (feedback_recorded >= 0)
        hit_headers.emplace_back("x-semcached-feedback-recorded",
                                 std::to_string(feedback_recorded));
      if (arm >= 0) hit_headers.emplace_back("x-semcached-arm", arm_name);
      count_latency();
      if (key->stream) {
        if (stored.is_null()) stored = json::parse(hit.entry->response(), nullptr, false);
        HttpResponse r;
        r.stream = [events = p.wire.replay(stored, body), hit_headers](ResponseStream& out) {
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
  for (const auto& name : p.wire.pass_headers) {
    if (auto v = req.Header(name); !v.empty()) {
      headers.push_back(name + ": " + std::string(v));
      has_key =
          has_key || name == "authorization" || name == "x-api-key" || name == "x-goog-api-key";
    }
  }
  if (!has_key && req.query.find("key=") == std::string::npos && !p.configured_key.empty()) {
    headers.push_back(p.wire.key_header + ": " + p.configured_key);
  }
  const bool miss = bypass_reason.empty();
  // A withheld hit's request is answered upstream; stored only when the answers disagree (a
  // different question that deserves an entry of its own: the entry there would have
  // answered it wrongly).
  const bool store_answer = miss && !withheld;
  const std::string result_label = withheld ? withheld_reason : miss ? "miss" : "bypass";
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
                request_body = req.body, store = store_answer && !no_store ? store : nullptr,
                result_label, prompt = key->prompt, model = key->model, scope, ttl, bypass_reason,
                arm, arm_name, started, arm_store = store](ResponseStream& out) {
      std::string seen;
      bool begun = false;
      std::size_t received = 0;
      tracing::Span chat_span("chat " + model, tracing::SpanKind::kClient);
      DescribeChat(chat_span, p.wire.name, model);
      auto up = llm::PostUpstreamStreaming(
          url, headers, request_body, opt.upstream,
          [&](int status, const std::string& content_type, std::string_view piece) {
            if (!begun) {
              begun = true;
              std::vector<std::pair<std::string, std::string>> h = {
                  {"x-semcached-cache", result_label}};
              if (arm >= 0) h.emplace_back("x-semcached-arm", arm_name);
              if (!bypass_reason.empty())
                h.emplace_back("x-semcached-bypass-reason", bypass_reason);
              if (!out.Begin(status, content_type.empty() ? "text/event-stream" : content_type, h))
                return false;
            }
            received += piece.size();
            if (store) seen.append(piece);
            return out.Write(piece);
          });
      if (!up.ok()) {
        chat_span.SetError(up.status().message());
        pm.Count(p.wire.name, "upstream_error");
        if (!begun) {
          HttpResponse e = p.error(up.status().code() == ErrorCode::kDeadlineExceeded ? 504 : 502,
                                   up.status().message());
          if (out.Begin(e.status, e.content_type, {{"x-semcached-cache", "miss"}}))
            out.Write(e.body);
        }
        return;  // a stream cut short is never stored
      }
      pm.Upstream(p.wire.name, up->seconds);
      pm.Bytes(p.wire.name, request_body.size(), received);
      pm.Count(p.wire.name, up->status >= 400 ? "upstream_error" : result_label);
      RecordArmLatency(arm_store.get(), arm, started);
      if (!store || up->status != 200) return;
      auto assembled = p.wire.assemble(seen);
      if (!assembled) return;  // truncated, refused or not finished with "stop"
      const auto usage = llm::UsageOf(p.wire.name, *assembled);
      EndChat(chat_span, up->status, usage);
      if (usage) {
        pm.Add(pm.spent_usd, p.wire.name, opt.prices.Cost(model, *usage));
        pm.Tokens(p.wire.name, model, usage->input_tokens, usage->output_tokens);
      }
      auto stored =
          store->Store(prompt, assembled->dump(), EntryAttributes(scope, up->seconds, usage), ttl);
      if (!stored.ok())
        spdlog::warn("proxy: the streamed answer was not stored: {}", stored.status().message());
    };
    return r;
  }
  tracing::Span chat_span("chat " + key->model, tracing::SpanKind::kClient);
  DescribeChat(chat_span, p.wire.name, key->model);
  auto up = llm::PostUpstream(p.base_url + p.upstream_path(req), headers, req.body, opt.upstream);
  if (!up.ok()) chat_span.SetError(up.status().message());
  if (!up.ok()) {
    pm.Count(p.wire.name, "upstream_error");
    return p.error(up.status().code() == ErrorCode::kDeadlineExceeded ? 504 : 502,
                   up.status().message());
  }
  pm.Upstream(p.wire.name, up->seconds);
  pm.Bytes(p.wire.name, req.body.size(), up->body.size());
  json answer = json::parse(up->body, nullptr, false);
  const auto usage = up->status == 200 ? llm::UsageOf(p.wire.name, answer) : std::nullopt;
  EndChat(chat_span, up->status, usage);
  if (usage) {
    pm.Add(pm.spent_usd, p.wire.name, opt.prices.Cost(key->model, *usage));
    pm.Tokens(p.wire.name, key->model, usage->input_tokens, usage->output_tokens);
  }
  std::string verdict;
  if (withheld && up->status == 200) {
    if (usage) {
      pm.Add(pm.verify_usd, p.wire.name, opt.prices.Cost(key->model, *usage));
      pm.Add(pm.verify_tokens, p.wire.name,
             static_cast<double>(usage->input_tokens + usage->output_tokens));
    }
    const std::string cached =
        llm::AnswerText(p.wire.name, json::parse(withheld->entry->response(), nullptr, false));
    const std::string fresh = llm::AnswerText(p.wire.name, answer);
    if (!cached.empty() && !fresh.empty()) {
      auto agreed = store->RecordAnswerComparison(*withheld, cached, fresh);
      if (agreed.ok()) {
        verdict = *agreed ? "agree" : "disagree";
      } else {
        spdlog::warn("proxy: the answers could not be compared: {}", agreed.status().message());
      }
    }
  }
  if ((store_answer || verdict == "disagree") && up->status == 200 && !no_store) {
    if (p.wire.storable(answer)) {
      auto stored =
          store->Store(key->prompt, up->body, EntryAttributes(scope, up->seconds, usage), ttl);
      if (!stored.ok())
        spdlog::warn("proxy: the answer was not stored: {}", stored.status().message());
    }
  }
  pm.Count(p.wire.name, up->status >= 400 ? "upstream_error" : result_label);
  count_latency();
  HttpResponse r;
  r.status = up->status;
  r.content_type = up->content_type.empty() ? "application/json" : up->content_type;
  r.body = std::move(up->body);
  r.headers.emplace_back("x-semcached-cache", result_label);
  if (!miss) r.headers.emplace_back("x-semcached-bypass-reason", bypass_reason);
  if (arm >= 0) r.headers.emplace_back("x-semcached-arm", arm_name);
  if (feedback_recorded >= 0)
    r.headers.emplace_back("x-semcached-feedback-recorded", std::to_string(feedback_recorded));
  if (withheld) {
    r.headers.emplace_back("x-semcached-withheld-similarity", std::to_string(withheld->similarity));
    r.headers.emplace_back("x-semcached-withheld-entry-id", withheld->id);
    if (!verdict.empty()) r.headers.emplace_back("x-semcached-verified", verdict);
  }
  return r;
}

}  // namespace

void AddProxyRoutes(Router& router, cache::CacheRegistry& registry, Metrics& metrics,
                    ProxyOptions options) {
  auto opt = std::make_shared<ProxyOptions>(std::move(options));
  auto pm = std::make_shared<ProxyMetrics>(metrics.registry());
  auto served = std::make_shared<ServedPrompts>();
  for (const auto& [path, wire] : llm::ProviderRoutes()) {
    const bool openai = wire.api == "openai";
    const bool anthropic = wire.api == "anthropic";
    const std::string& key = openai      ? opt->openai_api_key
                             : anthropic ? opt->anthropic_api_key
                                         : opt->gemini_api_key;
    auto spec = std::make_shared<ProviderSpec>(
        ProviderSpec{wire,
                     openai      ? opt->openai_base_url
                     : anthropic ? opt->anthropic_base_url
                                 : opt->gemini_base_url,
                     key.empty() ? std::string() : wire.key_prefix + key, opt->policy});
    router.Add(
        "POST", path,
        [&registry, opt, pm, spec, served](const HttpRequest& req) {
          return Proxy(req, *spec, registry, *opt, *pm, *served);
        },
        /*blocking=*/true);
  }
}

}  // namespace semcached::server
