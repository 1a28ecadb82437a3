#include "cache/registry.h"

#include <openssl/crypto.h>

namespace semcached::cache {
namespace {

// Constant-time comparison, so key checks do not leak how much of a key matched.
bool SameKey(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Status CacheRegistry::Add(std::unique_ptr<SemanticCache> cache, std::vector<std::string> api_keys) {
  std::string id = cache->options().id;
  if (caches_.count(id)) return InvalidArgument("cache '" + id + "' is declared twice");
  caches_[id] = Slot{std::move(cache), std::move(api_keys)};
  return Status::Ok();
}

Result<SemanticCache*> CacheRegistry::Find(const std::string& id) const {
  auto it = caches_.find(id);
  if (it == caches_.end()) return NotFound("cache '" + id + "' does not exist");
  return it->second.cache.get();
}

bool CacheRegistry::Open(const std::string& id) const {
  auto it = caches_.find(id);
  return it != caches_.end() && it->second.keys.empty();
}

Status CacheRegistry::Authorize(const std::string& id, const std::string& key) const {
  auto it = caches_.find(id);
  if (it == caches_.end()) return NotFound("cache '" + id + "' does not exist");
  if (it->second.keys.empty()) return Status::Ok();
  for (const auto& k : it->second.keys) {
    if (SameKey(k, key)) return Status::Ok();
  }
  for (const auto& [other, slot] : caches_) {
    for (const auto& k : slot.keys) {
      if (SameKey(k, key)) {
        return Status(ErrorCode::kPermissionDenied, "this API key is not allowed to use cache '" + id + "'");
      }
    }
  }
  return Status(ErrorCode::kUnauthenticated, "the API key is not valid");
}

std::vector<SemanticCache*> CacheRegistry::All() const {
  std::vector<SemanticCache*> out;
  for (const auto& [id, slot] : caches_) out.push_back(slot.cache.get());
  return out;
}

}  // namespace semcached::cache
