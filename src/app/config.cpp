#include "app/config.h"

#include <cstdlib>
#include <limits>
#include <set>
#include <sstream>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "app/config_keys.h"
#include "vector/cpu_features.h"

extern char** environ;

namespace semcached::app {

namespace {

using config_keys::BoolKey;
using config_keys::DoubleKey;
using config_keys::EnumKey;
using config_keys::EnumListKey;
using config_keys::IntKey;
using config_keys::RawValue;
using config_keys::StringKey;
using config_keys::StringListKey;
using KeySpec = config_keys::Key<Config>;
using CacheKey = config_keys::Key<CacheConfig>;

Status Refuse(const std::string& key, const RawValue& v, const std::string& reason) {
  return InvalidArgument("configuration key '" + key + "' (" + v.source + "): " + reason);
}

const std::vector<KeySpec>& Keys() {
  static const std::vector<KeySpec> keys = [] {
    constexpr std::int64_t kMaxMs = 24LL * 3600 * 1000;
    std::vector<KeySpec> k;
    k.push_back(StringKey<Config>(
        "data_dir", [](Config& c) -> std::string& { return c.data_dir; }, {},
        "directory for the embedded store's files (created if missing)"));
    k.push_back(StringKey<Config>(
        "models_dir", [](Config& c) -> std::string& { return c.models_dir; }, {},
        "where `semcached model pull` keeps models (OWNER/NAME/); empty: data_dir/models"));
    k.push_back(StringKey<Config>(
        "model_hub_url", [](Config& c) -> std::string& { return c.model_hub_url; }, {},
        "the Hugging Face hub (or a mirror) `semcached model pull` downloads from"));
    k.push_back(StringKey<Config>(
        "store", [](Config& c) -> std::string& { return c.store; }, {"embedded", "redis"},
        "default vector store of caches"));
    k.push_back(StringKey<Config>(
        "default_cache_api_key", [](Config& c) -> std::string& { return c.default_cache_api_key; },
        {}, "API key of the cache 'default' (served when no [[caches]] is declared)"));
    k.back().secret = true;
    k.push_back(StringKey<Config>(
        "admin_api_key", [](Config& c) -> std::string& { return c.admin_api_key; }, {},
        "Bearer key of the admin API (POST/GET/DELETE /v1/caches); empty: disabled"));
    k.back().secret = true;
    k.push_back(StringKey<Config>(
        "server.host", [](Config& c) -> std::string& { return c.server.host; }, {},
        "address to listen on"));
    k.push_back(IntKey<Config>(
        "server.port", [](Config& c) -> int& { return c.server.port; }, 0, 65535,
        "TCP port; 0 picks a free one (see server.port_file)"));
    k.push_back(IntKey<Config>(
        "server.threads", [](Config& c) -> int& { return c.server.threads; }, 0, 256,
        "I/O threads; 0 means one per core"));
    k.push_back(IntKey<Config>(
        "server.max_header_bytes",
        [](Config& c) -> std::int64_t& { return c.server.max_header_bytes; }, 1024, 1 << 20,
        "largest request head accepted (431 beyond)"));
    k.push_back(IntKey<Config>(
        "server.max_body_bytes", [](Config& c) -> std::int64_t& { return c.server.max_body_bytes; },
        1024, 1LL << 30, "largest request body accepted (413 beyond)"));
    k.push_back(IntKey<Config>(
        "server.read_timeout_ms", [](Config& c) -> int& { return c.server.read_timeout_ms; }, 10,
        kMaxMs, "time allowed to receive a whole request once it has started"));
    k.push_back(IntKey<Config>(
        "server.idle_timeout_ms", [](Config& c) -> int& { return c.server.idle_timeout_ms; }, 10,
        kMaxMs, "time a connection may stay open with no request"));
    k.push_back(IntKey<Config>(
        "server.write_timeout_ms", [](Config& c) -> int& { return c.server.write_timeout_ms; }, 10,
        kMaxMs, "time allowed to send a response"));
    k.push_back(IntKey<Config>(
        "server.shutdown_timeout_ms",
        [](Config& c) -> int& { return c.server.shutdown_timeout_ms; }, 0, kMaxMs,
        "on SIGTERM/SIGINT, how long requests in flight may finish"));
    k.push_back(IntKey<Config>(
        "server.max_connections", [](Config& c) -> int& { return c.server.max_connections; }, 1,
        1'000'000, "open connections beyond this are closed at accept"));
    k.push_back(IntKey<Config>(
        "server.worker_threads", [](Config& c) -> int& { return c.server.worker_threads; }, 1, 1024,
        "threads for routes that can wait on the network (the caching proxy, Redis caches, HTTP "
        "embedders), so I/O threads never block"));
    k.push_back(IntKey<Config>(
        "server.latency_objective_ms",
        [](Config& c) -> int& { return c.server.latency_objective_ms; }, 1, kMaxMs,
        "latency objective: requests answered within it are counted per route "
        "(semcached_http_requests_within_objective_total), for SLO burn-rate alerts"));
    k.push_back(StringKey<Config>(
        "server.port_file", [](Config& c) -> std::string& { return c.server.port_file; }, {},
        "file the bound port is written to once listening (empty: none)"));
    k.push_back(StringKey<Config>(
        "log.level", [](Config& c) -> std::string& { return c.log.level; },
        {"trace", "debug", "info", "warn", "error", "critical", "off"},
        "log level; debug logs one line per request"));
    k.push_back(StringKey<Config>(
        "log.format", [](Config& c) -> std::string& { return c.log.format; }, {"text", "json"},
        "text lines or JSON lines"));
    k.push_back(StringKey<Config>(
        "persist.fsync", [](Config& c) -> std::string& { return c.persist.fsync; },
        {"always", "everysec", "no", "off"},
        "embedded caches: always (no acknowledged write lost), everysec (at most ~1 s), "
        "no (the OS decides), off (memory only)"));
    k.push_back(IntKey<Config>(
        "persist.snapshot_journal_mb",
        [](Config& c) -> int& { return c.persist.snapshot_journal_mb; }, 1, 1 << 20,
        "a cache writes a snapshot and starts a new journal past this many MB"));
    k.push_back(StringKey<Config>(
        "redis.url", [](Config& c) -> std::string& { return c.redis.url; }, {},
        "redis://[user:password@]host:port[/db]; empty means no Redis"));
    k.push_back(IntKey<Config>(
        "redis.connect_timeout_ms", [](Config& c) -> int& { return c.redis.connect_timeout_ms; }, 1,
        kMaxMs, "timeout to connect to Redis"));
    k.push_back(IntKey<Config>(
        "redis.command_timeout_ms", [](Config& c) -> int& { return c.redis.command_timeout_ms; }, 1,
        kMaxMs, "timeout of each Redis command, retries included"));
    k.push_back(IntKey<Config>(
        "redis.protocol", [](Config& c) -> int& { return c.redis.protocol; }, 2, 3,
        "RESP protocol version: 2, or 3 (HELLO 3)"));
    k.push_back(IntKey<Config>(
        "redis.pool_min", [](Config& c) -> int& { return c.redis.pool_min; }, 0, 1000,
        "connections kept open to each Redis server"));
    k.push_back(IntKey<Config>(
        "redis.pool_max", [](Config& c) -> int& { return c.redis.pool_max; }, 1, 1000,
        "most connections to each Redis server"));
    k.push_back(IntKey<Config>(
        "redis.max_retries", [](Config& c) -> int& { return c.redis.max_retries; }, 0, 10,
        "retries of a command after a transient error (backoff with jitter)"));
    k.push_back(IntKey<Config>(
        "redis.breaker_failures", [](Config& c) -> int& { return c.redis.breaker_failures; }, 1,
        1000, "consecutive failures that open the circuit breaker"));
    k.push_back(IntKey<Config>(
        "redis.breaker_open_ms", [](Config& c) -> int& { return c.redis.breaker_open_ms; }, 10,
        kMaxMs, "time the breaker stays open before it probes Redis again"));
    k.push_back(StringKey<Config>(
        "redis.cluster_seeds", [](Config& c) -> std::string& { return c.redis.cluster_seeds; }, {},
        "host:port,... of Redis Cluster masters; empty: the single server of redis.url"));
    k.push_back(StringKey<Config>(
        "redis.tls_ca_file", [](Config& c) -> std::string& { return c.redis.tls_ca_file; }, {},
        "CA certificates for rediss:// (empty: the system's trust store)"));
    k.push_back(StringKey<Config>(
        "proxy.openai_base_url", [](Config& c) -> std::string& { return c.proxy.openai_base_url; },
        {}, "where the proxy sends OpenAI requests (the request path is appended)"));
    k.push_back(StringKey<Config>(
        "proxy.anthropic_base_url",
        [](Config& c) -> std::string& { return c.proxy.anthropic_base_url; }, {},
        "where the proxy sends Anthropic requests"));
    k.push_back(StringKey<Config>(
        "proxy.gemini_base_url", [](Config& c) -> std::string& { return c.proxy.gemini_base_url; },
        {}, "where the proxy sends Gemini requests"));
    k.push_back(StringKey<Config>(
        "proxy.cache", [](Config& c) -> std::string& { return c.proxy.cache; }, {},
        "the cache the proxy stores in and answers from"));
    k.push_back(IntKey<Config>(
        "proxy.timeout_ms", [](Config& c) -> int& { return c.proxy.timeout_ms; }, 100, kMaxMs,
        "timeout of each upstream LLM call"));
    k.push_back(StringKey<Config>(
        "proxy.outbound_proxy", [](Config& c) -> std::string& { return c.proxy.outbound_proxy; },
        {}, "HTTP(S) proxy for upstream calls; empty: none"));
    k.push_back(StringKey<Config>(
        "proxy.prices", [](Config& c) -> std::string& { return c.proxy.prices; }, {},
        "model=input/output,... USD per million tokens, over the built-in price table"));
    k.push_back(DoubleKey<Config>(
        "proxy.max_temperature", [](Config& c) -> double& { return c.proxy.max_temperature; }, 0,
        10, "requests with a higher temperature are passed through, not cached"));
    k.push_back(IntKey<Config>(
        "proxy.max_n", [](Config& c) -> int& { return c.proxy.max_n; }, 1, 128,
        "requests asking for more choices (n, candidateCount) are passed through"));
    k.push_back(StringKey<Config>(
        "proxy.scope_fields", [](Config& c) -> std::string& { return c.proxy.scope_fields; }, {},
        "comma-separated request fields that must match exactly for a hit (sampling, tools...); "
        "empty: the built-in list"));
    k.push_back(StringKey<Config>(
        "proxy.openai_api_key_env",
        [](Config& c) -> std::string& { return c.proxy.openai_api_key_env; }, {},
        "variable with an OpenAI key for clients that send none; empty: pass-through only"));
    k.push_back(StringKey<Config>(
        "proxy.anthropic_api_key_env",
        [](Config& c) -> std::string& { return c.proxy.anthropic_api_key_env; }, {},
        "variable with an Anthropic key for clients that send none"));
    k.push_back(StringKey<Config>(
        "proxy.gemini_api_key_env",
        [](Config& c) -> std::string& { return c.proxy.gemini_api_key_env; }, {},
        "variable with a Gemini key for clients that send none"));
    k.push_back(StringKey<Config>(
        "otel.endpoint", [](Config& c) -> std::string& { return c.otel.endpoint; }, {},
        "OTLP/HTTP collector base URL (metrics go to /v1/metrics); empty: no export"));
    k.push_back(IntKey<Config>(
        "otel.export_interval_ms", [](Config& c) -> int& { return c.otel.export_interval_ms; }, 100,
        3'600'000, "how often metrics are pushed"));
    k.push_back(IntKey<Config>(
        "otel.timeout_ms", [](Config& c) -> int& { return c.otel.timeout_ms; }, 10, kMaxMs,
        "timeout of each export attempt (failed ones are retried with backoff)"));
    k.push_back(IntKey<Config>(
        "otel.max_queue", [](Config& c) -> int& { return c.otel.max_queue; }, 1, 10'000,
        "batches per signal waiting to be sent; beyond it the oldest is dropped and counted"));
    k.push_back(StringKey<Config>(
        "otel.headers", [](Config& c) -> std::string& { return c.otel.headers; }, {},
        "name=value,... headers sent with every export (a collector's API key)"));
    k.back().secret = true;
    k.push_back(StringKey<Config>(
        "otel.service_name", [](Config& c) -> std::string& { return c.otel.service_name; }, {},
        "the service.name resource attribute"));
    k.push_back(StringKey<Config>(
        "otel.service_instance_id",
        [](Config& c) -> std::string& { return c.otel.service_instance_id; }, {},
        "the service.instance.id resource attribute; empty: a random UUID per process"));
    k.push_back(StringKey<Config>(
        "otel.resource_attributes",
        [](Config& c) -> std::string& { return c.otel.resource_attributes; }, {},
        "key=value,... more resource attributes (deployment.environment.name=prod, ...)"));
    k.push_back(DoubleKey<Config>(
        "otel.trace_sample_ratio", [](Config& c) -> double& { return c.otel.trace_sample_ratio; },
        0, 1,
        "share of new traces recorded and exported (head sampling by trace id); a request "
        "whose traceparent carries a sampling decision keeps it"));
    k.push_back(BoolKey<Config>(
        "otel.traces", [](Config& c) -> bool& { return c.otel.traces; },
        "export traces to <endpoint>/v1/traces (metrics go regardless)"));
    return k;
  }();
  return keys;
}

const KeySpec* FindKey(const std::string& name) { return config_keys::Find(Keys(), name); }

// Variables read by parts of the program other than this loader (checked here all the same).
const std::set<std::string>& EnvironmentNotKeys() {
  static const std::set<std::string> names = {"SEMCACHED_CONFIG", "SEMCACHED_SIMD"};
  return names;
}

// The keys of one [[caches]] table, in the order `semcached config` prints them.
const std::vector<CacheKey>& CacheKeys() {
  static const std::vector<CacheKey> keys = [] {
    using C = CacheConfig;
    using O = cache::CacheOptions;
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    std::vector<CacheKey> k;
    k.push_back(StringKey<C>("id", &C::id, {}, "the cache's name in URLs and files",
                             [](const std::string& v) {
                               return ValidateCacheId(v).ok()
                                          ? std::string()
                                          : "expected 1 to 64 letters, digits, '_' or '-'";
                             })
                    .Into(&O::id));
    auto api_keys = StringListKey<C>(
        "api_keys", &C::api_keys, "Bearer keys that may use the cache; empty: open to any caller");
    api_keys.secret = true;
    k.push_back(api_keys);
    k.push_back(DoubleKey<C>("similarity_threshold", &C::similarity_threshold, 0, 1,
                             "cosine similarity a semantic hit needs; 0: the embedder's "
                             "measured default (README, thresholds)")
                    .Into(&O::similarity_threshold));
    k.push_back(DoubleKey<C>("min_similarity_threshold", &C::min_similarity_threshold, 0, 1,
                             "floor of a request's own threshold (cosine): a request may only "
                             "tighten it; 0: no floor")
                    .Into(&O::min_similarity_threshold));
    k.push_back(IntKey<C>("ttl_ms", &C::ttl_ms, 0, kMax,
                          "entry lifetime unless a store says otherwise; 0: no expiry")
                    .Into(&O::default_ttl_ms));
    k.push_back(BoolKey<C>("sliding_ttl", &C::sliding_ttl, "a hit restarts the entry's TTL")
                    .Into(&O::sliding_ttl));
    k.push_back(BoolKey<C>("feedback_deletes_wrong", &C::feedback_deletes_wrong,
                           "feedback that an entry's answer was wrong also deletes the entry")
                    .Into(&O::feedback_deletes_wrong));
    k.push_back(StringKey<C>("mode", &C::mode, {"serve", "shadow"},
                             "serve hits, or shadow: run and record every lookup, serve nothing"));
    k.push_back(DoubleKey<C>("verify_fraction", &C::verify_fraction, 0, 1,
                             "share of would-be semantic hits the proxy sends upstream anyway, "
                             "comparing the answers")
                    .Into(&O::verify_fraction));
    k.push_back(DoubleKey<C>("verify_band", &C::verify_band, 0, 1,
                             "would-be semantic hits within this (cosine) above the threshold "
                             "are always verified by the proxy")
                    .Into(&O::verify_band));
    k.push_back(DoubleKey<C>("max_error_rate", &C::max_error_rate, 0, 0.5,
                             "adaptive thresholds: serve a semantic hit only while the labels "
                             "bound its error rate within this (95% confidence); 0: off")
                    .Into(&O::max_error_rate));
    k.push_back(StringListKey<C>(
        "experiment_arms", &C::experiment_arms,
        "an A/B experiment's arms, each \"NAME threshold=T [max_error_rate=E] [weight=W]\" "
        "(thresholds cosine); the first is the control; empty: none"));
    k.push_back(StringKey<C>("experiment_split", &C::experiment_split, {},
                             "the request attribute whose value (a user id, say) picks the arm; "
                             "requests may name the key in X-Semcached-Split-Key instead"));
    k.push_back(DoubleKey<C>("answer_agreement", &C::answer_agreement, 0, 1,
                             "two answers agree when equal or at least this similar (cosine)")
                    .Into(&O::answer_agreement));
    k.push_back(StringListKey<C>("allowed_attributes", &C::allowed_attributes,
                                 "attribute names a request may use; empty: any")
                    .Into(&O::allowed_attributes));
    k.push_back(BoolKey<C>("guard_numbers", &C::guard_numbers,
                           "a semantic hit needs the same numbers as the prompt")
                    .Into([](O& o) -> bool& { return o.guards.numbers; }));
    k.push_back(BoolKey<C>("guard_negation", &C::guard_negation,
                           "a semantic hit needs the same negation as the prompt")
                    .Into([](O& o) -> bool& { return o.guards.negation; }));
    k.push_back(BoolKey<C>("guard_units", &C::guard_units,
                           "where both prompts name units, a semantic hit needs the same ones")
                    .Into([](O& o) -> bool& { return o.guards.units; }));
    k.push_back(BoolKey<C>("guard_dates", &C::guard_dates,
                           "a semantic hit needs the same date words (today, next week, May 5)")
                    .Into([](O& o) -> bool& { return o.guards.dates; }));
    k.push_back(BoolKey<C>("guard_entities", &C::guard_entities,
                           "a semantic hit needs the prompt's names (Paris, iPhone, PDF) and "
                           "no others")
                    .Into([](O& o) -> bool& { return o.guards.entities; }));
    k.push_back(BoolKey<C>("guard_direction", &C::guard_direction,
                           "no semantic hit when two parts are swapped (from A to B, B to A)")
                    .Into([](O& o) -> bool& { return o.guards.direction; }));
    k.push_back(BoolKey<C>("guard_antonyms", &C::guard_antonyms,
                           "no semantic hit when a word faces its opposite (WordNet antonyms)")
                    .Into([](O& o) -> bool& { return o.guards.antonyms; }));
    k.push_back(BoolKey<C>("guard_reason", &C::guard_reason,
                           "no semantic hit when one asks why and the other does not")
                    .Into([](O& o) -> bool& { return o.guards.reason; }));
    k.push_back(BoolKey<C>("normalize_nfkc", &C::normalize_nfkc, "Unicode NFKC before matching")
                    .Into([](O& o) -> bool& { return o.normalize.nfkc; }));
    k.push_back(
        BoolKey<C>("normalize_casefold", &C::normalize_casefold, "case folding before matching")
            .Into([](O& o) -> bool& { return o.normalize.casefold; }));
    k.push_back(BoolKey<C>("normalize_whitespace", &C::normalize_whitespace,
                           "runs of white space collapsed before matching")
                    .Into([](O& o) -> bool& { return o.normalize.collapse_whitespace; }));
    k.push_back(BoolKey<C>("normalize_trim_punctuation", &C::normalize_trim_punctuation,
                           "punctuation at either end trimmed before matching")
                    .Into([](O& o) -> bool& { return o.normalize.trim_punctuation; }));
    k.push_back(IntKey<C>("max_entries", &C::max_entries, 0, kMax, "entries kept; 0: no limit")
                    .Into(&O::max_entries));
    k.push_back(IntKey<C>("max_bytes", &C::max_bytes, 0, kMax,
                          "text bytes kept (embedded caches); 0: no limit")
                    .Into(&O::max_bytes));
    k.push_back(EnumKey<C>("eviction", &C::eviction, cache::EvictionNames(),
                           "which entry leaves first when a limit is reached")
                    .Into(&O::eviction));
    k.push_back(IntKey<C>("search_ef", &C::search_ef, 1, 4096,
                          "candidates the semantic tier's graph walk keeps (HNSW ef)")
                    .Into(&O::search_ef));
    k.push_back(IntKey<C>("semantic_candidates", &C::semantic_candidates, 1, 64,
                          "nearest entries checked against the threshold and the guards")
                    .Into(&O::semantic_candidates));
    k.push_back(StringKey<C>("store", &C::store, {"embedded", "redis"},
                             "where entries live; unset: the top-level `store`"));
    k.push_back(EnumListKey<C>("search_strategies", &C::search_strategies, cache::StrategyNames(),
                               "tiers a search tries, in order")
                    .Into(&O::strategies));
    k.push_back(DoubleKey<C>("input_usd_per_mtok", &C::input_usd_per_mtok, 0, 1e6,
                             "USD per million prompt tokens of the calls a hit replaces")
                    .Into(&O::input_usd_per_mtok));
    k.push_back(DoubleKey<C>("output_usd_per_mtok", &C::output_usd_per_mtok, 0, 1e6,
                             "USD per million completion tokens of the calls a hit replaces")
                    .Into(&O::output_usd_per_mtok));
    k.push_back(StringKey<C>("embedder", &C::embedder, {"model2vec", "ngram", "builtin", "openai"},
                             "model2vec (a static model in process), ngram (model-free; "
                             "builtin is its former name), or openai (any OpenAI-compatible "
                             "/v1/embeddings service)"));
    k.push_back(StringKey<C>("embedder_url", &C::embedder_url, {},
                             "base URL of the embedding service (without /embeddings)"));
    k.push_back(StringKey<C>("embedder_model", &C::embedder_model, {},
                             "model2vec: a model directory or OWNER/NAME pulled into "
                             "models_dir (empty: the built-in potion-base-4M-int8); openai: "
                             "the model to ask for"));
    k.push_back(IntKey<C>("embedder_dim", &C::embedder_dim, 0, 65535,
                          "dimensions kept (vectors are truncated and re-normalized); "
                          "required for openai"));
    k.push_back(StringKey<C>("embedder_api_key_env", &C::embedder_api_key_env, {},
                             "environment variable holding the service's API key"));
    k.push_back(IntKey<C>("embedder_timeout_ms", &C::embedder_timeout_ms, 1, 65'535'000,
                          "timeout of each embedding request"));
    return k;
  }();
  return keys;
}

// A JSON value as a raw value: the admin API's bodies, and TOML values (TomlToJson).
RawValue FromJson(const nlohmann::json& value, std::string source) {
  RawValue v;
  v.source = std::move(source);
  if (value.is_string()) {
    v.text = value.get<std::string>();
  } else if (value.is_boolean()) {
    v.kind = RawValue::Kind::kBool;
    v.boolean = value.get<bool>();
  } else if (value.is_number_integer()) {
    v.kind = RawValue::Kind::kInt;
    v.integer = value.get<std::int64_t>();
  } else if (value.is_number()) {
    v.kind = RawValue::Kind::kFloat;
    v.number = value.get<double>();
  } else if (value.is_array()) {
    v.kind = RawValue::Kind::kStrings;
    for (const auto& item : value) {
      if (!item.is_string()) {
        v.kind = RawValue::Kind::kOther;
        break;
      }
      v.strings.push_back(item.get<std::string>());
    }
  } else {
    v.kind = RawValue::Kind::kOther;
  }
  return v;
}

// A TOML value as the JSON value it stands for (tables and dates have none: null, refused).
nlohmann::json TomlToJson(const toml::node& node) {
  if (auto text = node.value<std::string>(); node.is_string() && text) return *text;
  if (node.is_integer()) return *node.value<std::int64_t>();
  if (node.is_boolean()) return *node.value<bool>();
  if (node.is_floating_point()) return *node.value<double>();
  if (const auto* arr = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : *arr) out.push_back(TomlToJson(item));
    return out;
  }
  return nullptr;
}

RawValue FromToml(const toml::node& node, std::string source) {
  return FromJson(TomlToJson(node), std::move(source));
}

// One cache's settings from (name, raw value) pairs, each checked by the cache key table.
// `where` prefixes key names in messages ("caches[0].").
Result<CacheConfig> ParseCache(const std::vector<std::pair<std::string, RawValue>>& values,
                               const std::string& where, const std::string& source) {
  CacheConfig c;
  auto refuse = [&](const std::string& key, const std::string& why) {
    return InvalidArgument("configuration key '" + where + key + "' (" + source + "): " + why)
        .WithField(key, "valid", why);
  };
  for (const auto& [key, value] : values) {
    const CacheKey* spec = config_keys::Find(CacheKeys(), key);
    if (spec == nullptr) {
      return InvalidArgument("unknown configuration key '" + where + key + "' (" + source + ")")
          .WithField(key, "known", "not a cache setting");
    }
    if (std::string why = spec->set(c, value); !why.empty()) return refuse(key, why);
  }
  if (c.id.empty()) return refuse("id", "every cache needs an id");
  if (auto arms = cache::ParseArms(c.experiment_arms); !arms.ok())
    return refuse("experiment_arms", arms.status().message());
  if (c.embedder == "openai" && (c.embedder_dim == 0 || c.embedder_model.empty())) {
    return refuse("embedder", "an \"openai\" embedder needs embedder_model and embedder_dim");
  }
  return c;
}

// [[caches]]: an array of tables, each one cache.
Status ApplyCaches(Config& config, const toml::node& node, const std::string& file) {
  const auto* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    return InvalidArgument("configuration key 'caches' (config file " + file +
                           "): expected [[caches]] tables");
  }
  const std::string source = "config file " + file;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string where = "caches[" + std::to_string(i) + "].";
    std::vector<std::pair<std::string, RawValue>> values;
    for (const auto& [key, value] : *(*arr)[i].as_table()) {
      values.emplace_back(std::string(key.str()), FromToml(value, source));
    }
    auto c = ParseCache(values, where, source);
    if (!c.ok()) return c.status();
    for (const auto& other : config.caches) {
      if (other.id == c->id) {
        return InvalidArgument("configuration key '" + where + "id' (config file " + file +
                               "): cache '" + c->id + "' is declared twice");
      }
    }
    config.caches.push_back(std::move(*c));
  }
  return Status::Ok();
}

