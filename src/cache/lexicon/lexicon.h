// Word knowledge the guards need and embeddings lack: antonyms, base forms, units, dates.
//
// A bag-of-tokens embedding scores "increase my credit score" and "decrease my credit score"
// as near-identical; the antonym guard asks this lexicon whether two words are opposites.
// Antonyms and irregular inflections come from WordNet 3.0 (extracted at build time from
// Debian's wordnet-base and linked in: lexicon/wordnet_antonyms.cpp), plus a few closed-class
// opposites WordNet does not relate (before/after, more/less). Unit and date words are small
// tables here. Everything works on lower-case ASCII-or-UTF-8 words; nothing is loaded from
// disk at run time, and the tables are immutable once built (safe from any thread).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace semcached::cache::lexicon {

// Base forms a word may be an inflection of, the word itself first ("cheaper": cheaper,
// cheap; "worse": worse, bad; "stories": stories, story).
std::vector<std::string> BaseForms(std::string_view word);

// Whether some base form of `a` and some base form of `b` are antonyms, in WordNet or by a
// negating prefix ("safe"/"unsafe", "follow"/"unfollow", "encrypt"/"decrypt").
bool AreAntonyms(std::string_view a, std::string_view b);

// The canonical unit a word names ("kg", "kilogram", "kilograms" -> "kilogram"), or empty.
std::string_view UnitOf(std::string_view word);

// The canonical date or time-of-day word ("tmrw" -> "tomorrow", "fri" -> "friday"), or
// empty. Ambiguous forms ("may", "sun", "fall") are not date words.
std::string_view DateWordOf(std::string_view word);
// "this", "next" or "last" for a relative modifier ("upcoming" -> "next"), or empty; it makes
// a date only before a date word or a unit of time ("next week").
std::string_view DateModifierOf(std::string_view word);

// Antonym pairs and irregular inflections loaded (for logs and tests).
std::size_t AntonymPairs();
std::size_t Inflections();

}  // namespace semcached::cache::lexicon
