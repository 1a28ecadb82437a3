// The VectorStore conformance suite: one set of behaviours every store must show.
//
// The tests are in conformance.cpp, linked into the unit suite (EmbeddedStore) and the redis
// suite (RedisVectorStore, ShardedStore on a cluster); each instantiates StoreConformance
// with its own factories.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "store/vector_store.h"

namespace semcached::testing {

struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<store::VectorStore>(const store::CollectionOptions&)> make;
};

inline std::vector<float> RandomUnit(std::mt19937& rng, std::size_t dim) {
  std::normal_distribution<float> n(0, 1);
  std::vector<float> v(dim);
  double norm = 0;
  for (auto& x : v) {
    x = n(rng);
    norm += x * x;
  }
  for (auto& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

inline double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / std::sqrt(na * nb);
}

class StoreConformance : public ::testing::TestWithParam<const StoreFactory*> {
 protected:
  static constexpr std::size_t kDim = 32;
  std::unique_ptr<store::VectorStore> Make(store::Quantization q = store::Quantization::kQ8) {
    store::CollectionOptions o;
    o.dim = kDim;
    o.quantization = q;
    return GetParam()->make(o);
  }
  std::vector<store::Element> Fill(store::VectorStore& s, std::size_t n, std::uint32_t seed = 7) {
    std::mt19937 rng(seed);
    std::vector<store::Element> elements;
    for (std::size_t i = 0; i < n; ++i) {
      char attributes[96];
      std::snprintf(attributes, sizeof attributes, R"({"user":"%s","n":%zu,"tag":"%c"})",
                    i % 2 ? "alice" : "bob", i, static_cast<char>('a' + i % 3));
      elements.push_back({"e" + std::to_string(i), RandomUnit(rng, kDim), attributes});
    }
    for (const auto& st : s.AddBatch(elements)) EXPECT_TRUE(st.ok()) << st.ToString();
    return elements;
  }
};

}  // namespace semcached::testing
