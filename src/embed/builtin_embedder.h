// The built-in embedder: no model, no network, deterministic.
//
// A prompt's features are its character n-grams (3 to 5, across word boundaries) and its
// word unigrams and bigrams. Each feature is hashed to a signed position in a fixed-size
// vector (the hashing trick) with weight (1 + ln tf) * idf, where the inverse document
// frequency is learned from the texts the cache stores (Observe), counted in a small
// count-min sketch so memory stays fixed however many distinct features arrive. The result
// is L2-normalized, so cosine similarity is a TF-IDF cosine over n-grams: the strongest
// model-free measure on the paraphrase data we evaluated on (docs/hit-quality.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "embed/embedder.h"

namespace semcached::embed {

struct BuiltinEmbedderOptions {
  std::size_t dim = 512;
  int min_char_ngram = 3;
  int max_char_ngram = 5;
  float char_weight = 1.0f;    // weight of character n-gram features
  float word_weight = 1.5f;    // of word unigrams
  float bigram_weight = 1.0f;  // of word bigrams
  std::size_t sketch_width = 1 << 18;
  std::uint64_t seed = 0x5eca;
};

class BuiltinEmbedder final : public Embedder {
 public:
  explicit BuiltinEmbedder(BuiltinEmbedderOptions options = {});
  std::size_t dim() const override { return options_.dim; }
  std::string name() const override { return "builtin-ngram-tfidf"; }
  EmbedderIdentity identity() const override;
  Result<std::vector<float>> Embed(std::string_view text) override;
  void Observe(std::string_view text) override;
  // Moves each time the number of documents the weights were learned from doubles.
  std::uint64_t generation() const override;
  std::uint64_t documents() const { return documents_.load(); }

 private:
  struct Feature {
    std::uint64_t hash;
    float weight;  // feature-type weight
  };
  std::vector<Feature> Features(std::string_view text) const;
  float Idf(std::uint64_t hash) const;

  BuiltinEmbedderOptions options_;
  // Count-min sketch of document frequencies: two rows, min of the two counts.
  std::vector<std::atomic<std::uint32_t>> sketch_;
  std::atomic<std::uint64_t> documents_{0};
};

}  // namespace semcached::embed