Status ApplyToml(Config& config, const toml::table& table, const std::string& prefix,
                 const std::string& file) {
  for (const auto& [raw_key, node] : table) {
    std::string key =
        prefix.empty() ? std::string(raw_key.str()) : prefix + "." + std::string(raw_key.str());
    if (key == "caches") {
      Status s = ApplyCaches(config, node, file);
      if (!s.ok()) return s;
      continue;
    }
    if (const auto* sub = node.as_table()) {
      Status s = ApplyToml(config, *sub, key, file);
      if (!s.ok()) return s;
      continue;
    }
    const KeySpec* spec = FindKey(key);
    RawValue v = FromToml(node, "config file " + file);
    if (spec == nullptr) {
      return InvalidArgument("unknown configuration key '" + key + "' (" + v.source + ")");
    }
    if (std::string why = spec->set(config, v); !why.empty()) return Refuse(key, v, why);
  }
  return Status::Ok();
}

Status ApplyText(Config& config, const std::string& key, const std::string& text,
                 const std::string& source) {
  const KeySpec* spec = FindKey(key);
  if (spec == nullptr) {
    return InvalidArgument("unknown configuration key '" + key + "' (" + source + ")");
  }
  RawValue v;
  v.kind = RawValue::Kind::kText;
  v.from_text = true;
  v.text = text;
  v.source = source;
  if (std::string why = spec->set(config, v); !why.empty()) return Refuse(key, v, why);
  return Status::Ok();
}

