#include "llm/upstream.h"

#include "common/http_client.h"

namespace semcached::llm {

namespace {

Result<UpstreamResponse> Perform(const std::string& url, const std::vector<std::string>& headers,
                                 const std::string& body, const UpstreamOptions& options,
                                 const OnUpstreamData* on_data) {
  HttpRequest request;
  request.url = url;
  request.headers = headers;
  request.body = body;
  request.timeout_ms = options.timeout_ms;
  request.connect_timeout_ms = options.connect_timeout_ms;
  request.proxy = options.proxy;
  request.http2 = true;
  if (on_data != nullptr) request.on_data = *on_data;
  auto response = HttpClient::Shared().Perform(request);
  if (!response.ok()) {
    return Status(response.status().code(), "upstream: " + response.status().message());
  }
  if (response->aborted) return Unavailable("upstream: the client went away");
  UpstreamResponse r;
  r.status = response->status;
  r.content_type = std::move(response->content_type);
  r.body = std::move(response->body);
  r.seconds = response->seconds;
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
