#include "common/http_client.h"

#include <chrono>
#include <memory>

#include <curl/curl.h>

#include "common/tracing.h"

namespace semcached {

namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

void InitCurlOnce() { static CurlGlobal global; }

struct Transfer {
  CURL* curl = nullptr;
  const HttpOnData* on_data = nullptr;
  std::string* body = nullptr;
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

}  // namespace

HttpClient::HttpClient(std::size_t max_idle_handles) : max_idle_(max_idle_handles) {
  InitCurlOnce();
}

HttpClient::~HttpClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

HttpClient& HttpClient::Shared() {
  static HttpClient* client = new HttpClient(32);  // never destroyed: used until exit
  return *client;
}

void* HttpClient::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::Release(void* handle) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < max_idle_) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

Result<HttpResponse> HttpClient::Perform(const HttpRequest& request) {
  CURL* c = static_cast<CURL*>(Acquire());
  if (c == nullptr) return Internal("cannot create a libcurl handle");
  struct Lease {  // the handle goes back to the pool however this returns
    HttpClient* client;
    CURL* handle;
    ~Lease() { client->Release(handle); }
  } lease{this, c};
  // A client span, and the trace carried on to the server (W3C trace context): within a
  // request, upstream LLM calls and embedding servers join the caller's trace.
  tracing::Span span(request.method, tracing::SpanKind::kClient);
  curl_slist* list = nullptr;
  for (const auto& h : request.headers) list = curl_slist_append(list, h.c_str());
  if (auto context = span.recording() ? span.context() : tracing::Current()) {
    list =
        curl_slist_append(list, ("traceparent: " + tracing::FormatTraceparent(*context)).c_str());
    if (!context->tracestate.empty())
      list = curl_slist_append(list, ("tracestate: " + context->tracestate).c_str());
  }
  if (span.recording()) {
    span.Set("http.request.method", request.method);
    // Without the query: some providers put keys there.
    span.Set("url.full", request.url.substr(0, request.url.find('?')));
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> list_guard(list, curl_slist_free_all);

  HttpResponse r;
  Transfer t;
  t.curl = c;
  t.on_data = request.on_data ? &request.on_data : nullptr;
  t.body = &r.body;
  curl_easy_reset(c);  // options of the last use go; its connections stay
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  if (request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.method == "POST" || !request.body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Receive);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_ms));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (request.http2) curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  if (!request.proxy.empty()) curl_easy_setopt(c, CURLOPT_PROXY, request.proxy.c_str());

  const auto start = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(c);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  r.status = static_cast<int>(status);
  char* type = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) r.content_type = type;
  if (status != 0) span.Set("http.response.status_code", r.status);
  if (status >= 500) span.SetError("HTTP " + std::to_string(status));
  if (rc == CURLE_WRITE_ERROR && t.aborted) {
    r.aborted = true;
    return r;
  }
  if (rc != CURLE_OK) span.SetError(curl_easy_strerror(rc));
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Status(ErrorCode::kDeadlineExceeded, curl_easy_strerror(rc));
  }
  if (rc != CURLE_OK) return Unavailable(curl_easy_strerror(rc));
  return r;
}

}  // namespace semcached
