// The embedded vector index: HNSW over int8 codes, with float32 originals for re-scoring.
//
// Life of an index:
//   1. Buffering. Until `calibration_threshold` vectors have arrived there is too little data
//      to learn int8 ranges, so vectors are only kept as float32 and searched exactly.
//   2. Calibration. At the threshold, per-dimension int8 params are learned from the buffer
//      (quantizer.h), every buffered vector is coded, and the HNSW graph is built over them.
//   3. Steady state. Inserts are coded and linked into the graph; searches walk the graph on
//      int8 distances (VNNI kernels), optionally re-scoring an oversampled candidate list
//      with the float32 originals.
//   4. Recalibration, asked for or triggered when the share of clipped components in new
//      inserts shows the data has drifted past the learned ranges: new params are learned and
//      every vector re-coded on a background thread while searches and inserts go on; the new
//      codes replace the old in one short exclusive step. Each code records its params version.
//
// Deletion uses tombstones: a removed node stays in the graph as a waypoint (so no search
// path is cut) but is never returned. Compact() rebuilds the graph without tombstones; it
// runs by itself once they exceed `compact_ratio` of the nodes. Tombstones make Remove O(1)
// and safe under concurrent searches, where relinking neighbours in place would need every
// reader to take locks on the neighbourhoods being rewired.
//
// Thread safety: any number of Search/Add/Remove calls may run concurrently. Link lists are
// guarded by striped node locks; rows never move (row_store.h). This file does no I/O except
// through RowStore's optional file-backed originals and the persistence functions.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "vector/kernels.h"
#include "vector/quantizer.h"
#include "vector/row_store.h"

namespace semcached::vector {

struct HnswIndexState;

enum class Metric : std::uint8_t {
  kCosine = 0,        // vectors normalized on insert; distance 1 - cos
  kInnerProduct = 1,  // distance -dot
  kL2 = 2,            // distance |a - b|^2
};
const char* MetricName(Metric m);

enum class Precision : std::uint8_t {
  kInt8 = 0,         // graph search on int8 distances only
  kInt8Rescore = 1,  // graph search, then float32 re-scoring of k * oversample candidates
  kExact = 2,        // float32 scan of every vector (ground truth)
  kCascade = 3,      // scan: binary Hamming -> int8 -> float32 (needs binary codes)
};

struct HnswOptions {
  std::size_t dim = 0;
  Metric metric = Metric::kCosine;
  std::size_t M = 16;  // links per node on upper levels; 2M on level 0
  std::size_t ef_construction = 200;
  std::size_t calibration_threshold = 1024;
  bool calibrate = true;            // false: keep Redis's per-vector Q8 codes forever
  double drift_clip_rate = 0.01;    // recalibrate when this share of new components clip
  std::size_t drift_window = 2000;  // inserts the clip rate is measured over
  double compact_ratio = 0.3;       // compact when tombstones exceed this share of nodes
  bool binary_codes = false;        // keep sign codes for Precision::kCascade
  // Choose graph links by float32 distances between originals (int8 is used to walk the
  // graph either way). Costs build time and, with originals on disk, page reads while
  // building; buys graph quality at large sizes where int8 noise blurs close neighbours.
  bool exact_construction = false;
  // Walk the graph with the query at 14 bits (int16 x int8 kernel) instead of 8: the query's
  // share of the distance error all but disappears, at about half the kernel speed.
  bool wide_query = false;
  std::string originals_path;  // float32 originals in this file; empty: in memory
  std::uint64_t seed = 100;
  bool background_maintenance = true;  // recalibrate/compact on a background thread
};

struct SearchParams {
  std::size_t k = 10;
  std::size_t ef = 64;
  Precision precision = Precision::kInt8Rescore;
  std::size_t oversample = 4;  // candidates re-scored per result wanted
  // kInt8Rescore: candidates whose int8 distance is above this are not re-scored and keep
  // their int8 distance. A caller that only wants results within a distance (a cache with a
  // similarity threshold) sets it a little above that distance, and spares the float reads
  // for candidates that cannot qualify.
  float rescore_max_distance = std::numeric_limits<float>::infinity();
  // kInt8Rescore: only candidates whose int8 distance is within this of the k-th best int8
  // distance are re-scored. A bound on the int8 error (with calibrated codes well under 0.02
  // in cosine) is enough for the top k to come out as float32 would order them; each float
  // row is a random read of 4 bytes per dimension. Infinity: every candidate.
  float rescore_band = std::numeric_limits<float>::infinity();
  // Only labels for which this returns true are returned. Null: all.
  const std::function<bool(std::uint64_t)>* filter = nullptr;
};

struct SearchHit {
  std::uint64_t label;
  float distance;  // lower is closer; for kCosine, 1 - cosine similarity
};

struct IndexStats {
  std::size_t live = 0;
  std::size_t tombstones = 0;
  std::size_t nodes = 0;
  bool calibrated = false;
  std::uint32_t params_version = 0;
  Int8Scheme scheme = Int8Scheme::kPerVector;
  std::uint64_t recalibrations = 0;
  std::uint64_t compactions = 0;
  std::size_t code_bytes = 0;      // int8 codes and their per-vector metadata
  std::size_t graph_bytes = 0;     // link lists
  std::size_t original_bytes = 0;  // float32 originals (on disk when file-backed)
  bool originals_on_disk = false;
  int max_level = -1;
};

class HnswIndex {
 public:
  static Result<std::unique_ptr<HnswIndex>> Create(const HnswOptions& options);
  ~HnswIndex();
  HnswIndex(const HnswIndex&) = delete;
  HnswIndex& operator=(const HnswIndex&) = delete;

