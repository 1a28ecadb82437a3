// Prompt normalization: the text two requests must share to be "the same question" for the
// exact tier, and the text the embedder sees for the semantic tier.
//
// Steps, each of which a cache can turn off: Unicode NFKC (compatibility forms folded:
// full-width letters, ligatures), case folding, whitespace runs collapsed to one space, and
// punctuation and spaces trimmed from both ends ("What is X?" and "what is x" match).
// Invalid UTF-8 is refused, never repaired silently. No I/O, no allocation beyond the result.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace semcached::cache {

struct NormalizeOptions {
  bool nfkc = true;
  bool casefold = true;
  bool collapse_whitespace = true;
  bool trim_punctuation = true;
};

bool IsValidUtf8(std::string_view text);

// The normalized prompt; InvalidArgument for invalid UTF-8. ASCII text (most prompts) takes
// a one-pass path with the same result: NFKC leaves ASCII as it is and case folding of ASCII
// is lower-casing.
Result<std::string> NormalizePrompt(std::string_view text, const NormalizeOptions& options = {});

// The general path alone (utf8proc for every text), for tests that hold the ASCII path to it.
Result<std::string> NormalizePromptUnicode(std::string_view text, const NormalizeOptions& options);

}  // namespace semcached::cache
