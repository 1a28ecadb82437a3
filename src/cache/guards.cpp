#include "cache/guards.h"
#include "common/enum_names.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace semcached::cache {
namespace {

bool IsWordChar(unsigned char c) { return std::isalnum(c) || c == '\'' || c >= 0x80; }

std::vector<std::string_view> Words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !IsWordChar(static_cast<unsigned char>(text[i]))) ++i;
    std::size_t j = i;
    while (j < text.size() && IsWordChar(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string CanonicalNumber(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  std::size_t lead = 0;
  while (lead + 1 < s.size() && s[lead] == '0' && s[lead + 1] != '.') ++lead;
  return s.substr(lead);
}

constexpr std::array<std::string_view, 21> kNumberWords = {
    "zero",     "one",     "two",     "three",     "four",     "five",     "six",
    "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",   "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};

}  // namespace

std::vector<std::string> ExtractNumbers(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isdigit(c)) {
      std::size_t j = i;
      while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) ||
                                 ((text[j] == ',' || text[j] == '.') && j + 1 < text.size() &&
                                  std::isdigit(static_cast<unsigned char>(text[j + 1]))))) {
        ++j;
      }
      out.push_back(CanonicalNumber(std::string(text.substr(i, j - i))));
      i = j;
      continue;
    }
    if (std::isalpha(c) && (i == 0 || !IsWordChar(static_cast<unsigned char>(text[i - 1])))) {
      std::size_t j = i;
      while (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j]))) ++j;
      std::string_view w = text.substr(i, j - i);
      for (std::size_t n = 0; n < kNumberWords.size(); ++n) {
        if (w == kNumberWords[n]) out.push_back(std::to_string(n));
      }
      i = j;
      continue;
    }
    ++i;
  }
  return out;
}

int CountNegations(std::string_view text) {
  static constexpr std::array<std::string_view, 14> kMarkers = {
      "not",     "no",      "never", "without", "cannot", "none", "nobody",
      "nothing", "neither", "nor",   "nowhere", "isnt",   "dont", "doesnt"};
  int count = 0;
  for (std::string_view w : Words(text)) {
    if (w.size() > 3 && w.substr(w.size() - 3) == "n't") {
      ++count;
      continue;
    }
    for (std::string_view m : kMarkers) {
      if (w == m) {
        ++count;
        break;
      }
    }
  }
  return count;
}

const char* GuardVerdictName(GuardVerdict v) {
  static constexpr EnumName<GuardVerdict> kNames[] = {{GuardVerdict::kPass, "pass"},
                                                      {GuardVerdict::kNumbersDiffer, "numbers"},
                                                      {GuardVerdict::kNegationDiffers, "negation"}};
  return NameOf(kNames, v);
}

GuardVerdict CheckGuards(std::string_view query, std::string_view candidate,
                         const GuardOptions& o) {
  if (o.numbers) {
    auto a = ExtractNumbers(query), b = ExtractNumbers(candidate);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) return GuardVerdict::kNumbersDiffer;
  }
  if (o.negation && CountNegations(query) != CountNegations(candidate)) {
    return GuardVerdict::kNegationDiffers;
  }
  return GuardVerdict::kPass;
}

}  // namespace semcached::cache
