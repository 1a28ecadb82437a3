// The request and response values that route handlers see.
//
// Handlers are written against these plain structs, not against Boost.Beast, so they can be
// unit-tested without sockets and the transport can change without touching them.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace semcached::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // percent-decoding is the handler's business
  std::string query;   // without the '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::unordered_map<std::string, std::string> path_params;  // from {name} route segments
  std::string remote;                                        // peer address, for logs

  // First header with that (lower-case) name, or empty.
  std::string_view Header(std::string_view lower_name) const;
};

// A response written while it is produced (server-sent events from an upstream): for
// blocking routes only, whose handlers run on the worker pool.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Sends the status line and headers; the body follows in chunks. Call once, first.
  virtual bool Begin(int status, const std::string& content_type,
                     const std::vector<std::pair<std::string, std::string>>& headers) = 0;
  // Sends one piece of the body; false once the client has gone (stop producing).
  virtual bool Write(std::string_view data) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set (blocking routes only), the response is this producer's output instead of
  // status/headers/body above.
  std::function<void(ResponseStream&)> stream;

  static HttpResponse Json(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  static HttpResponse Text(int status, std::string body,
                           std::string content_type = "text/plain; charset=utf-8") {
    HttpResponse r;
    r.status = status;
    r.content_type = std::move(content_type);
    r.body = std::move(body);
    return r;
  }
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;

}  // namespace semcached::server
