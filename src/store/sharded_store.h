// ShardedStore: one collection spread over N Redis vector sets, for Redis Cluster.
//
// Why: a vector set is one key and so lives on one Cluster shard. Giving each of N sets its
// own hash tag ({collection~0} ... {collection~N-1}) lets the cluster place them on different
// masters; searches go to every set at once (pipelined, in parallel across masters) and the
// results are merged by cosine similarity.
// Placement decides which set holds an element:
//  - kHash: a hash of the element's id. Reads and deletes by id touch one set.
//  - kSimHash: the signs of the vector's projections on a few fixed random hyperplanes, so
//    similar vectors tend to share a set. An element may move when its vector changes, so
//    writes and reads by id address every set.
// Must not: depend on which master holds which set (the executor routes), or return an id
// twice from a search.
#pragma once

#include "store/redis_store.h"

namespace semcached::store {

enum class Placement { kHash, kSimHash };
Result<Placement> ParsePlacement(const std::string& name);  // hash | simhash

struct ShardedStoreOptions {
  RedisStoreOptions base;  // namespace, collection, flags, batch size
  std::size_t shards = 3;
  Placement placement = Placement::kHash;
  std::uint64_t seed = 0x5eedcafe;  // the SimHash hyperplanes; every instance must agree
};

class ShardedStore final : public RedisVectorSets {
 public:
  static Result<std::unique_ptr<ShardedStore>> Open(redis::Executor& executor,
                                                    const ShardedStoreOptions& options);

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
  std::vector<std::string> SetKeys() const override;

  std::size_t ShardOf(const Element& element) const;
  const RedisVectorStore& shard(std::size_t i) const { return *shards_[i]; }
  std::size_t shard_count() const { return shards_.size(); }

 private:
  ShardedStore(redis::Executor& executor, const ShardedStoreOptions& options);
  // The commands that put one element in place: VADD on its set, VREM on the others (SimHash).
  std::vector<redis::Args> PlaceCommands(const Element& element) const;

  redis::Executor& executor_;
  ShardedStoreOptions options_;
  std::vector<std::unique_ptr<RedisVectorStore>> shards_;
  std::vector<std::vector<float>> planes_;
};

}  // namespace semcached::store
