// semcached: the command-line entry point. Parses the command line, loads configuration,
// and starts what was asked for. Exceptions are allowed here (start-up only); request paths
// never throw.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "app/cache_admin.h"
#include "app/config.h"
#include "app/import.h"
#include "app/model_command.h"
#include "app/model_pull.h"
#include "app/plan.h"
#include "app/reembed.h"
#include "app/telemetry.h"
#include "app/tune.h"
#include "app/warm.h"
#include "cache/registry.h"
#include "common/durable_file.h"
#include "common/logging.h"
#include "common/memory.h"
#include "redis/client.h"
#include "redis/cluster.h"
#include "redis/probe.h"
#include "server/admin_routes.h"
#include "server/http_server.h"
#include "server/langcache_routes.h"
#include "server/metrics.h"
#include "server/proxy_routes.h"
#include "server/redis_metrics.h"
#include "server/router.h"
#include "server/system_routes.h"
#include "vector/cpu_features.h"

#ifndef SEMCACHED_VERSION
#define SEMCACHED_VERSION "0.0.0"
#endif
#ifndef SEMCACHED_GIT
#define SEMCACHED_GIT "unknown"
#endif
#ifndef SEMCACHED_BUILD_TYPE
#define SEMCACHED_BUILD_TYPE "unknown"
#endif

