// What model calls cost, for the proxy's cost-saved figures.
//
// Prices are USD per million input and output tokens, matched by the longest model-name
// prefix (so "gpt-4o-mini-2024-07-18" uses "gpt-4o-mini"). Defaults are the providers' list
// prices for common models when this was written; `proxy.prices` overrides or adds
// ("model=input/output,..."). Token counts come from the upstream's own `usage`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace semcached::llm {

struct Price {
  double input_per_mtok = 0;
  double output_per_mtok = 0;
};

struct Usage {
  std::uint64_t input_tokens = 0;
  std::uint64_t output_tokens = 0;
};

class PriceTable {
 public:
  static PriceTable Defaults();
  // "model=input/output,model=input/output"; kInvalidArgument naming the bad entry.
  Status Override(const std::string& spec);
  std::optional<Price> For(const std::string& model) const;
  double Cost(const std::string& model, const Usage& usage) const;  // 0 for an unknown model

 private:
  std::map<std::string, Price> prices_;
};

// Token counts of an answer in the provider's format ("openai" | "anthropic" | "gemini").
std::optional<Usage> UsageOf(const std::string& provider, const nlohmann::json& answer);

}  // namespace semcached::llm
