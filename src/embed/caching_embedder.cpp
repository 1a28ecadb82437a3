#include "embed/caching_embedder.h"

#include <functional>

namespace semcached::embed {

CachingEmbedder::CachingEmbedder(std::unique_ptr<Embedder> inner, std::size_t capacity)
    : inner_(std::move(inner)), per_shard_(std::max<std::size_t>(1, capacity / kShards)) {}

Result<std::vector<float>> CachingEmbedder::Lookup(std::string_view text, bool remember) {
  Shard& shard = shards_[std::hash<std::string_view>{}(text) % kShards];
  const std::uint64_t gen = inner_->generation();
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.index.find(text);
    if (it != shard.index.end()) {
      if (it->second->generation == gen) {
        shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
        hits_.fetch_add(1, std::memory_order_relaxed);
        return it->second->vec;
      }
      shard.index.erase(it->first);
      // The stale item itself is replaced below or aged out.
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  auto vec = inner_->Embed(text);
  if (!vec.ok() || !remember) return vec;
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.index.count(text) == 0) {
    shard.lru.push_front(Item{std::string(text), *vec, gen});
    shard.index.emplace(shard.lru.front().text, shard.lru.begin());
    while (shard.lru.size() > per_shard_) {
      auto last = std::prev(shard.lru.end());
      auto found = shard.index.find(last->text);
      if (found != shard.index.end() && found->second == last) shard.index.erase(found);
      shard.lru.erase(last);
    }
  }
  return vec;
}

}  // namespace semcached::embed
