// The Redis cache's keys and hash fields, in one place. Every instance that shares a cache
// must agree on them, so a change here is a data migration, never a refactor.
//
// Keys of cache C under namespace NS, all with the hash tag {C}, so they share a Cluster slot
// and one MULTI can write them together:
//   NS:{C}:vectors      vector set: one element per entry, its attributes as SETATTR JSON;
//                       after the Nth reembed NS:{C}:vectors.gN (the generation says which)
//   NS:{C}:e:<id>       hash: one entry (fields below); PEXPIRE when it has a TTL
//   NS:{C}:x:<sha256>   set: ids of entries whose exact key (cache/fingerprint.h) is <sha256>
//   NS:{C}:ids          set: every id (for delete-by-attributes, flush and eviction samples)
//   NS:{C}:expiry       sorted set: id by expiry time, for the sweeper
//   NS:{C}:embedder     string: the identity of the embedder that made the vectors
//   NS:{C}:generation   integer: how many reembeds the cache has had (absent: 0)
//   NS:{C}:writes       integer: counts stores and deletes, so a reembed knows it missed none
//   NS:{C}:reembed      string: held (with an expiry) by the instance that is reembedding
//   NS:{C}:labels       stream: labelled lookups (fields e, s, r, c, o: entry id, similarity,
//                       refused by the guards 0/1, correct 0/1, the instance that recorded
//                       it), trimmed to about 100,000; every instance reads it
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace semcached::cache::redis_schema {

class Keys {
 public:
  Keys(const std::string& key_namespace, const std::string& cache_id)
      : prefix_(key_namespace + ":{" + cache_id + "}:") {}
  std::string Of(std::string_view suffix) const { return prefix_ + std::string(suffix); }
  std::string Vectors(std::int64_t generation = 0) const {
    return generation == 0 ? Of("vectors") : Of("vectors.g" + std::to_string(generation));
  }
  std::string Entry(std::string_view id) const { return Of("e:" + std::string(id)); }
  std::string Exact(std::string_view sha256_hex) const {
    return Of("x:" + std::string(sha256_hex));
  }
  std::string Ids() const { return Of("ids"); }
  std::string Expiry() const { return Of("expiry"); }
  // JSON of the embedder that made the vectors (embed::EmbedderIdentity): every instance that
  // shares the cache must embed the same way.
  std::string Embedder() const { return Of("embedder"); }
  std::string Generation() const { return Of("generation"); }
  std::string Writes() const { return Of("writes"); }
  std::string ReembedLock() const { return Of("reembed"); }
  std::string Labels() const { return Of("labels"); }

 private:
  std::string prefix_;
};

// Fields of an entry hash. Short names: a cache holds millions of hashes.
namespace field {
inline constexpr const char* kPrompt = "p";
inline constexpr const char* kResponse = "r";
inline constexpr const char* kAttributes = "a";  // JSON object of strings
inline constexpr const char* kNormalized = "n";  // the normalized prompt, as stored
inline constexpr const char* kCreatedMs = "c";
inline constexpr const char* kExpiresMs = "e";  // 0: never
inline constexpr const char* kTtlMs = "t";      // 0: none
inline constexpr const char* kExactKey = "x";   // the sha256 hex of NS:{C}:x:<sha256>
inline constexpr const char* kLastAccessMs = "la";
inline constexpr const char* kHits = "h";
inline constexpr const char* kResponseBytes = "rs";
inline constexpr const char* kTextBytes = "s";  // prompt, response and attribute bytes
}  // namespace field

}  // namespace semcached::cache::redis_schema
