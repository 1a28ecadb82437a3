// Caches as the configuration and the admin API define them.
//
// MakeCache turns one cache's settings into a cache (embedded or Redis: embedder, persistence,
// limits):
// start-up and the admin API use the same function. CacheAdmin creates and deletes caches
// while the server runs, and keeps the definitions of those it created in
// data_dir/caches.json (written durably), so they come back at the next start. Caches of the
// configuration file cannot be deleted through it. API keys are never returned.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/config.h"
#include "cache/registry.h"
#include "embed/embedder.h"
#include "redis/client.h"

namespace semcached::app {

// The embedder a cache's settings name: a static model (each loaded once per process), the
// n-gram one, or an HTTP service.
Result<std::unique_ptr<embed::Embedder>> MakeEmbedder(const Config& config, const CacheConfig& c);
// The settings of cache `id`: from data_dir/caches.json (created through the admin API) or the
// configuration's [[caches]] (or the implicit "default"); NotFound otherwise.
Result<CacheConfig> FindCacheConfig(const Config& config, const std::string& id);
// Where a model2vec embedder_model lives: "" for the built-in model, a directory as given,
// or models_dir/OWNER/NAME for a pulled model (NotFound, saying what to run, if absent).
Result<std::string> ResolveStaticModel(const Config& config, const std::string& model);

// `redis` is the process's Redis connection (null without redis.url): caches whose store is
// "redis" keep their entries there.
Result<std::unique_ptr<cache::Cache>> MakeCache(const Config& config, const CacheConfig& c,
                                                redis::Executor* redis);

class CacheAdmin {
 public:
  CacheAdmin(const Config& config, cache::CacheRegistry& registry, redis::Executor* redis);

  // Re-creates the caches the API created before the last stop.
  Status LoadSaved();
  Result<nlohmann::json> Create(const nlohmann::json& body);
  Result<nlohmann::json> Describe(const std::string& id) const;
  nlohmann::json List() const;
  Status Delete(const std::string& id);
  // Starts recomputing an embedded cache's vectors with the embedder `body` names (keys
  // embedder, embedder_model, embedder_url, embedder_dim, embedder_api_key_env,
  // embedder_timeout_ms; the cache's other settings stay) in the background: the cache keeps
  // answering from its old vectors until the switch. One at a time per cache.
  Result<nlohmann::json> StartReembed(const std::string& id, const nlohmann::json& body);
  // {state: idle | running | done | failed, done, total, error?, embedder}.
  Result<nlohmann::json> ReembedStatus(const std::string& id) const;
  ~CacheAdmin();

 private:
  struct ReembedJob {
    std::atomic<std::size_t> done{0}, total{0};
    std::atomic<int> state{0};  // 1 running, 2 done, 3 failed
    std::string error, note;    // written before state leaves "running"
  };
  Status SaveLocked() const;
  // Both read saved_: called with mu_ held.
  nlohmann::json DescribeCache(const cache::Cache& c) const;
  CacheConfig ConfigOf(const std::string& id) const;

  const Config& config_;
  cache::CacheRegistry& registry_;
  redis::Executor* redis_;
  mutable std::mutex mu_;                                    // one admin change at a time
  std::map<std::string, nlohmann::json> saved_;              // API-created definitions, as posted
  std::map<std::string, std::shared_ptr<ReembedJob>> jobs_;  // the last reembed of each cache
  std::vector<std::thread> workers_;                         // joined at destruction
};

}  // namespace semcached::app
