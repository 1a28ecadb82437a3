// The typed key tables of the configuration (config.cpp): one table for the top-level keys,
// one for the keys of a [[caches]] table, read the same way from every source.
//
// Why: a key's type, bounds, default and help are said once, where the key is declared; the
// TOML file, SEMCACHED_* variables, --set flags and the admin API's JSON bodies are all parsed
// by the same code into typed fields (enums and lists included), and rendering (`semcached
// config`, the admin API's descriptions) reads the same table. A key of a cache says where it
// goes in the runtime options (Into), so building a cache's options is a loop over the table.
// Private to app/: nothing else includes it.
// Must not: start anything, or know what a setting does.
#pragma once

#include <charconv>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "cache/cache.h"

namespace semcached::app::config_keys {

// A value as a source gave it. Text from the environment or a flag is parsed by the key's
// type; a typed value (TOML, JSON) must already have it.
struct RawValue {
  enum class Kind { kText, kInt, kBool, kFloat, kStrings, kOther };
  Kind kind = Kind::kText;
  bool from_text = false;  // environment or flag: "8080" may be an integer
  std::string text;
  std::int64_t integer = 0;
  bool boolean = false;
  double number = 0;
  std::vector<std::string> strings;
  std::string source;  // "config file x.toml", "environment variable SEMCACHED_...", ...
};

inline const char* KindName(RawValue::Kind k) {
  switch (k) {
    case RawValue::Kind::kText: return "a string";
    case RawValue::Kind::kInt: return "an integer";
    case RawValue::Kind::kBool: return "a boolean";
    case RawValue::Kind::kFloat: return "a float";
    case RawValue::Kind::kStrings: return "an array";
    case RawValue::Kind::kOther: return "a table or array";
  }
  return "a value";
}

// A TOML string literal, as toml++ writes it (single quotes where it can).
inline std::string Quote(const std::string& s) {
  std::ostringstream out;
  out << toml::value<std::string>(s);
  return out.str();
}

// The shortest text that reads back as the same double.
inline std::string NumberText(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

// A value as an environment variable would say it: strings bare, lists comma-separated.
inline std::string TextOf(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return NumberText(v.get<double>());
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) out += (out.empty() ? "" : ",") + TextOf(item);
    return out;
  }
  return v.dump();  // integers and booleans
}

// A value as a TOML literal.
inline std::string TomlOf(const nlohmann::json& v) {
  if (v.is_string()) return Quote(v.get<std::string>());
  if (v.is_array()) {
    std::string out = "[";
    for (const auto& item : v) out += (out.size() > 1 ? ", " : "") + TomlOf(item);
    return out + "]";
  }
  return TextOf(v);
}

// One key of a table over struct T.
template <typename T>
struct Key {
  std::string name;
  std::string type;  // for people: "integer 1..65535", "one of lru lfu value", ...
  std::string help;
  bool secret = false;  // rendered as "***" (API keys)
  // Sets the field; on refusal, the reason ("'x' is not an integer"), else empty.
  std::function<std::string(T&, const RawValue&)> set;
  std::function<nlohmann::json(const T&)> json;  // the value; text and TOML derive from it
  std::string text(const T& c) const { return TextOf(json(c)); }
  std::string toml(const T& c) const { return TomlOf(json(c)); }
  // Cache keys: where the value goes in a cache's runtime options (none: used elsewhere).
  std::function<void(const T&, cache::CacheOptions&)> apply;
};

// A key bound to the field `acc` reaches (a member pointer or a callable F&(T&)).
template <typename T, typename Acc>
struct BoundKey : Key<T> {
  Acc acc;
  // Sets apply: the field's value converted to the runtime option `target` reaches.
  template <typename Target>
  BoundKey& Into(Target target) {
    Acc a = acc;
    this->apply = [a, target](const T& c, cache::CacheOptions& o) {
      auto& to = std::invoke(target, o);
      to = static_cast<std::remove_reference_t<decltype(to)>>(std::invoke(a, const_cast<T&>(c)));
    };
    return *this;
  }
};

template <typename T, typename Acc>
using FieldOf = std::remove_reference_t<std::invoke_result_t<Acc, T&>>;

template <typename T, typename Acc>
BoundKey<T, Acc> Bind(std::string name, std::string type, std::string help, Acc acc) {
  BoundKey<T, Acc> k;
  k.name = std::move(name);
  k.type = std::move(type);
  k.help = std::move(help);
  k.acc = acc;
  return k;
}

