#include "embed/http_embedder.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

namespace semcached::embed {
namespace {

std::size_t Collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

HttpEmbedder::HttpEmbedder(HttpEmbedderOptions options) : options_(std::move(options)) {
  static CurlGlobal global;
  if (!options_.api_key_env.empty()) {
    const char* key = std::getenv(options_.api_key_env.c_str());
    if (key != nullptr) api_key_ = key;
  }
  while (!options_.base_url.empty() && options_.base_url.back() == '/') options_.base_url.pop_back();
}

HttpEmbedder::~HttpEmbedder() {
  for (void* h : handles_) curl_easy_cleanup(static_cast<CURL*>(h));
}

std::uint64_t HttpEmbedder::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void* HttpEmbedder::AcquireHandle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    if (!handles_.empty()) {
      void* h = handles_.back();
      handles_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpEmbedder::ReleaseHandle(void* handle) {
  std::lock_guard<std::mutex> lock(mu_);
  if (handles_.size() < 8) {
    handles_.push_back(handle);
  } else {
    curl_easy_cleanup(static_cast<CURL*>(handle));
  }
}

Result<std::string> HttpEmbedder::Post(const std::string& body, long* status) {
  CURL* curl = static_cast<CURL*>(AcquireHandle());
  if (curl == nullptr) return Internal("cannot create a libcurl handle");
  std::string url = options_.base_url + "/embeddings";
  std::string response;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string auth;
  if (!api_key_.empty()) {
    auth = "Authorization: Bearer " + api_key_;
    headers = curl_slist_append(headers, auth.c_str());
  }
  curl_easy_reset(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(headers);
  ReleaseHandle(curl);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    *status = 0;
    return Status(ErrorCode::kDeadlineExceeded, "embedding service at " + options_.base_url + " timed out");
  }
  if (rc != CURLE_OK) {
    *status = 0;
    return Unavailable("embedding service at " + options_.base_url + ": " + curl_easy_strerror(rc));
  }
  return response;
}

Result<std::vector<std::vector<float>>> HttpEmbedder::EmbedBatch(const std::vector<std::string>& texts) {
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
      return Status(ErrorCode::kUnauthenticated, "embedding service refused the API key (HTTP " + std::to_string(status) + ")");
    }
    if (status == 429 || status >= 500) {
      last = Status(status == 429 ? ErrorCode::kResourceExhausted : ErrorCode::kUnavailable,
                    "embedding service answered HTTP " + std::to_string(status));
      continue;
    }
    if (status != 200) return Unavailable("embedding service answered HTTP " + std::to_string(status));
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || !j["data"].is_array() || j["data"].size() != texts.size()) {
      return Unavailable("embedding service sent a malformed response");
    }
    std::vector<std::vector<float>> out(texts.size());
    for (std::size_t i = 0; i < j["data"].size(); ++i) {
      const auto& item = j["data"][i];
      std::size_t index = i;
      if (item.contains("index") && item["index"].is_number_unsigned()) index = item["index"].get<std::size_t>();
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
      if (!(norm > 0) || !std::isfinite(norm)) return Unavailable("embedding service sent a zero or non-finite vector");
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
