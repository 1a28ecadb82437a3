#include "server/langcache_routes.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <shared_mutex>

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "server/cache_metrics.h"
#include "server/errors.h"

namespace semcached::server {
namespace {

// LangCache scores similarity as normalized cosine, (1 + cos) / 2 in 0..1: its SDK calls
// similarityThreshold "normalized cosine similarity", and Redis's own LangCache wrapper
// (redisvl) turns a Redis cosine distance d into LangCache similarity as (2 - d) / 2. The
// cache works in cosine; these two convert at the LangCache API's edge, and nowhere else.
float CosineFromLangCache(float similarity) { return 2.0f * similarity - 1.0f; }
float LangCacheFromCosine(float cosine) { return (1.0f + cosine) / 2.0f; }

using nlohmann::json;

constexpr const char* kCacheNotFound = "/errors/cache/not-found";
constexpr const char* kEntryNotFound = "/errors/cache/entry/not-found";

Status Field(const std::string& field, const std::string& rule, const std::string& message) {
  Status s = InvalidArgument(message);
  s.WithField(field, rule, message);
  return s;
}

Result<json> ParseBody(const HttpRequest& req) {
  if (req.body.empty()) return Field("body", "required", "request body must be a JSON object");
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Field("body", "json", "request body is not valid JSON");
  if (!body.is_object()) return Field("body", "object", "request body must be a JSON object");
  return body;
}

Result<std::string> RequiredString(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return Field(name, "required", std::string(name) + " is required");
  if (!it->is_string()) return Field(name, "string", std::string(name) + " must be a string");
  return it->get<std::string>();
}

Result<cache::Attributes> OptionalAttributes(const json& body) {
  cache::Attributes out;
  auto it = body.find("attributes");
  if (it == body.end() || it->is_null()) return out;
  if (!it->is_object())
    return Field("attributes", "object", "attributes must be an object of strings");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string())
      return Field("attributes." + k, "string", "attribute values must be strings");
    out[k] = v.get<std::string>();
  }
  return out;
}

// Bearer key, then cache, then the key's right to the cache.
Result<std::shared_ptr<cache::Cache>> Authorize(const HttpRequest& req,
                                                cache::CacheRegistry& registry) {
  std::string_view auth = req.Header("authorization");
  std::string key;
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    key = std::string(auth.substr(7));
  }
  const std::string& id = req.path_params.at("cacheId");
  auto cache = registry.Find(id);
  if (key.empty() && !(cache.ok() && registry.Open(id))) {
    return Status(ErrorCode::kUnauthenticated,
                  "an Authorization: Bearer <apiKey> header is required");
  }
  if (!cache.ok()) return cache.status();
  Status s = registry.Authorize(id, key);
  if (!s.ok()) return s;
  return cache;
}

HttpResponse Fail(const Status& s, const char* not_found_type = kCacheNotFound) {
  return ErrorResponse(s, s.code() == ErrorCode::kNotFound ? not_found_type : "");
}