Status CheckWhole(const Config& c) {
  if (c.store == "redis" && c.redis.url.empty()) {
    return InvalidArgument("configuration key 'store' is 'redis' but 'redis.url' is empty");
  }
  if (!c.redis.url.empty() && c.redis.url.rfind("redis://", 0) != 0 &&
      c.redis.url.rfind("rediss://", 0) != 0) {
    return InvalidArgument("configuration key 'redis.url': '" + c.redis.url +
                           "' must start with redis:// or rediss://");
  }
  if (c.redis.pool_min > c.redis.pool_max) {
    return InvalidArgument(
        "configuration key 'redis.pool_min' (" + std::to_string(c.redis.pool_min) +
        ") is larger than 'redis.pool_max' (" + std::to_string(c.redis.pool_max) + ")");
  }
  if (!c.redis.cluster_seeds.empty() && c.redis.url.empty()) {
    return InvalidArgument(
        "configuration key 'redis.cluster_seeds' needs 'redis.url' for credentials and TLS");
  }
  if (c.data_dir.empty()) {
    return InvalidArgument("configuration key 'data_dir' must not be empty");
  }
  if (!c.otel.endpoint.empty() && c.otel.endpoint.rfind("http://", 0) != 0 &&
      c.otel.endpoint.rfind("https://", 0) != 0) {
    return InvalidArgument("configuration key 'otel.endpoint': '" + c.otel.endpoint +
                           "' must start with http:// or https://");
  }
  for (const auto& [key, text] :
       {std::pair<const char*, const std::string&>{"otel.headers", c.otel.headers},
        {"otel.resource_attributes", c.otel.resource_attributes}}) {
    if (auto pairs = ParseKeyValues(text); !pairs.ok())
      return InvalidArgument(std::string("configuration key '") + key +
                             "': " + pairs.status().message());
  }
  return Status::Ok();
}

}  // namespace

