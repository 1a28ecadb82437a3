#include "app/import.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

namespace semcached::app {
namespace {

using nlohmann::json;

std::size_t Collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct HttpResult {
  long status = 0;
  std::string body;
  std::string error;
};

class Client {
 public:
  Client(const ImportOptions& o) : o_(o), curl_(curl_easy_init()) {
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    if (!o.api_key.empty()) {
      std::string auth = "Authorization: Bearer " + o.api_key;
      headers_ = curl_slist_append(headers_, auth.c_str());
    }
  }
  ~Client() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }
  HttpResult Send(const char* method, const std::string& path, const std::string& body) {
    HttpResult r;
    std::string url = o_.url + path;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    if (!body.empty()) {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(o_.timeout_ms));
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl_);
    if (rc != CURLE_OK) {
      r.error = curl_easy_strerror(rc);
      return r;
    }
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
  }

 private:
  const ImportOptions& o_;
  CURL* curl_;
  curl_slist* headers_ = nullptr;
};

// The reason a line cannot be imported, or empty.
std::string CheckLine(const json& j) {
  if (!j.is_object()) return "not a JSON object";
  for (const char* f : {"prompt", "response"}) {
    if (!j.contains(f) || !j[f].is_string() || j[f].get<std::string>().empty()) {
      return std::string("\"") + f + "\" must be a non-empty string";
    }
  }
  if (j.contains("attributes") && !j["attributes"].is_null()) {
    if (!j["attributes"].is_object()) return "\"attributes\" must be an object of strings";
    for (const auto& [k, v] : j["attributes"].items()) {
      if (!v.is_string()) return "attribute \"" + k + "\" must be a string";
    }
  }
  for (const char* f : {"ttlMillis", "ttl"}) {
    if (j.contains(f) && !j[f].is_null() &&
        (!j[f].is_number_integer() || j[f].get<long long>() <= 0)) {
      return std::string("\"") + f + "\" must be a positive integer (milliseconds)";
    }
  }
  return "";
}

void Progress(std::size_t done, std::size_t total, double seconds, bool tty) {
  const int width = 30;
  int filled = total ? static_cast<int>(width * done / total) : width;
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  std::fprintf(stderr, "%s[%.*s%*s] %zu/%zu entries, %.0f/s", tty ? "\r" : "", filled,
               "##############################", width - filled, "", done, total, rate);
  if (!tty) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace

int RunImport(const ImportOptions& o) {
  std::ifstream in(o.file);
  if (!in) {
    std::fprintf(stderr, "semcached import: cannot read %s\n", o.file.c_str());
    return 2;
  }
  std::vector<json> entries;
  std::vector<std::string> problems;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines
    json j = json::parse(line, nullptr, false);
    std::string why = j.is_discarded() ? "not valid JSON" : CheckLine(j);
    if (!why.empty()) {
      problems.push_back("line " + std::to_string(number) + ": " + why);
      continue;
    }
    json entry = {{"prompt", j["prompt"]}, {"response", j["response"]}};
    if (j.contains("attributes") && !j["attributes"].is_null())
      entry["attributes"] = j["attributes"];
    if (j.contains("ttlMillis") && !j["ttlMillis"].is_null()) entry["ttlMillis"] = j["ttlMillis"];
    if (j.contains("ttl") && !j["ttl"].is_null()) entry["ttlMillis"] = j["ttl"];
    entries.push_back(std::move(entry));
  }
  if (!problems.empty()) {
    for (const auto& p : problems)
      std::fprintf(stderr, "semcached import: %s: %s\n", o.file.c_str(), p.c_str());
    std::fprintf(stderr, "semcached import: %zu bad line(s); nothing imported\n", problems.size());
    return 2;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  Client client(o);
  const std::string base = "/v1/caches/" + o.cache_id;
  const bool tty = o.progress && isatty(2);
  std::vector<std::string> stored;
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  for (std::size_t i = 0; i < entries.size(); ++i) {
    HttpResult r = client.Send("POST", base + "/entries", entries[i].dump());
    std::string id;
    if (r.error.empty() && r.status == 201) {
      auto j = json::parse(r.body, nullptr, false);
      if (!j.is_discarded() && j.contains("entryId") && j["entryId"].is_string()) id = j["entryId"];
    }
    if (id.empty()) {
      std::string why =
          !r.error.empty() ? r.error : "HTTP " + std::to_string(r.status) + " " + r.body;
      if (tty) std::fputc('\n', stderr);
      std::fprintf(stderr, "semcached import: entry %zu of %zu failed: %s\n", i + 1, entries.size(),
                   why.c_str());
      std::size_t undone = 0;
      for (const auto& sid : stored)
        undone += client.Send("DELETE", base + "/entries/" + sid, "").status == 204;
      std::fprintf(stderr,
                   "semcached import: rolled back %zu of %zu stored entries; nothing imported\n",
                   undone, stored.size());
      return 1;
    }
    stored.push_back(id);
    if (o.progress && (tty ? (i % 50 == 0 || i + 1 == entries.size()) : ((i + 1) % 10000 == 0))) {
      Progress(i + 1, entries.size(), elapsed(), tty);
    }
  }
  if (tty) std::fputc('\n', stderr);
  std::fprintf(stderr, "semcached import: %zu entries imported into cache %s in %.1f s (%.0f/s)\n",
               stored.size(), o.cache_id.c_str(), elapsed(),
               stored.empty() ? 0.0 : static_cast<double>(stored.size()) / elapsed());
  return 0;
}

}  // namespace semcached::app
