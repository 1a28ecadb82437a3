#include "cache/registry.h"

#include <mutex>

#include <openssl/crypto.h>

namespace semcached::cache {
namespace {

// Constant-time comparison, so key checks do not leak how much of a key matched.
bool SameKey(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Status CacheRegistry::Add(std::shared_ptr<Cache> cache, std::vector<std::string> api_keys,
                          bool removable) {
  std::string id = cache->options().id;
  std::unique_lock lock(mu_);
  if (caches_.count(id))
    return Status(ErrorCode::kAlreadyExists, "cache '" + id + "' already exists");
  caches_[id] = Slot{std::move(cache), std::move(api_keys), removable};
  return Status::Ok();
}

Result<std::shared_ptr<Cache>> CacheRegistry::Find(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = caches_.find(id);
  if (it == caches_.end()) return NotFound("cache '" + id + "' does not exist");
  return it->second.cache;
}

bool CacheRegistry::MayBlock(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = caches_.find(id);
  return it != caches_.end() && it->second.cache->MayBlock();
}

bool CacheRegistry::Open(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = caches_.find(id);
  return it != caches_.end() && it->second.keys.empty();
}

Status CacheRegistry::Authorize(const std::string& id, const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = caches_.find(id);
  if (it == caches_.end()) return NotFound("cache '" + id + "' does not exist");
  if (it->second.keys.empty()) return Status::Ok();
  for (const auto& k : it->second.keys) {
    if (SameKey(k, key)) return Status::Ok();
  }
  for (const auto& [other, slot] : caches_) {
    for (const auto& k : slot.keys) {
      if (SameKey(k, key)) {
        return Status(ErrorCode::kPermissionDenied,
                      "this API key is not allowed to use cache '" + id + "'");
      }
    }
  }
  return Status(ErrorCode::kUnauthenticated, "the API key is not valid");
}

std::vector<std::shared_ptr<Cache>> CacheRegistry::All() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<Cache>> out;
  for (const auto& [id, slot] : caches_) out.push_back(slot.cache);
  return out;
}

Result<std::shared_ptr<Cache>> CacheRegistry::Remove(const std::string& id) {
  std::unique_lock lock(mu_);
  auto it = caches_.find(id);
  if (it == caches_.end()) return NotFound("cache '" + id + "' does not exist");
  if (!it->second.removable) {
    return Status(
        ErrorCode::kAlreadyExists,
        "cache '" + id + "' is declared in the configuration file; remove it there and restart");
  }
  auto cache = std::move(it->second.cache);
  caches_.erase(it);
  return cache;
}

bool CacheRegistry::Removable(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = caches_.find(id);
  return it != caches_.end() && it->second.removable;
}

std::vector<std::string> CacheRegistry::KeysOf(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = caches_.find(id);
  return it == caches_.end() ? std::vector<std::string>() : it->second.keys;
}

}  // namespace semcached::cache