namespace semcached::app {
namespace {

constexpr int kExitConfig = 2;
constexpr int kExitRuntime = 1;

// Options every subcommand that reads configuration accepts.
struct ConfigOptions {
  std::string config_file;
  std::vector<std::string> sets;
  std::string host, data_dir, log_level, log_format, redis_url;
  int port = -1;
};

void AddConfigOptions(CLI::App* cmd, ConfigOptions& o) {
  cmd->add_option("-c,--config", o.config_file, "TOML configuration file (or SEMCACHED_CONFIG)");
  cmd->add_option("--set", o.sets, "KEY=VALUE for any configuration key (repeatable)");
  cmd->add_option("--host", o.host, "server.host");
  cmd->add_option("-p,--port", o.port, "server.port");
  cmd->add_option("--data-dir", o.data_dir, "data_dir");
  cmd->add_option("--log-level", o.log_level, "log.level");
  cmd->add_option("--log-format", o.log_format, "log.format");
  cmd->add_option("--redis-url", o.redis_url, "redis.url");
}

Result<Config> Load(const ConfigOptions& o) {
  ConfigSources src;
  src.env = SemcachedEnvironment();
  if (!o.config_file.empty()) {
    src.file = o.config_file;
  } else if (auto it = src.env.find("SEMCACHED_CONFIG");
             it != src.env.end() && !it->second.empty()) {
    src.file = it->second;
  }
  for (const auto& kv : o.sets) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--set '" + kv + "': expected KEY=VALUE");
    }
    src.flags.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  // Named flags come after --set so the more specific spelling wins when both are given.
  if (!o.host.empty()) src.flags.emplace_back("server.host", o.host);
  if (o.port >= 0) src.flags.emplace_back("server.port", std::to_string(o.port));
  if (!o.data_dir.empty()) src.flags.emplace_back("data_dir", o.data_dir);
  if (!o.log_level.empty()) src.flags.emplace_back("log.level", o.log_level);
  if (!o.log_format.empty()) src.flags.emplace_back("log.format", o.log_format);
  if (!o.redis_url.empty()) src.flags.emplace_back("redis.url", o.redis_url);
  return LoadConfig(src);
}

Status WritePortFile(const std::string& path, int port) {
  Status s = WriteFileDurably(path, std::to_string(port) + "\n");
  if (!s.ok()) return Unavailable("cannot write server.port_file: " + s.message());
  return Status::Ok();
}

// The Redis connection of a serving process: one pooled client, or one per Cluster master.
// Metrics are declared first so that they outlive the clients reporting to them.
struct RedisBackend {
  std::unique_ptr<server::RedisMetrics> metrics;
  std::unique_ptr<redis::Client> single;
  std::unique_ptr<redis::ClusterClient> cluster;
  redis::Executor* executor = nullptr;
};

Result<RedisBackend> ConnectRedis(const Config& config, server::Metrics& metrics) {
  auto options = redis::ClientOptionsFromUrl(config.redis.url);
  if (!options.ok()) return options.status();
  const auto& r = config.redis;
  options->connect_timeout_ms = r.connect_timeout_ms;
  options->command_timeout_ms = r.command_timeout_ms;
  options->protocol = r.protocol;
  options->pool_min = static_cast<std::size_t>(r.pool_min);
  options->pool_max = static_cast<std::size_t>(r.pool_max);
  options->max_retries = r.max_retries;
  options->breaker_failures = r.breaker_failures;
  options->breaker_open_ms = r.breaker_open_ms;
  options->tls_ca_file = r.tls_ca_file;
  RedisBackend backend;
  backend.metrics = std::make_unique<server::RedisMetrics>(metrics);
  if (r.cluster_seeds.empty()) {
    auto client = redis::Client::Create(*options, backend.metrics.get());
    if (!client.ok()) return client.status();
    backend.single = std::move(*client);
    backend.executor = backend.single.get();
    redis::Client* c = backend.single.get();
    backend.metrics->SetStatsSource([c] { return c->Stats(); });
    return backend;
  }
  std::vector<std::string> seeds;
  std::string list = r.cluster_seeds;
  for (std::size_t pos = 0; pos <= list.size();) {
    auto comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    if (comma > pos) seeds.push_back(list.substr(pos, comma - pos));
    pos = comma + 1;
  }
  auto cluster = redis::ClusterClient::Create(*options, seeds, backend.metrics.get());
  if (!cluster.ok()) return cluster.status();
  backend.cluster = std::move(*cluster);
  backend.executor = backend.cluster.get();
  redis::ClusterClient* c = backend.cluster.get();
  backend.metrics->SetStatsSource([c] {
    redis::ClientStats sum;
    for (const auto& [node, s] : c->NodeStats()) {
      sum.connections += s.connections;
      sum.connections_busy += s.connections_busy;
      sum.in_flight += s.in_flight;
      sum.waiting += s.waiting;
      sum.breaker = std::max(sum.breaker, s.breaker);
      sum.commands += s.commands;
      sum.retries += s.retries;
      sum.failures += s.failures;
      sum.breaker_opened += s.breaker_opened;
      sum.connects += s.connects;
      sum.bytes_sent += s.bytes_sent;
      sum.bytes_received += s.bytes_received;
    }
    return sum;
  });
  return backend;
}

// The caches keep per-entry expiry on their hashes and never a TTL on a vector set; an
// allkeys-* policy could still evict a whole vector set at once.
void WarnAboutEviction(redis::Executor& executor) {
  auto policy = redis::MaxmemoryPolicy(executor);
  if (!policy.ok()) {
    spdlog::info(
        "could not read Redis's maxmemory-policy ({}): it should be noeviction or a volatile-* "
        "policy, so that Redis never evicts a cache's vector set (README, Redis)",
        policy.status().message());
  } else if (redis::EvictsKeysWithoutTtl(*policy)) {
    spdlog::warn(
        "Redis's maxmemory-policy is {}: under memory pressure Redis may evict a cache's whole "
        "vector set (its index) at once; set noeviction or a volatile-* policy (semcached "
        "expires entries itself)",
        *policy);
  }
}

// Redis checks hit the network; /readyz may be polled often, so a result is kept a second.
server::ReadinessCheck RedisReadiness(redis::Executor& executor, int timeout_ms) {
  struct Cached {
    std::mutex mu;
    std::chrono::steady_clock::time_point at;
    Status last = Unavailable("not checked yet");
    bool valid = false;
  };
  auto cache = std::make_shared<Cached>();
  return {"redis", [&executor, timeout_ms, cache]() {
            std::lock_guard<std::mutex> lock(cache->mu);
            auto now = std::chrono::steady_clock::now();
            if (!cache->valid || now - cache->at > std::chrono::seconds(1)) {
              redis::CommandOptions o;
              o.timeout_ms = timeout_ms;
              auto pong = executor.Execute({"PING"}, o);
              cache->last = !pong.ok()        ? pong.status()
                            : pong->IsError() ? Unavailable("redis PING: " + pong->str)
                                              : Status::Ok();
              cache->at = now;
              cache->valid = true;
            }
            return cache->last;
          }};
}

Result<std::unique_ptr<cache::CacheRegistry>> BuildCaches(const Config& config,
                                                          redis::Executor* redis) {
  // serve creates data_dir before this runs.
  auto registry = std::make_unique<cache::CacheRegistry>();
  for (const auto& c : DeclaredCaches(config)) {
    auto made = MakeCache(config, c, redis);
    if (!made.ok()) return made.status();
    Status s = registry->Add(std::move(*made), c.api_keys);
    if (!s.ok()) return s;
    if (c.api_keys.empty()) {
      spdlog::warn("cache '{}' has no API keys: any caller may use it", c.id);
    }
  }
  // What restoring the caches from disk allocated and freed goes back to the system
  // (measured: 293 MB resident after restoring 100,000 entries, 181 MB after).
  ReleaseFreeMemory();
  return registry;
}

// Removes expired entries from every cache once a second until stopped, writes a snapshot of
// a cache whose journal has grown past its limit, shares labels between instances and refits
// the clusters of adaptive caches that have grown.
class Sweeper {
 public:
  explicit Sweeper(cache::CacheRegistry& registry)
      : thread_([this, &registry] {
          std::unique_lock<std::mutex> lock(mu_);
          while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
            lock.unlock();
            for (const auto& c : registry.All()) {
              std::size_t n = c->Sweep();
              if (n > 0) spdlog::debug("cache {}: {} expired entries removed", c->options().id, n);
              if (Status s = c->MaybeSnapshot(); !s.ok()) {
                spdlog::error("cache {}: snapshot: {}", c->options().id, s.message());
              }
              if (Status s = c->ShareLabels(); !s.ok()) {
                spdlog::warn("cache {}: sharing labels: {}", c->options().id, s.message());
              }
              if (Status s = c->MaintainClusters(); !s.ok()) {
                spdlog::warn("cache {}: fitting clusters: {}", c->options().id, s.message());
              }
            }
            lock.lock();
          }
        }) {}
  ~Sweeper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

int Serve(const Config& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create data_dir '{}': {}", config.data_dir, ec.message());
    return kExitConfig;
  }

