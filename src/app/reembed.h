// `semcached reembed CACHE`: recomputes a cache's vectors with the embedder its settings now
// name, from the prompts it stores.
//
// For when a cache's embedder changes (a new model, the default moving from the n-gram
// embedder to the static model): opening such a cache is refused, and this is what the
// refusal says to run. With the server running (the data directory is locked), it asks the
// server through the admin API (POST /v1/caches/CACHE/reembed), which re-embeds in the
// background while the cache keeps answering from its old vectors, then switches in one step;
// this command follows the progress. With no server running, it does the same itself on the
// data directory (taking the lock `serve` takes). Either way every stored prompt is embedded
// with the new embedder into a new index (progress bar on stderr), a snapshot is written and
// the new embedder recorded; entries, ids, TTLs and attributes stay as they were.
// A Redis cache is reembedded by this command directly in Redis (or, with --url, by that
// server): every instance sharing it keeps answering from the old vectors until the switch;
// after it, instances whose settings name the new embedder follow, and the others refuse the
// cache, saying so, until they are restarted with the new settings.
#pragma once

#include <string>

#include "app/config.h"
#include "redis/client.h"

namespace semcached::app {

// Exit codes: 0 done, 2 unknown cache or one with nothing to reembed, 1 a failure (the cache
// is unchanged). `server_url` empty: http://server.host:server.port of the configuration (an
// embedded cache whose data directory a server holds). `redis`: the configuration's Redis, for
// a Redis cache.
int RunReembed(const Config& config, const std::string& cache_id, bool progress,
               const std::string& server_url = "", redis::Executor* redis = nullptr);

}  // namespace semcached::app
