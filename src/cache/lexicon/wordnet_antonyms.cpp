// Build-time tool: extracts WordNet's antonym relation into a two-column list.
//
//   wordnet_antonyms /usr/share/wordnet OUT.tsv
//
// WordNet (Debian's wordnet-base) records antonymy as lexical pointers ("!") between words of
// two synsets in data.{adj,adv,noun,verb}. The antonym guard needs only the word pairs, so
// the build keeps those (lower case, collocations with spaces), sorted and unique, and links
// them into the binary; no WordNet file is read at run time. Lines that start with '=' are
// WordNet's irregular inflections ("=worse\tbad", from *.exc), which suffix rules cannot find.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Synset {
  std::vector<std::string> words;
  std::vector<std::pair<std::string, std::string>> antonym_pointers;  // "offset pos", "src/tgt"
};

std::string CleanWord(std::string w) {
  if (auto paren = w.find('('); paren != std::string::npos) w.resize(paren);  // "galore(ip)"
  for (char& c : w) {
    if (c == '_') c = ' ';
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: wordnet_antonyms WORDNET_DIR OUT.tsv\n";
    return 2;
  }
  const std::string dir = argv[1];
  std::map<std::string, Synset> synsets;  // key: "offset pos"
  for (const char* file : {"data.adj", "data.adv", "data.noun", "data.verb"}) {
    std::ifstream in(dir + "/" + file);
    if (!in) {
      std::cerr << "wordnet_antonyms: cannot read " << dir << "/" << file
                << " (Debian package wordnet-base)\n";
      return 1;
    }
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == ' ') continue;  // licence header
      std::istringstream s(line.substr(0, line.find(" | ")));
      std::string offset, lex_file, type, count_hex;
      s >> offset >> lex_file >> type >> count_hex;
      if (type == "s") type = "a";  // satellite adjectives point as adjectives
      Synset& syn = synsets[offset + " " + type];
      const int words = std::stoi(count_hex, nullptr, 16);
      for (int i = 0; i < words; ++i) {
        std::string w, lex_id;
        s >> w >> lex_id;
        syn.words.push_back(CleanWord(w));
      }
      int pointers = 0;
      s >> pointers;
      for (int i = 0; i < pointers; ++i) {
        std::string symbol, target, pos, source_target;
        s >> symbol >> target >> pos >> source_target;
        if (pos == "s") pos = "a";
        if (symbol == "!") syn.antonym_pointers.emplace_back(target + " " + pos, source_target);
      }
    }
  }
  std::set<std::pair<std::string, std::string>> pairs;
  for (const auto& [key, syn] : synsets) {
    for (const auto& [target_key, st] : syn.antonym_pointers) {
      auto target = synsets.find(target_key);
      if (target == synsets.end() || st.size() != 4) continue;
      const int src = std::stoi(st.substr(0, 2), nullptr, 16);
      const int tgt = std::stoi(st.substr(2, 2), nullptr, 16);
      if (src < 1 || tgt < 1 || static_cast<std::size_t>(src) > syn.words.size() ||
          static_cast<std::size_t>(tgt) > target->second.words.size())
        continue;
      // The pointer joins two words, but their synsets are synonyms in the same senses:
      // "permit" opposes "forbid" as "allow" does. Every word of the one faces every word of
      // the other.
      (void)src;
      (void)tgt;
      for (const std::string& a : syn.words) {
        for (const std::string& b : target->second.words) {
          if (a != b) pairs.insert(a < b ? std::make_pair(a, b) : std::make_pair(b, a));
        }
      }
    }
  }
  std::set<std::pair<std::string, std::string>> inflections;
  for (const char* file : {"adj.exc", "adv.exc", "noun.exc", "verb.exc"}) {
    std::ifstream in(dir + "/" + file);
    std::string inflected, base;
    while (in >> inflected >> base) {
      inflections.emplace(CleanWord(inflected), CleanWord(base));
      in.ignore(1 << 20, '\n');  // further bases of the same form: the first is enough
    }
  }
  std::ofstream out(argv[2]);
  for (const auto& [a, b] : pairs) out << a << '\t' << b << '\n';
  for (const auto& [inflected, base] : inflections) out << '=' << inflected << '\t' << base << '\n';
  out.close();
  if (!out) {
    std::cerr << "wordnet_antonyms: cannot write " << argv[2] << "\n";
    return 1;
  }
  std::printf("wordnet_antonyms: %zu antonym pairs, %zu irregular inflections\n", pairs.size(),
              inflections.size());
  return 0;
}
