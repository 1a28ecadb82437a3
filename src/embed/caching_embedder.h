// An LRU cache of embeddings in front of another embedder.
//
// Repeated and popular prompts are embedded once: for an HTTP embedder that saves a network
// round trip per lookup. Entries remember the inner embedder's generation and are
// recomputed when it moves (the built-in embedder's weights shift as the cache grows).
// Thread-safe; sharded so concurrent lookups rarely share a lock.
#pragma once

#include <array>
#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "embed/embedder.h"

namespace semcached::embed {

class CachingEmbedder final : public Embedder {
 public:
  CachingEmbedder(std::unique_ptr<Embedder> inner, std::size_t capacity);
  std::size_t dim() const override { return inner_->dim(); }
  std::string name() const override { return inner_->name(); }
  EmbedderIdentity identity() const override { return inner_->identity(); }
  Result<std::vector<float>> Embed(std::string_view text) override { return Lookup(text, true); }
  Result<std::vector<float>> EmbedToStore(std::string_view text) override {
    return Lookup(text, false);
  }
  void Observe(std::string_view text) override { inner_->Observe(text); }
  bool Remote() const override { return inner_->Remote(); }
  std::uint64_t generation() const override { return inner_->generation(); }
  std::uint64_t hits() const { return hits_.load(); }
  std::uint64_t misses() const { return misses_.load(); }

 private:
  Result<std::vector<float>> Lookup(std::string_view text, bool remember);
  static constexpr std::size_t kShards = 16;
  struct Item {
    std::string text;
    std::vector<float> vec;
    std::uint64_t generation;
  };
  struct Shard {
    std::mutex mu;
    std::list<Item> lru;  // most recent first
    std::unordered_map<std::string_view, std::list<Item>::iterator> index;
  };

  std::unique_ptr<Embedder> inner_;
  std::size_t per_shard_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> hits_{0}, misses_{0};
};

}  // namespace semcached::embed
