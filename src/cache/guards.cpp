#include "cache/guards.h"
#include "common/enum_names.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <set>

#include "cache/lexicon/lexicon.h"

namespace semcached::cache {
namespace {

// ASCII classes inline: the guards run on every semantic candidate, and the C library's
// locale-aware std::isalnum is a call per character.
constexpr bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool IsAlpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
constexpr bool IsWordChar(unsigned char c) {
  return IsDigit(c) || IsAlpha(c) || c == '\'' || c >= 0x80;
}

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

// "first" is left out: it is as often "at first" or "first of all" as a rank.
constexpr std::array<std::string_view, 9> kOrdinalWords = {
    "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"};

}  // namespace

std::vector<std::string> ExtractNumbers(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (IsDigit(c)) {
      std::size_t j = i;
      while (j < text.size() && (IsDigit(static_cast<unsigned char>(text[j])) ||
                                 ((text[j] == ',' || text[j] == '.') && j + 1 < text.size() &&
                                  IsDigit(static_cast<unsigned char>(text[j + 1]))))) {
        ++j;
      }
      out.push_back(CanonicalNumber(std::string(text.substr(i, j - i))));
      i = j;
      continue;
    }
    if (IsAlpha(c) && (i == 0 || !IsWordChar(static_cast<unsigned char>(text[i - 1])))) {
      std::size_t j = i;
      while (j < text.size() && IsAlpha(static_cast<unsigned char>(text[j]))) ++j;
      std::string_view w = text.substr(i, j - i);
      for (std::size_t n = 0; w.size() >= 3 && w.size() <= 9 && n < kNumberWords.size(); ++n) {
        if (w == kNumberWords[n]) out.push_back(std::to_string(n));
      }
      for (std::size_t n = 0; w.size() >= 5 && w.size() <= 7 && n < kOrdinalWords.size(); ++n) {
        if (w == kOrdinalWords[n]) out.push_back(std::to_string(n + 2));
      }
      i = j;
      continue;
    }
    ++i;
  }
  return out;
}

