// A static embedding model in process: Model2Vec (and sentence-transformers StaticEmbedding).
//
// Such a model is one vector per token, distilled from a sentence encoder; a text's vector
// is the mean of its tokens' rows, so embedding costs a tokenization and a few additions:
// microseconds, no GPU, no network, yet it knows that "parcel" and "package" are near. This
// loads the files (model.safetensors, tokenizer.json, config), checks them before use, and
// encodes as the Python `model2vec` package does: no special tokens, unknown tokens dropped,
// at most 512 tokens, rows mapped and weighted for vocabulary-quantized models, L2-normalized
// when the config says so. It does not download (app/model_pull does) and holds no cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "embed/embedder.h"
#include "embed/tokenizer.h"

namespace semcached::embed {

// The bytes of a model's files, wherever they came from (a directory, the built-in copy).
struct StaticModelFiles {
  std::string name;            // shown in logs and in the embedder's identity
  std::string config_json;     // config.json, or config_sentence_transformers.json
  std::string tokenizer_json;  // tokenizer.json
  std::string safetensors;     // model.safetensors
  // The sentence-transformers layouts name the table "embedding.weight", Model2Vec's
  // "embeddings".
  bool sentence_transformers = false;
};

// Reads a model directory in any of the layouts Model2Vec writes or reads: its own
// (config.json), sentence-transformers' (config_sentence_transformers.json), or with the
// module under 0_StaticEmbedding/.
Result<StaticModelFiles> ReadStaticModelDir(const std::string& dir);

// The model the product ships (potion-base-4m-int8, built into the binary).
StaticModelFiles DefaultStaticModel();
inline constexpr const char* kDefaultStaticModelName = "minishlab/potion-base-4M-int8";

struct StaticEmbedderOptions {
  // A text with no token the model knows (emoji only, an unknown script) has no mean.
  // model2vec returns zeros; a cache cannot index a vector without a direction, so by default
  // such a text gets a unit vector drawn from a hash of its bytes: found again by the same
  // text, near nothing else (random directions in 128-d are ~0.09 apart in cosine).
  bool zeros_for_unknown_text = false;
};

class StaticEmbedder final : public Embedder {
 public:
  static Result<std::unique_ptr<StaticEmbedder>> Load(const StaticModelFiles& files,
                                                      StaticEmbedderOptions options = {});
  ~StaticEmbedder() override;

  std::size_t dim() const override { return dim_; }
  std::string name() const override { return "model2vec:" + name_; }
  EmbedderIdentity identity() const override {
    return {"model2vec", name_, weights_sha256_, dim_, normalize_};
  }
  Result<std::vector<float>> Embed(std::string_view text) override;

  // The token ids a text is averaged over (after truncation and dropping unknown tokens).
  std::vector<std::int32_t> TokenIds(std::string_view text) const;
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  bool normalizes() const { return normalize_; }
  // Lower-case hex SHA-256 of model.safetensors: which weights made a cache's vectors.
  const std::string& weights_sha256() const { return weights_sha256_; }
  // "I8", "F32", ...: the table's element type as stored in the file.
  const std::string& table_dtype() const { return table_dtype_; }

 private:
  StaticEmbedder() = default;

  std::string name_;
  StaticEmbedderOptions options_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::size_t dim_ = 0;
  std::size_t rows_ = 0;
  // One of the two holds the table, row-major: int8 tables stay int8 (a quarter of the
  // memory, exact integer sums), the others are widened to float once at load.
  std::vector<std::int8_t> table_i8_;
  std::vector<float> table_f32_;
  // Vocabulary quantization: token id -> row, and a weight per token id. Empty otherwise.
  std::vector<std::int32_t> mapping_;
  std::vector<double> weights_;
  bool normalize_ = false;
  std::size_t max_tokens_ = 512;
  std::size_t max_chars_ = 0;  // the text is cut to this many characters before tokenizing
  std::string weights_sha256_;
  std::string table_dtype_;
};

}  // namespace semcached::embed
