#include "cache/lexicon/lexicon.h"

#include <array>
#include <unordered_map>
#include <unordered_set>
#include <utility>

// The WordNet table (lexicon/wordnet_antonyms.cpp's output), linked in by lexicon/wordnet.S.
extern "C" {
extern const char semcached_wordnet_table[];
extern const char semcached_wordnet_table_end[];
}

namespace semcached::cache::lexicon {
namespace {

struct PairHash {
  std::size_t operator()(const std::pair<std::string, std::string>& p) const {
    return std::hash<std::string>{}(p.first) * 31 + std::hash<std::string>{}(p.second);
  }
};

// Opposites WordNet does not link as antonyms: function words, quantities, and the actions
// people ask a computer or a service to do and undo ("add a user" / "remove a user"), which
// WordNet links, if at all, only through other senses. Words with an opposite prefix of their
// own ("lock"/"unlock") are found by kOppositePrefixes instead.
constexpr std::pair<std::string_view, std::string_view> kClosedClassOpposites[] = {
    // Function words, order and position.
    {"before", "after"},
    {"above", "below"},
    {"more", "less"},
    {"most", "least"},
    {"first", "last"},
    {"plus", "minus"},
    {"inside", "outside"},
    {"in", "out"},
    {"always", "never"},
    {"max", "min"},
    {"pros", "cons"},
    {"upper", "lower"},
    {"earlier", "later"},
    {"ascending", "descending"},
    {"inbound", "outbound"},
    // Quantities.
    {"lot", "little"},
    {"lots", "little"},
    {"much", "little"},
    {"many", "few"},
    {"more", "fewer"},
    {"most", "fewest"},
    // Actions and their undoing.
    {"push", "pull"},
    {"start", "stop"},
    {"start", "end"},
    {"begin", "end"},
    {"add", "remove"},
    {"add", "delete"},
    {"show", "hide"},
    {"open", "close"},
    {"enable", "disable"},
    {"allow", "block"},
    {"allow", "deny"},
    {"allow", "disallow"},
    {"accept", "reject"},
    {"accept", "decline"},
    {"approve", "reject"},
    {"pause", "resume"},
    {"tighten", "loosen"},
    {"send", "receive"},
    {"import", "export"},
    {"connect", "disconnect"},
    {"attach", "detach"},
    {"include", "exclude"},
    {"join", "leave"},
    {"enter", "exit"},
    {"arrive", "depart"},
    {"raise", "lower"},
    {"expand", "collapse"},
    {"gain", "lose"},
    {"compress", "decompress"},
    {"mute", "unmute"},
    {"subscribe", "unsubscribe"},
    {"install", "uninstall"},
    {"encrypt", "decrypt"},
    {"zip", "unzip"},
    {"lend", "borrow"},
};

// Prefix swaps that turn a word into its opposite ("encrypt"/"decrypt", "upload"/"download");
// the stem must be long enough that the match is not a coincidence of spelling.
constexpr std::pair<std::string_view, std::string_view> kOppositePrefixes[] = {
    {"", "un"},    {"", "non"},       {"en", "de"},    {"up", "down"},
    {"in", "out"}, {"over", "under"}, {"pre", "post"}, {"max", "min"},
};
constexpr std::size_t kMinStem = 3;

struct Tables {
  std::unordered_set<std::pair<std::string, std::string>, PairHash> antonyms;
  std::unordered_map<std::string, std::vector<std::string>> inflections;

  Tables() {
    std::string_view all(
        semcached_wordnet_table,
        static_cast<std::size_t>(semcached_wordnet_table_end - semcached_wordnet_table));
    while (!all.empty()) {
      const std::size_t eol = all.find('\n');
      std::string_view line = all.substr(0, eol);
      all = eol == std::string_view::npos ? std::string_view() : all.substr(eol + 1);
      const std::size_t tab = line.find('\t');
      if (tab == std::string_view::npos) continue;
      if (line[0] == '=') {
        inflections[std::string(line.substr(1, tab - 1))].emplace_back(line.substr(tab + 1));
      } else {
        Add(line.substr(0, tab), line.substr(tab + 1));
      }
    }
    for (const auto& [a, b] : kClosedClassOpposites) Add(a, b);
  }

