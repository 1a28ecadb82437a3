#include "app/config.h"

#include <charconv>
#include <cstdlib>
#include <functional>
#include <set>
#include <sstream>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "vector/cpu_features.h"

extern char** environ;

namespace semcached::app {
// One [[caches]] table (or an admin API body turned into one); defined below.
Result<CacheConfig> ParseCacheTable(const toml::table& table, const std::string& where,
                                    const std::string& source);

namespace {

// A value as a source gave it: text (environment, flags) is parsed by the key's type; a TOML
// value must already have the key's type.
struct RawValue {
  enum class Kind { kText, kInt, kBool, kFloat, kOther };
  Kind kind = Kind::kText;
  std::string text;
  std::int64_t integer = 0;
  bool boolean = false;
  double number = 0;
  std::string source;  // "config file x.toml", "environment variable SEMCACHED_...", ...
};

struct KeySpec {
  std::string name;
  std::string type;
  std::string help;
  std::function<Status(Config&, const RawValue&)> set;
  std::function<std::string(const Config&)> get;
};

Status Refuse(const std::string& key, const RawValue& v, const std::string& reason) {
  return InvalidArgument("configuration key '" + key + "' (" + v.source + "): " + reason);
}

const char* KindName(RawValue::Kind k) {
  switch (k) {
    case RawValue::Kind::kText: return "a string";
    case RawValue::Kind::kInt: return "an integer";
    case RawValue::Kind::kBool: return "a boolean";
    case RawValue::Kind::kFloat: return "a float";
    case RawValue::Kind::kOther: return "a table or array";
  }
  return "a value";
}

template <typename Int>
KeySpec IntKey(std::string name, Int& (*field)(Config&), std::int64_t min, std::int64_t max,
               std::string help) {
  KeySpec k;
  k.name = name;
  k.type = "integer " + std::to_string(min) + ".." + std::to_string(max);
  k.help = std::move(help);
  k.set = [name, field, min, max](Config& c, const RawValue& v) -> Status {
    std::int64_t parsed = 0;
    if (v.kind == RawValue::Kind::kInt) {
      parsed = v.integer;
    } else if (v.kind == RawValue::Kind::kText && v.source.rfind("config file", 0) != 0) {
      const char* b = v.text.data();
      const char* e = b + v.text.size();
      auto [ptr, ec] = std::from_chars(b, e, parsed);
      if (ec != std::errc() || ptr != e || v.text.empty()) {
        return Refuse(name, v, "'" + v.text + "' is not an integer");
      }
    } else {
      return Refuse(name, v, std::string("expected an integer, got ") + KindName(v.kind));
    }
    if (parsed < min || parsed > max) {
      return Refuse(name, v,
                    std::to_string(parsed) + " is out of range " + std::to_string(min) + ".." +
                        std::to_string(max));
    }
    field(c) = static_cast<Int>(parsed);
    return Status::Ok();
  };
  k.get = [field](const Config& c) { return std::to_string(field(const_cast<Config&>(c))); };
  return k;
}

KeySpec DoubleKey(std::string name, double& (*field)(Config&), double min, double max,
                  std::string help) {
  KeySpec k;
  k.name = name;
  k.type = "number";
  k.help = std::move(help);
  k.set = [name, field, min, max](Config& c, const RawValue& v) -> Status {
    double parsed = 0;
    if (v.kind == RawValue::Kind::kFloat) {
      parsed = v.number;
    } else if (v.kind == RawValue::Kind::kInt) {
      parsed = static_cast<double>(v.integer);
    } else if (v.kind == RawValue::Kind::kText && v.source.rfind("config file", 0) != 0) {
      char* end = nullptr;
      parsed = std::strtod(v.text.c_str(), &end);
      if (v.text.empty() || end != v.text.c_str() + v.text.size()) {
        return Refuse(name, v, "'" + v.text + "' is not a number");
      }
    } else {
      return Refuse(name, v, std::string("expected a number, got ") + KindName(v.kind));
    }
    if (!(parsed >= min && parsed <= max)) {
      return Refuse(name, v, "out of range " + std::to_string(min) + ".." + std::to_string(max));
    }
    field(c) = parsed;
    return Status::Ok();
  };
  k.get = [field](const Config& c) {
    std::ostringstream out;
    out << field(const_cast<Config&>(c));
    return out.str();
  };
  return k;
}

KeySpec StringKey(std::string name, std::string& (*field)(Config&),
                  std::vector<std::string> allowed, std::string help) {
  KeySpec k;
  k.name = name;
  if (allowed.empty()) {
    k.type = "string";
  } else {
    k.type = "one of";
    for (const auto& a : allowed) k.type += " " + a;
  }
  k.help = std::move(help);
  k.set = [name, field, allowed](Config& c, const RawValue& v) -> Status {
    if (v.kind != RawValue::Kind::kText) {
      return Refuse(name, v, std::string("expected a string, got ") + KindName(v.kind));
    }
    if (!allowed.empty()) {
      bool found = false;
      for (const auto& a : allowed) found = found || a == v.text;
      if (!found) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return Refuse(name, v, "'" + v.text + "' is not one of: " + list);
      }
    }
    field(c) = v.text;
    return Status::Ok();
  };
  k.get = [field](const Config& c) { return field(const_cast<Config&>(c)); };
  return k;
}

const std::vector<KeySpec>& Keys() {
  static const std::vector<KeySpec> keys = [] {
    constexpr std::int64_t kMaxMs = 24LL * 3600 * 1000;
    std::vector<KeySpec> k;
    k.push_back(StringKey(
        "data_dir", [](Config& c) -> std::string& { return c.data_dir; }, {},
        "directory for the embedded store's files (created if missing)"));
    k.push_back(StringKey(
        "store", [](Config& c) -> std::string& { return c.store; }, {"embedded", "redis"},
        "default vector store of caches"));
    k.push_back(StringKey(
        "default_cache_api_key", [](Config& c) -> std::string& { return c.default_cache_api_key; },
        {}, "API key of the cache 'default' (served when no [[caches]] is declared)"));
    k.push_back(StringKey(
        "admin_api_key", [](Config& c) -> std::string& { return c.admin_api_key; }, {},
        "Bearer key of the admin API (POST/GET/DELETE /v1/caches); empty: disabled"));
    k.push_back(StringKey(
        "server.host", [](Config& c) -> std::string& { return c.server.host; }, {},
        "address to listen on"));
    k.push_back(IntKey<int>(
        "server.port", [](Config& c) -> int& { return c.server.port; }, 0, 65535,
        "TCP port; 0 picks a free one (see server.port_file)"));
    k.push_back(IntKey<int>(
        "server.threads", [](Config& c) -> int& { return c.server.threads; }, 0, 256,
        "I/O threads; 0 means one per core"));
    k.push_back(IntKey<std::int64_t>(
        "server.max_header_bytes",
        [](Config& c) -> std::int64_t& { return c.server.max_header_bytes; }, 1024, 1 << 20,
        "largest request head accepted (431 beyond)"));
    k.push_back(IntKey<std::int64_t>(
        "server.max_body_bytes", [](Config& c) -> std::int64_t& { return c.server.max_body_bytes; },
        1024, 1LL << 30, "largest request body accepted (413 beyond)"));
    k.push_back(IntKey<int>(
        "server.read_timeout_ms", [](Config& c) -> int& { return c.server.read_timeout_ms; }, 10,
        kMaxMs, "time allowed to receive a whole request once it has started"));
    k.push_back(IntKey<int>(
        "server.idle_timeout_ms", [](Config& c) -> int& { return c.server.idle_timeout_ms; }, 10,
        kMaxMs, "time a connection may stay open with no request"));
    k.push_back(IntKey<int>(
        "server.write_timeout_ms", [](Config& c) -> int& { return c.server.write_timeout_ms; }, 10,
        kMaxMs, "time allowed to send a response"));
    k.push_back(IntKey<int>(
        "server.shutdown_timeout_ms",
        [](Config& c) -> int& { return c.server.shutdown_timeout_ms; }, 0, kMaxMs,
        "on SIGTERM/SIGINT, how long requests in flight may finish"));
    k.push_back(IntKey<int>(
        "server.max_connections", [](Config& c) -> int& { return c.server.max_connections; }, 1,
        1'000'000, "open connections beyond this are closed at accept"));
    k.push_back(IntKey<int>(
        "server.worker_threads", [](Config& c) -> int& { return c.server.worker_threads; }, 1, 1024,
        "threads for routes that wait on upstreams (the caching proxy)"));
    k.push_back(StringKey(
        "server.port_file", [](Config& c) -> std::string& { return c.server.port_file; }, {},
        "file the bound port is written to once listening (empty: none)"));
    k.push_back(StringKey(
        "log.level", [](Config& c) -> std::string& { return c.log.level; },
        {"trace", "debug", "info", "warn", "error", "critical", "off"},
        "log level; debug logs one line per request"));
    k.push_back(StringKey(
        "log.format", [](Config& c) -> std::string& { return c.log.format; }, {"text", "json"},
        "text lines or JSON lines"));
    k.push_back(StringKey(
        "persist.fsync", [](Config& c) -> std::string& { return c.persist.fsync; },
        {"always", "everysec", "no", "off"},
        "embedded caches: always (no acknowledged write lost), everysec (at most ~1 s), "
        "no (the OS decides), off (memory only)"));
    k.push_back(IntKey<int>(
        "persist.snapshot_journal_mb",
        [](Config& c) -> int& { return c.persist.snapshot_journal_mb; }, 1, 1 << 20,
        "a cache writes a snapshot and starts a new journal past this many MB"));
    k.push_back(StringKey(
        "redis.url", [](Config& c) -> std::string& { return c.redis.url; }, {},
        "redis://[user:password@]host:port[/db]; empty means no Redis"));
    k.push_back(IntKey<int>(
        "redis.connect_timeout_ms", [](Config& c) -> int& { return c.redis.connect_timeout_ms; }, 1,
        kMaxMs, "timeout to connect to Redis"));
    k.push_back(IntKey<int>(
        "redis.command_timeout_ms", [](Config& c) -> int& { return c.redis.command_timeout_ms; }, 1,
        kMaxMs, "timeout of each Redis command, retries included"));
    k.push_back(IntKey<int>(
        "redis.protocol", [](Config& c) -> int& { return c.redis.protocol; }, 2, 3,
        "RESP protocol version: 2, or 3 (HELLO 3)"));
    k.push_back(IntKey<int>(
        "redis.pool_min", [](Config& c) -> int& { return c.redis.pool_min; }, 0, 1000,
        "connections kept open to each Redis server"));
    k.push_back(IntKey<int>(
        "redis.pool_max", [](Config& c) -> int& { return c.redis.pool_max; }, 1, 1000,
        "most connections to each Redis server"));
    k.push_back(IntKey<int>(
        "redis.max_retries", [](Config& c) -> int& { return c.redis.max_retries; }, 0, 10,
        "retries of a command after a transient error (backoff with jitter)"));
    k.push_back(IntKey<int>(
        "redis.breaker_failures", [](Config& c) -> int& { return c.redis.breaker_failures; }, 1,
        1000, "consecutive failures that open the circuit breaker"));
    k.push_back(IntKey<int>(
        "redis.breaker_open_ms", [](Config& c) -> int& { return c.redis.breaker_open_ms; }, 10,
        kMaxMs, "time the breaker stays open before it probes Redis again"));
    k.push_back(StringKey(
        "redis.cluster_seeds", [](Config& c) -> std::string& { return c.redis.cluster_seeds; }, {},
        "host:port,... of Redis Cluster masters; empty: the single server of redis.url"));
    k.push_back(StringKey(
        "redis.tls_ca_file", [](Config& c) -> std::string& { return c.redis.tls_ca_file; }, {},
        "CA certificates for rediss:// (empty: the system's trust store)"));
    k.push_back(StringKey(
        "proxy.openai_base_url", [](Config& c) -> std::string& { return c.proxy.openai_base_url; },
        {}, "where the proxy sends OpenAI requests (the request path is appended)"));
    k.push_back(StringKey(
        "proxy.anthropic_base_url",
        [](Config& c) -> std::string& { return c.proxy.anthropic_base_url; }, {},
        "where the proxy sends Anthropic requests"));
    k.push_back(StringKey(
        "proxy.gemini_base_url", [](Config& c) -> std::string& { return c.proxy.gemini_base_url; },
        {}, "where the proxy sends Gemini requests"));
    k.push_back(StringKey(
        "proxy.cache", [](Config& c) -> std::string& { return c.proxy.cache; }, {},
        "the cache the proxy stores in and answers from"));
    k.push_back(IntKey<int>(
        "proxy.timeout_ms", [](Config& c) -> int& { return c.proxy.timeout_ms; }, 100, kMaxMs,
        "timeout of each upstream LLM call"));
    k.push_back(StringKey(
        "proxy.outbound_proxy", [](Config& c) -> std::string& { return c.proxy.outbound_proxy; },
        {}, "HTTP(S) proxy for upstream calls; empty: none"));
    k.push_back(StringKey(
        "proxy.prices", [](Config& c) -> std::string& { return c.proxy.prices; }, {},
        "model=input/output,... USD per million tokens, over the built-in price table"));
    k.push_back(DoubleKey(
        "proxy.max_temperature", [](Config& c) -> double& { return c.proxy.max_temperature; }, 0,
        10, "requests with a higher temperature are passed through, not cached"));
    k.push_back(IntKey<int>(
        "proxy.max_n", [](Config& c) -> int& { return c.proxy.max_n; }, 1, 128,
        "requests asking for more choices (n, candidateCount) are passed through"));
    k.push_back(StringKey(
        "proxy.scope_fields", [](Config& c) -> std::string& { return c.proxy.scope_fields; }, {},
        "comma-separated request fields that must match exactly for a hit (sampling, tools...); "
        "empty: the built-in list"));
    k.push_back(StringKey(
        "proxy.openai_api_key_env",
        [](Config& c) -> std::string& { return c.proxy.openai_api_key_env; }, {},
        "variable with an OpenAI key for clients that send none; empty: pass-through only"));
    k.push_back(StringKey(
        "proxy.anthropic_api_key_env",
        [](Config& c) -> std::string& { return c.proxy.anthropic_api_key_env; }, {},
        "variable with an Anthropic key for clients that send none"));
    k.push_back(StringKey(
        "proxy.gemini_api_key_env",
        [](Config& c) -> std::string& { return c.proxy.gemini_api_key_env; }, {},
        "variable with a Gemini key for clients that send none"));
    return k;
  }();
  return keys;
}

const KeySpec* FindKey(const std::string& name) {
  for (const auto& k : Keys()) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

// Variables read by parts of the program other than this loader (checked here all the same).
const std::set<std::string>& EnvironmentNotKeys() {
  static const std::set<std::string> names = {"SEMCACHED_CONFIG", "SEMCACHED_SIMD"};
  return names;
}

Result<std::vector<std::string>> StringArray(const toml::node& node, const std::string& key,
                                             const std::string& file) {
  std::vector<std::string> out;
  const auto* arr = node.as_array();
  if (arr == nullptr) {
    return InvalidArgument("configuration key '" + key + "' (config file " + file +
                           "): expected an array of strings");
  }
  for (const auto& item : *arr) {
    auto v = item.value<std::string>();
    if (!item.is_string() || !v) {
      return InvalidArgument("configuration key '" + key + "' (config file " + file +
                             "): expected an array of strings");
    }
    out.push_back(*v);
  }
  return out;
}

// [[caches]]: an array of tables, each one cache.
Status ApplyCaches(Config& config, const toml::node& node, const std::string& file) {
  const auto* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    return InvalidArgument("configuration key 'caches' (config file " + file +
                           "): expected [[caches]] tables");
  }
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string where = "caches[" + std::to_string(i) + "].";
    auto c = ParseCacheTable(*(*arr)[i].as_table(), where, "config file " + file);
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
    RawValue v;
    v.source = "config file " + file;
    if (spec == nullptr) {
      return InvalidArgument("unknown configuration key '" + key + "' (" + v.source + ")");
    }
    if (auto s = node.value<std::string>(); node.is_string() && s) {
      v.kind = RawValue::Kind::kText;
      v.text = *s;
    } else if (node.is_integer()) {
      v.kind = RawValue::Kind::kInt;
      v.integer = *node.value<std::int64_t>();
    } else if (node.is_boolean()) {
      v.kind = RawValue::Kind::kBool;
      v.boolean = *node.value<bool>();
    } else if (node.is_floating_point()) {
      v.kind = RawValue::Kind::kFloat;
      v.number = *node.value<double>();
    } else {
      v.kind = RawValue::Kind::kOther;
    }
    Status s = spec->set(config, v);
    if (!s.ok()) return s;
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
  v.text = text;
  v.source = source;
  return spec->set(config, v);
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
  for (const auto& k : Keys()) out.push_back({k.name, k.type, k.get(defaults), k.help});
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
    bool numeric = k.type.rfind("integer", 0) == 0 || k.type == "number";
    std::string value = k.get(config);
    if ((k.name == "default_cache_api_key" || k.name == "admin_api_key") && !value.empty())
      value = "***";
    out << leaf << " = ";
    if (numeric) {
      out << value;
    } else {
      out << toml::value<std::string>(value);
    }
    out << "  # " << k.help << "\n";
  }
  for (const auto& c : config.caches) {
    out << "\n[[caches]]\nid = " << toml::value<std::string>(c.id) << "\napi_keys = [";
    for (std::size_t i = 0; i < c.api_keys.size(); ++i) out << (i ? ", " : "") << "'***'";
    out << "]  # keys are not printed\nsimilarity_threshold = " << c.similarity_threshold
        << "\nttl_ms = " << c.ttl_ms << "\nsliding_ttl = " << (c.sliding_ttl ? "true" : "false")
        << "\nallowed_attributes = [";
    for (std::size_t i = 0; i < c.allowed_attributes.size(); ++i) {
      out << (i ? ", " : "") << toml::value<std::string>(c.allowed_attributes[i]);
    }
    out << "]\nguard_numbers = " << (c.guard_numbers ? "true" : "false")
        << "\nguard_negation = " << (c.guard_negation ? "true" : "false")
        << "\nnormalize_nfkc = " << (c.normalize_nfkc ? "true" : "false")
        << "\nnormalize_casefold = " << (c.normalize_casefold ? "true" : "false")
        << "\nnormalize_whitespace = " << (c.normalize_whitespace ? "true" : "false")
        << "\nnormalize_trim_punctuation = " << (c.normalize_trim_punctuation ? "true" : "false")
        << "\nmax_entries = " << c.max_entries << "\nmax_bytes = " << c.max_bytes
        << "\neviction = " << toml::value<std::string>(c.eviction)
        << "\nsearch_ef = " << c.search_ef
        << (c.store.empty() ? std::string()
                            : "\nstore = " + std::string(toml::value<std::string>(c.store).get()))
        << "\nsearch_strategies = [" <<
        [&] {
          std::string list;
          for (const auto& st : c.search_strategies)
            list += (list.empty() ? "" : ", ") + std::string("\"") + st + "\"";
          return list;
        }()
        << "]"
        << "\ninput_usd_per_mtok = " << c.input_usd_per_mtok
        << "\noutput_usd_per_mtok = " << c.output_usd_per_mtok
        << "\nembedder = " << toml::value<std::string>(c.embedder);
    if (c.embedder == "openai") {
      out << "\nembedder_url = " << toml::value<std::string>(c.embedder_url)
          << "\nembedder_model = " << toml::value<std::string>(c.embedder_model)
          << "\nembedder_dim = " << c.embedder_dim
          << "\nembedder_api_key_env = " << toml::value<std::string>(c.embedder_api_key_env)
          << "\nembedder_timeout_ms = " << c.embedder_timeout_ms;
    }
    out << "\n";
  }
  return out.str();
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

Result<CacheConfig> ParseCacheTable(const toml::table& table, const std::string& where,
                                    const std::string& source) {
  CacheConfig c;
  auto refuse = [&](const std::string& key, const std::string& why) {
    return InvalidArgument("configuration key '" + where + key + "' (" + source + "): " + why)
        .WithField(key, "valid", why);
  };
  for (const auto& [raw, value] : table) {
    std::string key(raw.str());
    if (key == "id") {
      auto v = value.value<std::string>();
      if (!value.is_string() || !v || !ValidateCacheId(*v).ok()) {
        return refuse(key, "expected 1 to 64 letters, digits, '_' or '-'");
      }
      c.id = *v;
    } else if (key == "api_keys" || key == "allowed_attributes") {
      auto v = StringArray(value, where + key, source);
      if (!v.ok()) return v.status();
      (key == "api_keys" ? c.api_keys : c.allowed_attributes) = *v;
    } else if (key == "similarity_threshold") {
      auto v = value.value<double>();
      if (!(value.is_floating_point() || value.is_integer()) || !v || *v < 0 || *v > 1) {
        return refuse(key, "expected a number within 0..1");
      }
      c.similarity_threshold = *v;
    } else if (key == "input_usd_per_mtok" || key == "output_usd_per_mtok") {
      auto v = value.value<double>();
      if (!(value.is_floating_point() || value.is_integer()) || !v || *v < 0 || *v > 1e6) {
        return refuse(key, "expected a non-negative number of USD per million tokens");
      }
      (key == "input_usd_per_mtok" ? c.input_usd_per_mtok : c.output_usd_per_mtok) = *v;
    } else if (key == "ttl_ms") {
      auto v = value.value<std::int64_t>();
      if (!value.is_integer() || !v || *v < 0)
        return refuse(key, "expected a non-negative integer");
      c.ttl_ms = *v;
    } else if (key == "search_ef") {
      auto v = value.value<std::int64_t>();
      if (!value.is_integer() || !v || *v < 1 || *v > 4096)
        return refuse(key, "expected an integer within 1..4096");
      c.search_ef = *v;
    } else if (key == "max_entries" || key == "max_bytes") {
      auto v = value.value<std::int64_t>();
      if (!value.is_integer() || !v || *v < 0)
        return refuse(key, "expected a non-negative integer");
      (key == "max_entries" ? c.max_entries : c.max_bytes) = *v;
    } else if (key == "search_strategies") {
      auto v = StringArray(value, where + key, source);
      if (!v.ok()) return v.status();
      if (v->empty()) return refuse(key, "expected at least one of: exact, semantic");
      for (std::size_t i = 0; i < v->size(); ++i) {
        if ((*v)[i] != "exact" && (*v)[i] != "semantic")
          return refuse(key, "expected exact or semantic, not '" + (*v)[i] + "'");
        for (std::size_t j = 0; j < i; ++j) {
          if ((*v)[j] == (*v)[i]) return refuse(key, "'" + (*v)[i] + "' is listed twice");
        }
      }
      c.search_strategies = *v;
    } else if (key == "store") {
      auto v = value.value<std::string>();
      if (!value.is_string() || !v || (*v != "embedded" && *v != "redis")) {
        return refuse(key, "expected one of: embedded, redis");
      }
      c.store = *v;
    } else if (key == "eviction") {
      auto v = value.value<std::string>();
      if (!value.is_string() || !v || (*v != "lru" && *v != "lfu" && *v != "value")) {
        return refuse(key, "expected one of: lru, lfu, value");
      }
      c.eviction = *v;
    } else if (key == "embedder" || key == "embedder_url" || key == "embedder_model" ||
               key == "embedder_api_key_env") {
      auto v = value.value<std::string>();
      if (!value.is_string() || !v) return refuse(key, "expected a string");
      if (key == "embedder" && *v != "builtin" && *v != "openai")
        return refuse(key, "expected one of: builtin, openai");
      (key == "embedder"         ? c.embedder
       : key == "embedder_url"   ? c.embedder_url
       : key == "embedder_model" ? c.embedder_model
                                 : c.embedder_api_key_env) = *v;
    } else if (key == "embedder_dim" || key == "embedder_timeout_ms") {
      auto v = value.value<std::int64_t>();
      if (!value.is_integer() || !v || *v < 1 ||
          *v > 65535 * (key == "embedder_timeout_ms" ? 1000 : 1)) {
        return refuse(key, "expected a positive integer");
      }
      (key == "embedder_dim" ? c.embedder_dim : c.embedder_timeout_ms) = *v;
    } else if (key == "guard_numbers" || key == "guard_negation" || key == "sliding_ttl" ||
               key == "normalize_nfkc" || key == "normalize_casefold" ||
               key == "normalize_whitespace" || key == "normalize_trim_punctuation") {
      auto v = value.value<bool>();
      if (!value.is_boolean() || !v) return refuse(key, "expected true or false");
      (key == "guard_numbers"          ? c.guard_numbers
       : key == "guard_negation"       ? c.guard_negation
       : key == "sliding_ttl"          ? c.sliding_ttl
       : key == "normalize_nfkc"       ? c.normalize_nfkc
       : key == "normalize_casefold"   ? c.normalize_casefold
       : key == "normalize_whitespace" ? c.normalize_whitespace
                                       : c.normalize_trim_punctuation) = *v;
    } else {
      return InvalidArgument("unknown configuration key '" + where + key + "' (" + source + ")")
          .WithField(key, "known", "not a cache setting");
    }
  }
  if (c.id.empty()) return refuse("id", "every cache needs an id");
  if (c.embedder == "openai" && (c.embedder_dim == 0 || c.embedder_model.empty())) {
    return refuse("embedder", "an \"openai\" embedder needs embedder_model and embedder_dim");
  }
  return c;
}

// JSON objects (the admin API's bodies) become TOML tables and go through the same checks.
Result<CacheConfig> CacheConfigFromJson(const nlohmann::json& body) {
  if (!body.is_object()) return InvalidArgument("the body must be a JSON object of cache settings");
  toml::table table;
  for (const auto& [key, value] : body.items()) {
    if (value.is_string()) {
      table.insert(key, value.get<std::string>());
    } else if (value.is_boolean()) {
      table.insert(key, value.get<bool>());
    } else if (value.is_number_integer()) {
      table.insert(key, value.get<std::int64_t>());
    } else if (value.is_number()) {
      table.insert(key, value.get<double>());
    } else if (value.is_array()) {
      toml::array arr;
      for (const auto& item : value) {
        if (!item.is_string()) {
          return InvalidArgument("'" + key + "' must be an array of strings")
              .WithField(key, "strings", "expected strings");
        }
        arr.push_back(item.get<std::string>());
      }
      table.insert(key, std::move(arr));
    } else {
      return InvalidArgument("'" + key + "' has a value of the wrong type")
          .WithField(key, "type", "wrong type");
    }
  }
  return ParseCacheTable(table, "", "request body");
}

}  // namespace semcached::app
