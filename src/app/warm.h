// `semcached warm CACHE --prompts FILE`: fills the proxy's cache before launch by sending each
// prompt through the running server's caching proxy (OpenAI Chat Completions): a prompt the
// cache cannot answer goes to the upstream model and its answer is stored.
//
// First every line is read and checked (a prompt per line, or JSONL {"prompt", "model"?}; a
// bad line is reported by number and nothing is sent), then the cost is estimated from the
// prompts' length at the model's prices (output tokens as --output-tokens each) and must be
// confirmed (--yes skips it; without a terminal it is required). Requests go at most --rate a
// second, with a progress bar; the summary says how many the cache answered, how many went
// upstream, how many failed, and the USD spent, from the server's own counters (so other
// traffic at the same time would count too).
// Must not: store entries itself (the proxy does, as for any request).
#pragma once

#include <string>

#include "llm/prices.h"

namespace semcached::app {

struct WarmOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string cache_id;
  std::string prompts_file;
  std::string model = "gpt-4o-mini";
  double rate = 5;          // requests per second
  int output_tokens = 200;  // per answer, for the estimate
  bool yes = false;         // no confirmation
  bool progress = true;
  int timeout_ms = 120000;                          // per request
  std::string upstream_key_env = "OPENAI_API_KEY";  // sent as the Bearer key when set
};

// The exit code: 0 done, 2 bad input or not confirmed (nothing sent), 1 requests failed.
int RunWarm(const WarmOptions& options, const llm::PriceTable& prices);

}  // namespace semcached::app
