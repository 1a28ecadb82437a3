// Configuration of the semcached binary: defaults, a TOML file, SEMCACHED_* environment
// variables and command-line flags, merged in that order (a later source wins).
//
// Every key is declared once in a typed table (config.cpp, config_keys.h) with its type,
// bounds and help text: one table for the top-level keys, one for the keys of a [[caches]]
// table (also the admin API's bodies). The file, environment, flag and JSON readers all go
// through those tables, so a key is known to all of them or to none, enums and lists are
// parsed once, at load, and a cache's runtime options are built from its table in one place
// (ToCacheOptions). Unknown keys and invalid values are refused with a message naming the
// key, the source and the reason. This module does not start anything; it only produces a
// Config.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "cache/cache.h"
#include "common/status.h"
#include "server/server_options.h"

namespace semcached::app {

// The HTTP server's options, and what only the binary does with them.
struct ServerConfig : server::ServerOptions {
  std::string port_file;           // if set, the bound port is written here
  int latency_objective_ms = 100;  // requests within it count toward the latency SLO
};

// OpenTelemetry export over OTLP/HTTP (src/otel/): off while endpoint is empty.
struct OtelConfig {
  std::string endpoint;  // base URL of a collector, e.g. http://localhost:4318
  int export_interval_ms = 15'000;
  int timeout_ms = 10'000;
  int max_queue = 16;   // batches per signal waiting to be sent; the oldest dropped beyond
  std::string headers;  // "name=value,..." sent with every export (authentication)
  std::string service_name = "semcached";
  std::string service_instance_id;  // empty: a random UUID per process
  std::string resource_attributes;  // "key=value,..." added to the resource
  double trace_sample_ratio = 1.0;  // share of new traces recorded (a caller's flag wins)
  bool traces = true;               // export spans when an endpoint is set
};

// The caching proxy in front of LLM providers.
struct ProxyConfig {
  std::string openai_base_url = "https://api.openai.com";
  std::string anthropic_base_url = "https://api.anthropic.com";
  std::string gemini_base_url = "https://generativelanguage.googleapis.com";
  std::string cache = "default";  // the cache the proxy stores in and answers from
  int timeout_ms = 120'000;       // per upstream call
  std::string outbound_proxy;     // HTTP(S) proxy for upstream calls; empty: none
  std::string prices;  // "model=input/output,..." USD per million tokens, over the defaults
  double max_temperature = 1.0;  // requests above this temperature are not cached
  std::string scope_fields;  // "a,b,c": request fields that must match exactly; empty: the defaults
  int max_n = 1;             // requests asking for more choices are not cached
  // Environment variables holding keys for clients that send none; empty: pass-through only.
  std::string openai_api_key_env;
  std::string anthropic_api_key_env;
  std::string gemini_api_key_env;
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error, critical, off
  std::string format = "text";  // text | json
};

struct RedisConfig {
  std::string url;  // empty: no Redis (embedded store only)
  int connect_timeout_ms = 1'000;
  int command_timeout_ms = 1'000;
  int protocol = 2;  // RESP2 or RESP3
  int pool_min = 5;
  int pool_max = 50;
  int max_retries = 3;          // transient errors only
  int breaker_failures = 5;     // consecutive failures that open the circuit breaker
  int breaker_open_ms = 1'000;  // how long it stays open before a probe
  std::string cluster_seeds;    // "host:port,host:port": Redis Cluster; empty: one server
  std::string tls_ca_file;      // rediss://: trust anchors (empty: the system's)
};

// One cache, declared as a [[caches]] table in the TOML file.
struct CacheConfig {
  std::string id;
  std::vector<std::string> api_keys;  // empty: open to any caller (logged at start-up)
  // Cosine, 0..1; 0 (unset): the embedder's measured default (DefaultSimilarityThreshold).
  double similarity_threshold = 0;
  // Cosine below which no request's own threshold may go (0: requests may loosen freely).
  double min_similarity_threshold = 0;
  std::int64_t ttl_ms = 0;              // 0: entries do not expire unless the request says
  bool sliding_ttl = false;             // a hit restarts the entry's TTL
  bool feedback_deletes_wrong = false;  // a "wrong" label on an entry deletes it
  std::string mode = "serve";           // serve | shadow: record every lookup, serve nothing
  double verify_fraction = 0;           // share of semantic hits the proxy verifies
  double verify_band = 0;               // hits this close above the threshold: verified
  double answer_agreement = 0.9;        // answers at least this similar agree
  double max_error_rate = 0;            // adaptive thresholds' bound; 0: off
  // An A/B experiment: arms as "NAME threshold=T [max_error_rate=E] [weight=W]", and the
  // request attribute that splits requests among them (cache/experiment.h).
  std::vector<std::string> experiment_arms;
  std::string experiment_split;
  std::vector<std::string> allowed_attributes;  // empty: any
  bool guard_numbers = true;
  bool guard_negation = true;
  bool guard_units = true;
  bool guard_dates = true;
  bool guard_entities = true;
  bool guard_direction = true;
  bool guard_antonyms = true;
  bool guard_reason = true;
  // Prompt normalization steps (cache/normalize.h), each on unless turned off.
  bool normalize_nfkc = true;
  bool normalize_casefold = true;
  bool normalize_whitespace = true;
  bool normalize_trim_punctuation = true;
  std::int64_t max_entries = 0;  // 0: no limit
  std::int64_t max_bytes = 0;    // text bytes; 0: no limit
  cache::Eviction eviction = cache::Eviction::kLru;
  std::string store;  // embedded | redis; empty: the top-level `store`
  std::vector<cache::Strategy> search_strategies = {cache::Strategy::kExact,
                                                    cache::Strategy::kSemantic};  // in order
  // Candidates the semantic tier's graph walk keeps (HNSW ef): more finds the nearest entry
  // more surely and costs more per lookup (README, "Semantic search depth").
  std::int64_t search_ef = 24;
  // Nearest entries the semantic tier checks against threshold and guards, best first.
  std::int64_t semantic_candidates = 4;
  // Embedder: "model2vec" (default: a static model in process), "ngram" (model-free;
  // "builtin" is its former name), or "openai" (any OpenAI-compatible /v1/embeddings).
  std::string embedder = "model2vec";
  std::string embedder_url = "http://127.0.0.1:11434/v1";
  // model2vec: empty for the built-in model, a directory, or OWNER/NAME under models_dir
  // (`semcached model pull`); openai: the model to ask for.
  std::string embedder_model;
  std::int64_t embedder_dim = 0;  // required for "openai": vectors are truncated to it
  std::string embedder_api_key_env = "OPENAI_API_KEY";
  std::int64_t embedder_timeout_ms = 5000;
  // Prices of the model calls a hit replaces (USD per million tokens), for cost-saved figures.
  double input_usd_per_mtok = 0.15;
  double output_usd_per_mtok = 0.60;
};

// Durability of the embedded caches (entries and index in data_dir).
struct PersistConfig {
  std::string fsync = "everysec";  // always | everysec | no | off (memory only)
  int snapshot_journal_mb = 64;    // a snapshot replaces the journal past this size
};

struct Config {
  std::string data_dir = "data";
  std::string models_dir;  // where `semcached model pull` puts models; empty: data_dir/models
  std::string model_hub_url = "https://huggingface.co";  // where it pulls them from
  std::string store = "embedded";                        // embedded | redis
  ServerConfig server;
  LogConfig log;
  RedisConfig redis;
  PersistConfig persist;
  ProxyConfig proxy;
  OtelConfig otel;
  // [[caches]] from the file; when none is declared, one cache "default" is served, guarded
  // by default_cache_api_key when that is set.
  std::vector<CacheConfig> caches;
  std::string default_cache_api_key;
  std::string admin_api_key;  // Bearer key of the admin API (/v1/caches); empty: API disabled
};

// Where configuration comes from, lowest precedence first.
struct ConfigSources {
  std::optional<std::string> file;                         // a TOML file path
  std::map<std::string, std::string> env;                  // SEMCACHED_* variables only
  std::vector<std::pair<std::string, std::string>> flags;  // key -> value, in order
};

// Merges the sources over the defaults. The error names the key, the source and the reason.
Result<Config> LoadConfig(const ConfigSources& sources);

// The SEMCACHED_* variables of this process's environment.
std::map<std::string, std::string> SemcachedEnvironment();

// The environment variable that sets a key: "server.port" -> "SEMCACHED_SERVER_PORT".
std::string EnvNameForKey(const std::string& key);

struct KeyInfo {
  std::string name;
  std::string type;
  std::string default_value;
  std::string help;
};
// Every configuration key, for `semcached config --keys` and the README.
std::vector<KeyInfo> ListKeys();
// Every key of a [[caches]] table, the same way.
std::vector<KeyInfo> ListCacheKeys();

// The effective configuration as TOML text, for `semcached config`.
std::string RenderToml(const Config& config);

// "name=value,name2=value2" (spaces around items trimmed; empty items skipped), in order.
Result<std::vector<std::pair<std::string, std::string>>> ParseKeyValues(const std::string& text);

// Cache ids name files in data_dir: 1 to 64 letters, digits, '_' or '-'.
Status ValidateCacheId(const std::string& id);
// The settings of one cache from a JSON object with the keys of a [[caches]] table (the admin
// API), checked exactly as the configuration file's are.
Result<CacheConfig> CacheConfigFromJson(const nlohmann::json& body);
// The settings of a cache as JSON, by the same table (API keys as their count).
nlohmann::json CacheConfigToJson(const CacheConfig& c);
// The caches the configuration serves: its [[caches]], or when none is declared the one cache
// "default" (guarded by default_cache_api_key when that is set).
std::vector<CacheConfig> DeclaredCaches(const Config& config);
// A cache's runtime options from its settings: the one place they are built.
cache::CacheOptions ToCacheOptions(const CacheConfig& c);
// The similarity threshold a cache gets when it sets none, per embedder kind.
double DefaultSimilarityThreshold(const std::string& embedder);

}  // namespace semcached::app
