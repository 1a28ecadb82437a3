// Embedders turn normalized prompts into vectors for the semantic tier.
//
// One interface, several implementations: a static model in process (Model2Vec, the
// default), the model-free n-gram embedder, and an OpenAI-compatible HTTP embedder (OpenAI,
// Ollama, TEI, vLLM, llama.cpp). Embed returns a vector of dim() floats (unit length unless a
// model's config says otherwise; caches compare by cosine), or a Status naming what failed.
// identity() says which embedder made a vector: a cache records it and refuses to mix.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace semcached::embed {

// Which embedder made a set of vectors. Two identities that differ in any field make vectors
// that must not be compared with each other.
struct EmbedderIdentity {
  std::string kind;            // "model2vec", "ngram", "openai"
  std::string model;           // the model's name ("minishlab/potion-base-4M-int8"), if any
  std::string weights_sha256;  // of the model's weights file, for models in process
  std::size_t dim = 0;
  bool normalized = true;  // vectors are L2-normalized

  std::string ToJson() const;
  // Null when the text is not an identity this build wrote.
  static std::optional<EmbedderIdentity> FromJson(std::string_view text);
  // "model2vec minishlab/potion-base-4M-int8, 128-d, weights sha256 48003d10..."
  std::string Describe() const;
  // One phrase per field that differs ("dim 512 -> 128"); empty when the same.
  std::vector<std::string> Differences(const EmbedderIdentity& now) const;
  // Whether vectors of the two compare: the same kind, dimensions and normalization, and the
  // same weights (by sha256 when both know it: one model under two names is one model) or,
  // without weights, the same model name.
  bool SameVectors(const EmbedderIdentity& other) const;
  bool operator==(const EmbedderIdentity&) const = default;
};

// Why cache `cache_id`, whose vectors `recorded` made, cannot be opened with the embedder that
// makes `now`, and what to run.
std::string EmbedderMismatch(const std::string& cache_id, const EmbedderIdentity& recorded,
                             const EmbedderIdentity& now);

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual std::size_t dim() const = 0;
  virtual std::string name() const = 0;
  virtual EmbedderIdentity identity() const = 0;
  virtual Result<std::vector<float>> Embed(std::string_view text) = 0;
  // Whether Embed may wait on the network (an embedding server): callers keep such work off
  // threads that must not wait.
  virtual bool Remote() const { return false; }
  // Embeds a text about to be stored. A cache of embeddings may answer it (a store usually
  // follows a search for the same prompt that missed) but need not keep it: the same words
  // searched again are answered by the exact tier, so stored prompts would only push
  // searched ones out.
  virtual Result<std::vector<float>> EmbedToStore(std::string_view text) { return Embed(text); }
  // Tells the embedder a text was stored; the built-in one learns term weights from it.
  virtual void Observe(std::string_view /*text*/) {}
  // Changes when the same text would embed differently (learned weights moved enough);
  // caches of embeddings drop entries of an older generation.
  virtual std::uint64_t generation() const { return 0; }
};

// Cosine similarity of two texts' vectors under `embedder` (0 when either has no direction).
Result<float> CosineOf(Embedder& embedder, std::string_view a, std::string_view b);

}  // namespace semcached::embed