std::string Format(const char* fmt, double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// A search response, written directly: the hot path of a cache hit, where building a
// JSON document tree and dumping it cost more than the lookup.
std::string SearchBody(const std::vector<cache::Hit>& hits) {
  // append() rather than operator+ chains: fewer temporaries, and GCC 12 raises a false
  // -Wrestrict on the latter.
  std::string out;
  std::size_t size = 64;
  for (const auto& h : hits) size += 128 + h.entry->text_bytes() + h.entry->text_bytes() / 8;
  out.reserve(size);
  out.append("{\"data\":[");
  auto quoted = [&out](std::string_view s) {
    out.push_back('"');
    AppendJsonEscaped(out, s);
    out.push_back('"');
  };
  for (std::size_t i = 0; i < hits.size(); ++i) {
    const cache::Hit& h = hits[i];
    const cache::EntryText& t = *h.entry;
    if (i > 0) out.push_back(',');
    out.append("{\"id\":");
    quoted(h.id);
    out.append(",\"prompt\":");
    quoted(t.prompt());
    out.append(",\"response\":");
    quoted(t.response());
    out.append(",\"attributes\":{");
    bool first = true;
    t.ForEachAttribute([&](std::string_view k, std::string_view v) {
      if (!first) out.push_back(',');
      first = false;
      quoted(k);
      out.push_back(':');
      quoted(v);
    });
    out.append("},\"similarity\":");
    out.append(Format("%.6g", LangCacheFromCosine(h.similarity)));
    out.append(",\"searchStrategy\":");
    quoted(cache::StrategyName(h.strategy));
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json DifferenceJson(const cache::Difference& d) {
  if (!d.known) return nullptr;
  return {{"difference", d.value}, {"low", d.low}, {"high", d.high}};
}

// GET /v1/caches/{id}/experiments: each arm's setting, counts and rates, and its differences
// from the first arm with their 95% intervals.
json ExperimentJson(const cache::Cache& c) {
  const auto e = c.Experiment();
  const auto policy = c.Policy();
  json arms = json::array();
  for (const auto& r : e.arms) {
    const auto& t = r.totals;
    json arm = {{"name", r.arm.name},
                {"similarityThresholdCosine", r.arm.threshold},
                {"maxErrorRate", r.arm.max_error_rate},
                {"weight", r.arm.weight},
                {"lookups", t.lookups},
                {"exactHits", t.exact_hits},
                {"semanticHits", t.semantic_hits},
                {"hitRate", r.hit_rate},
                {"withheldForVerification", t.withheld},
                {"verified", t.verified},
                {"verifiedFalseHits", t.verified_wrong},
                {"reportedCorrect", t.reported_correct},
                {"reportedFalseHits", t.reported_wrong},
                {"falseHitRate", r.false_hit_rate},
                {"costSavedUsd", t.cost_saved_usd},
                {"costSavedPerLookupUsd", r.cost_per_lookup},
                {"timedRequests", t.timed},
                {"meanLatencyMs", r.mean_latency_ms}};
    if (&r != &e.arms.front()) {
      arm["vsControl"] = {{"hitRate", DifferenceJson(r.hit_rate_vs_control)},
                          {"falseHitRate", DifferenceJson(r.false_hit_rate_vs_control)},
                          {"costSavedPerLookupUsd", DifferenceJson(r.cost_vs_control)},
                          {"latencyMs", DifferenceJson(r.latency_ms_vs_control)}};
    }
    arms.push_back(std::move(arm));
  }
  return {
      {"cacheId", c.options().id},
      {"running", !e.arms.empty() && e.winner.empty()},
      {"winner", e.winner.empty() ? json(nullptr) : json(e.winner)},
      {"splitAttribute", e.options.split_attribute},
      {"control", e.arms.empty() ? json(nullptr) : json(e.arms.front().arm.name)},
      {"confidence", 0.95},
      {"policy",
       {{"similarityThresholdCosine", policy.threshold}, {"maxErrorRate", policy.max_error_rate}}},
      {"arms", std::move(arms)}};
}

// Every route: authorize and find the cache, parse the JSON body when the route has one,
// then run `fn(cache, body)`.
template <typename Fn>
HttpResponse Handle(const HttpRequest& req, cache::CacheRegistry& registry, bool with_body,
                    Fn&& fn) {
  auto cache = Authorize(req, registry);
  if (!cache.ok()) return Fail(cache.status());
  json body = json::object();
  if (with_body) {
    auto parsed = ParseBody(req);
    if (!parsed.ok()) return Fail(parsed.status());
    body = std::move(*parsed);
  }
  return fn(**cache, body);
}

}  // namespace

void AddLangCacheRoutes(Router& router, cache::CacheRegistry& registry, Metrics& metrics,
                        PoolSampler redis_pool) {
  auto cm = std::make_shared<CacheMetrics>(metrics, registry);
  // A cache's routes run where its work can wait: on the worker pool when its store or its
  // embedder is remote (Redis, an embedding server), on the I/O thread otherwise.
  const Router::BlockingWhen may_block =
      [&registry](const std::unordered_map<std::string, std::string>& params) {
        auto id = params.find("cacheId");
        return id != params.end() && registry.MayBlock(id->second);
      };
  auto add = [&router, &may_block](std::string method, std::string pattern, Handler handler) {
    router.Add(std::move(method), std::move(pattern), std::move(handler), may_block);
  };

  add("POST", "/v1/caches/{cacheId}/entries", [&registry, cm](const HttpRequest& req) {
    return Handle(req, registry, true, [&](cache::Cache& c, const json& body) {
      auto prompt = RequiredString(body, "prompt");
      if (!prompt.ok()) return Fail(prompt.status());
      auto response = RequiredString(body, "response");
      if (!response.ok()) return Fail(response.status());
      auto attrs = OptionalAttributes(body);
      if (!attrs.ok()) return Fail(attrs.status());
      std::optional<std::int64_t> ttl;
      if (auto it = body.find("ttlMillis"); it != body.end() && !it->is_null()) {
        if (!it->is_number_integer())
          return Fail(Field("ttlMillis", "integer", "ttlMillis must be an integer"));
        ttl = it->get<std::int64_t>();
      }
      auto id = c.Store(*prompt, *response, *attrs, ttl);
      if (!id.ok()) return Fail(id.status());
      cm->Stored(c);
      return HttpResponse::Json(201, Dump({{"entryId", *id}}));
    });
  });

  add("POST", "/v1/caches/{cacheId}/entries/search", [&registry, cm](const HttpRequest& req) {
    return Handle(req, registry, true, [&](cache::Cache& c, const json& body) {
      auto prompt = RequiredString(body, "prompt");
      if (!prompt.ok()) return Fail(prompt.status());
      auto attrs = OptionalAttributes(body);
      if (!attrs.ok()) return Fail(attrs.status());
      cache::SearchQuery q;
      q.prompt = std::move(*prompt);
      q.attributes = std::move(*attrs);
      if (auto it = body.find("similarityThreshold"); it != body.end() && !it->is_null()) {
        if (!it->is_number())
          return Fail(
              Field("similarityThreshold", "number", "similarityThreshold must be a number"));
        const float t = it->get<float>();
        if (!(t >= 0 && t <= 1))
          return Fail(
              Field("similarityThreshold", "range", "similarityThreshold must be within 0 and 1"));
        q.threshold = std::max(0.0f, CosineFromLangCache(t));
      }
      if (auto it = body.find("searchStrategies"); it != body.end() && !it->is_null()) {
        if (!it->is_array() || it->empty()) {
          return Fail(
              Field("searchStrategies", "array",
                    "searchStrategies must be a non-empty array of \"exact\" and \"semantic\""));
        }
        for (const auto& s : *it) {
          cache::Strategy st;
          if (!s.is_string() || !cache::ParseStrategy(s.get<std::string>(), &st)) {
            return Fail(Field("searchStrategies", "enum",
                              "searchStrategies may hold only \"exact\" and \"semantic\""));
          }
          q.strategies.push_back(st);
        }
      }
      // A request may ask for shadow mode itself: the lookup runs, nothing is served.
      if (req.Header("x-semcached-mode") == "shadow") q.shadow = true;
      q.split_key = std::string(req.Header("x-semcached-split-key"));
      const auto started = std::chrono::steady_clock::now();
      cache::LookupTrace trace;
      auto hits = c.Search(q, &trace);
      if (!hits.ok()) return Fail(hits.status());
      cm->Observe(c, trace);
      HttpResponse res = HttpResponse::Json(200, SearchBody(*hits));
      if (trace.arm >= 0) {
        c.RecordArmLatency(
            trace.arm,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        res.headers.emplace_back("X-Semcached-Arm", trace.arm_name);
      }
      res.headers.emplace_back("X-Semcached-Tier",
                               trace.hit_tier ? cache::StrategyName(*trace.hit_tier) : "miss");
      if (!hits->empty())
        res.headers.emplace_back("X-Semcached-Similarity",
                                 Format("%.4f", hits->front().similarity));
      if (trace.withheld) {  // found, not served (shadow mode, adaptive thresholds)
        res.headers.emplace_back("X-Semcached-Withheld",
                                 cache::WithheldName(trace.withheld_reason));
        res.headers.emplace_back("X-Semcached-Withheld-Tier",
                                 cache::StrategyName(trace.withheld->strategy));
        res.headers.emplace_back("X-Semcached-Withheld-Similarity",
                                 Format("%.4f", trace.withheld->similarity));
        res.headers.emplace_back("X-Semcached-Withheld-Entry-Id", trace.withheld->id);
      }
      res.headers.emplace_back("X-Semcached-Timings",
                               "normalize=" + Format("%.0f", trace.normalize_us) +
                                   "us, embed=" + Format("%.0f", trace.embed_us) +
                                   "us, search=" + Format("%.0f", trace.search_us) +
                                   "us, guards=" + Format("%.0f", trace.guards_us) + "us");
      return res;
    });
  });

  add("DELETE", "/v1/caches/{cacheId}/entries", [&registry, cm](const HttpRequest& req) {
    return Handle(req, registry, true, [&](cache::Cache& c, const json& body) {
      auto attrs = OptionalAttributes(body);
      if (!attrs.ok()) return Fail(attrs.status());
      auto n = c.DeleteByAttributes(*attrs);
      if (!n.ok()) return Fail(n.status());
      return HttpResponse::Json(200, Dump({{"deletedEntriesCount", *n}}));
    });
  });

  add("DELETE", "/v1/caches/{cacheId}/entries/{entryId}", [&registry, cm](const HttpRequest& req) {
    return Handle(req, registry, false, [&](cache::Cache& c, const json&) {
      Status s = c.Delete(req.path_params.at("entryId"));
      if (!s.ok()) return Fail(s, kEntryNotFound);
      return HttpResponse::Json(204, "");
    });
  });

  // An application's label on an answer it got: the entry's response was right (or wrong)
  // for this prompt. Feeds the cache's tuning report; a wrong label deletes the entry when
  // the cache is set to (feedback_deletes_wrong).
  add("POST", "/v1/caches/{cacheId}/entries/{entryId}/feedback",
      [&registry](const HttpRequest& req) {
        return Handle(req, registry, true, [&](cache::Cache& c, const json& body) {
          cache::Feedback f;
          auto prompt = RequiredString(body, "prompt");
          if (!prompt.ok()) return Fail(prompt.status());
          f.prompt = std::move(*prompt);
          auto it = body.find("correct");
          if (it == body.end() || it->is_null())
            return Fail(Field("correct", "required", "correct is required"));
          if (!it->is_boolean())
            return Fail(Field("correct", "boolean", "correct must be true or false"));
          f.correct = it->get<bool>();
          auto attrs = OptionalAttributes(body);
          if (!attrs.ok()) return Fail(attrs.status());
          f.attributes = std::move(*attrs);
          f.split_key = std::string(req.Header("x-semcached-split-key"));
          auto out = c.RecordFeedback(req.path_params.at("entryId"), f);
          if (!out.ok()) return Fail(out.status(), kEntryNotFound);
          return HttpResponse::Json(200, Dump({{"entryId", req.path_params.at("entryId")},
                                               {"correct", f.correct},
                                               {"similarity", LangCacheFromCosine(out->similarity)},
                                               {"similarityCosine", out->similarity},
                                               {"refusedByGuards", out->refused_by_guards},
                                               {"deleted", out->deleted}}));
        });
      });

  // What each threshold would have served of the labelled lookups so far, and the threshold
  // to set for a target false-hit rate (?targetFalseHitRate=, default 0.01). Thresholds are
  // cosine, as in the configuration.
  add("GET", "/v1/caches/{cacheId}/tuning", [&registry](const HttpRequest& req) {
    return Handle(req, registry, false, [&](cache::Cache& c, const json&) {
      double target = 0.01;
      const std::string key = "targetFalseHitRate=";
      for (std::size_t at = 0; at < req.query.size();) {
        std::size_t end = req.query.find('&', at);
        if (end == std::string::npos) end = req.query.size();
        const std::string part = req.query.substr(at, end - at);
        if (part.rfind(key, 0) == 0) {
          char* stop = nullptr;
          const std::string value = part.substr(key.size());
          target = std::strtod(value.c_str(), &stop);
          if (value.empty() || *stop != '\0' || !(target >= 0 && target <= 1))
            return Fail(Field("targetFalseHitRate", "range",
                              "targetFalseHitRate must be a number within 0 and 1"));
        }
        at = end + 1;
      }
      return HttpResponse::Json(200, cache::TuningReportJson(c.Tuning(target)));
    });
  });

  // Advice on the cache's settings from what it measured (cache/recommendations.h). Always on
  // the worker pool: the recall probes scan the vectors.
  router.Add(
      "GET", "/v1/caches/{cacheId}/recommendations",
      [&registry, redis_pool](const HttpRequest& req) {
        return Handle(req, registry, false, [&](cache::Cache& c, const json&) {
          cache::RecommendationInputs in;
          in.options = c.options();
          in.threshold = c.Policy().threshold;
          in.stats = c.Stats();
          in.memory = c.Memory();
          in.vectors_in_redis = std::string(c.store_name()) == "redis";
          in.tuning = c.Tuning(0.01);
          // recall@10 at half, the same, twice and four times the cache's search_ef.
          const std::size_t ef = std::max<std::size_t>(1, in.options.search_ef);
          auto recall =
              c.ProbeRecall(50, {std::max<std::size_t>(1, ef / 2), ef, ef * 2, ef * 4}, 10);
          if (recall.ok()) in.recall = std::move(*recall);
          const auto embedder = c.EmbedderOf();
          in.embedder = embedder.description;
          in.embedder_remote = embedder.remote;
          if (redis_pool && std::string(c.store_name()) == "redis") in.redis_pool = redis_pool();
          return HttpResponse::Json(
              200, cache::RecommendationsJson(c.options().id, cache::Recommend(in)));
        });
      },
      /*blocking=*/true);

  add("GET", "/v1/caches/{cacheId}/experiments", [&registry](const HttpRequest& req) {
    return Handle(req, registry, false, [&](cache::Cache& c, const json&) {
      return HttpResponse::Json(200, Dump(ExperimentJson(c)));
    });
  });

  // Ends the running experiment: the winner's threshold and bound become the cache's until
  // the server restarts (the response says what to set in the configuration to keep them).
  add("POST", "/v1/caches/{cacheId}/experiments/end", [&registry](const HttpRequest& req) {
    return Handle(req, registry, true, [&](cache::Cache& c, const json& body) {
      auto winner = RequiredString(body, "winner");
      if (!winner.ok()) return Fail(winner.status());
      auto arm = c.EndExperiment(*winner);
      if (!arm.ok()) {
        if (arm.status().code() == ErrorCode::kNotFound)
          return Fail(Field("winner", "arm", arm.status().message()));
        return Fail(arm.status());
      }
      char setting[160];
      std::snprintf(setting, sizeof setting, "similarity_threshold = %g\nmax_error_rate = %g",
                    static_cast<double>(arm->threshold), arm->max_error_rate);
      spdlog::info("cache {}: experiment ended, arm '{}' won: {}", c.options().id, arm->name,
                   setting);
      json out = ExperimentJson(c);
      out["configuration"] = std::string(setting) + "\nexperiment_arms = []";
      return HttpResponse::Json(200, Dump(out));
    });
  });

  // Every entry as JSONL, one {id, prompt, response, attributes, ttlMillis?, vector?} a line
  // (?vectors=true adds the vectors): what `semcached export` writes and `import` reads back.
  // Streamed from the worker pool, whatever the store: a whole cache is bulk work.
  router.Add(
      "GET", "/v1/caches/{cacheId}/export",
      [&registry](const HttpRequest& req) {
        auto cache = Authorize(req, registry);
        if (!cache.ok()) return Fail(cache.status());
        const bool vectors = req.query.find("vectors=true") != std::string::npos;
        HttpResponse r;
        r.stream = [c = *cache, vectors](ResponseStream& out) {
          if (!out.Begin(200, "application/x-ndjson", {})) return;
          std::string batch;
          bool open = true;
          Status s = c->ForEachEntry(vectors, [&](const cache::ExportedEntry& e) {
            json line = {{"id", e.id},
                         {"prompt", e.text->prompt()},
                         {"response", e.text->response()},
                         {"attributes", e.text->attributes()}};
            if (e.ttl_left_ms > 0) line["ttlMillis"] = e.ttl_left_ms;
            if (!e.vector.empty()) line["vector"] = e.vector;
            batch += Dump(line);
            batch += '\n';
            if (batch.size() >= 64 * 1024) {
              open = out.Write(batch);
              batch.clear();
            }
            return open;
          });
          if (!s.ok()) {
            // Past the status line: the stream ends with a line saying why, which import
            // refuses as it refuses any bad line.
            batch += Dump({{"error", s.message()}}) + "\n";
          }
          if (open && !batch.empty()) out.Write(batch);
        };
        return r;
      },
      /*blocking=*/true);

  add("POST", "/v1/caches/{cacheId}/flush", [&registry, cm](const HttpRequest& req) {
    return Handle(req, registry, false, [&](cache::Cache& c, const json&) {
      if (Status s = c.Flush(); !s.ok()) return Fail(s);
      return HttpResponse::Json(204, "");
    });
  });

  add("GET", "/v1/caches/{cacheId}/stats", [&registry](const HttpRequest& req) {
    return Handle(req, registry, false, [&](cache::Cache& c, const json&) {
      auto s = c.Stats();
      json j = {{"cacheId", c.options().id},
                {"entries", s.entries},
                {"textBytes", s.bytes},
                {"lookups", s.lookups},
                {"exactHits", s.exact_hits},
                {"semanticHits", s.semantic_hits},
                {"misses", s.misses},
                {"guardRejections", s.guard_rejections},
                {"stores", s.stores},
                {"expired", s.expired},
                {"deleted", s.deleted},
                {"evicted", s.evicted},
                {"estimatedTokensSaved", s.tokens_saved},
                {"estimatedCostSavedUsd", s.cost_saved_usd},
                {"feedbackCorrect", s.feedback_correct},
                {"feedbackWrong", s.feedback_wrong},
                {"similarityThreshold", LangCacheFromCosine(c.Policy().threshold)},
                {"similarityThresholdCosine", c.Policy().threshold}};
      const cache::DriftReport d = c.Drift();
      j["drift"] = {{"windows", d.windows},
                    {"compared", d.compared},
                    {"similarityShift", d.similarity.shifted},
                    {"similarityKsStatistic", d.similarity.statistic},
                    {"similarityPValue", d.similarity.p_value},
                    {"hitRateShift", d.hit_rate.shifted},
                    {"windowHitRate", d.window_hit_rate},
                    {"referenceHitRate", d.reference_hit_rate},
                    {"hitRatePValue", d.hit_rate.p_value}};
      if (const double bound = c.Policy().max_error_rate; bound > 0) {
        const auto a = c.Adaptive();
        j["adaptive"] = {{"maxErrorRate", bound},
                         {"labels", a.labels},
                         {"curveBlocks", a.curve_blocks},
                         {"allowance", a.allowance}};
        // The clusters the adaptive thresholds learn in: the cache's semantic fingerprint.
        const auto clusters = c.Clusters();
        json sizes = json::array(), labels = json::array(), thresholds = json::array();
        for (const auto& one : clusters.clusters) {
          sizes.push_back(one.size);
          labels.push_back(one.labels);
          thresholds.push_back(one.threshold ? json(*one.threshold) : json(nullptr));
        }
        j["clusters"] = {{"count", clusters.clusters.size()},
                         {"fittedEntries", clusters.fitted_entries},
                         {"refits", clusters.refits},
                         {"resets", clusters.resets},
                         {"sizes", std::move(sizes)},
                         {"labels", std::move(labels)},
                         {"thresholdsCosine", std::move(thresholds)}};
      }
      return HttpResponse::Json(200, Dump(j));
    });
  });
}

}  // namespace semcached::server
