// An embedder that calls an OpenAI-compatible HTTP service: POST {base_url}/embeddings with
// {"model", "input": [texts]}; OpenAI, Ollama, TEI, vLLM and llama.cpp's server speak it.
//
// Requests go through HttpClient (common/http_client.h: TLS, keep-alive through a pool of
// handles), with a timeout, and with retries and exponential backoff with jitter on timeouts,
// 429 and 5xx only. The API key is read from an environment variable at construction and is never
// logged. With `dim` set below the model's size, vectors are truncated (Matryoshka) and
// re-normalized.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "embed/embedder.h"

namespace semcached::embed {

struct HttpEmbedderOptions {
  std::string base_url = "http://127.0.0.1:11434/v1";  // without the trailing /embeddings
  std::string model;
  std::string api_key_env = "OPENAI_API_KEY";  // empty or unset: no Authorization header
  std::size_t dim = 0;                         // 0: whatever the model returns
  int timeout_ms = 5000;
  int max_retries = 2;
  int backoff_ms = 100;
};

class HttpEmbedder final : public Embedder {
 public:
  explicit HttpEmbedder(HttpEmbedderOptions options);
  ~HttpEmbedder() override;
  std::size_t dim() const override { return options_.dim; }
  std::string name() const override { return "http:" + options_.model; }
  // The service is not part of it: the same model behind another URL makes the same vectors.
  EmbedderIdentity identity() const override {
    return {"openai", options_.model, "", options_.dim, true};
  }
  Result<std::vector<float>> Embed(std::string_view text) override;
  bool Remote() const override { return true; }
  // One request for many texts.
  Result<std::vector<std::vector<float>>> EmbedBatch(const std::vector<std::string>& texts);
  // Requests sent, including retries (for tests and metrics).
  std::uint64_t requests() const;

 private:
  Result<std::string> Post(const std::string& body, long* status);

  HttpEmbedderOptions options_;
  std::string api_key_;
  HttpClient client_;  // its own handles: connections to the embedding service stay open
  std::atomic<std::uint64_t> requests_{0};
};

}  // namespace semcached::embed
