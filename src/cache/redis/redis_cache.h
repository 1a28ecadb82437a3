// RedisCache: the Cache (cache/cache.h) kept in Redis 8, shared by every semcached instance
// that points at the same Redis.
//
// Its keys and hash fields are in schema.h; its vectors go through store::RedisVectorSets (one
// vector set today; ShardedStore carries one cache over several Cluster shards). A store is one
// MULTI/EXEC (the entry hash, its sets and the VADD), so no half-written entry is ever visible.
// With max_entries, a store that takes the cache past it evicts by the cache's policy, choosing
// the worst of a random sample of ids (SRANDMEMBER) by the use each hash records (last access,
// hits; updated on hits with HSETEX FXX, so a hash deleted meanwhile is never brought back);
// several instances evicting at once may each take one, so the count can dip below the limit.
// An entry whose hash is gone (expired) is never returned: reads check the hash, and the
// sweeper removes expired ids from the vector set and the other sets. The built-in embedder
// learns term weights from the texts it sees; instances sharing a Redis see different texts,
// so here it is never told (no Observe) and every instance embeds alike.
// Must not: block past the Redis client's timeouts, or throw.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "cache/cache.h"
#include "cache/redis/schema.h"
#include "embed/embedder.h"
#include "redis/client.h"
#include "store/redis_store.h"

namespace semcached::cache {

struct RedisCacheOptions {
  std::string key_namespace = "semcached";
  store::Quantization quantization = store::Quantization::kQ8;
  std::size_t M = 16;
};

class RedisCache final : public cache::Cache {
 public:
  using Clock = std::function<std::int64_t()>;  // ms since the epoch; must agree with Redis's clock
  static Result<std::unique_ptr<RedisCache>> Create(cache::CacheOptions options,
                                                    std::unique_ptr<embed::Embedder> embedder,
                                                    redis::Executor& executor,
                                                    RedisCacheOptions redis_options = {},
                                                    Clock clock = {});

  Result<std::string> Store(const std::string& prompt, const std::string& response,
                            const cache::Attributes& attributes,
                            std::optional<std::int64_t> ttl_ms) override;
  Status Delete(const std::string& entry_id) override;
  Result<std::size_t> DeleteByAttributes(const cache::Attributes& attributes) override;
  Status Flush() override;
  std::size_t Sweep() override;
  cache::CacheStats Stats() const override;
  const cache::CacheOptions& options() const override { return options_; }
  const char* store_name() const override { return "redis"; }

  // A key of this cache (schema.h): Key("vectors"), Key("e:" + id), ...
  std::string Key(const std::string& suffix) const;

 protected:
  Result<std::vector<cache::Candidate>> ExactCandidates(const std::string& normalized,
                                                        const cache::SearchQuery& query,
                                                        cache::LookupTrace& trace) override;
  Result<std::vector<cache::Candidate>> SemanticCandidates(const std::string& normalized,
                                                           float load_floor,
                                                           const cache::SearchQuery& query,
                                                           std::int64_t now,
                                                           cache::LookupTrace& trace) override;
  void RecordUse(const cache::Candidate& chosen, std::int64_t now) override;
  std::int64_t NowMs() const override;

 private:
  struct Loaded {
    std::string id;
    cache::EntryTextRef text;
    std::string normalized;  // as stored: instances normalize alike only with equal options
    std::int64_t expires_ms = 0;
    std::int64_t ttl_ms = 0;
    std::uint64_t hits = 0;
    std::string exact;
  };
  RedisCache(cache::CacheOptions options, std::unique_ptr<embed::Embedder> embedder,
             redis::Executor& executor, RedisCacheOptions redis_options, Clock clock,
             std::unique_ptr<store::RedisVectorSets> vectors);
  // HGETALL replies into entries; nullopt for a hash that is gone.
  std::optional<Loaded> Parse(const std::string& id, const redis::Reply& reply) const;
  cache::Candidate CandidateOf(Loaded&& e, float similarity) const;
  std::vector<redis::Args> DeleteCommands(const std::string& id, const std::string& exact) const;
  void EvictOverLimit(std::int64_t now);

  cache::CacheOptions options_;
  std::unique_ptr<embed::Embedder> embedder_;
  redis::Executor& redis_;
  RedisCacheOptions redis_options_;
  Clock clock_;
  std::unique_ptr<store::RedisVectorSets> vectors_;
  redis_schema::Keys keys_;
};

}  // namespace semcached::cache