namespace {

int CountNegationsIn(const std::vector<std::string_view>& words) {
  static constexpr std::array<std::string_view, 15> kMarkers = {
      "not",     "no",  "never",   "without", "cannot", "none",   "nobody", "nothing",
      "neither", "nor", "nowhere", "isnt",    "dont",   "doesnt", "non"};
  int count = 0;
  for (std::string_view w : words) {
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

}  // namespace

int CountNegations(std::string_view text) { return CountNegationsIn(Words(text)); }

const char* GuardVerdictName(GuardVerdict v) {
  static constexpr EnumName<GuardVerdict> kNames[] = {
      {GuardVerdict::kPass, "pass"},
      {GuardVerdict::kNumbersDiffer, "numbers"},
      {GuardVerdict::kNegationDiffers, "negation"},
      {GuardVerdict::kUnitsDiffer, "units"},
      {GuardVerdict::kDatesDiffer, "dates"},
      {GuardVerdict::kEntitiesDiffer, "entities"},
      {GuardVerdict::kDirectionDiffers, "direction"},
      {GuardVerdict::kAntonym, "antonyms"},
      {GuardVerdict::kReasonDiffers, "reason"}};
  return NameOf(kNames, v);
}

namespace {

bool IsDigits(std::string_view w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return IsDigit(static_cast<unsigned char>(c)) || c == ',' || c == '.';
  });
}

// Words, with digits split from letters ("5km" -> "5", "km") and the currency and percent
// signs as words of their own: what units and dates are read from.
std::vector<std::string_view> UnitWords(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  auto symbol_at = [&](std::size_t at) -> std::size_t {
    const auto c = static_cast<unsigned char>(text[at]);
    if (c == '$' || c == '%') return 1;
    if (c != 0xE2 && c != 0xC2) return 0;
    for (std::string_view sym : {"\xE2\x82\xAC", "\xC2\xA3", "\xC2\xA5"})
      if (text.compare(at, sym.size(), sym) == 0) return sym.size();
    return 0;
  };
  while (i < text.size()) {
    if (std::size_t n = symbol_at(i)) {
      out.push_back(text.substr(i, n));
      i += n;
      continue;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (!IsWordChar(c)) {
      ++i;
      continue;
    }
    const bool digits = IsDigit(c);
    std::size_t j = i;
    while (j < text.size() && !symbol_at(j)) {
      const auto d = static_cast<unsigned char>(text[j]);
      const bool inner_point = digits && (d == '.' || d == ',') && j + 1 < text.size() &&
                               IsDigit(static_cast<unsigned char>(text[j + 1]));
      if (!(IsWordChar(d) || inner_point) || (!inner_point && (IsDigit(d) != 0) != digits)) break;
      ++j;
    }
    out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

// Short unit forms that are also ordinary words or letters count only after a number.
bool NeedsNumber(std::string_view form) {
  static constexpr std::string_view kAmbiguous[] = {"in.", "min", "mins", "sec", "cal", "gal",
                                                    "mo",  "mos", "pt",   "qt",  "kn",  "mi",
                                                    "hr",  "kg",  "oz",   "lb",  "yd",  "ft"};
  if (form.size() <= 2) return true;
  return std::find(std::begin(kAmbiguous), std::end(kAmbiguous), form) != std::end(kAmbiguous);
}

std::vector<std::string_view> Units(const std::vector<std::string_view>& words) {
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string_view unit = lexicon::UnitOf(words[i]);
    if (unit.empty()) continue;
    const bool after_number = i > 0 && IsDigits(words[i - 1]);
    const bool before_number = i + 1 < words.size() && IsDigits(words[i + 1]);  // "$ 5"
    if (NeedsNumber(words[i]) && !after_number &&
        !(words[i].size() == 1 && before_number &&
          !IsAlpha(static_cast<unsigned char>(words[i][0]))))
      continue;
    out.push_back(unit);
  }
  return out;
}

std::multiset<std::string> Dates(const std::vector<std::string_view>& words) {
  std::multiset<std::string> out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string_view w = words[i];
    if (auto d = lexicon::DateWordOf(w); !d.empty()) {
      out.emplace(d);
      continue;
    }
    if (auto m = lexicon::DateModifierOf(w); !m.empty() && i + 1 < words.size()) {
      std::string_view next = lexicon::DateWordOf(words[i + 1]);
      if (next.empty()) {
        const std::string_view unit = lexicon::UnitOf(words[i + 1]);
        if (unit == "day" || unit == "week" || unit == "month" || unit == "year" ||
            unit == "hour" || unit == "minute")
          next = unit;
      }
      if (!next.empty()) {
        out.emplace(std::string(m) + " " + std::string(next));
        ++i;
      }
      continue;
    }
    // "may" is a month only beside a day number ("may 5", "5 may").
    if (w == "may" &&
        ((i > 0 && IsDigits(words[i - 1])) || (i + 1 < words.size() && IsDigits(words[i + 1]))))
      out.emplace("may");
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool NameSeparator(unsigned char c) {
  switch (c) {
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ',':
    case ';':
    case ':':
    case '!':
    case '?':
    case '(':
    case ')':
    case '[':
    case ']':
    case '{':
    case '}':
    case '"':
    case '/': return true;
    default: return false;
  }
}

// Cuts text into the tokens names are read from: split at spaces and punctuation that never
// belongs to a name, dots and quotes trimmed, a possessive ('s, ’s) cut. Calls
// each(token, starts_sentence).
template <typename Each>
void ForEachNameToken(std::string_view text, Each each) {
  bool sentence_start = true;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (NameSeparator(c)) {
      if (c == '!' || c == '?' || c == ':' || c == '\n') sentence_start = true;
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !NameSeparator(static_cast<unsigned char>(text[j]))) ++j;
    std::string_view tok = text.substr(i, j - i);
    i = j;
    const bool ends_sentence = tok.back() == '.';
    while (!tok.empty() && (tok.back() == '.' || tok.back() == '\'')) tok.remove_suffix(1);
    for (std::string_view possessive : {"'s", "'S", "\xE2\x80\x99s"}) {
      if (tok.size() > possessive.size() &&
          tok.substr(tok.size() - possessive.size()) == possessive)
        tok.remove_suffix(possessive.size());
    }
    while (!tok.empty() && (tok.front() == '\'' || tok.front() == '.')) tok.remove_prefix(1);
    // Curly quotes around a word ("“reset”", "‘on’").
    for (std::string_view q : {"\xE2\x80\x98", "\xE2\x80\x99", "\xE2\x80\x9C", "\xE2\x80\x9D"}) {
      while (tok.size() > q.size() && tok.substr(0, q.size()) == q) tok.remove_prefix(q.size());
      while (tok.size() > q.size() && tok.substr(tok.size() - q.size()) == q)
        tok.remove_suffix(q.size());
    }
    const bool starts = sentence_start;
    sentence_start = ends_sentence;
    if (!tok.empty()) each(tok, starts);
  }
}

// Whether a token holds an emoji or a pictographic symbol (U+2600-U+27BF, U+1F000 and up):
// "what does ✊ mean" and "what does 👍 mean" differ in nothing else.
bool HasPictograph(std::string_view tok) {
  for (std::size_t i = 0; i + 1 < tok.size(); ++i) {
    const auto a = static_cast<unsigned char>(tok[i]), b = static_cast<unsigned char>(tok[i + 1]);
    if (a == 0xF0 && b >= 0x9F) return true;
    if (a == 0xE2 && b >= 0x98 && b <= 0x9E) return true;
  }
  return false;
}

// A name as the guard compares it: lower case, and whether a trailing "s" may be a plural
// ("PDFs" is PDF's plural; "H2S" and "GPS" are not plurals of "H2" and "GP").
struct Name {
  std::string lower;
  bool may_be_plural;
};

// A text's tokens as ForEachNameToken cuts them, lower case, for looking names up;
// and its names as written: capitalized past a sentence start, mixed case, all caps, letters
// then digits ("K2", "mp3"), with a '#' or '+' ("C#", "C++"), or a pictograph.
struct NameTokens {
  std::vector<std::string> tokens;
  std::vector<Name> names;
};

NameTokens ReadNames(std::string_view text) {
  NameTokens read;
  ForEachNameToken(text, [&](std::string_view tok, bool starts) {
    read.tokens.push_back(Lower(tok));
    if (IsDigits(tok)) return;
    bool upper_inside = false, has_alpha = false, digit_after_letter = false, sign = false;
    for (std::size_t k = 0; k < tok.size(); ++k) {
      const auto t = static_cast<unsigned char>(tok[k]);
      if (k > 0 && std::isupper(t)) upper_inside = true;
      if (IsAlpha(t)) has_alpha = true;
      if (IsDigit(t) && has_alpha) digit_after_letter = true;
      if ((t == '#' || t == '+') && has_alpha) sign = true;
    }
    const bool capitalized = std::isupper(static_cast<unsigned char>(tok[0])) != 0;
    const bool pronoun_i = tok == "I" || (tok.size() > 1 && tok[0] == 'I' && tok[1] == '\'');
    if (upper_inside || digit_after_letter || sign || (capitalized && !starts && !pronoun_i) ||
        HasPictograph(tok))
      read.names.push_back({read.tokens.back(), tok.back() != 'S'});
  });
  return read;
}

// A name is present if the other text has it, or its plural or singular ("PDFs", "PDF").
bool Mentions(const std::vector<std::string>& tokens, const Name& name) {
  auto has = [&](const std::string& t) {
    return std::find(tokens.begin(), tokens.end(), t) != tokens.end();  // a prompt's few words
  };
  const std::string& n = name.lower;
  if (has(n) || has(n + "s") || has(n + "es")) return true;
  return name.may_be_plural && n.size() > 2 && n.back() == 's' && has(n.substr(0, n.size() - 1));
}

// Text the user put in quotes ('...', "...", curly quotes): a phrase they mean exactly ("how do
// I say 'thank you' in Japanese"). Opening quotes follow a space or the start, closing ones
// precede a space, punctuation or the end, so apostrophes ("don't", "users'") are not quotes.
std::vector<std::string_view> QuotedSpans(std::string_view text) {
  std::vector<std::string_view> out;
  auto quote_at = [&](std::size_t i) -> std::size_t {  // the quote's length in bytes, or 0
    if (text[i] == '\'' || text[i] == '"') return 1;
    if (text.substr(i, 2) == "\xE2\x80" && i + 2 < text.size()) {
      const auto c = static_cast<unsigned char>(text[i + 2]);
      if (c == 0x98 || c == 0x99 || c == 0x9C || c == 0x9D) return 3;  // ‘ ’ “ ”
    }
    return 0;
  };
  auto boundary = [&](std::size_t i) {  // nothing, a space or punctuation at i
    if (i >= text.size()) return true;
    const auto c = static_cast<unsigned char>(text[i]);
    return c < 0x80 && !IsAlpha(c) && !IsDigit(c);
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::size_t open = quote_at(i);
    if (open == 0 || (i > 0 && !boundary(i - 1))) continue;
    for (std::size_t j = i + open; j < text.size() && j < i + open + 80; ++j) {
      const std::size_t close = quote_at(j);
      if (close == 0 || !boundary(j + close)) continue;
      if (j > i + open) out.push_back(text.substr(i + open, j - i - open));
      i = j + close - 1;
      break;
    }
  }
  return out;
}

bool EntitiesAgree(std::string_view a, std::string_view b) {
  const NameTokens in_a = ReadNames(a), in_b = ReadNames(b);
  for (const auto& e : in_a.names)
    if (!Mentions(in_b.tokens, e)) return false;
  for (const auto& e : in_b.names)
    if (!Mentions(in_a.tokens, e)) return false;
  // Every word of a quoted phrase of one is in the other, quoted or not.
  for (const auto* pair : {&a, &b}) {
    const NameTokens& other = pair == &a ? in_b : in_a;
    for (std::string_view span : QuotedSpans(*pair)) {
      bool all = true;
      ForEachNameToken(span, [&](std::string_view tok, bool) {
        all = all && Mentions(other.tokens, Name{Lower(tok), true});
      });
      if (!all) return false;
    }
  }
  return true;
}

// X M Y in one and Y M X in the other, once the shared beginning and end are set aside.
bool PartsSwapped(const std::vector<std::string_view>& wa,
                  const std::vector<std::string_view>& wb) {
  if (wa.size() != wb.size() || wa.size() > 64) return false;
  std::size_t begin = 0, end = wa.size();
  while (begin < end && wa[begin] == wb[begin]) ++begin;
  while (end > begin && wa[end - 1] == wb[end - 1]) --end;
  const std::size_t n = end - begin;
  if (n < 3) return false;
  auto sa = std::vector<std::string_view>(wa.begin() + begin, wa.begin() + end);
  auto sb = std::vector<std::string_view>(wb.begin() + begin, wb.begin() + end);
  if (!std::is_permutation(sa.begin(), sa.end(), sb.begin())) return false;
  for (std::size_t x = 1; x + 2 <= n; ++x) {
    for (std::size_t y = 1; x + y + 1 <= n; ++y) {
      const std::size_t m = n - x - y;
      // b = Y M X
      if (!std::equal(sa.end() - y, sa.end(), sb.begin())) continue;
      if (!std::equal(sa.begin() + x, sa.begin() + x + m, sb.begin() + y)) continue;
      if (!std::equal(sa.begin(), sa.begin() + x, sb.begin() + y + m)) continue;
      // Sides of "and", "or", "vs" may trade places ("cats and dogs", "dogs and cats").
      const bool symmetric =
          std::all_of(sa.begin() + x, sa.begin() + x + m, [](std::string_view w) {
            return w == "and" || w == "or" || w == "vs" || w == "versus" || w == "&" || w == "nor";
          });
      if (symmetric) continue;
      return true;
    }
  }
  return false;
}

// Two content words on either side of the same relation word, in one order in one text and in
// the other order in the other ("install Windows on a Mac" / "install a Mac on Windows", "is
// Python faster than Java" / "is Java faster than Python"): the same words asking the opposite.
// Only relations whose sides cannot trade places ("and", "or", "vs" can); only words a text
// has once, at most six words apart; and at least one of the two must have changed the
// relation it follows: "see in Paris in spring" / "in spring, see in Paris" moves both words
// with their own "in" and asks the same.
bool ArgumentsSwapped(const std::vector<std::string_view>& wa,
                      const std::vector<std::string_view>& wb) {
  static constexpr std::string_view kRelations[] = {"to",    "from", "on",      "onto",  "into",
                                                    "than",  "over", "against", "under", "for",
                                                    "about", "in",   "of"};
  static constexpr std::string_view kFunctionWords[] = {
      "a",    "an",   "the", "my",  "your", "our",   "their", "his",  "her",   "its", "this",
      "that", "is",   "are", "be",  "do",   "does",  "i",     "you",  "we",    "it",  "at",
      "by",   "with", "can", "how", "what", "which", "why",   "when", "where", "who"};
  auto is_relation = [](std::string_view w) {
    return std::find(std::begin(kRelations), std::end(kRelations), w) != std::end(kRelations);
  };
  auto is_content = [&](std::string_view w) {
    return w.size() >= 2 && !is_relation(w) &&
           std::find(std::begin(kFunctionWords), std::end(kFunctionWords), w) ==
               std::end(kFunctionWords);
  };
  auto once_at = [](const std::vector<std::string_view>& words, std::string_view w) {
    std::ptrdiff_t at = -1;
    for (std::size_t i = 0; i < words.size(); ++i) {
      if (words[i] != w) continue;
      if (at >= 0) return std::ptrdiff_t{-1};
      at = static_cast<std::ptrdiff_t>(i);
    }
    return at;
  };
  // The relation words strictly between two positions (in either order), or none if too far.
  auto relations_between = [&](const std::vector<std::string_view>& words, std::ptrdiff_t x,
                               std::ptrdiff_t y) {
    std::vector<std::string_view> out;
    if (x > y) std::swap(x, y);
    if (y - x > 6) return out;
    for (std::ptrdiff_t i = x + 1; i < y; ++i)
      if (is_relation(words[static_cast<std::size_t>(i)]))
        out.push_back(words[static_cast<std::size_t>(i)]);
    return out;
  };
  // The relation a word follows: the nearest word before it, past articles and possessives.
  auto relation_before = [&](const std::vector<std::string_view>& words, std::ptrdiff_t at) {
    static constexpr std::string_view kDeterminers[] = {
        "a", "an", "the", "my", "your", "our", "his", "her", "its", "their", "this", "that"};
    for (std::ptrdiff_t i = at - 1; i >= 0 && i >= at - 3; --i) {
      const std::string_view w = words[static_cast<std::size_t>(i)];
      if (is_relation(w)) return w;
      if (std::find(std::begin(kDeterminers), std::end(kDeterminers), w) == std::end(kDeterminers))
        break;
    }
    return std::string_view();
  };
  if (wa.size() > 64 || wb.size() > 64) return false;
  for (std::size_t i = 0; i < wa.size(); ++i) {
    if (!is_content(wa[i])) continue;
    const auto ax = static_cast<std::ptrdiff_t>(i);
    if (once_at(wa, wa[i]) != ax) continue;
    const std::ptrdiff_t bx = once_at(wb, wa[i]);
    if (bx < 0) continue;
    for (std::size_t j = i + 1; j < wa.size() && j <= i + 6; ++j) {
      if (!is_content(wa[j]) || wa[j] == wa[i]) continue;
      const auto ay = static_cast<std::ptrdiff_t>(j);
      if (once_at(wa, wa[j]) != ay) continue;
      const std::ptrdiff_t by = once_at(wb, wa[j]);
      if (by < 0 || by > bx) continue;  // the same order in both
      if (relation_before(wa, ax) == relation_before(wb, bx) &&
          relation_before(wa, ay) == relation_before(wb, by))
        continue;  // each kept its own relation: moved, not swapped
      const auto ra = relations_between(wa, ax, ay), rb = relations_between(wb, bx, by);
      for (std::string_view r : ra)
        if (std::find(rb.begin(), rb.end(), r) != rb.end()) return true;
    }
  }
  return false;
}

// Whether the text asks for a reason: "why" ("why's"), "how come", "what" with "make(s)" or
// "cause(s)" right after it or one word later ("what makes cats purr", "what is causing it").
bool AsksWhy(const std::vector<std::string_view>& words) {
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string_view w = words[i];
    if (w == "why" || w == "why's" || w == "whys") return true;
    if (w == "how" && i + 1 < words.size() && words[i + 1] == "come") return true;
    if (w == "what" || w == "what's") {
      for (std::size_t j = i + 1; j < words.size() && j <= i + 2; ++j) {
        const std::string_view v = words[j];
        if (v == "make" || v == "makes" || v == "made" || v == "cause" || v == "causes" ||
            v == "caused" || v == "causing")
          return true;
      }
    }
  }
  return false;
}

// Whether `word` comes right after a word that turns it around ("least expensive" is cheap,
// "less common" is rare): an opposite so modified says the same, not the contrary.
bool Reversed(const std::vector<std::string_view>& words, std::string_view word) {
  static constexpr std::string_view kReversers[] = {"least",  "less",   "not", "never",
                                                    "hardly", "barely", "non"};
  for (std::size_t i = 1; i < words.size(); ++i) {
    if (words[i] != word) continue;
    for (std::string_view r : kReversers)
      if (words[i - 1] == r) return true;
  }
  return false;
}

bool FacesAnAntonym(const std::vector<std::string_view>& wa,
                    const std::vector<std::string_view>& wb) {
  std::vector<std::string_view> sa(wa), sb(wb);
  for (auto* s : {&sa, &sb}) {
    std::sort(s->begin(), s->end());
    s->erase(std::unique(s->begin(), s->end()), s->end());
  }
  std::vector<std::string_view> only_a, only_b;
  std::set_difference(sa.begin(), sa.end(), sb.begin(), sb.end(), std::back_inserter(only_a));
  std::set_difference(sb.begin(), sb.end(), sa.begin(), sa.end(), std::back_inserter(only_b));
  if (only_a.size() > 32 || only_b.size() > 32) return false;  // not a near-copy anyway
  for (std::string_view x : only_a)
    for (std::string_view y : only_b)
      if (lexicon::AreAntonyms(x, y) && Reversed(wa, x) == Reversed(wb, y)) return true;
  return false;
}

}  // namespace

GuardVerdict CheckGuards(const GuardText& query, const GuardText& candidate,
                         const GuardOptions& o) {
  const std::string_view q = query.normalized, c = candidate.normalized;
  if (o.numbers) {
    auto a = ExtractNumbers(q), b = ExtractNumbers(c);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) return GuardVerdict::kNumbersDiffer;
  }
  // Each text is cut into words once for every guard that reads them.
  const auto wq = Words(q), wc = Words(c);
  if (o.negation && CountNegationsIn(wq) != CountNegationsIn(wc)) {
    return GuardVerdict::kNegationDiffers;
  }
  if (o.units || o.dates) {
    const auto uq = UnitWords(q), uc = UnitWords(c);
    if (o.units) {
      const auto a = Units(uq), b = Units(uc);
      if (!a.empty() && !b.empty() && a != b) return GuardVerdict::kUnitsDiffer;
    }
    if (o.dates && Dates(uq) != Dates(uc)) return GuardVerdict::kDatesDiffer;
  }
  if (o.entities && !EntitiesAgree(query.original, candidate.original))
    return GuardVerdict::kEntitiesDiffer;
  if (o.direction && (PartsSwapped(wq, wc) || ArgumentsSwapped(wq, wc)))
    return GuardVerdict::kDirectionDiffers;
  if (o.antonyms && FacesAnAntonym(wq, wc)) return GuardVerdict::kAntonym;
  if (o.reason && AsksWhy(wq) != AsksWhy(wc)) return GuardVerdict::kReasonDiffers;
  return GuardVerdict::kPass;
}

}  // namespace semcached::cache
