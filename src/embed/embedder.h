// Embedders turn normalized prompts into vectors for the semantic tier.
//
// One interface, several implementations: the built-in model-free embedder (the default),
// and an OpenAI-compatible HTTP embedder (OpenAI, Ollama, TEI, vLLM, llama.cpp). Embed
// returns a unit-length vector of dim() floats, or a Status naming what failed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace semcached::embed {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual std::size_t dim() const = 0;
  virtual std::string name() const = 0;
  virtual Result<std::vector<float>> Embed(std::string_view text) = 0;
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

}  // namespace semcached::embed
