// The one route table of the HTTP server.
//
// A route is a method, a path pattern and a handler. Pattern segments are literals or
// parameters written {name}; a parameter may carry a literal suffix in the same segment, as
// Gemini's "/v1beta/models/{model}:generateContent" needs. The pattern, not the raw path, is
// what metrics and logs name, so label cardinality stays bounded.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/http_types.h"

namespace semcached::server {

class Router {
 public:
  // Adds a route; a duplicate method+pattern throws (a start-up programming error).
  // `blocking`: the handler may wait on the network (an upstream LLM call, Redis), so the
  // server runs it on its worker pool instead of an I/O thread. `blocking_when` decides it per
  // request from the path's parameters (a cache route: whether that cache's store or embedder
  // is remote).
  using BlockingWhen = std::function<bool(const std::unordered_map<std::string, std::string>&)>;
  void Add(std::string method, std::string pattern, Handler handler, bool blocking = false);
  void Add(std::string method, std::string pattern, Handler handler, BlockingWhen blocking_when);

  struct Match {
    const Handler* handler = nullptr;  // null: no route for this method (see allowed)
    bool blocking = false;
    std::string pattern;  // the route's pattern, or "unmatched"
    std::unordered_map<std::string, std::string> params;
    std::vector<std::string> allowed;  // methods the path accepts when the method did not match
  };
  Match Find(std::string_view method, std::string_view path) const;

 private:
  struct Segment {
    bool is_param = false;
    std::string text;    // literal text, or the parameter name
    std::string suffix;  // literal after a parameter within the segment
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    bool blocking = false;
    BlockingWhen blocking_when;  // when set, decides instead of `blocking`
  };
  static std::vector<Segment> Parse(const std::string& pattern);
  static bool MatchPath(const Route& route, const std::vector<std::string_view>& parts,
                        std::unordered_map<std::string, std::string>* params);

  std::vector<Route> routes_;
};

}  // namespace semcached::server
