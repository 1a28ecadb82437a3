// Guards: checks a semantic candidate must pass besides similarity.
//
// Embeddings that average tokens (and lexical similarity) score "is X" and "is not X",
// "3 tickets" and "4 tickets", "increase" and "decrease", "from savings to checking" and
// "from checking to savings" as near-identical; answering one with the other's response is
// the worst thing a cache can do. A hit therefore also needs the two prompts to agree on what
// each enabled guard looks at:
//   numbers    the same numbers ("1,000" = "1000", "three" = "3"), in any order;
//   negation   the same count of negations ("not", "n't", "never", "without", ...);
//   units      the same units where both name some ("grams" vs "ounces", "km" vs "miles");
//   dates      the same date words ("today" vs "tomorrow", "next week" vs "this week");
//   entities   every name in one (capitalized past a sentence start, mixed case, all caps,
//              letters with digits: "Paris", "iPhone", "PDF", "K2", "H2S"; an emoji) appears
//              in the other, and every word the user put in quotes ("say 'good night'");
//   direction  not the same words with two parts swapped around a middle ("from A to B" vs
//              "from B to A", "the dog chased the cat" vs "the cat chased the dog", "what do
//              cats think about dogs" vs "... dogs think about cats");
//   antonyms   no word of one faces its opposite in the other (WordNet, and negating
//              prefixes: "safe"/"unsafe", "upload"/"download"), unless one of the two is
//              turned around ("cheapest" / "least expensive");
//   reason     both ask for a reason or neither does ("why", "how come", "what makes",
//              "what causes": "what is a certified letter" vs "why would I get a certified
//              letter").
// All but entities work on the normalized (case-folded) text; entities needs the original.
// Guards never look at responses and never change the similarity; they only say no.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace semcached::cache {

// Numbers in the text, canonical ("1,000" and "1000" are the same; "3.50" and "3.5" too),
// plus English number words up to twenty and ordinals from "second" to "tenth", in order of
// appearance.
std::vector<std::string> ExtractNumbers(std::string_view text);

// Negation markers ("not", "no", "never", "n't", "without", "cannot", ...) in the text.
int CountNegations(std::string_view text);

enum class GuardVerdict {
  kPass,
  kNumbersDiffer,
  kNegationDiffers,
  kUnitsDiffer,
  kDatesDiffer,
  kEntitiesDiffer,
  kDirectionDiffers,
  kAntonym,
  kReasonDiffers,
};
inline constexpr std::size_t kGuardVerdicts = 9;
// "pass", "numbers", "negation", "units", "dates", "entities", "direction", "antonyms",
// "reason".
const char* GuardVerdictName(GuardVerdict v);

struct GuardOptions {
  bool numbers = true;
  bool negation = true;
  bool units = true;
  bool dates = true;
  bool entities = true;
  bool direction = true;
  bool antonyms = true;
  bool reason = true;
};

// A prompt as the guards see it: normalized, and as the user wrote it (for names). Built from
// one string, both are that string.
struct GuardText {
  GuardText(std::string_view text) : normalized(text), original(text) {}     // NOLINT: implicit
  GuardText(const char* text) : GuardText(std::string_view(text)) {}         // NOLINT: implicit
  GuardText(const std::string& text) : GuardText(std::string_view(text)) {}  // NOLINT
  GuardText(std::string_view normalized_text, std::string_view original_text)
      : normalized(normalized_text), original(original_text) {}
  std::string_view normalized;
  std::string_view original;
};

// The first guard, in the order above, that the pair fails; kPass if none.
GuardVerdict CheckGuards(const GuardText& query, const GuardText& candidate, const GuardOptions& o);

}  // namespace semcached::cache
