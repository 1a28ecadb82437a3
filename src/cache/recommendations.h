// Advice on a cache's settings from what the cache itself has measured: the similarity
// threshold (labelled lookups, near misses, false-hit signals), the TTL (how far into their
// lives entries are hit), the size limit (evictions), search_ef (recall probes against an exact
// scan), the embedder (its share of lookup time) and the Redis pool (busy connections). Each
// setting gets a verdict with the numbers behind it, also when the verdict is to keep it or
// that there is not enough evidence yet.
// Must not: measure anything itself (the route gathers the inputs), or change a setting.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cache/cache.h"
#include "cache/tuning.h"

namespace semcached::cache {

struct PoolSample {
  std::size_t pool_max = 0;
  double busy_share = 0;    // busy connections over pool_max, averaged over the samples
  std::size_t waiting = 0;  // the most commands seen waiting for a connection
};

struct RecommendationInputs {
  CacheOptions options;
  float threshold = 0;  // the serving threshold (an ended experiment's winner included)
  CacheStats stats;
  CacheMemory memory;
  bool vectors_in_redis = false;  // a Redis cache: its vectors and graph are not in `memory`
  TuningReport tuning;            // labelled lookups, and recent traffic's best similarities
  std::vector<Cache::RecallProbe> recall;  // at several search_ef values, one being the current
  bool embedder_remote = false;
  std::string embedder;                  // its identity, for the advice's text
  std::optional<PoolSample> redis_pool;  // Redis caches
};

enum class Verdict { kChange, kKeep, kUnknown };
const char* VerdictName(Verdict v);  // "change", "keep", "not_enough_data"

struct Advice {
  std::string setting;  // the configuration key, as in [[caches]] or the server's
  Verdict verdict = Verdict::kUnknown;
  std::string current, suggested;  // suggested: empty unless kChange
  std::string reason;
  std::vector<std::pair<std::string, double>> evidence;
};

std::vector<Advice> Recommend(const RecommendationInputs& in);

// {"recommendations": [...changes...], "checked": [...every setting...]}
std::string RecommendationsJson(const std::string& cache_id, const std::vector<Advice>& advice);

}  // namespace semcached::cache
