// The LangCache REST API over the cache registry, so the official LangCache SDKs work
// against semcached unchanged (docs/langcache-api.md):
//   POST   /v1/caches/{cacheId}/entries            store          201 {entryId}
//   POST   /v1/caches/{cacheId}/entries/search     search         200 {data: [...]}
//   DELETE /v1/caches/{cacheId}/entries            by attributes  200 {deletedEntriesCount}
//   DELETE /v1/caches/{cacheId}/entries/{entryId}  one entry      204
//   POST   /v1/caches/{cacheId}/flush              everything     204
//   GET    /v1/caches/{cacheId}/stats              extension: counters of the cache
//   GET    /v1/caches/{cacheId}/recommendations    extension: advice on its settings
// Every response of a search carries X-Semcached-Tier, X-Semcached-Similarity and
// X-Semcached-Timings (microseconds per stage). Errors use the LangCache problem types.
#pragma once

#include <functional>
#include <optional>

#include "cache/recommendations.h"
#include "cache/registry.h"
#include "server/metrics.h"
#include "server/router.h"

namespace semcached::server {

// Samples the Redis client's pool for the recommendations (null without Redis).
using PoolSampler = std::function<std::optional<cache::PoolSample>()>;

void AddLangCacheRoutes(Router& router, cache::CacheRegistry& registry, Metrics& metrics,
                        PoolSampler redis_pool = {});

}  // namespace semcached::server
