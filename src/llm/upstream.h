// Calls to an LLM provider's HTTP API through the shared HttpClient (common/http_client.h):
// TLS, HTTP/2 where offered, an outbound proxy, timeouts, connections kept alive. The caller's Authorization header is passed through and never logged.
// Must not: retry (a provider call costs money; the client decides), or keep keys.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace semcached::llm {

struct UpstreamOptions {
  int timeout_ms = 120000;
  int connect_timeout_ms = 5000;
  std::string proxy;  // outbound proxy URL; empty: none (libcurl still honours *_proxy variables)
};

struct UpstreamResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  double seconds = 0;
};

// POSTs `body` to `url` with the given headers ("Name: value").
Result<UpstreamResponse> PostUpstream(const std::string& url,
                                      const std::vector<std::string>& headers,
                                      const std::string& body, const UpstreamOptions& options);

// The same, handing the body on as it arrives: `on_data(status, content_type, piece)` is
// called for every piece received; returning false aborts the transfer (the client left).
// The result has the status and content type, and an empty body.
using OnUpstreamData =
    std::function<bool(int status, const std::string& content_type, std::string_view piece)>;
Result<UpstreamResponse> PostUpstreamStreaming(const std::string& url,
                                               const std::vector<std::string>& headers,
                                               const std::string& body,
                                               const UpstreamOptions& options,
                                               const OnUpstreamData& on_data);

}  // namespace semcached::llm