  void Add(std::string_view a, std::string_view b) {
    antonyms.emplace(std::string(a), std::string(b));
    antonyms.emplace(std::string(b), std::string(a));
  }
};

const Tables& T() {
  static const Tables tables;
  return tables;
}

bool EndsWith(std::string_view w, std::string_view suffix) {
  return w.size() > suffix.size() + 1 && w.substr(w.size() - suffix.size()) == suffix;
}

bool OppositeByPrefix(const std::string& a, const std::string& b) {
  for (const auto& [p, q] : kOppositePrefixes) {
    for (int flip = 0; flip < 2; ++flip) {
      const std::string& x = flip ? b : a;
      const std::string& y = flip ? a : b;
      if (x.size() < p.size() + kMinStem || y.size() < q.size() + kMinStem) continue;
      if (x.compare(0, p.size(), p) != 0 || y.compare(0, q.size(), q) != 0) continue;
      if (std::string_view(x).substr(p.size()) != std::string_view(y).substr(q.size())) continue;
      // "non-refundable": the hyphen belongs to the prefix.
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> BaseForms(std::string_view word) {
  std::vector<std::string> out{std::string(word)};
  const auto& inflections = T().inflections;
  if (auto it = inflections.find(std::string(word)); it != inflections.end())
    out.insert(out.end(), it->second.begin(), it->second.end());
  auto cut = [&](std::string_view suffix, std::string_view replacement) {
    if (!EndsWith(word, suffix)) return;
    out.push_back(std::string(word.substr(0, word.size() - suffix.size())) +
                  std::string(replacement));
  };
  if (!EndsWith(word, "ss")) cut("s", "");
  cut("es", "");
  cut("ies", "y");
  cut("ed", "");
  cut("ed", "e");
  cut("ied", "y");
  cut("ing", "");
  cut("ing", "e");
  cut("er", "");
  cut("er", "e");
  cut("ier", "y");
  cut("est", "");
  cut("est", "e");
  cut("iest", "y");
  cut("ly", "");
  cut("ily", "y");
  // "bigger", "stopped", "running": a doubled consonant before the suffix.
  for (std::string_view suffix : {"er", "est", "ed", "ing"}) {
    if (!EndsWith(word, suffix) || word.size() < suffix.size() + 3) continue;
    const std::size_t end = word.size() - suffix.size();
    if (word[end - 1] == word[end - 2]) out.push_back(std::string(word.substr(0, end - 1)));
  }
  return out;
}

bool AreAntonyms(std::string_view a, std::string_view b) {
  if (a == b) return false;
  const auto& antonyms = T().antonyms;
  const auto fa = BaseForms(a), fb = BaseForms(b);
  for (const auto& x : fa) {
    for (const auto& y : fb) {
      if (x == y) return false;  // two forms of one word
    }
  }
  for (const auto& x : fa) {
    for (const auto& y : fb) {
      if (antonyms.count({x, y}) || OppositeByPrefix(x, y)) return true;
    }
  }
  return false;
}

std::string_view UnitOf(std::string_view word) {
  static const std::unordered_map<std::string_view, std::string_view> kUnits = [] {
    std::unordered_map<std::string_view, std::string_view> m;
    // Canonical name first, then its spellings and abbreviations.
    static constexpr std::array<std::array<std::string_view, 8>, 46> kForms = {{
        {"millimeter", "millimeters", "millimetre", "millimetres", "mm"},
        {"centimeter", "centimeters", "centimetre", "centimetres", "cm"},
        {"meter", "meters", "metre", "metres", "m"},
        {"kilometer", "kilometers", "kilometre", "kilometres", "km", "kms"},
        {"inch", "inches", "in."},
        {"foot", "feet", "ft"},
        {"yard", "yards", "yd", "yds"},
        {"mile", "miles", "mi"},
        {"milligram", "milligrams", "mg"},
        {"gram", "grams", "g", "gr"},
        {"kilogram", "kilograms", "kg", "kgs", "kilo", "kilos"},
        {"ounce", "ounces", "oz"},
        {"pound", "pounds", "lb", "lbs"},
        {"ton", "tons", "tonne", "tonnes"},
        {"milliliter", "milliliters", "millilitre", "millilitres", "ml"},
        {"liter", "liters", "litre", "litres", "l"},
        {"teaspoon", "teaspoons", "tsp"},
        {"tablespoon", "tablespoons", "tbsp"},
        {"cup", "cups"},
        {"pint", "pints", "pt"},
        {"quart", "quarts", "qt"},
        {"gallon", "gallons", "gal"},
        {"celsius", "centigrade", "c"},
        {"fahrenheit", "f"},
        {"kelvin", "k"},
        {"second", "seconds", "sec", "secs", "s"},
        {"minute", "minutes", "min", "mins"},
        {"hour", "hours", "hr", "hrs", "h"},
        {"day", "days"},
        {"week", "weeks", "wk", "wks"},
        {"month", "months", "mo", "mos"},
        {"year", "years", "yr", "yrs"},
        {"byte", "bytes"},
        {"kilobyte", "kilobytes", "kb"},
        {"megabyte", "megabytes", "mb"},
        {"gigabyte", "gigabytes", "gb"},
        {"terabyte", "terabytes", "tb"},
        {"dollar", "dollars", "usd", "$", "bucks"},
        {"euro", "euros", "eur", "\xE2\x82\xAC"},
        {"sterling", "gbp", "\xC2\xA3", "quid"},
        {"yen", "jpy", "\xC2\xA5"},
        {"percent", "percentage", "%"},
        {"mph"},
        {"kph", "km/h", "kmh"},
        {"knot", "knots", "kn"},
        {"calorie", "calories", "kcal", "cal"},
    }};
    for (const auto& forms : kForms)
      for (std::string_view f : forms)
        if (!f.empty()) m.emplace(f, forms[0]);
    return m;
  }();
  auto it = kUnits.find(word);
  return it == kUnits.end() ? std::string_view() : it->second;
}

std::string_view DateWordOf(std::string_view word) {
  static const std::unordered_map<std::string_view, std::string_view> kDates = [] {
    std::unordered_map<std::string_view, std::string_view> m;
    // Only unambiguous forms: "may", "sun", "sat", "wed", "mar" and "fall" are words too.
    static constexpr std::array<std::array<std::string_view, 4>, 31> kForms = {{
        {"monday", "mondays"},
        {"tuesday", "tue", "tues", "tuesdays"},
        {"wednesday", "wednesdays"},
        {"thursday", "thu", "thurs", "thursdays"},
        {"friday", "fri", "fridays"},
        {"saturday", "saturdays"},
        {"sunday", "sundays"},
        {"january", "jan"},
        {"february", "feb"},
        {"march"},
        {"april", "apr"},
        {"june", "jun"},
        {"july", "jul"},
        {"august", "aug"},
        {"september", "sep", "sept"},
        {"october", "oct"},
        {"november", "nov"},
        {"december"},
        {"today", "todays"},
        {"tomorrow", "tmrw", "tomorrows"},
        {"yesterday", "yesterdays"},
        {"tonight", "tonights"},
        {"morning", "mornings"},
        {"afternoon", "afternoons"},
        {"evening", "evenings"},
        {"night", "nights", "overnight"},
        {"weekend", "weekends"},
        {"weekday", "weekdays"},
        {"spring"},
        {"summer", "summers"},
        {"winter", "winters"},
    }};
    for (const auto& forms : kForms)
      for (std::string_view f : forms)
        if (!f.empty()) m.emplace(f, forms[0]);
    return m;
  }();
  auto it = kDates.find(word);
  return it == kDates.end() ? std::string_view() : it->second;
}

std::string_view DateModifierOf(std::string_view word) {
  static constexpr std::pair<std::string_view, std::string_view> kModifiers[] = {
      {"this", "this"}, {"next", "next"},     {"upcoming", "next"}, {"coming", "next"},
      {"last", "last"}, {"previous", "last"}, {"past", "last"},
  };
  for (const auto& [w, canonical] : kModifiers)
    if (w == word) return canonical;
  return {};
}

std::size_t AntonymPairs() { return T().antonyms.size() / 2; }
std::size_t Inflections() { return T().inflections.size(); }

}  // namespace semcached::cache::lexicon
