#include "embed/http_embedder.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/http_client.h"

namespace semcached::embed {
HttpEmbedder::HttpEmbedder(HttpEmbedderOptions options) : options_(std::move(options)) {
  if (!options_.api_key_env.empty()) {
    const char* key = std::getenv(options_.api_key_env.c_str());
    if (key != nullptr) api_key_ = key;
  }
  while (!options_.base_url.empty() && options_.base_url.back() == '/')
    options_.base_url.pop_back();
}

HttpEmbedder::~HttpEmbedder() = default;

std::uint64_t HttpEmbedder::requests() const { return requests_.load(); }

Result<std::string> HttpEmbedder::Post(const std::string& body, long* status) {
  requests_.fetch_add(1);
  HttpRequest request;
  request.url = options_.base_url + "/embeddings";
  request.headers = {"Content-Type: application/json"};
  if (!api_key_.empty()) request.headers.push_back("Authorization: Bearer " + api_key_);
  request.body = body;
  request.timeout_ms = options_.timeout_ms;
  request.connect_timeout_ms = options_.timeout_ms;
  auto response = client_.Perform(request);
  *status = 0;
  if (!response.ok()) {
    if (response.status().code() == ErrorCode::kDeadlineExceeded) {
      return Status(ErrorCode::kDeadlineExceeded,
                    "embedding service at " + options_.base_url + " timed out");
    }
    return Unavailable("embedding service at " + options_.base_url + ": " +
                       response.status().message());
  }
  *status = response->status;
  return std::move(response->body);
}

Result<std::vector<std::vector<float>>> HttpEmbedder::EmbedBatch(
    const std::vector<std::string>& texts) {
  nlohmann::json req = {{"model", options_.model}, {"input", texts}};
  const std::string body = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::mt19937 rng(std::random_device{}());
  Status last = Unavailable("no attempt made");
  for (int attempt = 0; attempt <= options_.max_retries; ++attempt) {
    if (attempt > 0) {
      int base = options_.backoff_ms << (attempt - 1);
      std::uniform_int_distribution<int> jitter(0, std::max(1, base / 2));
      std::this_thread::sleep_for(std::chrono::milliseconds(base + jitter(rng)));
    }
    long status = 0;
    auto text = Post(body, &status);
    if (!text.ok()) {
      last = text.status();
      continue;  // timeouts and connection failures are transient
    }
    if (status == 401 || status == 403) {
      return Status(ErrorCode::kUnauthenticated,
                    "embedding service refused the API key (HTTP " + std::to_string(status) + ")");
    }
    if (status == 429 || status >= 500) {
      last = Status(status == 429 ? ErrorCode::kResourceExhausted : ErrorCode::kUnavailable,
                    "embedding service answered HTTP " + std::to_string(status));
      continue;
    }
    if (status != 200)
      return Unavailable("embedding service answered HTTP " + std::to_string(status));
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() ||
        j["data"].size() != texts.size()) {
      return Unavailable("embedding service sent a malformed response");
    }
    std::vector<std::vector<float>> out(texts.size());
    for (std::size_t i = 0; i < j["data"].size(); ++i) {
      const auto& item = j["data"][i];
      std::size_t index = i;
      if (item.contains("index") && item["index"].is_number_unsigned())
        index = item["index"].get<std::size_t>();
      if (index >= out.size() || !item.contains("embedding") || !item["embedding"].is_array()) {
        return Unavailable("embedding service sent a malformed item");
      }
      std::vector<float> v;
      for (const auto& x : item["embedding"]) {
        if (!x.is_number()) return Unavailable("embedding service sent a non-number");
        v.push_back(x.get<float>());
      }
      if (options_.dim == 0) options_.dim = v.size();
      if (v.size() < options_.dim) {
        return Unavailable("embedding has " + std::to_string(v.size()) + " dimensions; " +
                           std::to_string(options_.dim) + " are configured");
      }
      v.resize(options_.dim);  // Matryoshka truncation
      double norm = 0;
      for (float x : v) norm += static_cast<double>(x) * x;
      if (!(norm > 0) || !std::isfinite(norm))
        return Unavailable("embedding service sent a zero or non-finite vector");
      float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (float& x : v) x *= inv;
      out[index] = std::move(v);
    }
    return out;
  }
  return last;
}

Result<std::vector<float>> HttpEmbedder::Embed(std::string_view text) {
  auto batch = EmbedBatch({std::string(text)});
  if (!batch.ok()) return batch.status();
  return std::move((*batch)[0]);
}

}  // namespace semcached::embed
