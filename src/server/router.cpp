#include "server/router.h"

#include <stdexcept>

namespace semcached::server {
namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    parts.push_back(path.substr(i, j - i));
    i = j;
  }
  return parts;
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::vector<Router::Segment> Router::Parse(const std::string& pattern) {
  std::vector<Segment> segments;
  for (std::string_view part : SplitPath(pattern)) {
    Segment s;
    if (!part.empty() && part.front() == '{') {
      size_t close = part.find('}');
      if (close == std::string_view::npos || close == 1) {
        throw std::invalid_argument("bad route pattern: " + pattern);
      }
      s.is_param = true;
      s.text = std::string(part.substr(1, close - 1));
      s.suffix = std::string(part.substr(close + 1));
    } else {
      s.text = std::string(part);
    }
    segments.push_back(std::move(s));
  }
  return segments;
}

void Router::Add(std::string method, std::string pattern, Handler handler, bool blocking) {
  for (const auto& r : routes_) {
    if (r.method == method && r.pattern == pattern) {
      throw std::invalid_argument("duplicate route: " + method + " " + pattern);
    }
  }
  Route r;
  r.segments = Parse(pattern);
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.handler = std::move(handler);
  r.blocking = blocking;
  routes_.push_back(std::move(r));
}

void Router::Add(std::string method, std::string pattern, Handler handler,
                 BlockingWhen blocking_when) {
  Add(std::move(method), std::move(pattern), std::move(handler), false);
  routes_.back().blocking_when = std::move(blocking_when);
}

bool Router::MatchPath(const Route& route, const std::vector<std::string_view>& parts,
                       std::unordered_map<std::string, std::string>* params) {
  if (route.segments.size() != parts.size()) return false;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Segment& s = route.segments[i];
    std::string_view part = parts[i];
    if (!s.is_param) {
      if (part != s.text) return false;
      continue;
    }
    if (part.size() <= s.suffix.size()) return false;
    if (!s.suffix.empty() && part.substr(part.size() - s.suffix.size()) != s.suffix) {
      return false;
    }
    (*params)[s.text] = std::string(part.substr(0, part.size() - s.suffix.size()));
  }
  return true;
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match m;
  m.pattern = "unmatched";
  auto parts = SplitPath(path);
  for (const auto& r : routes_) {
    std::unordered_map<std::string, std::string> params;
    if (!MatchPath(r, parts, &params)) continue;
    if (r.method == method) {
      m.handler = &r.handler;
      m.blocking = r.blocking_when ? r.blocking_when(params) : r.blocking;
      m.pattern = r.pattern;
      m.params = std::move(params);
      m.allowed.clear();
      return m;
    }
    m.pattern = r.pattern;
    m.allowed.push_back(r.method);
  }
  return m;
}

}  // namespace semcached::server
