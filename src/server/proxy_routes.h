// The caching proxy: provider wire formats in, provider wire formats out, the cache between.
//
//   POST /v1/chat/completions                       OpenAI chat completions
//   POST /v1/messages                               Anthropic messages
//   POST /v1beta/models/{model}:generateContent     Gemini
// Non-streaming answers are cached; `stream: true` is passed through uncached for now.
// A client changes only its SDK's base URL. The last user message is matched semantically
// within an exact scope (llm/chat_request.h); a hit answers with the stored upstream body, a
// miss goes upstream with the client's own Authorization header (never logged or stored) and
// a clean answer is stored. Per request: `Cache-Control: no-cache` (skip the lookup),
// `no-store` (do not store), `x-semcached-namespace`, `x-semcached-threshold`,
// `x-semcached-ttl-ms`. Responses carry `x-semcached-cache: hit|miss|bypass`, and on a hit the
// similarity and the entry id. Fail-open: a cache error never fails the request.
#pragma once

#include <string>

#include "cache/registry.h"
#include "llm/chat_request.h"
#include "llm/prices.h"
#include "llm/upstream.h"
#include "server/metrics.h"
#include "server/router.h"

namespace semcached::server {

struct ProxyOptions {
  std::string openai_base_url = "https://api.openai.com";  // the request path is appended
  std::string anthropic_base_url = "https://api.anthropic.com";
  std::string gemini_base_url = "https://generativelanguage.googleapis.com";
  std::string cache_id = "default";  // the cache the proxy uses
  llm::UpstreamOptions upstream;
  llm::CachePolicy policy;
  llm::PriceTable prices = llm::PriceTable::Defaults();
  // Keys used when a client sends none (read from the environment at start-up; never logged).
  std::string openai_api_key;
  std::string anthropic_api_key;
  std::string gemini_api_key;
};

void AddProxyRoutes(Router& router, cache::CacheRegistry& registry, Metrics& metrics,
                    ProxyOptions options);

}  // namespace semcached::server
