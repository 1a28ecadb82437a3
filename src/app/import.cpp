#include "app/import.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/durable_file.h"
#include "common/http_client.h"

namespace semcached::app {
namespace {

using nlohmann::json;

struct HttpResult {
  long status = 0;
  std::string body;
  std::string error;
};

class Client {
 public:
  explicit Client(const ImportOptions& o) : o_(o) {
    headers_.push_back("Content-Type: application/json");
    if (!o.api_key.empty()) headers_.push_back("Authorization: Bearer " + o.api_key);
  }
  HttpResult Send(const char* method, const std::string& path, const std::string& body) {
    HttpRequest request;
    request.method = method;
    request.url = o_.url + path;
    request.headers = headers_;
    request.body = body;
    request.timeout_ms = static_cast<int>(o_.timeout_ms);
    HttpResult r;
    auto response = client_.Perform(request);
    if (!response.ok()) {
      r.error = response.status().message();
      return r;
    }
    r.status = response->status;
    r.body = std::move(response->body);
    return r;
  }

 private:
  const ImportOptions& o_;
  std::vector<std::string> headers_;
  HttpClient client_{1};
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

int RunExport(const ExportOptions& o) {
  ImportOptions connection;
  connection.url = o.url;
  connection.api_key = o.api_key;
  connection.timeout_ms = o.timeout_ms;
  Client client(connection);
  const auto start = std::chrono::steady_clock::now();
  HttpResult r = client.Send(
      "GET", "/v1/caches/" + o.cache_id + "/export" + (o.vectors ? "?vectors=true" : ""), "");
  if (!r.error.empty() || r.status != 200) {
    std::fprintf(
        stderr, "semcached export: %s\n",
        (!r.error.empty() ? r.error : "HTTP " + std::to_string(r.status) + " " + r.body).c_str());
    return 1;
  }
  // A failure past the status line ends the stream with {"error": ...} instead of an entry.
  std::size_t lines = 0;
  for (std::size_t at = 0; at < r.body.size();) {
    std::size_t end = r.body.find('\n', at);
    if (end == std::string::npos) end = r.body.size();
    const std::string_view line(r.body.data() + at, end - at);
    if (line.rfind("{\"error\"", 0) == 0) {
      std::fprintf(stderr, "semcached export: the server failed part-way: %.*s\n",
                   static_cast<int>(line.size()), line.data());
      return 1;
    }
    lines += !line.empty();
    at = end + 1;
  }
  if (o.file == "-") {
    std::fwrite(r.body.data(), 1, r.body.size(), stdout);
    std::fflush(stdout);
  } else if (Status s = WriteFileDurably(o.file, r.body); !s.ok()) {
    std::fprintf(stderr, "semcached export: %s\n", s.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "semcached export: %zu entries of cache %s written to %s in %.1f s\n", lines,
               o.cache_id.c_str(), o.file == "-" ? "stdout" : o.file.c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace semcached::app
