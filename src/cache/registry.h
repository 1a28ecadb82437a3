// The caches this process serves, and who may use them.
//
// Each cache has API keys; a request names a cache and presents a key. A key that belongs
// to no cache fails authentication; a key of another cache lacks permission. A cache with
// no keys configured is open (a warning is logged at start-up). Caches may be added and
// removed while requests run (the admin API). No HTTP here: the routes turn these Statuses
// into responses.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "common/status.h"

namespace semcached::cache {

class CacheRegistry {
 public:
  // `removable`: created through the admin API (a cache from the configuration file would
  // come back at the next start, so deleting it is refused).
  Status Add(std::shared_ptr<Cache> cache, std::vector<std::string> api_keys,
             bool removable = false);
  // The cache, or NotFound. Requests hold the pointer, so a cache removed meanwhile stays
  // valid until they finish.
  Result<std::shared_ptr<Cache>> Find(const std::string& id) const;
  // Ok when `key` may use cache `id` (which must exist).
  Status Authorize(const std::string& id, const std::string& key) const;
  std::vector<std::shared_ptr<Cache>> All() const;
  bool Open(const std::string& id) const;
  // Whether requests to cache `id` may wait on the network (Cache::MayBlock); false for an
  // unknown cache, whose answer is an immediate 404. Asked by the router on every request.
  bool MayBlock(const std::string& id) const;
  // Takes the cache out: NotFound, or kAlreadyExists (a conflict) when it is not removable.
  Result<std::shared_ptr<Cache>> Remove(const std::string& id);
  bool Removable(const std::string& id) const;
  std::vector<std::string> KeysOf(const std::string& id) const;

 private:
  struct Slot {
    std::shared_ptr<Cache> cache;
    std::vector<std::string> keys;
    bool removable = false;
  };
  mutable std::shared_mutex mu_;
  std::map<std::string, Slot> caches_;
};

}  // namespace semcached::cache
