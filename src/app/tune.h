// `semcached tune --pairs FILE [CACHE]`: which similarity threshold to set, before going live.
//
// Reads labelled question pairs (CSV or TSV with a header, like the shared QQP and CANNOT
// sets, or JSON lines), embeds both questions of each with the cache's embedder, checks them
// with the cache's guards and normalization, and prints for thresholds 0.50 to 1.00 the hit
// rate on pairs that ask the same, the false-hit rate on pairs that do not, and the lowest
// threshold whose false-hit rate stays within the target (cache/tuning.h). Nothing is stored.
// Without --pairs it asks a running server for the same report on what its cache has seen:
// the labels of verification, shadow mode and feedback, and the share of recent lookups each
// threshold would serve.
#pragma once

#include <string>

#include "app/config.h"

namespace semcached::app {

struct TuneOptions {
  std::string cache_id = "default";  // whose embedder, guards and normalization
  std::string pairs_file;
  double target_false_hit_rate = 0.01;
  // What a label of 1 means: "same" (a duplicate, as QQP's is_duplicate) or "different" (as
  // CANNOT's label). Empty: "different" for a header naming the column "label" in a TSV whose
  // texts are called premise/hypothesis, "same" otherwise.
  std::string label_means;
  bool json = false;
  bool progress = true;
  // Without pairs_file: the report of a running server's cache (its labels and recent
  // lookups), from GET /v1/caches/CACHE/tuning at this URL with this key.
  std::string server_url;
  std::string api_key;
};

// Exit codes: 0 a report, 2 a file or cache that cannot be used, 1 an embedder failure.
int RunTune(const Config& config, const TuneOptions& options);

}  // namespace semcached::app
