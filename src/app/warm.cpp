#include "app/warm.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/progress.h"
#include "cache/cache.h"
#include "common/http_client.h"

namespace semcached::app {
namespace {

using json = nlohmann::json;

struct Prompt {
  std::string text;
  std::string model;
};

// The proxy's counters of OpenAI requests by result, and the USD its upstream calls cost.
struct ProxyCounters {
  double hits = 0, misses = 0, failed = 0, spent_usd = 0;
};

Result<ProxyCounters> ReadCounters(HttpClient& client, const std::string& url) {
  HttpRequest req;
  req.method = "GET";
  req.url = url + "/metrics";
  req.timeout_ms = 10000;
  auto r = client.Perform(req);
  if (!r.ok()) return r.status();
  if (r->status != 200) return Unavailable("GET /metrics: HTTP " + std::to_string(r->status));
  ProxyCounters c;
  std::size_t at = 0;
  while (at < r->body.size()) {
    std::size_t end = r->body.find('\n', at);
    if (end == std::string::npos) end = r->body.size();
    const std::string line = r->body.substr(at, end - at);
    at = end + 1;
    if (line.find("provider=\"openai\"") == std::string::npos) continue;
    const double value = std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    if (line.rfind("semcached_proxy_requests_total{", 0) == 0) {
      if (line.find("result=\"hit\"") != std::string::npos) c.hits += value;
      if (line.find("result=\"miss\"") != std::string::npos) c.misses += value;
      if (line.find("result=\"upstream_error\"") != std::string::npos) c.failed += value;
    } else if (line.rfind("semcached_proxy_cost_usd_total{", 0) == 0) {
      c.spent_usd += value;
    }
  }
  return c;
}

}  // namespace

int RunWarm(const WarmOptions& o, const llm::PriceTable& prices) {
  std::ifstream in(o.prompts_file);
  if (!in) {
    std::fprintf(stderr, "semcached warm: cannot read %s\n", o.prompts_file.c_str());
    return 2;
  }
  std::vector<Prompt> prompts;
  std::vector<std::string> problems;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line.front() != '{') {
      prompts.push_back({line, o.model});
      continue;
    }
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string() ||
        j["prompt"].get<std::string>().empty() ||
        (j.contains("model") && !j["model"].is_string())) {
      problems.push_back("line " + std::to_string(number) +
                         ": expected a prompt, or {\"prompt\": \"...\", \"model\"?: \"...\"}");
      continue;
    }
    prompts.push_back({j["prompt"], j.value("model", o.model)});
  }
  if (!problems.empty()) {
    for (const auto& p : problems)
      std::fprintf(stderr, "semcached warm: %s: %s\n", o.prompts_file.c_str(), p.c_str());
    std::fprintf(stderr, "semcached warm: %zu bad line(s); nothing sent\n", problems.size());
    return 2;
  }

  // What it may cost if no prompt is answered from the cache.
  double estimate = 0;
  std::uint64_t input_tokens = 0;
  bool priced = true;
  for (const auto& p : prompts) {
    const std::uint64_t in_tokens = cache::EstimateTokens(p.text);
    input_tokens += in_tokens;
    priced = priced && prices.For(p.model).has_value();
    estimate +=
        prices.Cost(p.model, {in_tokens, static_cast<std::uint64_t>(std::max(0, o.output_tokens))});
  }
  std::fprintf(stderr,
               "semcached warm: %zu prompts for cache %s through %s: about %llu input tokens and "
               "%d output tokens each, at most $%.4f%s\n",
               prompts.size(), o.cache_id.c_str(), o.url.c_str(),
               static_cast<unsigned long long>(input_tokens), o.output_tokens, estimate,
               priced ? "" : " (some models have no price: not counted)");
  if (!o.yes) {
    if (!isatty(0)) {
      std::fprintf(stderr, "semcached warm: not a terminal to confirm on; pass --yes\n");
      return 2;
    }
    std::fprintf(stderr, "Send them? [y/N] ");
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      std::fprintf(stderr, "semcached warm: nothing sent\n");
      return 2;
    }
  }

  HttpClient client(2);
  auto before = ReadCounters(client, o.url);
  if (!before.ok()) {
    std::fprintf(stderr, "semcached warm: %s\n", before.status().message().c_str());
    return 1;
  }
  std::vector<std::string> headers = {"Content-Type: application/json"};
  if (const char* key = std::getenv(o.upstream_key_env.c_str()); key && *key)
    headers.push_back(std::string("Authorization: Bearer ") + key);
  const auto start = std::chrono::steady_clock::now();
  const auto spacing = std::chrono::duration<double>(o.rate > 0 ? 1 / o.rate : 0);
  const auto bar = ProgressBar(o.progress && isatty(2), "prompts");
  std::size_t failed = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              spacing * static_cast<double>(i)));
    HttpRequest req;
    req.url = o.url + "/v1/chat/completions";
    req.headers = headers;
    req.timeout_ms = o.timeout_ms;
    req.body = json({{"model", prompts[i].model},
                     {"messages", {{{"role", "user"}, {"content", prompts[i].text}}}}})
                   .dump();
    auto r = client.Perform(req);
    if (!r.ok() || r->status != 200) {
      ++failed;
      std::fprintf(stderr, "%ssemcached warm: prompt %zu failed: %s\n", bar ? "\n" : "", i + 1,
                   (r.ok() ? "HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200)
                           : r.status().message())
                       .c_str());
    }
    if (bar) bar(i + 1, prompts.size());
  }
  auto after = ReadCounters(client, o.url);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (after.ok()) {
    std::fprintf(stderr,
                 "semcached warm: %zu prompts in %.1f s: %.0f answered from the cache, %.0f sent "
                 "upstream and stored, %zu failed; $%.4f spent\n",
                 prompts.size(), seconds, after->hits - before->hits,
                 after->misses - before->misses, failed, after->spent_usd - before->spent_usd);
  } else {
    std::fprintf(stderr, "semcached warm: %zu prompts in %.1f s, %zu failed\n", prompts.size(),
                 seconds, failed);
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace semcached::app
