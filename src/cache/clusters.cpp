#include "cache/clusters.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace semcached::cache {
namespace {

float Dot(const float* a, const float* b, std::size_t n) {
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void NormalizeToUnit(float* v, std::size_t n) {
  double norm = 0;
  for (std::size_t i = 0; i < n; ++i) norm += static_cast<double>(v[i]) * v[i];
  if (norm <= 0) return;
  const auto inverse = static_cast<float>(1 / std::sqrt(norm));
  for (std::size_t i = 0; i < n; ++i) v[i] *= inverse;
}

int ClusterModel::Assign(const float* vector, std::size_t n) const {
  if (n != dim || sizes.empty()) return -1;
  int best = 0;
  float best_cos = -std::numeric_limits<float>::infinity();
  for (std::size_t c = 0; c < k(); ++c) {
    const float cos = Dot(vector, centroid(c), dim);
    if (cos > best_cos) {
      best_cos = cos;
      best = static_cast<int>(c);
    }
  }
  return best;
}

std::size_t ClusterCount(std::size_t n) {
  const auto k = static_cast<std::size_t>(std::sqrt(static_cast<double>(n) / 2));
  return std::clamp<std::size_t>(k, 1, 64);
}

ClusterModel FitClusters(const std::vector<std::vector<float>>& vectors, std::size_t k,
                         std::uint64_t seed, int max_iterations) {
  ClusterModel m;
  if (vectors.empty() || k == 0) return m;
  m.dim = vectors.front().size();
  const std::size_t n = vectors.size(), d = m.dim;
  k = std::min(k, n);
  std::mt19937_64 rng(seed);

  // k-means++: each next seed drawn with probability proportional to its distance (1 - cos)
  // from the nearest seed so far.
  m.centroids.assign(k * d, 0);
  std::vector<float> nearest(n, std::numeric_limits<float>::infinity());
  std::size_t chosen = std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  for (std::size_t c = 0; c < k; ++c) {
    std::copy(vectors[chosen].begin(), vectors[chosen].end(), m.centroids.begin() + c * d);
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      nearest[i] =
          std::min(nearest[i], std::max(0.0f, 1 - Dot(vectors[i].data(), m.centroid(c), d)));
      total += nearest[i];
    }
    if (total <= 0) {  // every vector sits on a seed: fewer clusters than asked
      m.centroids.resize((c + 1) * d);
      k = c + 1;
      break;
    }
    double pick = std::uniform_real_distribution<double>(0, total)(rng);
    chosen = n - 1;
    for (std::size_t i = 0; i < n; ++i) {
      pick -= nearest[i];
      if (pick <= 0 && nearest[i] > 0) {
        chosen = i;
        break;
      }
    }
  }

  // Lloyd: assign by cosine, centroids the normalized means, until no vector moves.
  std::vector<int> assignment(n, -1);
  m.sizes.assign(k, 0);
  for (int iteration = 0; iteration < max_iterations; ++iteration) {
    bool moved = false;
    for (std::size_t i = 0; i < n; ++i) {
      const int c = m.Assign(vectors[i].data(), d);
      moved = moved || c != assignment[i];
      assignment[i] = c;
    }
    if (!moved) break;
    std::vector<float> sums(k * d, 0);
    std::fill(m.sizes.begin(), m.sizes.end(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = static_cast<std::size_t>(assignment[i]);
      ++m.sizes[c];
      for (std::size_t j = 0; j < d; ++j) sums[c * d + j] += vectors[i][j];
    }
    for (std::size_t c = 0; c < k; ++c) {
      if (m.sizes[c] == 0) continue;  // an emptied cluster keeps its centroid
      std::copy(sums.begin() + static_cast<std::ptrdiff_t>(c * d),
                sums.begin() + static_cast<std::ptrdiff_t>((c + 1) * d),
                m.centroids.begin() + static_cast<std::ptrdiff_t>(c * d));
      NormalizeToUnit(m.centroids.data() + c * d, d);
    }
  }
  std::fill(m.sizes.begin(), m.sizes.end(), 0);
  for (std::size_t i = 0; i < n; ++i)
    ++m.sizes[static_cast<std::size_t>(m.Assign(vectors[i].data(), d))];
  return m;
}

std::vector<ClusterMatch> MatchClusters(const ClusterModel& next, const ClusterModel& previous) {
  std::vector<ClusterMatch> out(next.k());
  if (previous.k() == 0 || previous.dim != next.dim) return out;
  for (std::size_t c = 0; c < next.k(); ++c) {
    const int p = previous.Assign(next.centroid(c), next.dim);
    out[c] = {p, Dot(next.centroid(c), previous.centroid(static_cast<std::size_t>(p)), next.dim)};
  }
  return out;
}

}  // namespace semcached::cache
