#include "llm/prices.h"

#include <charconv>

#include <nlohmann/json.hpp>

namespace semcached::llm {

PriceTable PriceTable::Defaults() {
  PriceTable t;
  t.prices_ = {
      {"gpt-4o", {2.50, 10.00}},
      {"gpt-4o-mini", {0.15, 0.60}},
      {"gpt-4.1", {2.00, 8.00}},
      {"gpt-4.1-mini", {0.40, 1.60}},
      {"gpt-4.1-nano", {0.10, 0.40}},
      {"gpt-5", {1.25, 10.00}},
      {"gpt-5-mini", {0.25, 2.00}},
      {"gpt-5-nano", {0.05, 0.40}},
      {"o3", {2.00, 8.00}},
      {"o4-mini", {1.10, 4.40}},
      {"claude-opus-4", {15.00, 75.00}},
      {"claude-sonnet-4", {3.00, 15.00}},
      {"claude-haiku-4", {1.00, 5.00}},
      {"claude-3-5-haiku", {0.80, 4.00}},
      {"gemini-2.5-pro", {1.25, 10.00}},
      {"gemini-2.5-flash", {0.30, 2.50}},
      {"gemini-2.5-flash-lite", {0.10, 0.40}},
      {"gemini-2.0-flash", {0.10, 0.40}},
  };
  return t;
}

Status PriceTable::Override(const std::string& spec) {
  std::size_t pos = 0;
  while (pos < spec.size()) {
    auto comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    auto eq = item.find('='), slash = item.find('/');
    Price p;
    if (eq == std::string::npos || slash == std::string::npos || slash < eq || eq == 0 ||
        std::from_chars(item.data() + eq + 1, item.data() + slash, p.input_per_mtok).ec !=
            std::errc() ||
        std::from_chars(item.data() + slash + 1, item.data() + item.size(), p.output_per_mtok).ec !=
            std::errc() ||
        p.input_per_mtok < 0 || p.output_per_mtok < 0) {
      return InvalidArgument("price '" + item +
                             "' is not model=input/output (USD per million tokens)");
    }
    prices_[item.substr(0, eq)] = p;
  }
  return Status::Ok();
}

std::optional<Price> PriceTable::For(const std::string& model) const {
  std::optional<Price> best;
  std::size_t best_len = 0;
  for (const auto& [prefix, price] : prices_) {
    if (model.rfind(prefix, 0) == 0 && prefix.size() >= best_len) {
      best = price;
      best_len = prefix.size();
    }
  }
  return best;
}

double PriceTable::Cost(const std::string& model, const Usage& u) const {
  auto p = For(model);
  if (!p) return 0;
  return (static_cast<double>(u.input_tokens) * p->input_per_mtok +
          static_cast<double>(u.output_tokens) * p->output_per_mtok) /
         1e6;
}

std::optional<Usage> UsageOf(const std::string& provider, const nlohmann::json& a) {
  auto count = [](const nlohmann::json& obj, const char* field) -> std::uint64_t {
    if (!obj.contains(field) || !obj[field].is_number_integer()) return 0;
    const auto v = obj[field].get<std::int64_t>();
    return v > 0 ? static_cast<std::uint64_t>(v) : 0;
  };
  if (!a.is_object()) return std::nullopt;
  const char* container = provider == "gemini" ? "usageMetadata" : "usage";
  if (!a.contains(container) || !a[container].is_object()) return std::nullopt;
  const auto& u = a[container];
  if (provider == "openai") return Usage{count(u, "prompt_tokens"), count(u, "completion_tokens")};
  if (provider == "anthropic" || provider == "openai-responses") {
    return Usage{count(u, "input_tokens"), count(u, "output_tokens")};
  }
  return Usage{count(u, "promptTokenCount"), count(u, "candidatesTokenCount")};
}

}  // namespace semcached::llm