  // One process per data directory: two would write the same journals.
  const std::string lock_path = config.data_dir + "/semcached.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    spdlog::critical("data_dir '{}' is in use by another semcached process (lock {})",
                     config.data_dir, lock_path);
    return kExitConfig;
  }

  server::Metrics metrics;
  metrics.SetBuildInfo(SEMCACHED_VERSION, SEMCACHED_GIT,
                       std::string(vector::SimdLevelName(vector::ActiveSimdLevel())));
  metrics.SetLatencyObjective(config.server.latency_objective_ms / 1000.0);
  server::Router router;
  server::HttpServer http(config.server, router, metrics);  // its ServerOptions part

  std::vector<server::ReadinessCheck> checks;
  std::string data_dir = config.data_dir;
  checks.push_back({"embedded", [data_dir]() {
                      return access(data_dir.c_str(), W_OK) == 0
                                 ? Status::Ok()
                                 : Unavailable("data_dir '" + data_dir + "' is not writable");
                    }});
  RedisBackend redis_backend;
  if (!config.redis.url.empty()) {
    auto backend = ConnectRedis(config, metrics);
    if (!backend.ok()) {
      spdlog::critical("{}", backend.status().message());
      return kExitConfig;
    }
    redis_backend = std::move(*backend);
    WarnAboutEviction(*redis_backend.executor);
    checks.push_back(RedisReadiness(*redis_backend.executor, config.redis.connect_timeout_ms));
  }
  // With Redis, /metrics reads the Redis caches' counts and /readyz pings it: both then run
  // off the I/O threads.
  server::AddSystemRoutes(router, metrics, &http, std::move(checks),
                          /*network=*/!config.redis.url.empty());
  auto caches = BuildCaches(config, redis_backend.executor);
  if (!caches.ok()) {
    spdlog::critical("{}", caches.status().message());
    return kExitConfig;
  }
  server::PoolSampler pool_sampler;
  if (redis_backend.metrics) {
    // Ten looks at the pool over 200 ms: how busy it is, and whether commands wait.
    pool_sampler = [&redis_backend, &config]() -> std::optional<cache::PoolSample> {
      const std::size_t nodes =
          redis_backend.cluster
              ? std::max<std::size_t>(1, redis_backend.cluster->NodeStats().size())
              : 1;
      cache::PoolSample p;
      p.pool_max = static_cast<std::size_t>(config.redis.pool_max);
      double busy = 0;
      for (int i = 0; i < 10; ++i) {
        const redis::ClientStats s = redis_backend.metrics->Stats();
        busy += static_cast<double>(s.connections_busy);
        p.waiting = std::max(p.waiting, s.waiting);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      p.busy_share = busy / 10 / static_cast<double>(p.pool_max * nodes);
      return p;
    };
  }
  server::AddLangCacheRoutes(router, **caches, metrics, pool_sampler);
  server::ProxyOptions proxy;
  proxy.openai_base_url = config.proxy.openai_base_url;
  proxy.anthropic_base_url = config.proxy.anthropic_base_url;
  proxy.gemini_base_url = config.proxy.gemini_base_url;
  proxy.cache_id = config.proxy.cache;
  proxy.upstream.timeout_ms = config.proxy.timeout_ms;
  proxy.upstream.proxy = config.proxy.outbound_proxy;
  proxy.policy.max_temperature = config.proxy.max_temperature;
  proxy.policy.max_n = config.proxy.max_n;
  if (!config.proxy.scope_fields.empty()) {
    proxy.policy.scope_fields.clear();
    std::string list = config.proxy.scope_fields;
    for (std::size_t pos = 0; pos <= list.size();) {
      auto comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      if (comma > pos) proxy.policy.scope_fields.push_back(list.substr(pos, comma - pos));
      pos = comma + 1;
    }
  }
  auto from_env = [](const std::string& name) -> std::string {
    const char* v = name.empty() ? nullptr : std::getenv(name.c_str());
    return v != nullptr ? v : "";
  };
  proxy.openai_api_key = from_env(config.proxy.openai_api_key_env);
  proxy.anthropic_api_key = from_env(config.proxy.anthropic_api_key_env);
  proxy.gemini_api_key = from_env(config.proxy.gemini_api_key_env);
  if (Status st = proxy.prices.Override(config.proxy.prices); !st.ok()) {
    spdlog::critical("configuration key 'proxy.prices': {}", st.message());
    return kExitConfig;
  }
  server::AddProxyRoutes(router, **caches, metrics, proxy);
  CacheAdmin admin(config, **caches, redis_backend.executor);
  if (Status st = admin.LoadSaved(); !st.ok()) {
    spdlog::critical("{}", st.message());
    return kExitConfig;
  }
  server::AddAdminRoutes(
      router, config.admin_api_key,
      {[&admin](const nlohmann::json& body) { return admin.Create(body); },
       [&admin] { return admin.List(); },
       [&admin](const std::string& id) { return admin.Describe(id); },
       [&admin](const std::string& id) { return admin.Delete(id); },
       [&admin](const std::string& id, const nlohmann::json& body) {
         return admin.StartReembed(id, body);
       },
       [&admin](const std::string& id) { return admin.ReembedStatus(id); },
       [&registry = **caches](const std::string& id) { return registry.MayBlock(id); }});
  Sweeper sweeper(**caches);

  Status s = http.Listen();
  if (!s.ok()) {
    spdlog::critical("{}", s.message());
    return kExitRuntime;
  }
  if (!config.server.port_file.empty()) {
    s = WritePortFile(config.server.port_file, http.port());
    if (!s.ok()) {
      spdlog::critical("{}", s.message());
      return kExitRuntime;
    }
  }
  spdlog::info("semcached {} listening on http://{}:{} (store {}, data_dir {}, simd {})",
               SEMCACHED_VERSION, config.server.host, http.port(), config.store, config.data_dir,
               vector::SimdLevelName(vector::ActiveSimdLevel()));
  Telemetry telemetry(config.otel, metrics);
  http.Run(/*handle_signals=*/true);
  // The last spans and figures go out before the process does, within the export timeout.
  telemetry.Stop();
  // A snapshot at a clean stop makes the next start read files instead of a long journal.
  for (const auto& c : (*caches)->All()) {
    if (Status st = c->Snapshot(); !st.ok()) {
      spdlog::error("cache {}: snapshot at shutdown: {}", c->options().id, st.message());
    }
  }
  spdlog::info("semcached stopped");
  spdlog::default_logger()->flush();
  return 0;
}

