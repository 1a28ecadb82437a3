#include "llm/upstream.h"

#include <chrono>
#include <memory>

#include <curl/curl.h>

namespace semcached::llm {

namespace {

struct Transfer {
  CURL* curl = nullptr;
  const OnUpstreamData* on_data = nullptr;  // streaming: each piece goes here
  std::string* body = nullptr;              // otherwise: the whole body
  bool aborted = false;
};

std::size_t Receive(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->on_data == nullptr) {
    t->body->append(data, size * n);
    return size * n;
  }
  long status = 0;
  char* type = nullptr;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(t->curl, CURLINFO_CONTENT_TYPE, &type);
  if (!(*t->on_data)(static_cast<int>(status), type != nullptr ? type : "",
                     std::string_view(data, size * n))) {
    t->aborted = true;
    return 0;  // libcurl stops the transfer
  }
  return size * n;
}

Result<UpstreamResponse> Perform(const std::string& url, const std::vector<std::string>& headers,
                                 const std::string& body, const UpstreamOptions& options,
                                 const OnUpstreamData* on_data) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Internal("cannot create a libcurl handle");
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> list_guard(list, curl_slist_free_all);
  UpstreamResponse r;
  CURL* c = curl.get();
  Transfer t;
  t.curl = c;
  t.on_data = on_data;
  t.body = &r.body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Receive);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout_ms));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  if (!options.proxy.empty()) curl_easy_setopt(c, CURLOPT_PROXY, options.proxy.c_str());
  auto start = std::chrono::steady_clock::now();
  CURLcode rc = curl_easy_perform(c);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (rc == CURLE_WRITE_ERROR && t.aborted) return Unavailable("upstream: the client went away");
  if (rc != CURLE_OK) {
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return Status(ErrorCode::kDeadlineExceeded,
                    std::string("upstream: ") + curl_easy_strerror(rc));
    }
    return Unavailable(std::string("upstream: ") + curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  r.status = static_cast<int>(status);
  char* type = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) r.content_type = type;
  return r;
}

}  // namespace

Result<UpstreamResponse> PostUpstream(const std::string& url,
                                      const std::vector<std::string>& headers,
                                      const std::string& body, const UpstreamOptions& options) {
  return Perform(url, headers, body, options, nullptr);
}

Result<UpstreamResponse> PostUpstreamStreaming(const std::string& url,
                                               const std::vector<std::string>& headers,
                                               const std::string& body,
                                               const UpstreamOptions& options,
                                               const OnUpstreamData& on_data) {
  return Perform(url, headers, body, options, &on_data);
}

}  // namespace semcached::llm
