// The one place where Redis's similarity scale meets ours.
//
// Redis 8 vector sets report VSIM scores as (1 + cosine) / 2 in 0..1; semcached speaks cosine
// everywhere (thresholds, responses, metrics). Converting anywhere else would let the two
// scales mix silently.
#pragma once

namespace semcached::store {

inline float CosineFromRedisScore(double score) { return static_cast<float>(2.0 * score - 1.0); }
inline double RedisScoreFromCosine(float cosine) {
  return (1.0 + static_cast<double>(cosine)) / 2.0;
}

}  // namespace semcached::store