std::string EnvNameForKey(const std::string& key) {
  std::string env = "SEMCACHED_";
  for (char ch : key) {
    env += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  return env;
}

std::map<std::string, std::string> SemcachedEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    if (entry.rfind("SEMCACHED_", 0) != 0) continue;
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

Result<Config> LoadConfig(const ConfigSources& sources) {
  Config config;

  if (sources.file) {
    toml::table table;
    try {
      table = toml::parse_file(*sources.file);
    } catch (const toml::parse_error& e) {
      std::ostringstream msg;
      msg << "config file " << *sources.file << ": " << e.description() << " at line "
          << e.source().begin.line << ", column " << e.source().begin.column;
      return InvalidArgument(msg.str());
    }
    Status s = ApplyToml(config, table, "", *sources.file);
    if (!s.ok()) return s;
  }

  std::map<std::string, std::string> env_to_key;
  for (const auto& k : Keys()) env_to_key[EnvNameForKey(k.name)] = k.name;
  for (const auto& [name, value] : sources.env) {
    if (EnvironmentNotKeys().count(name) != 0) continue;
    auto it = env_to_key.find(name);
    if (it == env_to_key.end()) {
      return InvalidArgument("unknown environment variable " + name +
                             " (it names no configuration key; see `semcached config --keys`)");
    }
    Status s = ApplyText(config, it->second, value, "environment variable " + name);
    if (!s.ok()) return s;
  }
  if (auto it = sources.env.find("SEMCACHED_SIMD"); it != sources.env.end()) {
    vector::SimdLevel level;
    if (!vector::ParseSimdLevel(it->second, &level)) {
      return InvalidArgument("environment variable SEMCACHED_SIMD: '" + it->second +
                             "' is not one of: scalar, avx2, avx512");
    }
  }

  for (const auto& [key, value] : sources.flags) {
    Status s = ApplyText(config, key, value, "flag " + key + "=" + value);
    if (!s.ok()) return s;
  }

  Status s = CheckWhole(config);
  if (!s.ok()) return s;
  return config;
}

std::vector<KeyInfo> ListKeys() {
  Config defaults;
  std::vector<KeyInfo> out;
  for (const auto& k : Keys()) out.push_back({k.name, k.type, k.text(defaults), k.help});
  return out;
}

std::vector<KeyInfo> ListCacheKeys() {
  CacheConfig defaults;
  std::vector<KeyInfo> out;
  for (const auto& k : CacheKeys()) out.push_back({k.name, k.type, k.text(defaults), k.help});
  return out;
}

std::string RenderToml(const Config& config) {
  std::ostringstream out;
  std::string section;
  // Keys are declared with top-level ones first, then grouped by section.
  for (const auto& k : Keys()) {
    auto dot = k.name.find('.');
    std::string sec = dot == std::string::npos ? "" : k.name.substr(0, dot);
    std::string leaf = dot == std::string::npos ? k.name : k.name.substr(dot + 1);
    if (sec != section) {
      out << "\n[" << sec << "]\n";
      section = sec;
    }
    const bool hidden = k.secret && !k.text(config).empty();
    out << leaf << " = " << (hidden ? std::string("\"***\"") : k.toml(config)) << "  # " << k.help
        << "\n";
  }
  for (const auto& c : config.caches) {
    out << "\n[[caches]]\n";
    for (const auto& k : CacheKeys()) {
      if (k.name == "store" && c.store.empty()) continue;  // unset: the top-level store
      if (k.secret) {
        std::string masked = "[";
        for (std::size_t i = 0; i < c.api_keys.size(); ++i) masked += i ? ", '***'" : "'***'";
        out << k.name << " = " << masked << "]  # keys are not printed\n";
        continue;
      }
      out << k.name << " = " << k.toml(c) << "\n";
    }
  }
  return out.str();
}

Result<std::vector<std::pair<std::string, std::string>>> ParseKeyValues(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(pos, comma - pos);
    pos = comma + 1;
    auto trim = [](std::string v) {
      const auto first = v.find_first_not_of(" \t");
      if (first == std::string::npos) return std::string();
      return v.substr(first, v.find_last_not_of(" \t") - first + 1);
    };
    if (trim(item).empty()) continue;
    const auto eq = item.find('=');
    std::string key = trim(item.substr(0, eq == std::string::npos ? 0 : eq));
    if (eq == std::string::npos || key.empty())
      return InvalidArgument("'" + trim(item) + "' is not name=value");
    out.emplace_back(std::move(key), trim(item.substr(eq + 1)));
  }
  return out;
}

