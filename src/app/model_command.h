// `semcached model ...`: the static models from the command line.
//
// `tokenize` and `embed` read texts from stdin (one per line, or one JSON string per line
// with --json-lines) and print, per text, the token ids the model's tokenizer gives (as
// Hugging Face's encode without special tokens) or the vector the embedder makes; they are how
// a user checks a model and how the tests compare our tokenizer with Hugging Face's.
#pragma once

#include <string>

#include "app/config.h"

namespace semcached::app {

struct ModelTextOptions {
  std::string model;  // as embedder_model: empty for the built-in model, a directory, OWNER/NAME
  bool json_lines = false;
};

// Exit codes: 0 done, 2 a bad model or input.
int RunModelTokenize(const Config& config, const ModelTextOptions& options);
int RunModelEmbed(const Config& config, const ModelTextOptions& options);

}  // namespace semcached::app