  // Inserts, or replaces the vector of an existing label. Refuses wrong dimensions (by the
  // caller's count), non-finite values and, for cosine, zero vectors.
  Status Add(std::uint64_t label, const float* vector, std::size_t dim);
  // Removes a label; NotFound if absent.
  Status Remove(std::uint64_t label);
  bool Contains(std::uint64_t label) const;
  // The stored float32 vector (normalized for cosine).
  Result<std::vector<float>> Get(std::uint64_t label) const;

  Result<std::vector<SearchHit>> Search(const float* query, std::size_t dim,
                                        const SearchParams& params) const;

  // Writes the whole index (options, calibration, graph, codes, originals) to `path` in a
  // versioned format with a checksum per section: to a temporary file, fsynced, then renamed
  // over `path`. Writes pause while it runs; searches go on.
  Status Save(const std::string& path) const;

  struct LoadOptions {
    std::string originals_path;  // where the loaded originals live; empty: in memory
    bool background_maintenance = true;
  };
  // Reads an index written by Save without rebuilding the graph. A truncated, corrupted or
  // foreign file is refused with kDataLoss (or kInvalidArgument for a newer format); it
  // never crashes.
  static Result<std::unique_ptr<HnswIndex>> Load(const std::string& path,
                                                 const LoadOptions& options);

  // Learns new int8 params from the live vectors and re-codes them; searches go on.
  Status Recalibrate();
  // Rebuilds the graph without tombstones.
  Status Compact();
  // Waits until background maintenance started so far has finished.
  void WaitForMaintenance();

  IndexStats Stats() const;
  const HnswOptions& options() const { return options_; }
  std::size_t size() const;

  // Distance to report as similarity: for kCosine 1 - distance, kInnerProduct -distance.
  static float Similarity(Metric metric, float distance);

  class Impl;

 private:
  explicit HnswIndex(const HnswOptions& options);
  Status AddNormalized(std::uint64_t label, std::vector<float> vector);
  Status CompactNow();
  void Maintain(bool recalibrate, bool compact);
  HnswOptions options_;
  std::unique_ptr<HnswIndexState> state_;
};

}  // namespace semcached::vector
