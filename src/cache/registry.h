// The caches this process serves, and who may use them.
//
// Each cache has API keys; a request names a cache and presents a key. A key that belongs
// to no cache fails authentication; a key of another cache lacks permission. A cache with
// no keys configured is open (a warning is logged at start-up). No HTTP here: the routes
// turn these Statuses into responses.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/semantic_cache.h"
#include "common/status.h"

namespace semcached::cache {

class CacheRegistry {
 public:
  Status Add(std::unique_ptr<SemanticCache> cache, std::vector<std::string> api_keys);
  // The cache, or NotFound.
  Result<SemanticCache*> Find(const std::string& id) const;
  // Ok when `key` may use cache `id` (which must exist).
  Status Authorize(const std::string& id, const std::string& key) const;
  std::vector<SemanticCache*> All() const;
  bool Open(const std::string& id) const;

 private:
  struct Slot {
    std::unique_ptr<SemanticCache> cache;
    std::vector<std::string> keys;
  };
  std::map<std::string, Slot> caches_;
};

}  // namespace semcached::cache