template <typename T, typename Acc>
BoundKey<T, Acc> IntKey(std::string name, Acc acc, std::int64_t min, std::int64_t max,
                        std::string help) {
  auto k = Bind<T>(std::move(name), "integer " + std::to_string(min) + ".." + std::to_string(max),
                   std::move(help), acc);
  k.set = [acc, min, max](T& c, const RawValue& v) -> std::string {
    std::int64_t parsed = 0;
    if (v.kind == RawValue::Kind::kInt) {
      parsed = v.integer;
    } else if (v.kind == RawValue::Kind::kText && v.from_text) {
      const char* b = v.text.data();
      const char* e = b + v.text.size();
      auto [ptr, ec] = std::from_chars(b, e, parsed);
      if (ec != std::errc() || ptr != e || v.text.empty()) {
        return "'" + v.text + "' is not an integer";
      }
    } else {
      return std::string("expected an integer, got ") + KindName(v.kind);
    }
    if (parsed < min || parsed > max) {
      return std::to_string(parsed) + " is out of range " + std::to_string(min) + ".." +
             std::to_string(max);
    }
    std::invoke(acc, c) = static_cast<FieldOf<T, Acc>>(parsed);
    return "";
  };
  k.json = [acc](const T& c) { return nlohmann::json(std::invoke(acc, const_cast<T&>(c))); };
  return k;
}

template <typename T, typename Acc>
BoundKey<T, Acc> DoubleKey(std::string name, Acc acc, double min, double max, std::string help) {
  auto k = Bind<T>(std::move(name), "number " + NumberText(min) + ".." + NumberText(max),
                   std::move(help), acc);
  k.set = [acc, min, max](T& c, const RawValue& v) -> std::string {
    double parsed = 0;
    if (v.kind == RawValue::Kind::kFloat) {
      parsed = v.number;
    } else if (v.kind == RawValue::Kind::kInt) {
      parsed = static_cast<double>(v.integer);
    } else if (v.kind == RawValue::Kind::kText && v.from_text) {
      char* end = nullptr;
      parsed = std::strtod(v.text.c_str(), &end);
      if (v.text.empty() || end != v.text.c_str() + v.text.size()) {
        return "'" + v.text + "' is not a number";
      }
    } else {
      return std::string("expected a number, got ") + KindName(v.kind);
    }
    if (!(parsed >= min && parsed <= max)) {
      return NumberText(parsed) + " is out of range: expected a number within " + NumberText(min) +
             ".." + NumberText(max);
    }
    std::invoke(acc, c) = static_cast<FieldOf<T, Acc>>(parsed);
    return "";
  };
  k.json = [acc](const T& c) { return nlohmann::json(std::invoke(acc, const_cast<T&>(c))); };
  return k;
}

template <typename T, typename Acc>
BoundKey<T, Acc> BoolKey(std::string name, Acc acc, std::string help) {
  auto k = Bind<T>(std::move(name), "boolean", std::move(help), acc);
  k.set = [acc](T& c, const RawValue& v) -> std::string {
    bool parsed = false;
    if (v.kind == RawValue::Kind::kBool) {
      parsed = v.boolean;
    } else if (v.kind == RawValue::Kind::kText && v.from_text &&
               (v.text == "true" || v.text == "false")) {
      parsed = v.text == "true";
    } else {
      return "expected true or false";
    }
    std::invoke(acc, c) = parsed;
    return "";
  };
  k.json = [acc](const T& c) { return nlohmann::json(std::invoke(acc, const_cast<T&>(c))); };
  return k;
}

inline std::string OneOf(const std::vector<std::string>& names, const char* separator = ", ") {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : separator) + n;
  return list;
}

// A string; with `allowed`, one of those; with `check`, whatever it accepts (it returns the
// reason for a refusal, or empty).
template <typename T, typename Acc>
BoundKey<T, Acc> StringKey(std::string name, Acc acc, std::vector<std::string> allowed,
                           std::string help,
                           std::function<std::string(const std::string&)> check = {}) {
  auto k = Bind<T>(std::move(name), allowed.empty() ? "string" : "one of " + OneOf(allowed, " "),
                   std::move(help), acc);
  k.set = [acc, allowed, check](T& c, const RawValue& v) -> std::string {
    if (v.kind != RawValue::Kind::kText) {
      return std::string("expected a string, got ") + KindName(v.kind);
    }
    if (!allowed.empty()) {
      bool found = false;
      for (const auto& a : allowed) found = found || a == v.text;
      if (!found) return "'" + v.text + "' is not one of: " + OneOf(allowed);
    }
    if (check) {
      if (std::string why = check(v.text); !why.empty()) return why;
    }
    std::invoke(acc, c) = v.text;
    return "";
  };
  k.json = [acc](const T& c) { return nlohmann::json(std::invoke(acc, const_cast<T&>(c))); };
  return k;
}

