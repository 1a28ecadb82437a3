// Hugging Face `tokenizer.json`, the part static embedding models use: text to token ids.
//
// Static models (Model2Vec) look a vector up per token, so their quality rests on splitting
// text exactly as the tokenizer they were distilled with. This reads the pipeline from the
// file and runs it as Hugging Face's `tokenizers` does with add_special_tokens=false: added
// tokens matched first, then the normalizers (BertNormalizer, Replace, Strip, Lowercase, in
// a Sequence), the pre-tokenizers (BertPreTokenizer, WhitespaceSplit, Metaspace), and the
// model (WordPiece with its continuation prefix and word-length limit, or Unigram's most
// probable segmentation). A component it does not implement is refused at load, by name:
// it must never silently tokenize differently. It knows nothing of embeddings.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace semcached::embed {

class Tokenizer {
 public:
  // Parses the JSON text of a tokenizer.json; `what` names it in errors.
  static Result<std::unique_ptr<Tokenizer>> FromJson(std::string_view json_text,
                                                     const std::string& what);
  ~Tokenizer();

  // Appends the ids of `text` (UTF-8; invalid bytes count as U+FFFD) to `ids`, as
  // Tokenizer.encode(text, add_special_tokens=False).ids would in Hugging Face's library.
  void Encode(std::string_view text, std::vector<std::int32_t>* ids) const;

  // The id of the model's unknown token, if it has one.
  std::optional<std::int32_t> unk_id() const;
  // Every token by id (added tokens included); ids without a token are empty strings.
  const std::vector<std::string>& tokens() const;
  // "WordPiece" or "Unigram", with its normalizer and pre-tokenizer, for logs.
  std::string Describe() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace semcached::embed
