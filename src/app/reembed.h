// `semcached reembed CACHE`: recomputes a cache's vectors with the embedder its settings now
// name, from the prompts it stores.
//
// For when a cache's embedder changed (a new model, the default moving from the n-gram
// embedder to the static model): opening such a cache is refused, and this is what the
// refusal says to run. It works on the data directory with the server stopped (it takes the
// same lock `serve` does): it restores the cache as it is, embeds every stored prompt with the
// new embedder into a new index (progress bar on stderr), switches to it, writes a snapshot
// and records the new embedder. Entries, ids, TTLs and attributes stay as they were.
// Embedded caches only; a Redis cache is refused with a message.
#pragma once

#include <string>

#include "app/config.h"

namespace semcached::app {

// Exit codes: 0 done, 2 unknown cache or a Redis one, 1 a failure (the cache is unchanged).
int RunReembed(const Config& config, const std::string& cache_id, bool progress);

}  // namespace semcached::app
