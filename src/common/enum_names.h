// An enum's spellings in one table, for printing and parsing: a name function and a parser
// written separately drift apart, and a switch per enum repeats itself across the tree.
// Must not: be used for names that go on the wire in more than one spelling without a table
// per spelling.
#pragma once

#include <cstddef>
#include <string_view>

namespace semcached {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

template <typename E, std::size_t N>
constexpr const char* NameOf(const EnumName<E> (&table)[N], E value,
                             const char* unknown = "unknown") {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return unknown;
}

// False when `text` names no value.
template <typename E, std::size_t N>
constexpr bool ValueOf(const EnumName<E> (&table)[N], std::string_view text, E* out) {
  for (const auto& entry : table) {
    if (text == entry.name) {
      *out = entry.value;
      return true;
    }
  }
  return false;
}

}  // namespace semcached