inline std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    auto comma = text.find(',', start);
    out.push_back(
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// The strings of a list value: an array, or comma-separated text from the environment.
inline bool ListOf(const RawValue& v, std::vector<std::string>* out) {
  if (v.kind == RawValue::Kind::kStrings) {
    *out = v.strings;
    return true;
  }
  if (v.kind == RawValue::Kind::kText && v.from_text) {
    *out = SplitList(v.text);
    return true;
  }
  return false;
}

template <typename T, typename Acc>
BoundKey<T, Acc> StringListKey(std::string name, Acc acc, std::string help) {
  auto k = Bind<T>(std::move(name), "array of strings", std::move(help), acc);
  k.set = [acc](T& c, const RawValue& v) -> std::string {
    std::vector<std::string> list;
    if (!ListOf(v, &list)) return "expected an array of strings";
    std::invoke(acc, c) = std::move(list);
    return "";
  };
  k.json = [acc](const T& c) { return nlohmann::json(std::invoke(acc, const_cast<T&>(c))); };
  return k;
}

// An enum by name: parsed once, here.
template <typename E>
using EnumNames = std::vector<std::pair<std::string, E>>;

template <typename E>
std::vector<std::string> NamesOf(const EnumNames<E>& names) {
  std::vector<std::string> out;
  for (const auto& [n, e] : names) out.push_back(n);
  return out;
}

template <typename E>
std::string NameOf(const EnumNames<E>& names, E value) {
  for (const auto& [n, e] : names) {
    if (e == value) return n;
  }
  return "?";
}

template <typename T, typename Acc, typename E = FieldOf<T, Acc>>
BoundKey<T, Acc> EnumKey(std::string name, Acc acc, EnumNames<E> names, std::string help) {
  auto k = Bind<T>(std::move(name), "one of " + OneOf(NamesOf(names), " "), std::move(help), acc);
  k.set = [acc, names](T& c, const RawValue& v) -> std::string {
    if (v.kind != RawValue::Kind::kText) {
      return std::string("expected a string, got ") + KindName(v.kind);
    }
    for (const auto& [n, e] : names) {
      if (n == v.text) {
        std::invoke(acc, c) = e;
        return "";
      }
    }
    return "'" + v.text + "' is not one of: " + OneOf(NamesOf(names));
  };
  k.json = [acc, names](const T& c) {
    return nlohmann::json(NameOf(names, std::invoke(acc, const_cast<T&>(c))));
  };
  return k;
}

// A non-empty list of distinct enum values, in order.
template <typename T, typename Acc, typename E = typename FieldOf<T, Acc>::value_type>
BoundKey<T, Acc> EnumListKey(std::string name, Acc acc, EnumNames<E> names, std::string help) {
  auto k = Bind<T>(std::move(name), "array of " + OneOf(NamesOf(names), " "), std::move(help), acc);
  k.set = [acc, names](T& c, const RawValue& v) -> std::string {
    std::vector<std::string> list;
    if (!ListOf(v, &list)) return "expected an array of strings";
    if (list.empty()) return "expected at least one of: " + OneOf(NamesOf(names));
    std::vector<E> out;
    for (std::size_t i = 0; i < list.size(); ++i) {
      bool found = false;
      for (const auto& [n, e] : names) {
        if (n != list[i]) continue;
        found = true;
        for (E seen : out) {
          if (seen == e) return "'" + list[i] + "' is listed twice";
        }
        out.push_back(e);
      }
      if (!found) return "'" + list[i] + "' is not one of: " + OneOf(NamesOf(names));
    }
    std::invoke(acc, c) = std::move(out);
    return "";
  };
  auto names_of = [acc, names](const T& c) {
    std::vector<std::string> out;
    for (E e : std::invoke(acc, const_cast<T&>(c))) out.push_back(NameOf(names, e));
    return out;
  };
  k.json = [names_of](const T& c) { return nlohmann::json(names_of(c)); };
  return k;
}

template <typename T>
const Key<T>* Find(const std::vector<Key<T>>& keys, const std::string& name) {
  for (const auto& k : keys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

}  // namespace semcached::app::config_keys
