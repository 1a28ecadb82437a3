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
// Reembed builds a new vector set (the next generation) beside the one in use, catches up
// with what other instances stored meanwhile (every write counts in NS:{C}:writes), and
// switches in one script: the new embedder's identity, the generation, the old set dropped.
// An instance that still embeds the old way finds out at its next store (each store's
// transaction reads the generation) or at a search that finds nothing, and refuses with a
// message saying so; one whose embedder makes the new vectors just follows.
// Must not: block past the Redis client's timeouts, or throw.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

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
  // For `semcached reembed` only: opens a cache whose vectors another embedder made; nothing
  // but Reembed may follow.
  bool allow_embedder_change = false;
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
  Status Reembed(std::unique_ptr<embed::Embedder> next, const ReembedProgress& progress) override;
  std::int64_t generation() const { return Current()->number; }
  // Labels through NS:{C}:labels: this instance's new ones appended, the others' read from
  // where it last read (everything, the first time: what the cache learnt before it started).
  Status ShareLabels() override;

  // Every live entry, for an export.
  Status ForEachEntry(bool with_vectors,
                      const std::function<bool(const cache::ExportedEntry&)>& emit) override;
  bool MayBlock() const override { return true; }
  EmbedderInfo EmbedderOf() const override;

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
  Result<cache::Candidate> EntryById(const std::string& entry_id) override;
  Result<float> PromptSimilarity(const std::string& a, const std::string& b) override;
  Result<std::vector<std::vector<float>>> SampleVectors(std::size_t n) override;
  Result<std::vector<float>> EntryVector(const std::string& entry_id) override;
  Result<std::vector<std::string>> NearestIds(const std::vector<float>& query, std::size_t k,
                                              std::size_t ef) override;

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
  // What makes and holds the vectors: replaced as one when a reembed switches, while requests
  // that started before finish with the one they took.
  struct Generation {
    std::int64_t number = 0;
    std::shared_ptr<embed::Embedder> embedder;
    std::shared_ptr<store::RedisVectorStore> vectors;
    embed::EmbedderIdentity identity;
  };
  RedisCache(cache::CacheOptions options, redis::Executor& executor,
             RedisCacheOptions redis_options, Clock clock, Generation generation);
  std::shared_ptr<const Generation> Current() const;
  // `used` is not the cache's generation in Redis any more: follow the new one when this
  // instance's embedder makes its vectors (Ok: try again), else kFailedPrecondition.
  Status FollowGeneration(const Generation& used);
  // Embeds the stored prompts of `ids` with `embedder` into `into`; the ids it wrote.
  Result<std::vector<std::string>> ReembedBatch(const std::vector<std::string>& ids,
                                                embed::Embedder& embedder,
                                                const store::RedisVectorStore& into);
  // HGETALL replies into entries; nullopt for a hash that is gone.
  std::optional<Loaded> Parse(const std::string& id, const redis::Reply& reply) const;
  cache::Candidate CandidateOf(Loaded&& e, float similarity) const;
  std::vector<redis::Args> DeleteCommands(const std::string& id, const std::string& exact,
                                          const Generation& generation) const;
  void EvictOverLimit(std::int64_t now);

  cache::CacheOptions options_;
  redis::Executor& redis_;
  RedisCacheOptions redis_options_;
  Clock clock_;
  redis_schema::Keys keys_;
  mutable std::mutex generation_mu_;
  std::shared_ptr<const Generation> generation_;
  std::mutex reembed_mu_;  // one Reembed at a time in this process (Redis holds the others off)
  // Label sharing: this instance's name in the stream, and the last stream id it has read.
  const std::string instance_id_;
  std::mutex labels_mu_;
  std::string labels_read_to_ = "0";
  static constexpr std::size_t kMaxSharedLabels = 100000;
};

}  // namespace semcached::cache
