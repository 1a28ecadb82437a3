// Clusters of a cache's entries: the neighbourhoods adaptive thresholds learn in, and the
// cache's semantic fingerprint of its regions.
//
// One curve of hit error against similarity for a whole cache is one guess for every region:
// a dense region of near-identical questions (versions of a product, say) needs a higher
// similarity for the same error than a sparse one. Entries are grouped by spherical k-means
// (unit vectors, cosine; k-means++ seeding, then Lloyd iterations until no vector changes
// cluster), and the labels of a cluster's entries become a prior between the cache's curve and
// an entry's own labels. A refit (the cache grew, a reembed) is matched to the clusters before
// it, centroid to nearest centroid; a cluster whose centroid moved further than a bound has
// stale statistics, which the caller resets.
// Must not: embed, hold entries or keep time (callers bring the vectors and decide when to fit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace semcached::cache {

struct ClusterModel {
  std::size_t dim = 0;
  std::vector<float> centroids;    // k rows of dim, unit length
  std::vector<std::size_t> sizes;  // vectors of the fit in each
  std::size_t k() const { return sizes.size(); }
  const float* centroid(std::size_t c) const { return centroids.data() + c * dim; }
  // The nearest centroid by cosine (-1 for an empty model or a vector of another dimension).
  int Assign(const float* vector, std::size_t dim) const;
};

// `v` scaled to unit length (a zero vector stays zero): what Assign and FitClusters expect.
void NormalizeToUnit(float* v, std::size_t n);

// How many clusters for `n` vectors: about sqrt(n / 2), at least 1, at most 64.
std::size_t ClusterCount(std::size_t n);

// Spherical k-means of unit vectors (each of the same dimension); deterministic for a seed.
ClusterModel FitClusters(const std::vector<std::vector<float>>& vectors, std::size_t k,
                         std::uint64_t seed, int max_iterations = 25);

// For each cluster of `next`: the cluster of `previous` with the nearest centroid, and the
// cosine between the two centroids (-1 and 0 when `previous` is empty).
struct ClusterMatch {
  int previous = -1;
  float cosine = 0;
};
std::vector<ClusterMatch> MatchClusters(const ClusterModel& next, const ClusterModel& previous);

}  // namespace semcached::cache
