#include "embed/builtin_embedder.h"

#include "common/hash.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace semcached::embed {
namespace {

std::uint64_t Hash(std::string_view s, std::uint64_t seed) { return Mix64(Fnv1a64(s, seed)); }

// UTF-8 aware: n-grams are over code points, not bytes.
std::vector<std::size_t> CodePointStarts(std::string_view s) {
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  starts.push_back(s.size());
  return starts;
}

}  // namespace

BuiltinEmbedder::BuiltinEmbedder(BuiltinEmbedderOptions options)
    : options_(options), sketch_(2 * std::max<std::size_t>(options.sketch_width, 1024)) {}

std::vector<BuiltinEmbedder::Feature> BuiltinEmbedder::Features(std::string_view text) const {
  std::vector<Feature> out;
  std::string padded = " ";
  padded.append(text);
  padded += ' ';
  auto starts = CodePointStarts(padded);
  const std::size_t cps = starts.size() - 1;
  for (int n = options_.min_char_ngram; n <= options_.max_char_ngram; ++n) {
    for (std::size_t i = 0; i + static_cast<std::size_t>(n) <= cps; ++i) {
      std::string_view g(padded.data() + starts[i], starts[i + n] - starts[i]);
      out.push_back({Hash(g, options_.seed + static_cast<std::uint64_t>(n)), options_.char_weight});
    }
  }
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ') ++j;
    if (j > i) words.push_back(text.substr(i, j - i));
    i = j;
  }
  for (std::size_t w = 0; w < words.size(); ++w) {
    out.push_back({Hash(words[w], options_.seed ^ 0x77), options_.word_weight});
    if (w + 1 < words.size()) {
      std::uint64_t h = Mix64(Hash(words[w], options_.seed ^ 0x88) * 31 +
                              Hash(words[w + 1], options_.seed ^ 0x99));
      out.push_back({h, options_.bigram_weight});
    }
  }
  return out;
}

float BuiltinEmbedder::Idf(std::uint64_t hash) const {
  const std::size_t w = sketch_.size() / 2;
  std::uint32_t a = sketch_[hash % w].load(std::memory_order_relaxed);
  std::uint32_t b = sketch_[w + (Mix64(hash) % w)].load(std::memory_order_relaxed);
  double df = std::min(a, b);
  double n = static_cast<double>(documents_.load(std::memory_order_relaxed));
  return static_cast<float>(std::log((1.0 + n) / (1.0 + df)) + 1.0);
}

void BuiltinEmbedder::Observe(std::string_view text) {
  auto features = Features(text);
  std::sort(features.begin(), features.end(),
            [](const Feature& a, const Feature& b) { return a.hash < b.hash; });
  const std::size_t w = sketch_.size() / 2;
  for (std::size_t i = 0; i < features.size(); ++i) {
    if (i > 0 && features[i].hash == features[i - 1].hash) continue;  // once per document
    sketch_[features[i].hash % w].fetch_add(1, std::memory_order_relaxed);
    sketch_[w + (Mix64(features[i].hash) % w)].fetch_add(1, std::memory_order_relaxed);
  }
  documents_.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t BuiltinEmbedder::generation() const {
  std::uint64_t n = documents_.load(std::memory_order_relaxed);
  std::uint64_t bits = 0;
  while (n > 0) {
    n >>= 1;
    ++bits;
  }
  return bits;
}

Result<std::vector<float>> BuiltinEmbedder::Embed(std::string_view text) {
  std::vector<float> v(options_.dim, 0.f);
  auto features = Features(text);
  // Term frequencies by sorting (a run of equal hashes is one term; the last feature's type
  // weight wins on a collision): no allocation per feature, as a hash map would make.
  std::stable_sort(features.begin(), features.end(),
                   [](const Feature& a, const Feature& b) { return a.hash < b.hash; });
  for (std::size_t i = 0; i < features.size();) {
    std::size_t j = i + 1;
    while (j < features.size() && features[j].hash == features[i].hash) ++j;
    const std::uint64_t hash = features[i].hash;
    const float count = static_cast<float>(j - i);
    const float weight = (1.f + std::log(count)) * Idf(hash) * features[j - 1].weight;
    const std::size_t pos = hash % options_.dim;
    v[pos] += (hash >> 63) ? -weight : weight;
    i = j;
  }
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  if (norm <= 0) {
    // No features at all (empty text): a fixed unit vector, so the caller's index accepts it.
    v[0] = 1.f;
    return v;
  }
  float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& x : v) x *= inv;
  return v;
}

}  // namespace semcached::embed

namespace semcached::embed {

EmbedderIdentity BuiltinEmbedder::identity() const {
  // Its settings decide which feature lands where: any change makes other vectors.
  const auto& o = options_;
  std::string model = "char" + std::to_string(o.min_char_ngram) + "-" +
                      std::to_string(o.max_char_ngram) + " words bigrams weights " +
                      std::to_string(o.char_weight) + "/" + std::to_string(o.word_weight) + "/" +
                      std::to_string(o.bigram_weight) + " seed " + std::to_string(o.seed);
  return {"ngram", model, "", o.dim, true};
}

}  // namespace semcached::embed
