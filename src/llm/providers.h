// The wire formats of the LLM providers the caching proxy speaks: for each route, how a
// request is keyed, where it goes upstream, which headers pass through, which answers may be
// stored, how a stream is assembled and replayed, and how the provider's errors look (so SDKs
// raise their own error types).
//
// Why here: these are facts about the providers' APIs, not about HTTP serving; the proxy
// (server/proxy_routes.cpp) adds the base URLs and keys of this deployment and the cache.
// Must not: make calls or hold keys.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "llm/chat_request.h"

namespace semcached::llm {

struct ProviderWire {
  std::string name;  // in metrics and cache scopes: openai, openai-responses, anthropic, gemini
  std::string api;   // whose base URL and key the deployment configures: openai | anthropic | gemini
  // `model` is the route's model (Gemini names it in the path); others read it from the body.
  std::function<Result<ChatKey>(const nlohmann::json& body, const std::string& model,
                                const CachePolicy& policy)>
      key;
  std::function<std::string(const std::string& model, const std::string& query)> upstream_path;
  std::vector<std::string> pass_headers;  // lower case
  // When the client sends no key: the header a configured key goes in, and its prefix.
  std::string key_header;
  std::string key_prefix;
  std::function<bool(const nlohmann::json& answer)> storable;
  // Streams: the events as received -> the one answer they stand for (nullopt: incomplete or
  // not storable); a stored answer -> the events that replay it (the request may ask for
  // extras, such as OpenAI's usage chunk). Null: streams pass through uncached.
  std::function<std::optional<nlohmann::json>(std::string_view events)> assemble;
  std::function<std::vector<std::string>(const nlohmann::json& answer,
                                         const nlohmann::json& request)>
      replay;
  // The provider's error body for a status the proxy answers itself.
  std::function<std::string(int status, const std::string& message)> error_body;
};

// Route pattern -> wire format, for every route the proxy serves.
const std::vector<std::pair<std::string, ProviderWire>>& ProviderRoutes();

}  // namespace semcached::llm
