// Attribute filter expressions, in the language of Redis vector sets' FILTER option.
//
// Why here: the Redis store passes a filter to VSIM as is, so the embedded store must read the
// same language with the same meaning, and both must refuse a bad filter with a clear message
// before any search runs. Supported: `.field` selectors (top level), numbers, strings in
// single or double quotes, true/false (1/0), array literals; arithmetic + - * / % **;
// comparisons == != < <= > >=; and/or/not (&& || !); `in` (value in array, or substring in
// string); parentheses. A missing field makes the whole expression false, as in Redis.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace semcached::store {

class Filter {
 public:
  // kInvalidArgument naming the position and what was expected.
  static Result<std::shared_ptr<const Filter>> Parse(std::string_view expression);
  ~Filter();

  // `attributes` is the element's parsed JSON object (or null when it has none).
  bool Matches(const nlohmann::json& attributes) const;
  // The same, parsing the attribute text first (empty or invalid: no match).
  bool MatchesText(std::string_view attributes) const;

  const std::string& text() const { return text_; }

  struct Node;

 private:
  Filter() = default;
  std::string text_;
  std::unique_ptr<Node> root_;
};

}  // namespace semcached::store