int Version(const Config& config) {
  std::cout << "semcached " << SEMCACHED_VERSION << " (git " << SEMCACHED_GIT << ", "
            << SEMCACHED_BUILD_TYPE << ", " << __VERSION__ << ")\n";
  std::cout << "simd: " << vector::SimdLevelName(vector::ActiveSimdLevel()) << " (cpu supports "
            << vector::SimdLevelName(vector::DetectedSimdLevel()) << ")\n";
  if (config.redis.url.empty()) {
    std::cout << "redis: not configured\n";
    return 0;
  }
  auto address = redis::ParseRedisUrl(config.redis.url);
  if (!address.ok()) {
    std::cerr << "semcached: " << address.status().message() << "\n";
    return kExitConfig;
  }
  auto version = redis::ServerVersion(*address, config.redis.connect_timeout_ms);
  if (!version.ok()) {
    std::cout << "redis: " << address->host << ":" << address->port << " unreachable ("
              << version.status().message() << ")\n";
    return kExitRuntime;
  }
  std::cout << "redis: " << address->host << ":" << address->port << " server " << *version << "\n";
  return 0;
}

int ShowConfig(const Config& config, bool keys) {
  if (!keys) {
    std::cout << RenderToml(config);
    return 0;
  }
  for (const auto& k : ListKeys()) {
    std::cout << k.name << "\n  env " << EnvNameForKey(k.name) << "; " << k.type << "; default "
              << (k.default_value.empty() ? "(empty)" : k.default_value) << "\n  " << k.help
              << "\n";
  }
  std::cout << "\nKeys of a [[caches]] table (and of the admin API's POST /v1/caches body):\n";
  for (const auto& k : ListCacheKeys()) {
    std::cout << k.name << "\n  " << k.type << "; default "
              << (k.default_value.empty() ? "(empty)" : k.default_value) << "\n  " << k.help
              << "\n";
  }
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App cli{"semcached: a semantic cache and vector engine for LLM applications"};
  cli.require_subcommand(1);
  ConfigOptions opts;

  auto* serve = cli.add_subcommand("serve", "start the HTTP server");
  AddConfigOptions(serve, opts);
  auto* version = cli.add_subcommand("version", "print build, SIMD level and Redis version");
  AddConfigOptions(version, opts);
  bool keys = false;
  auto* config_cmd = cli.add_subcommand("config", "print the effective configuration");
  AddConfigOptions(config_cmd, opts);
  config_cmd->add_flag("--keys", keys, "list every configuration key instead");

  ImportOptions import_opts;
  std::string import_url;
  bool no_progress = false;
  auto* import_cmd =
      cli.add_subcommand("import", "load a JSONL file of entries into a running semcached's cache");
  AddConfigOptions(import_cmd, opts);
  import_cmd->add_option("cache", import_opts.cache_id, "cache id")->required();
  import_cmd
      ->add_option("file", import_opts.file,
                   "JSONL: one {prompt, response, attributes?, ttlMillis?} per line")
      ->required();
  import_cmd->add_option("--url", import_url,
                         "server URL (default: http://server.host:server.port)");
  import_cmd->add_option("--api-key", import_opts.api_key,
                         "Bearer key (default: default_cache_api_key)");
  import_cmd->add_flag("--no-progress", no_progress, "no progress bar");

  ExportOptions export_opts;
  std::string export_url;
  auto* export_cmd = cli.add_subcommand(
      "export", "write a running semcached's cache as JSONL (what `import` reads back)");
  AddConfigOptions(export_cmd, opts);
  export_cmd->add_option("cache", export_opts.cache_id, "cache id")->required();
  export_cmd->add_option("--out,-o", export_opts.file, "file to write (default: stdout)");
  export_cmd->add_flag("--vectors", export_opts.vectors, "include each entry's vector");
  export_cmd->add_option("--url", export_url,
                         "server URL (default: http://server.host:server.port)");
  export_cmd->add_option("--api-key", export_opts.api_key,
                         "Bearer key (default: default_cache_api_key)");

  WarmOptions warm_opts;
  std::string warm_url;
  bool warm_no_progress = false;
  auto* warm_cmd = cli.add_subcommand(
      "warm", "fill the proxy's cache before launch: send prompts through the running proxy");
  AddConfigOptions(warm_cmd, opts);
  warm_cmd->add_option("cache", warm_opts.cache_id, "the proxy's cache (proxy.cache)")->required();
  warm_cmd
      ->add_option("--prompts", warm_opts.prompts_file,
                   "a prompt per line, or JSONL {\"prompt\", \"model\"?}")
      ->required();
  warm_cmd->add_option("--model", warm_opts.model, "model of the prompts that name none")
      ->capture_default_str();
  warm_cmd->add_option("--rate", warm_opts.rate, "requests per second at most")
      ->capture_default_str();
  warm_cmd
      ->add_option("--output-tokens", warm_opts.output_tokens,
                   "output tokens per answer, for the cost estimate")
      ->capture_default_str();
  warm_cmd->add_flag("--yes,-y", warm_opts.yes, "send without asking to confirm the estimate");
  warm_cmd->add_option("--url", warm_url, "server URL (default: http://server.host:server.port)");
  warm_cmd
      ->add_option("--upstream-key-env", warm_opts.upstream_key_env,
                   "environment variable whose value is sent as the upstream's Bearer key")
      ->capture_default_str();
  warm_cmd->add_flag("--no-progress", warm_no_progress, "no progress bar");

  ModelTextOptions model_opts;
  auto* model_cmd = cli.add_subcommand("model", "static embedding models");
  model_cmd->require_subcommand(1);
  auto add_text_command = [&](const char* name, const char* help) {
    auto* c = model_cmd->add_subcommand(name, help);
    AddConfigOptions(c, opts);
    c->add_option("--model", model_opts.model,
                  "a model directory or OWNER/NAME pulled into models_dir (default: built-in)");
    c->add_flag("--json-lines", model_opts.json_lines, "each stdin line is one JSON string");
    return c;
  };
  auto* tokenize_cmd =
      add_text_command("tokenize", "print the token ids of each stdin line (JSON arrays)");
  auto* embed_cmd = add_text_command("embed", "print the vector of each stdin line (JSON arrays)");
  std::string reembed_cache;
  bool reembed_no_progress = false;
  auto* reembed_cmd = cli.add_subcommand(
      "reembed",
      "recompute a cache's vectors with the embedder its settings now name, while the cache "
      "keeps answering");
  AddConfigOptions(reembed_cmd, opts);
  reembed_cmd->add_option("cache", reembed_cache, "cache id")->required();
  reembed_cmd->add_flag("--no-progress", reembed_no_progress, "no progress bar");
  std::string reembed_url;
  reembed_cmd->add_option("--url", reembed_url,
                          "the running server that should do it (default for an embedded cache "
                          "whose data directory a server holds: http://server.host:server.port)");
  ModelPullOptions pull_opts;
  std::string pull_hub;
  bool pull_no_progress = false;
  auto* pull_cmd = model_cmd->add_subcommand(
      "pull", "download a static model from the Hugging Face hub into models_dir");
  AddConfigOptions(pull_cmd, opts);
  pull_cmd->add_option("model", pull_opts.model, "OWNER/NAME[@REVISION]")->required();
  pull_cmd->add_option("--hub", pull_hub, "hub base URL (default: model_hub_url)");
  pull_cmd->add_option("--models-dir", pull_opts.models_dir, "directory (default: models_dir)");
  pull_cmd->add_flag("--no-progress", pull_no_progress, "no progress bar");

  TuneOptions tune_opts;
  bool tune_no_progress = false;
  auto* tune_cmd = cli.add_subcommand(
      "tune",
      "report hit and false-hit rates per similarity threshold on labelled pairs, and "
      "the threshold to set");
  AddConfigOptions(tune_cmd, opts);
  tune_cmd->add_option("cache", tune_opts.cache_id,
                       "cache whose embedder, guards and normalization to use (default: default)");
  tune_cmd->add_option("--pairs", tune_opts.pairs_file,
                       "labelled pairs: CSV or TSV with a header (two questions, a 0/1 label), "
                       "or JSON lines; without: the running server's report of the cache");
  std::string tune_url;
  tune_cmd->add_option("--url", tune_url, "server URL (default: http://server.host:server.port)");
  tune_cmd->add_option("--api-key", tune_opts.api_key,
                       "the cache's Bearer key (default: default_cache_api_key)");
  tune_cmd->add_option("--target-false-hits", tune_opts.target_false_hit_rate,
                       "share of different questions that may be served (default 0.01)");
  tune_cmd->add_option("--label-means", tune_opts.label_means,
                       "what label 1 means: same or different (default: from the header)");
  tune_cmd->add_flag("--json", tune_opts.json, "print the report as JSON");
  tune_cmd->add_flag("--no-progress", tune_no_progress, "no progress bar");

  PlanOptions plan_opts;
  auto* plan_cmd = cli.add_subcommand(
      "plan",
      "memory per instance or Redis shard, CPU cores for a request rate, and snapshot and "
      "restore times, from the figures the benchmarks measured (printed with the answer)");
  plan_cmd->add_option("--entries", plan_opts.entries, "cache entries")->required();
  plan_cmd->add_option("--dim", plan_opts.dim, "the embedder's dimensions")->required();
  plan_cmd->add_option("--prompt-bytes", plan_opts.prompt_bytes, "bytes of prompt per entry")
      ->capture_default_str();
  plan_cmd->add_option("--response-bytes", plan_opts.response_bytes, "bytes of response per entry")
      ->capture_default_str();
  plan_cmd->add_option("--qps", plan_opts.qps, "requests per second to plan CPU for");
  plan_cmd
      ->add_option("--exact-share", plan_opts.exact_share,
                   "share of requests the exact tier answers")
      ->capture_default_str();
  plan_cmd->add_option("--store", plan_opts.store, "embedded or redis")->capture_default_str();
  plan_cmd->add_option("--shards", plan_opts.shards, "Redis shards the entries spread over")
      ->capture_default_str();
  plan_cmd->add_option("--figures", plan_opts.figures_file,
                       "figures file (bench/results/capacity.json) instead of the built-in ones");
  plan_cmd->add_flag("--json", plan_opts.json, "print the plan as JSON");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (plan_cmd->parsed()) {
    // Needs no configuration: it reads only its figures.
    if (Status s = RunPlan(plan_opts); !s.ok()) {
      std::cerr << "semcached plan: " << s.message() << "\n";
      return kExitConfig;
    }
    return 0;
  }

  auto config = Load(opts);
  if (!config.ok()) {
    std::cerr << "semcached: " << config.status().message() << "\n";
    return kExitConfig;
  }
  if (version->parsed()) return Version(*config);
  if (config_cmd->parsed()) return ShowConfig(*config, keys);
  if (tokenize_cmd->parsed()) return RunModelTokenize(*config, model_opts);
  if (reembed_cmd->parsed()) {
    if (Status s = ConfigureLogging(config->log.level, config->log.format); !s.ok()) {
      std::cerr << "semcached: " << s.message() << "\n";
      return kExitConfig;
    }
    server::Metrics metrics;  // the Redis client reports to it; nothing serves it
    RedisBackend redis;
    if (!config->redis.url.empty()) {
      auto connected = ConnectRedis(*config, metrics);
      if (!connected.ok()) {
        std::cerr << "semcached: " << connected.status().message() << "\n";
        return kExitConfig;
      }
      redis = std::move(*connected);
    }
    return RunReembed(*config, reembed_cache, !reembed_no_progress, reembed_url, redis.executor);
  }
  if (pull_cmd->parsed()) {
    pull_opts.hub_url = pull_hub.empty() ? config->model_hub_url : pull_hub;
    pull_opts.progress = !pull_no_progress;
    return RunModelPull(*config, pull_opts);
  }
  if (embed_cmd->parsed()) return RunModelEmbed(*config, model_opts);
  if (tune_cmd->parsed()) {
    // Logs go to stderr, so that stdout holds the report alone (--json is parsed by scripts).
    if (Status s = ConfigureLogging(config->log.level, config->log.format); !s.ok()) {
      std::cerr << "semcached: " << s.message() << "\n";
      return kExitConfig;
    }
    tune_opts.progress = !tune_no_progress;
    tune_opts.server_url = !tune_url.empty() ? tune_url
                                             : "http://" + config->server.host + ":" +
                                                   std::to_string(config->server.port);
    if (tune_opts.api_key.empty()) tune_opts.api_key = config->default_cache_api_key;
    return RunTune(*config, tune_opts);
  }
  if (warm_cmd->parsed()) {
    if (warm_opts.cache_id != config->proxy.cache) {
      std::fprintf(stderr,
                   "semcached warm: the proxy stores in cache '%s' (proxy.cache), not '%s'\n",
                   config->proxy.cache.c_str(), warm_opts.cache_id.c_str());
      return 2;
    }
    warm_opts.url = !warm_url.empty() ? warm_url
                                      : "http://" + config->server.host + ":" +
                                            std::to_string(config->server.port);
    warm_opts.progress = !warm_no_progress;
    llm::PriceTable prices = llm::PriceTable::Defaults();
    if (Status st = prices.Override(config->proxy.prices); !st.ok()) {
      std::fprintf(stderr, "semcached warm: proxy.prices: %s\n", st.message().c_str());
      return 2;
    }
    return RunWarm(warm_opts, prices);
  }
  if (export_cmd->parsed()) {
    export_opts.url = !export_url.empty() ? export_url
                                          : "http://" + config->server.host + ":" +
                                                std::to_string(config->server.port);
    if (export_opts.api_key.empty()) export_opts.api_key = config->default_cache_api_key;
    return RunExport(export_opts);
  }
  if (import_cmd->parsed()) {
    import_opts.url = !import_url.empty() ? import_url
                                          : "http://" + config->server.host + ":" +
                                                std::to_string(config->server.port);
    if (import_opts.api_key.empty()) import_opts.api_key = config->default_cache_api_key;
    import_opts.progress = !no_progress;
    return RunImport(import_opts);
  }

  Status s = ConfigureLogging(config->log.level, config->log.format);
  if (!s.ok()) {
    std::cerr << "semcached: " << s.message() << "\n";
    return kExitConfig;
  }
  return Serve(*config);
}

}  // namespace semcached::app

int main(int argc, char** argv) {
  try {
    return semcached::app::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "semcached: fatal: " << e.what() << "\n";
    return 1;
  }
}