Status ValidateCacheId(const std::string& id) {
  if (id.empty() || id.size() > 64) return InvalidArgument("a cache id has 1 to 64 characters");
  for (char ch : id) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') {
      return InvalidArgument("cache id '" + id + "' may hold only letters, digits, '_' and '-'");
    }
  }
  return Status::Ok();
}

Result<CacheConfig> CacheConfigFromJson(const nlohmann::json& body) {
  if (!body.is_object()) return InvalidArgument("the body must be a JSON object of cache settings");
  std::vector<std::pair<std::string, RawValue>> values;
  for (const auto& [key, value] : body.items())
    values.emplace_back(key, FromJson(value, "request body"));
  return ParseCache(values, "", "request body");
}

nlohmann::json CacheConfigToJson(const CacheConfig& c) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& k : CacheKeys()) {
    out[k.name] = k.secret ? nlohmann::json(c.api_keys.size()) : k.json(c);  // never which
  }
  return out;
}

std::vector<CacheConfig> DeclaredCaches(const Config& config) {
  if (!config.caches.empty()) return config.caches;
  CacheConfig d;
  d.id = "default";
  if (!config.default_cache_api_key.empty()) d.api_keys.push_back(config.default_cache_api_key);
  return {d};
}

double DefaultSimilarityThreshold(const std::string& embedder) {
  // Measured on meancache/val.csv and the rewording and trap sets in tests/data (README,
  // "Thresholds"): each embedder's cosines spread differently, so each has its own.
  if (embedder == "ngram" || embedder == "builtin") return 0.85;
  if (embedder == "openai") return 0.85;
  return 0.80;  // model2vec: the strictest that serves 90% of the everyday rewordings
}

cache::CacheOptions ToCacheOptions(const CacheConfig& c) {
  cache::CacheOptions o;
  for (const auto& k : CacheKeys()) {
    if (k.apply) k.apply(c, o);
  }
  if (c.similarity_threshold == 0)
    o.similarity_threshold = static_cast<float>(DefaultSimilarityThreshold(c.embedder));
  o.shadow = c.mode == "shadow";
  if (auto arms = cache::ParseArms(c.experiment_arms); arms.ok()) {  // checked when parsed
    o.experiment.arms = std::move(*arms);
    o.experiment.split_attribute = c.experiment_split;
  }
  return o;
}

}  // namespace semcached::app
