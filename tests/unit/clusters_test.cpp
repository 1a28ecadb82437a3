// Clusters of entries (cache/clusters.h): k-means finds separated groups, assigns by the
// nearest centroid, is the same for the same seed, and a refit is matched to the fit before.
#include "cache/clusters.h"

#include <cmath>
#include <random>
#include <set>

#include <gtest/gtest.h>

namespace semcached::cache {
namespace {

std::vector<float> Unit(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += x * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
  return v;
}

// `per` vectors around each of `centres` (unit, 16-d), spread `noise`.
std::vector<std::vector<float>> Blobs(const std::vector<std::vector<float>>& centres,
                                      std::size_t per, float noise, std::uint64_t seed,
                                      std::vector<int>* truth = nullptr) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> gauss(0, noise);
  std::vector<std::vector<float>> out;
  for (std::size_t c = 0; c < centres.size(); ++c) {
    for (std::size_t i = 0; i < per; ++i) {
      std::vector<float> v = centres[c];
      for (float& x : v) x += gauss(rng);
      out.push_back(Unit(v));
      if (truth) truth->push_back(static_cast<int>(c));
    }
  }
  return out;
}

std::vector<std::vector<float>> Axes(std::size_t k, std::size_t dim) {
  std::vector<std::vector<float>> centres(k, std::vector<float>(dim, 0));
  for (std::size_t c = 0; c < k; ++c) centres[c][c] = 1;
  return centres;
}

TEST(Clusters, KMeansRecoversSeparatedGroups) {
  std::vector<int> truth;
  const auto vectors = Blobs(Axes(4, 16), 100, 0.08f, 1, &truth);
  const ClusterModel m = FitClusters(vectors, 4, 42);
  ASSERT_EQ(m.k(), 4u);
  EXPECT_EQ(m.dim, 16u);
  // Every group lands in one cluster of its own.
  std::vector<std::set<int>> clusters_of(4);
  for (std::size_t i = 0; i < vectors.size(); ++i)
    clusters_of[static_cast<std::size_t>(truth[i])].insert(m.Assign(vectors[i].data(), 16));
  std::set<int> used;
  for (const auto& s : clusters_of) {
    ASSERT_EQ(s.size(), 1u);
    used.insert(*s.begin());
  }
  EXPECT_EQ(used.size(), 4u);
  for (std::size_t c = 0; c < 4; ++c) EXPECT_EQ(m.sizes[c], 100u);
  // Centroids are unit vectors near the groups' centres.
  for (std::size_t c = 0; c < 4; ++c) {
    double norm = 0, best = 0;
    for (std::size_t j = 0; j < 16; ++j) {
      norm += m.centroid(c)[j] * m.centroid(c)[j];
      best = std::max(best, static_cast<double>(m.centroid(c)[j]));
    }
    EXPECT_NEAR(norm, 1, 1e-4);
    EXPECT_GT(best, 0.95);
  }
  // The same seed, the same model.
  const ClusterModel again = FitClusters(vectors, 4, 42);
  EXPECT_EQ(again.centroids, m.centroids);
  // A vector of another dimension, or an empty model, has no cluster.
  EXPECT_EQ(m.Assign(vectors[0].data(), 8), -1);
  EXPECT_EQ(ClusterModel{}.Assign(vectors[0].data(), 16), -1);
}

TEST(Clusters, FewerDistinctVectorsThanClustersAskedGiveFewerClusters) {
  const auto vectors = Blobs(Axes(2, 16), 20, 0.0f, 3);  // two points, each 20 times
  const ClusterModel m = FitClusters(vectors, 5, 1);
  EXPECT_EQ(m.k(), 2u);
  EXPECT_EQ(m.sizes[0] + m.sizes[1], 40u);
  EXPECT_TRUE(FitClusters({}, 3, 1).k() == 0);
}

TEST(Clusters, CountGrowsWithTheSquareRootAndIsBounded) {
  EXPECT_EQ(ClusterCount(0), 1u);
  EXPECT_EQ(ClusterCount(200), 10u);
  EXPECT_EQ(ClusterCount(5000), 50u);
  EXPECT_EQ(ClusterCount(1000000), 64u);
}

TEST(Clusters, ARefitIsMatchedToTheFitBeforeAndAMovedCentroidShows) {
  const auto before = FitClusters(Blobs(Axes(3, 16), 60, 0.05f, 5), 3, 7);
  // The same groups sampled again: every cluster matches one before it, nearly equal.
  const auto same = FitClusters(Blobs(Axes(3, 16), 60, 0.05f, 6), 3, 8);
  const auto matches = MatchClusters(same, before);
  ASSERT_EQ(matches.size(), 3u);
  std::set<int> previous;
  for (const auto& m : matches) {
    EXPECT_GT(m.cosine, 0.99f);
    previous.insert(m.previous);
  }
  EXPECT_EQ(previous.size(), 3u);
  // One group moved to a new place (axis 5 instead of axis 2): its cluster matches poorly.
  auto centres = Axes(3, 16);
  centres[2] = std::vector<float>(16, 0);
  centres[2][5] = 1;
  const auto moved = FitClusters(Blobs(centres, 60, 0.05f, 9), 3, 10);
  int poor = 0;
  for (const auto& m : MatchClusters(moved, before)) poor += m.cosine < 0.95f;
  EXPECT_EQ(poor, 1);
  // Nothing before: nothing to match.
  for (const auto& m : MatchClusters(moved, ClusterModel{})) EXPECT_EQ(m.previous, -1);
}

}  // namespace
}  // namespace semcached::cache
