#include "common/json_text.h"

#include <cstdint>
#include <cstring>

namespace semcached {

void AppendJsonEscaped(std::string& out, std::string_view text) {
  // Runs of characters that need no escape (nearly all of a typical response) are copied
  // whole, and found eight bytes at a time: a word is skipped when none of its bytes is below
  // 0x20, a quote or a backslash (the "has zero byte" bit trick; bytes >= 0x80 never trip it).
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  auto has_zero = [](std::uint64_t x) { return ((x - kOnes) & ~x & kHighs) != 0; };
  auto clean = [&](std::size_t at) {
    std::uint64_t w;
    std::memcpy(&w, text.data() + at, 8);
    const bool control = ((w - kOnes * 0x20) & ~w & kHighs) != 0;
    return !control && !has_zero(w ^ (kOnes * '"')) && !has_zero(w ^ (kOnes * '\\'));
  };
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    while (i + 8 <= text.size() && clean(i)) i += 8;
    if (i >= text.size()) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        static const char* hex = "0123456789abcdef";
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
  }
  out.append(text.data() + run, text.size() - run);
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  AppendJsonEscaped(out, text);
  return out;
}

}  // namespace semcached
