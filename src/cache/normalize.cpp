#include "cache/normalize.h"

#include <cstdlib>
#include <memory>
#include <vector>

#include <utf8proc.h>

namespace semcached::cache {
namespace {

bool IsSpace(utf8proc_int32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f') return true;
  return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x85;
}

bool IsPunctuation(utf8proc_int32_t cp) {
  auto c = utf8proc_category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

void Append(std::string& out, utf8proc_int32_t cp) {
  utf8proc_uint8_t buf[4];
  auto n = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0 || cp < 0) return false;
    p += n;
    left -= n;
  }
  return true;
}

namespace {

bool IsAscii(std::string_view text) {
  for (unsigned char c : text) {
    if (c >= 0x80) return false;
  }
  return true;
}

// Space and punctuation as the Unicode path classifies them, for each ASCII character.
struct AsciiClasses {
  bool space[128];
  bool punctuation[128];
  AsciiClasses() {
    for (int c = 0; c < 128; ++c) {
      space[c] = IsSpace(c);
      punctuation[c] = IsPunctuation(c);
    }
  }
};

std::string NormalizeAscii(std::string_view text, const NormalizeOptions& o) {
  static const AsciiClasses classes;
  auto space = [&](char c) { return classes.space[static_cast<unsigned char>(c)]; };
  auto edge = [&](char c) {
    return classes.space[static_cast<unsigned char>(c)] ||
           classes.punctuation[static_cast<unsigned char>(c)];
  };
  std::size_t begin = 0, end = text.size();
  if (o.trim_punctuation) {
    while (begin < end && edge(text[begin])) ++begin;
    while (end > begin && edge(text[end - 1])) --end;
  }
  std::string out;
  out.reserve(end - begin);
  bool pending_space = false;
  for (std::size_t i = begin; i < end; ++i) {
    char c = text[i];
    if (o.collapse_whitespace && space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    if (o.casefold && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out.push_back(c);
  }
  return out;
}

}  // namespace

Result<std::string> NormalizePrompt(std::string_view text, const NormalizeOptions& o) {
  if (IsAscii(text)) return NormalizeAscii(text, o);
  return NormalizePromptUnicode(text, o);
}

Result<std::string> NormalizePromptUnicode(std::string_view text, const NormalizeOptions& o) {
  if (!IsValidUtf8(text)) return InvalidArgument("prompt is not valid UTF-8");
  std::string mapped;
  int flags = UTF8PROC_STABLE;
  if (o.nfkc) flags |= UTF8PROC_COMPAT | UTF8PROC_COMPOSE;
  if (o.casefold) flags |= UTF8PROC_CASEFOLD;
  if (flags != UTF8PROC_STABLE) {
    utf8proc_uint8_t* dst = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                      static_cast<utf8proc_ssize_t>(text.size()), &dst,
                                      static_cast<utf8proc_option_t>(flags));
    if (n < 0)
      return InvalidArgument(std::string("prompt cannot be normalized: ") + utf8proc_errmsg(n));
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(dst, &std::free);
    mapped.assign(reinterpret_cast<const char*>(dst), static_cast<std::size_t>(n));
  } else {
    mapped.assign(text);
  }

  // Decode once, then collapse and trim on code points.
  std::vector<utf8proc_int32_t> cps;
  cps.reserve(mapped.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(mapped.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(mapped.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) return InvalidArgument("prompt is not valid UTF-8");
    cps.push_back(cp);
    p += n;
    left -= n;
  }
  std::size_t begin = 0, end = cps.size();
  if (o.trim_punctuation) {
    while (begin < end && (IsSpace(cps[begin]) || IsPunctuation(cps[begin]))) ++begin;
    while (end > begin && (IsSpace(cps[end - 1]) || IsPunctuation(cps[end - 1]))) --end;
  }
  std::string out;
  out.reserve(mapped.size());
  bool pending_space = false;
  for (std::size_t i = begin; i < end; ++i) {
    if (o.collapse_whitespace && IsSpace(cps[i])) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    Append(out, cps[i]);
  }
  return out;
}

}  // namespace semcached::cache
