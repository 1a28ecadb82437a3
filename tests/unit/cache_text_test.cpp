#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "cache/cache.h"
#include "cache/fingerprint.h"
#include "cache/guards.h"
#include "cache/lexicon/lexicon.h"
#include "cache/normalize.h"
#include "common/sha256.h"
#include "embed/builtin_embedder.h"

namespace semcached::cache {
namespace {

std::string N(std::string_view s, NormalizeOptions o = {}) {
  auto r = NormalizePrompt(s, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "";
}

TEST(Normalize, FoldsCaseWidthSpaceAndEdges) {
  EXPECT_EQ(N("  What is   the Capital\tof FRANCE?! "), "what is the capital of france");
  EXPECT_EQ(N("\xEF\xBC\xA8\xEF\xBD\x85\xEF\xBD\x8C\xEF\xBD\x8C\xEF\xBD\x8F"),
            "hello");                 // full-width
  EXPECT_EQ(N("ﬁle"), "file");        // ligature (NFKC)
  EXPECT_EQ(N("Straße"), "strasse");  // case folding
  EXPECT_EQ(N("\"quoted\""), "quoted");
  EXPECT_EQ(N("e\xCC\x81t\xC3\xA9"), "\xC3\xA9t\xC3\xA9");  // composed: e + combining acute = é
  EXPECT_EQ(N("a  b", {.collapse_whitespace = false}), "a  b");
  EXPECT_EQ(N("Hi?", {.trim_punctuation = false}), "hi?");
  EXPECT_EQ(N("Hi", {.casefold = false}), "Hi");
  EXPECT_EQ(N("?!  "), "");
}

TEST(Normalize, AsciiPathAgreesWithUnicodePath) {
  std::mt19937 rng(11);
  const std::string alphabet = "aZ9 \t\n\r\v\f!?.,;:'\"()[]{}<>$+=^`|~-_/\\@#%&*\x01\x1f\x7f";
  for (int i = 0; i < 20000; ++i) {
    std::string text(rng() % 24, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    for (int mask = 0; mask < 16; ++mask) {
      NormalizeOptions o{(mask & 1) != 0, (mask & 2) != 0, (mask & 4) != 0, (mask & 8) != 0};
      auto fast = NormalizePrompt(text, o);
      auto slow = NormalizePromptUnicode(text, o);
      ASSERT_TRUE(fast.ok() && slow.ok());
      ASSERT_EQ(*fast, *slow) << "text \"" << text << "\" options " << mask;
    }
  }
}

TEST(Normalize, RefusesInvalidUtf8) {
  for (std::string bad : {std::string("abc\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),
                          std::string("\xc0\xaf")}) {
    auto r = NormalizePrompt(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_FALSE(IsValidUtf8(bad));
  }
  EXPECT_TRUE(IsValidUtf8("plain ascii and \xC3\xA9"));
}

TEST(Fingerprint, Sha256AndScopedKeys) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto k1 = ExactKey("c1", "what is x", {{"user", "a"}});
  EXPECT_EQ(k1, ExactKey("c1", "what is x", {{"user", "a"}}));
  EXPECT_NE(k1, ExactKey("c1", "what is x", {{"user", "b"}}));
  EXPECT_NE(k1, ExactKey("c2", "what is x", {{"user", "a"}}));
  EXPECT_NE(k1, ExactKey("c1", "what is x", {}));
  EXPECT_NE(k1, ExactKey("c1", "what is x", {{"user", "a"}}, "model=gpt"));
  // Length prefixes keep field boundaries apart.
  EXPECT_NE(ExactKey("c", "ab", {{"k", "v"}}), ExactKey("c", "a", {{"bk", "v"}}));
}

TEST(Fingerprint, DigestHalvesAreTheKeysLeadingBytes) {
  const std::string hex = ExactKey("c1", "what is x", {{"user", "a"}});
  const ExactDigest d = ExactKey128("c1", "what is x", {{"user", "a"}});
  EXPECT_EQ(d.key, std::stoull(hex.substr(0, 16), nullptr, 16));
  EXPECT_EQ(d.check, std::stoull(hex.substr(16, 16), nullptr, 16));
  EXPECT_NE(d.key, ExactKey128("c1", "what is y", {{"user", "a"}}).key);
}

TEST(EntryText, OneBufferKeepsEveryField) {
  const Attributes attrs = {
      {"user", "alice"}, {"empty", ""}, {std::string("nu\0l", 4), std::string("v\0", 2)}};
  const EntryTextRef ref = EntryText::Make("the prompt", "the response", attrs);
  const EntryText& t = *ref;
  EXPECT_EQ(t.prompt(), "the prompt");
  EXPECT_EQ(t.response(), "the response");
  EXPECT_EQ(t.attributes(), attrs);
  EXPECT_EQ(t.attribute("user"), "alice");
  EXPECT_EQ(t.attribute("empty"), "");
  EXPECT_FALSE(t.attribute("team").has_value());
  EXPECT_TRUE(t.HasAll({}));
  EXPECT_TRUE(t.HasAll({{"user", "alice"}, {"empty", ""}}));
  EXPECT_FALSE(t.HasAll({{"user", "bob"}}));
  EXPECT_FALSE(t.HasAll({{"team", "alice"}}));
  EXPECT_EQ(t.text_bytes(), 10u + 12u + 4u + 5u + 5u + 0u + 4u + 2u);
  std::vector<std::string> names;
  t.ForEachAttribute([&](std::string_view k, std::string_view) { names.emplace_back(k); });
  EXPECT_EQ(names, (std::vector<std::string>{"empty", std::string("nu\0l", 4), "user"}));
  const EntryTextRef empty = EntryText::Make("", "");
  EXPECT_EQ(empty->prompt(), "");
  EXPECT_TRUE(empty->attributes().empty());
  EntryTextRef shared = ref;  // hits share it; the last reference frees it (ASan checks)
  EXPECT_EQ(shared->response(), "the response");
}

std::string Lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

TEST(Guards, NumbersMustAgree) {
  EXPECT_EQ(ExtractNumbers("book 3 tickets for 1,250.50 dollars"),
            (std::vector<std::string>{"3", "1250.5"}));
  EXPECT_EQ(ExtractNumbers("two apples and 007"), (std::vector<std::string>{"2", "7"}));
  EXPECT_EQ(ExtractNumbers("the second most popular sport, first of all"),
            (std::vector<std::string>{"2"}));  // "first" is too often not a rank
  GuardOptions o;
  EXPECT_EQ(CheckGuards("book 3 tickets", "book 4 tickets", o), GuardVerdict::kNumbersDiffer);
  EXPECT_EQ(CheckGuards("book three tickets", "book 3 tickets", o), GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("flights in 2024", "flights in 2025", o), GuardVerdict::kNumbersDiffer);
  // Same numbers; the swap is the direction guard's to judge.
  EXPECT_EQ(CheckGuards("a 1 b 2", "a 2 b 1", GuardOptions{.direction = false}),
            GuardVerdict::kPass);
  o.numbers = false;
  EXPECT_EQ(CheckGuards("book 3 tickets", "book 4 tickets", o), GuardVerdict::kPass);
}

TEST(Guards, NegationMustAgree) {
  GuardOptions o;
  EXPECT_EQ(CheckGuards("is python typed", "is python not typed", o),
            GuardVerdict::kNegationDiffers);
  EXPECT_EQ(CheckGuards("you're fat", "you're not fat", o), GuardVerdict::kNegationDiffers);
  EXPECT_EQ(CheckGuards("i can't log in", "i cannot log in", o), GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("why doesn't it work", "why does it work", o),
            GuardVerdict::kNegationDiffers);
  EXPECT_EQ(CountNegations("no, never without"), 3);
  EXPECT_EQ(CheckGuards("is the ticket refundable", "is the ticket non-refundable", o),
            GuardVerdict::kNegationDiffers);
}

TEST(Guards, UnitsMustAgreeWhereBothNameSome) {
  GuardOptions o;
  EXPECT_EQ(CheckGuards("how many grams in a cup of flour", "how many ounces in a cup of flour", o),
            GuardVerdict::kUnitsDiffer);
  EXPECT_EQ(CheckGuards("walk 5 km", "walk 5 kilometres", o), GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("walk 5km", "walk 5 miles", o), GuardVerdict::kUnitsDiffer);
  EXPECT_EQ(CheckGuards("what's 100 $ in euros", "what's 100 \xE2\x82\xAC in dollars", o),
            GuardVerdict::kUnitsDiffer);
  // One side names no unit: a rewording, not a different unit.
  EXPECT_EQ(
      CheckGuards("how many hours of sleep do adults need", "how much sleep do adults need", o),
      GuardVerdict::kPass);
  // A lone letter is a unit only after a number.
  EXPECT_EQ(CheckGuards("is vitamin c good for colds", "is vitamin c good for a cold", o),
            GuardVerdict::kPass);
}

TEST(Guards, DatesMustAgree) {
  GuardOptions o;
  EXPECT_EQ(CheckGuards("weather in paris tomorrow", "weather in paris today", o),
            GuardVerdict::kDatesDiffer);
  EXPECT_EQ(CheckGuards("events this weekend", "events next weekend", o),
            GuardVerdict::kDatesDiffer);
  EXPECT_EQ(CheckGuards("is the museum open on mondays", "is the museum open monday", o),
            GuardVerdict::kPass);
  // "may" and "last" are words before they are dates.
  EXPECT_EQ(CheckGuards("may i change my seat", "can i change my seat", o), GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("undo the last commit", "undo my last commit", o), GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("flights on may 5", "flights on june 5", o), GuardVerdict::kDatesDiffer);
}

TEST(Guards, NamesInOnePromptMustAppearInTheOther) {
  GuardOptions o;
  auto check = [&](std::string_view a, std::string_view b) {
    return CheckGuards(GuardText(Lowered(a), a), GuardText(Lowered(b), b), o);
  };
  EXPECT_EQ(check("What is the capital of France?", "What is the capital of Germany?"),
            GuardVerdict::kEntitiesDiffer);
  EXPECT_EQ(check("How do I reset my iPhone?", "How do I reset my iPad?"),
            GuardVerdict::kEntitiesDiffer);
  EXPECT_EQ(check("Is Rust faster than C++?", "Is Rust faster than C#?"),
            GuardVerdict::kEntitiesDiffer);
  // Case as typed does not matter, nor a capital that starts a sentence.
  EXPECT_EQ(check("how do I install docker on ubuntu", "How do I install Docker on Ubuntu?"),
            GuardVerdict::kPass);
  EXPECT_EQ(check("Where can I watch it? Netflix maybe", "where can i watch it on netflix"),
            GuardVerdict::kPass);
  EXPECT_EQ(check("Who wrote Hamlet's first act?", "who wrote the first act of hamlet"),
            GuardVerdict::kPass);
  EXPECT_EQ(check("Who wrote Hamlet\xE2\x80\x99s first act?", "who wrote the first act of hamlet"),
            GuardVerdict::kPass);
}

TEST(Guards, FormulasQuotesAndEmojiAreNames) {
  GuardOptions o;
  auto check = [&](std::string_view a, std::string_view b) {
    return CheckGuards(GuardText(Lowered(a), a), GuardText(Lowered(b), b), o);
  };
  // A capital S is part of a code, not a plural; a small s is a plural.
  EXPECT_EQ(check("How toxic is H2S gas?", "How toxic is H2 gas?"), GuardVerdict::kEntitiesDiffer);
  EXPECT_EQ(check("Does the GPS need a signal?", "Does the GP need a signal?"),
            GuardVerdict::kEntitiesDiffer);
  EXPECT_EQ(check("How do I merge two PDFs?", "how do i merge two PDF files"), GuardVerdict::kPass);
  // What the user quoted is meant word for word; quoted or not in the other is the same.
  EXPECT_EQ(
      check("How do I say 'good morning' in Japanese?", "How do I say 'good night' in Japanese?"),
      GuardVerdict::kEntitiesDiffer);
  EXPECT_EQ(check("What does \"carpe diem\" mean?", "what does carpe diem mean"),
            GuardVerdict::kPass);
  EXPECT_EQ(check("What does \xE2\x80\x9C"
                  "carpe diem\xE2\x80\x9D mean?",
                  "What does 'carpe diem' mean?"),
            GuardVerdict::kPass);
  // Apostrophes are not quotes.
  EXPECT_EQ(
      check("Why won't my users' passwords reset?", "why won't the passwords of my users reset"),
      GuardVerdict::kPass);
  // Pictographs are what such a question is about.
  EXPECT_EQ(check("What does \xF0\x9F\x91\x8D mean in a text?",
                  "What does \xF0\x9F\x99\x8F mean in a text?"),
            GuardVerdict::kEntitiesDiffer);
  EXPECT_EQ(check("what does \xE2\x9C\x8A mean", "What does \xE2\x9C\x8A mean?"),
            GuardVerdict::kPass);
}

TEST(Guards, SwappedPartsChangeTheQuestion) {
  GuardOptions o;
  EXPECT_EQ(
      CheckGuards("move 500 from savings to checking", "move 500 from checking to savings", o),
      GuardVerdict::kDirectionDiffers);
  EXPECT_EQ(CheckGuards("flights from new york to london", "flights from london to new york", o),
            GuardVerdict::kDirectionDiffers);
  EXPECT_EQ(CheckGuards("does the dog chase the cat", "does the cat chase the dog", o),
            GuardVerdict::kDirectionDiffers);
  // A phrase moved to the front or the back is the same question.
  EXPECT_EQ(CheckGuards("in python how do i sort a dict", "how do i sort a dict in python", o),
            GuardVerdict::kPass);
  // The two sides of one relation traded, with other words around them changed too.
  EXPECT_EQ(
      CheckGuards("how should i install windows on a mac", "how do i install mac on windows", o),
      GuardVerdict::kDirectionDiffers);
  EXPECT_EQ(CheckGuards("is python faster than java", "is java much faster than python", o),
            GuardVerdict::kDirectionDiffers);
  EXPECT_EQ(CheckGuards("how do i convert pdf to word", "convert a word file to pdf", o),
            GuardVerdict::kDirectionDiffers);
  // Sides that may trade places, and the same trip told in another order, pass.
  EXPECT_EQ(CheckGuards("difference between cats and dogs", "difference between dogs and cats", o),
            GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("flights from london to paris", "flights to paris from london", o),
            GuardVerdict::kPass);
  // "about", "in" and "of" relate their sides too, and a side may sit six words away.
  EXPECT_EQ(CheckGuards("what do cats think about dogs", "what do dogs think about cats", o),
            GuardVerdict::kDirectionDiffers);
  EXPECT_EQ(
      CheckGuards("a good book on the history of art", "a good book on the art of history", o),
      GuardVerdict::kDirectionDiffers);
  // Each side moved with its own relation: the same question.
  EXPECT_EQ(CheckGuards("what should i see in paris in spring",
                        "in spring what should i see in paris", o),
            GuardVerdict::kPass);
}

TEST(Guards, OppositeWordsChangeTheQuestion) {
  GuardOptions o;
  EXPECT_EQ(
      CheckGuards("how do i increase my credit score", "how do i decrease my credit score", o),
      GuardVerdict::kAntonym);
  EXPECT_EQ(CheckGuards("is coffee good for you", "is coffee bad for you", o),
            GuardVerdict::kAntonym);
  EXPECT_EQ(CheckGuards("is it cheaper to drive or fly", "is it more expensive to drive or fly", o),
            GuardVerdict::kAntonym);  // "cheaper" is a form of "cheap"
  EXPECT_EQ(CheckGuards("how do i mute a call", "how do i unmute a call", o),
            GuardVerdict::kAntonym);
  EXPECT_EQ(CheckGuards("how do i upload a file", "how do i download a file", o),
            GuardVerdict::kAntonym);
  EXPECT_EQ(CheckGuards("swim after eating", "swim before eating", o), GuardVerdict::kAntonym);
  // An opposite turned around says the same; turned around on both sides, the contrary.
  EXPECT_EQ(CheckGuards("the cheapest way to ship a parcel",
                        "the least expensive way to ship a parcel", o),
            GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("the most expensive way to ship a parcel",
                        "the cheapest way to ship a parcel", o),
            GuardVerdict::kAntonym);
  // Different words that are not opposites pass; so do two forms of one word.
  EXPECT_EQ(CheckGuards("how do i fix a leaky faucet", "how do i fix a dripping faucet", o),
            GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("how do i undo the last commit", "how can i undo my last commit", o),
            GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("benefits of meditation", "benefits of meditating", o),
            GuardVerdict::kPass);
  // Actions and their undoing, and quantities, that WordNet does not link.
  EXPECT_EQ(CheckGuards("how do i add a user in linux", "how do i remove a user in linux", o),
            GuardVerdict::kAntonym);
  EXPECT_EQ(CheckGuards("how do i pause windows updates", "how do i resume windows updates", o),
            GuardVerdict::kAntonym);
  EXPECT_EQ(CheckGuards("is it normal for a baby to sleep a lot",
                        "is it normal for a baby to sleep very little", o),
            GuardVerdict::kAntonym);
  EXPECT_EQ(CheckGuards("how do i remove a user", "how do i delete a user", o),
            GuardVerdict::kPass);
  EXPECT_GT(lexicon::AntonymPairs(), 3000u);
}

TEST(Guards, AskingWhyIsAnotherQuestion) {
  GuardOptions o;
  EXPECT_EQ(CheckGuards("what is a certified letter from the irs",
                        "why would i get a certified letter from the irs", o),
            GuardVerdict::kReasonDiffers);
  // Reasons asked in other words are the same question.
  EXPECT_EQ(CheckGuards("why do cats purr", "what makes cats purr", o), GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("why's my internet so slow", "how come my internet is so slow", o),
            GuardVerdict::kPass);
  EXPECT_EQ(CheckGuards("what causes hiccups", "why do we get hiccups", o), GuardVerdict::kPass);
  EXPECT_STREQ(GuardVerdictName(GuardVerdict::kReasonDiffers), "reason");
  o.reason = false;
  EXPECT_EQ(CheckGuards("what is a certified letter", "why would i get a certified letter", o),
            GuardVerdict::kPass);
}

float Cos(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(BuiltinEmbedder, ParaphrasesScoreAboveUnrelated) {
  embed::BuiltinEmbedder e;
  for (const char* t :
       {"how do i reset my password", "what is the capital of france", "best way to learn python",
        "how to cook rice", "weather in london today"}) {
    e.Observe(t);
  }
  auto a = *e.Embed("how do i reset my password");
  auto b = *e.Embed("how can i reset my password");
  auto c = *e.Embed("what is the capital of france");
  EXPECT_EQ(a.size(), 512u);
  double norm = 0;
  for (float x : a) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  EXPECT_GT(Cos(a, b), 0.7f);
  EXPECT_LT(Cos(a, c), 0.3f);
  EXPECT_GT(Cos(a, b), Cos(a, c) + 0.4f);
  // Deterministic.
  embed::BuiltinEmbedder e2;
  for (const char* t :
       {"how do i reset my password", "what is the capital of france", "best way to learn python",
        "how to cook rice", "weather in london today"}) {
    e2.Observe(t);
  }
  EXPECT_EQ(*e2.Embed("how do i reset my password"), a);
  auto empty = e.Embed("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 512u);
}

}  // namespace
}  // namespace semcached::cache
