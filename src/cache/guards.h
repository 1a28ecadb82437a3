// Guards: checks a semantic candidate must pass besides similarity.
//
// Lexical similarity (and embeddings) score "is X" and "is not X", or "3 tickets" and "4
// tickets", as near-identical; answering one with the other's response is the worst thing a
// cache can do. A hit therefore also needs the two prompts' numbers to agree and their
// negations to agree. Both work on normalized (case-folded) text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace semcached::cache {

// Numbers in the text, canonical ("1,000" and "1000" are the same; "3.50" and "3.5" too),
// plus English number words up to twenty, in order of appearance.
std::vector<std::string> ExtractNumbers(std::string_view text);

// Negation markers ("not", "no", "never", "n't", "without", "cannot", ...) in the text.
int CountNegations(std::string_view text);

enum class GuardVerdict { kPass, kNumbersDiffer, kNegationDiffers };
const char* GuardVerdictName(GuardVerdict v);

struct GuardOptions {
  bool numbers = true;
  bool negation = true;
};

GuardVerdict CheckGuards(std::string_view query, std::string_view candidate, const GuardOptions& o);

}  // namespace semcached::cache
