// Outbound HTTP calls through libcurl: the HTTP embedder, the proxy's upstream LLM calls and
// `semcached import` all send requests through one HttpClient.
//
// Why one wrapper: the options every caller needs (timeouts, no signals, an outbound proxy,
// HTTP/2 over TLS, streaming bodies) are set in one place, and finished handles go back to a
// pool, so their connections stay open for the next call (keep-alive, TLS sessions reused).
// A transfer error is kDeadlineExceeded for a timeout, kUnavailable otherwise; an HTTP status
// of any value is a response, not an error: the caller decides what it means.
// Must not: retry (callers know whether a call may be repeated: an LLM call costs money), log
// headers (they carry API keys), or be used on a thread that must not block (it blocks).
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace semcached {

// Called for every piece of the body as it arrives; returning false aborts the transfer.
using HttpOnData =
    std::function<bool(int status, const std::string& content_type, std::string_view piece)>;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent when not empty
  int timeout_ms = 30'000;           // the whole transfer
  int connect_timeout_ms = 5'000;
  std::string proxy;  // outbound proxy URL; empty: none (libcurl honours the *_proxy variables)
  bool http2 = false;  // offer HTTP/2 over TLS
  HttpOnData on_data;  // set: the body is handed on here instead of collected
};

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;      // empty when streamed
  double seconds = 0;    // the whole transfer
  bool aborted = false;  // on_data returned false
};

class HttpClient {
 public:
  explicit HttpClient(std::size_t max_idle_handles = 8);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Blocks until the response is complete, the transfer fails, or the timeout passes.
  Result<HttpResponse> Perform(const HttpRequest& request);

  // One client for callers that keep none of their own.
  static HttpClient& Shared();

 private:
  void* Acquire();
  void Release(void* handle);

  std::size_t max_idle_;
  std::mutex mu_;
  std::vector<void*> idle_;
};

}  // namespace semcached
