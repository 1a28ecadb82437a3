// RedisVectorStore: the VectorStore on one Redis 8 vector set.
//
// Why: several semcached instances share a cache by sharing its vectors in Redis. Each
// collection is one key, `<namespace>:{<collection>}:vectors`; the braces are a hash tag, so
// every key a collection owns (vectors, entry hashes, metadata) lands in one Cluster slot.
// The creation flags (quantization, M, EF, REDUCE) are fixed by the first VADD; Redis refuses
// a later VADD that asks for other ones, so they are kept here and repeated on every write,
// and Open checks an existing set against them.
// Must not: convert similarity anywhere but score.h, or block a caller past the client's
// command timeout (every call goes through redis::Client with its timeouts and breaker).
#pragma once

#include <memory>
#include <string>

#include "redis/client.h"
#include "store/vector_store.h"

namespace semcached::store {

struct RedisStoreOptions {
  std::string key_namespace = "semcached";
  std::string collection;  // letters, digits, '_', '-', '.'
  CollectionOptions collection_options;
  std::size_t batch_size = 500;  // commands per pipelined batch in AddBatch
  // VADD ... CAS: Redis collects the new node's neighbour candidates on a worker thread, so
  // pipelined or concurrent inserts use more than the server's main thread. Off by default:
  // Redis 8.0.2 aborts while loading an append-only file that holds VADD ... CAS (assertion
  // '(fakeClient->flags & CLIENT_BLOCKED) == 0' in aof.c, seen in tests/redis/resilience_test),
  // and it gained only 1.2x here (bench/redis.sh --cas 1).
  bool threaded_insert = false;
};

// Names a collection's keys. Shards (sharded_store.h) append "~N" inside the braces.
std::string RedisVectorKey(const std::string& key_namespace, const std::string& tag);
Status ValidateCollectionName(const std::string& name);

// A VectorStore on one or several Redis 8 vector sets whose writes a caller can also send in
// a transaction of its own: RedisCache puts an entry's hash and its VADD in one MULTI, which
// Redis Cluster allows only for keys of one slot, so the caller names its keys with the hash
// tag of the set that takes the element. Implemented by RedisVectorStore (one set) and
// ShardedStore (one set per shard).
class RedisVectorSets : public VectorStore {
 public:
  // The commands that put `element` in place (a VADD on its set; VREMs on sets it may have
  // moved from), checked like Add.
  virtual Result<std::vector<redis::Args>> WriteCommands(const Element& element) const = 0;
  // VREMs that take `id` out of every set that may hold it.
  virtual std::vector<redis::Args> RemoveCommands(const std::string& id) const = 0;
  // The hash tag (the text between the braces) of the set that takes `element`.
  virtual std::string HashTagFor(const Element& element) const = 0;
  // Every set's key.
  virtual std::vector<std::string> SetKeys() const = 0;
};

class RedisVectorStore final : public RedisVectorSets {
 public:
  // Checks an existing set's quantization, M and dimension against the options.
  static Result<std::unique_ptr<RedisVectorStore>> Open(redis::Executor& client,
                                                        const RedisStoreOptions& options);
  // The same over an explicit key (a shard of a collection).
  static Result<std::unique_ptr<RedisVectorStore>> OpenKey(redis::Executor& client,
                                                           const RedisStoreOptions& options,
                                                           std::string key);

  Status Add(const Element& element) override;
  std::vector<Status> AddBatch(const std::vector<Element>& elements) override;
  Result<std::vector<Hit>> Search(std::span<const float> query,
                                  const SearchRequest& request) const override;
  Result<bool> Remove(const std::string& id) override;
  Result<std::optional<std::vector<float>>> Vector(const std::string& id) const override;
  Result<std::optional<std::string>> Attributes(const std::string& id) const override;
  Status SetAttributes(const std::string& id, const std::string& attributes) override;
  Result<StoreInfo> Info() const override;
  Status Clear() override;

  Result<std::vector<redis::Args>> WriteCommands(const Element& element) const override;
  std::vector<redis::Args> RemoveCommands(const std::string& id) const override;
  std::string HashTagFor(const Element& element) const override;
  std::vector<std::string> SetKeys() const override { return {key_}; }

  const std::string& key() const { return key_; }
  // The VADD arguments for an element (validated): used by batches and by callers that
  // pipeline a VADD with other commands.
  redis::Args VaddArgs(const Element& element) const;
  // The VSIM arguments for a query.
  redis::Args VsimArgs(std::span<const float> query, const SearchRequest& request) const;
  // Parses a VSIM WITHSCORES reply (RESP2 flat array or RESP3 map).
  static Result<std::vector<Hit>> ParseVsim(const redis::Reply& reply);

 private:
  RedisVectorStore(redis::Executor& client, const RedisStoreOptions& options, std::string key);
  Status CheckExisting();

  redis::Executor& client_;
  RedisStoreOptions options_;
  std::string key_;
};

}  // namespace semcached::store
