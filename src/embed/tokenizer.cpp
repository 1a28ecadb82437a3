#include "embed/tokenizer.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include <utf8proc.h>
#include <nlohmann/json.hpp>

namespace semcached::embed {
namespace {

using nlohmann::json;
using Text = std::u32string;

// ---- Unicode, as the Rust `tokenizers` crate classifies characters ---------------------

// Rust's char::is_whitespace (the White_Space property).
bool IsWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

utf8proc_category_t CategoryOf(char32_t c) {
  return static_cast<utf8proc_category_t>(utf8proc_category(static_cast<utf8proc_int32_t>(c)));
}

// BertNormalizer's "control": the Unicode "Other" categories, except tab and line breaks.
bool IsControl(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  switch (CategoryOf(c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS: return true;
    default: return false;
  }
}

bool IsBertPunctuation(char32_t c) {
  if (c < 0x80)
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
  switch (CategoryOf(c)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: return true;
    default: return false;
  }
}

bool IsChineseChar(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Full lower-case mapping: the simple one, except U+0130, whose lower case is two characters.
void AppendLower(char32_t c, Text* out) {
  if (c == 0x130) {
    out->push_back(U'i');
    out->push_back(0x307);
    return;
  }
  out->push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

Text Decode(std::string_view s) {
  Text out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) {  // an invalid byte: one replacement character, then go on
      out.push_back(0xFFFD);
      ++p;
      --left;
      continue;
    }
    out.push_back(static_cast<char32_t>(cp));
    p += n;
    left -= n;
  }
  return out;
}

void AppendUtf8(char32_t c, std::string* out) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

std::string Encode8(const char32_t* begin, const char32_t* end) {
  std::string out;
  out.reserve(static_cast<std::size_t>(end - begin));
  for (const char32_t* c = begin; c != end; ++c) AppendUtf8(*c, &out);
  return out;
}

// ---- normalizers -----------------------------------------------------------------------

struct NormalizerStep {
  enum Kind { kBert, kLowercase, kStrip, kReplaceString, kReplaceWhitespaceRuns } kind;
  bool clean_text = true, chinese_chars = true, strip_accents = true, lowercase = true;
  bool strip_left = true, strip_right = true;
  Text pattern, content;
};

void Bert(const NormalizerStep& s, Text* t) {
  Text out;
  out.reserve(t->size());
  for (char32_t c : *t) {
    if (s.clean_text) {
      if (c == 0 || c == 0xFFFD || IsControl(c)) continue;
      if (IsWhitespace(c)) c = U' ';
    }
    if (s.chinese_chars && IsChineseChar(c)) {
      out.push_back(U' ');
      out.push_back(c);
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  if (s.strip_accents) {
    Text stripped;
    stripped.reserve(out.size());
    for (char32_t c : out) {
      utf8proc_int32_t parts[8];
      const auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), parts, 8,
                                             UTF8PROC_DECOMPOSE, nullptr);
      if (n < 0 || n > 8) {
        stripped.push_back(c);
        continue;
      }
      for (int i = 0; i < n; ++i) {
        const auto p = static_cast<char32_t>(parts[i]);
        if (CategoryOf(p) != UTF8PROC_CATEGORY_MN) stripped.push_back(p);
      }
    }
    out.swap(stripped);
  }
  if (s.lowercase) {
    Text lower;
    lower.reserve(out.size());
    for (char32_t c : out) AppendLower(c, &lower);
    out.swap(lower);
  }
  t->swap(out);
}

void Apply(const NormalizerStep& s, Text* t) {
  switch (s.kind) {
    case NormalizerStep::kBert: Bert(s, t); return;
    case NormalizerStep::kLowercase: {
      Text lower;
      for (char32_t c : *t) AppendLower(c, &lower);
      t->swap(lower);
      return;
    }
    case NormalizerStep::kStrip: {
      std::size_t b = 0, e = t->size();
      if (s.strip_left)
        while (b < e && IsWhitespace((*t)[b])) ++b;
      if (s.strip_right)
        while (e > b && IsWhitespace((*t)[e - 1])) --e;
      *t = t->substr(b, e - b);
      return;
    }
    case NormalizerStep::kReplaceString: {
      if (s.pattern.empty()) return;
      Text out;
      std::size_t i = 0;
      for (std::size_t at; (at = t->find(s.pattern, i)) != Text::npos; i = at + s.pattern.size())
        out.append(*t, i, at - i).append(s.content);
      out.append(*t, i, Text::npos);
      t->swap(out);
      return;
    }
    case NormalizerStep::kReplaceWhitespaceRuns: {
      Text out;
      for (std::size_t i = 0; i < t->size();) {
        if (!IsWhitespace((*t)[i])) {
          out.push_back((*t)[i++]);
          continue;
        }
        while (i < t->size() && IsWhitespace((*t)[i])) ++i;
        out.append(s.content);
      }
      t->swap(out);
      return;
    }
  }
}

// ---- pre-tokenizers --------------------------------------------------------------------

struct PreTokenizerStep {
  enum Kind { kBert, kWhitespaceSplit, kMetaspace } kind;
  char32_t replacement = 0x2581;
  enum Prepend { kAlways, kFirst, kNever } prepend = kAlways;
  bool split = true;
};

void Apply(const PreTokenizerStep& s, std::vector<Text>* words, bool first_segment) {
  std::vector<Text> out;
  for (Text& w : *words) {
    switch (s.kind) {
      case PreTokenizerStep::kBert:
      case PreTokenizerStep::kWhitespaceSplit: {
        Text cur;
        for (char32_t c : w) {
          if (IsWhitespace(c)) {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
          } else if (s.kind == PreTokenizerStep::kBert && IsBertPunctuation(c)) {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
            out.push_back(Text(1, c));
          } else {
            cur.push_back(c);
          }
        }
        if (!cur.empty()) out.push_back(std::move(cur));
        break;
      }
      case PreTokenizerStep::kMetaspace: {
        std::replace(w.begin(), w.end(), U' ', s.replacement);
        const bool starts = !w.empty() && w.front() == s.replacement;
        if (!starts && (s.prepend == PreTokenizerStep::kAlways ||
                        (s.prepend == PreTokenizerStep::kFirst && first_segment)))
          w.insert(w.begin(), s.replacement);
        if (!s.split) {
          if (!w.empty()) out.push_back(std::move(w));
          break;
        }
        Text cur;  // each replacement character starts the next piece
        for (char32_t c : w) {
          if (c == s.replacement && !cur.empty()) {
            out.push_back(std::move(cur));
            cur.clear();
          }
          cur.push_back(c);
        }
        if (!cur.empty()) out.push_back(std::move(cur));
        break;
      }
    }
  }
  words->swap(out);
}

// ---- lookups by string_view ------------------------------------------------------------

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

struct AddedToken {
  Text content;
  std::int32_t id;
  bool normalized;
};

}  // namespace

struct Tokenizer::Impl {
  enum ModelKind { kWordPiece, kUnigram } model = kWordPiece;
  std::vector<AddedToken> added;
  std::vector<NormalizerStep> normalizers;
  std::vector<PreTokenizerStep> pre_tokenizers;
  std::string description;
  Vocab vocab;  // model tokens and added tokens
  std::vector<std::string> tokens;
  std::optional<std::int32_t> unk;
  // WordPiece
  std::string continuing_prefix = "##";
  std::size_t max_chars_per_word = 100;
  // Unigram
  std::vector<double> scores;
  double unk_score = 0;
  std::size_t max_piece_bytes = 0;

  void Normalize(Text* t) const {
    for (const auto& s : normalizers) Apply(s, t);
  }

  void WordPiece(const std::string& word, std::size_t chars, std::vector<std::int32_t>* ids) const {
    if (chars > max_chars_per_word) {
      if (unk) ids->push_back(*unk);
      return;
    }
    const std::size_t first = ids->size();
    std::string candidate;
    for (std::size_t start = 0; start < word.size();) {
      std::size_t end = word.size();
      std::int32_t found = -1;
      while (start < end) {
        candidate.clear();
        if (start > 0) candidate = continuing_prefix;
        candidate.append(word, start, end - start);
        if (auto it = vocab.find(candidate); it != vocab.end()) {
          found = it->second;
          break;
        }
        do --end;  // back one whole character
        while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (found < 0) {  // one piece matches nothing: the whole word is unknown
        ids->resize(first);
        if (unk) ids->push_back(*unk);
        return;
      }
      ids->push_back(found);
      start = end;
    }
  }

  void Unigram(const std::string& s, std::vector<std::int32_t>* ids) const {
    if (s.empty()) return;
    struct Node {
      std::int32_t id = -1;
      double score = 0;
      std::size_t starts_at = std::numeric_limits<std::size_t>::max();
    };
    std::vector<Node> best(s.size() + 1);
    best[0].starts_at = 0;
    for (std::size_t start = 0; start < s.size();) {
      std::size_t char_len = 1;
      while (start + char_len < s.size() &&
             (static_cast<unsigned char>(s[start + char_len]) & 0xC0) == 0x80)
        ++char_len;
      const double here = best[start].score;
      bool has_single = false;
      for (std::size_t end = start + 1; end <= s.size() && end - start <= max_piece_bytes; ++end) {
        if (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) continue;
        auto it = vocab.find(std::string_view(s).substr(start, end - start));
        if (it == vocab.end() || static_cast<std::size_t>(it->second) >= scores.size()) continue;
        const double candidate = here + scores[static_cast<std::size_t>(it->second)];
        Node& target = best[end];
        if (target.id < 0 || candidate > target.score) target = {it->second, candidate, start};
        if (end - start == char_len) has_single = true;
      }
      if (!has_single && unk) {
        Node& target = best[start + char_len];
        const double candidate = here + unk_score;
        if (target.id < 0 || candidate > target.score) target = {*unk, candidate, start};
      }
      start += char_len;
    }
    std::vector<std::int32_t> reversed;
    for (std::size_t end = s.size(); end > 0;) {
      const Node& n = best[end];
      if (n.id < 0) break;  // no path (no unknown token to bridge a gap)
      // Consecutive unknown pieces fuse into one, as the library does.
      if (!(unk && n.id == *unk && !reversed.empty() && reversed.back() == *unk))
        reversed.push_back(n.id);
      end = n.starts_at;
    }
    ids->insert(ids->end(), reversed.rbegin(), reversed.rend());
  }

  // Pre-tokenizes and models text the normalizers have already run over.
  void TokenizeNormalized(Text&& normalized, bool first, std::vector<std::int32_t>* ids) const {
    if (normalized.empty()) return;
    std::vector<Text> words;
    words.push_back(std::move(normalized));
    for (const auto& p : pre_tokenizers) Apply(p, &words, first);
    for (const Text& w : words) {
      const std::string utf8 = Encode8(w.data(), w.data() + w.size());
      if (model == kWordPiece)
        WordPiece(utf8, w.size(), ids);
      else
        Unigram(utf8, ids);
    }
  }

  // Cuts t at the added tokens of one kind (raw or normalized), leftmost then longest:
  // on_text(from, to) for each stretch between them, on_token(id) for each of them.
  template <typename OnText>
  void SplitAtAdded(const Text& t, bool normalized, OnText on_text,
                    std::vector<std::int32_t>* ids) const {
    std::size_t from = 0;
    for (std::size_t i = 0; i < t.size();) {
      const AddedToken* match = Longest(t, i, normalized);
      if (match == nullptr) {
        ++i;
        continue;
      }
      if (i > from) on_text(from, i);
      ids->push_back(match->id);
      i += match->content.size();
      from = i;
    }
    if (t.size() > from) on_text(from, t.size());
  }

  // Splits on added tokens, raw ones on the text as given and normalized ones on the
  // normalized text, and tokenizes what lies between.
  void Encode(const Text& text, std::vector<std::int32_t>* ids) const {
    const bool any_normalized =
        std::any_of(added.begin(), added.end(), [](const AddedToken& a) { return a.normalized; });
    SplitAtAdded(
        text, /*normalized=*/false,
        [&](std::size_t from, std::size_t to) {
          Text segment = text.substr(from, to - from);
          Normalize(&segment);
          // "first" (Metaspace's prepend_scheme) is the stretch that starts the input.
          if (!any_normalized) return TokenizeNormalized(std::move(segment), from == 0, ids);
          SplitAtAdded(
              segment, /*normalized=*/true,
              [&](std::size_t a, std::size_t b) {
                TokenizeNormalized(segment.substr(a, b - a), from == 0 && a == 0, ids);
              },
              ids);
        },
        ids);
  }

  const AddedToken* Longest(const Text& t, std::size_t at, bool normalized) const {
    const AddedToken* best_match = nullptr;
    for (const auto& a : added) {
      if (a.normalized != normalized || a.content.empty()) continue;
      if (t.compare(at, a.content.size(), a.content) == 0 &&
          (best_match == nullptr || a.content.size() > best_match->content.size()))
        best_match = &a;
    }
    return best_match;
  }
};

namespace {

Status ParseNormalizer(const json& j, std::vector<NormalizerStep>* out, const std::string& what) {
  if (j.is_null()) return Status::Ok();
  const std::string type = j.value("type", "");
  auto flag = [&](const char* key, bool fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
  };
  NormalizerStep s{};
  if (type == "Sequence") {
    auto list = j.find("normalizers");
    if (list == j.end() || !list->is_array())
      return InvalidArgument(what + ": a Sequence normalizer without normalizers");
    for (const auto& n : *list)
      if (Status st = ParseNormalizer(n, out, what); !st.ok()) return st;
    return Status::Ok();
  }
  if (type == "BertNormalizer") {
    s.kind = NormalizerStep::kBert;
    s.clean_text = flag("clean_text", true);
    s.chinese_chars = flag("handle_chinese_chars", true);
    s.lowercase = flag("lowercase", true);
    // Unset, accents follow lower-casing.
    s.strip_accents = flag("strip_accents", s.lowercase);
  } else if (type == "Lowercase") {
    s.kind = NormalizerStep::kLowercase;
  } else if (type == "Strip") {
    s.kind = NormalizerStep::kStrip;
    s.strip_left = flag("strip_left", true);
    s.strip_right = flag("strip_right", true);
  } else if (type == "Replace") {
    const auto pattern = j.find("pattern");
    const auto content = j.find("content");
    if (pattern == j.end() || !pattern->is_object() || content == j.end() || !content->is_string())
      return InvalidArgument(what + ": a Replace normalizer needs a pattern and a content");
    s.content = Decode(content->get<std::string>());
    if (auto lit = pattern->find("String"); lit != pattern->end() && lit->is_string()) {
      s.kind = NormalizerStep::kReplaceString;
      s.pattern = Decode(lit->get<std::string>());
    } else if (auto re = pattern->find("Regex");
               re != pattern->end() && re->is_string() && *re == "\\s+") {
      s.kind = NormalizerStep::kReplaceWhitespaceRuns;
    } else {
      return InvalidArgument(what + ": Replace normalizer pattern " + pattern->dump() +
                             " is not supported (a literal String, or the Regex \\s+)");
    }
  } else {
    return InvalidArgument(what + ": normalizer type '" + type +
                           "' is not supported (BertNormalizer, Lowercase, Strip, Replace, "
                           "Sequence)");
  }
  out->push_back(std::move(s));
  return Status::Ok();
}

Status ParsePreTokenizer(const json& j, std::vector<PreTokenizerStep>* out,
                         const std::string& what) {
  if (j.is_null()) return Status::Ok();
  const std::string type = j.value("type", "");
  PreTokenizerStep s{};
  if (type == "Sequence") {
    auto list = j.find("pretokenizers");
    if (list == j.end() || !list->is_array())
      return InvalidArgument(what + ": a Sequence pre-tokenizer without pretokenizers");
    for (const auto& p : *list)
      if (Status st = ParsePreTokenizer(p, out, what); !st.ok()) return st;
    return Status::Ok();
  }
  if (type == "BertPreTokenizer") {
    s.kind = PreTokenizerStep::kBert;
  } else if (type == "WhitespaceSplit") {
    s.kind = PreTokenizerStep::kWhitespaceSplit;
  } else if (type == "Metaspace") {
    s.kind = PreTokenizerStep::kMetaspace;
    const Text rep = Decode(j.value("replacement", "\xE2\x96\x81"));
    if (rep.size() != 1)
      return InvalidArgument(what + ": Metaspace replacement must be one character");
    s.replacement = rep[0];
    const std::string scheme = j.value("prepend_scheme", "");
    if (scheme.empty())
      s.prepend =
          j.value("add_prefix_space", true) ? PreTokenizerStep::kAlways : PreTokenizerStep::kNever;
    else if (scheme == "always")
      s.prepend = PreTokenizerStep::kAlways;
    else if (scheme == "first")
      s.prepend = PreTokenizerStep::kFirst;
    else if (scheme == "never")
      s.prepend = PreTokenizerStep::kNever;
    else
      return InvalidArgument(what + ": Metaspace prepend_scheme '" + scheme + "' is unknown");
    s.split = j.value("split", true);
  } else {
    return InvalidArgument(what + ": pre-tokenizer type '" + type +
                           "' is not supported (BertPreTokenizer, WhitespaceSplit, Metaspace, "
                           "Sequence)");
  }
  out->push_back(s);
  return Status::Ok();
}

void SetToken(Tokenizer::Impl& impl, const std::string& token, std::int32_t id) {
  const auto i = static_cast<std::size_t>(id);
  if (impl.tokens.size() <= i) impl.tokens.resize(i + 1);
  impl.tokens[i] = token;
  impl.vocab.emplace(token, id);
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text,
                                                       const std::string& what) {
  const json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return DataLoss(what + " is not a JSON object");
  auto impl = std::make_unique<Impl>();
  if (Status s = ParseNormalizer(j.value("normalizer", json()), &impl->normalizers, what); !s.ok())
    return s;
  if (Status s = ParsePreTokenizer(j.value("pre_tokenizer", json()), &impl->pre_tokenizers, what);
      !s.ok())
    return s;

  const auto model = j.find("model");
  if (model == j.end() || !model->is_object()) return DataLoss(what + " has no model");
  const std::string type = model->value("type", "");
  // Ids index a table of tokens: an id past any real vocabulary is a damaged (or hostile)
  // file, refused before it can make us allocate for it.
  constexpr std::size_t kMaxVocab = 1u << 21;  // the largest real vocabularies hold ~256K
  if (type == "WordPiece") {
    impl->model = Impl::kWordPiece;
    const auto vocab = model->find("vocab");
    if (vocab == model->end() || !vocab->is_object() || vocab->size() > kMaxVocab)
      return DataLoss(what + ": WordPiece vocab is not an object of token ids");
    for (const auto& [token, id] : vocab->items()) {
      if (!id.is_number_unsigned() || id.get<std::uint64_t>() >= kMaxVocab)
        return DataLoss(what + ": WordPiece token '" + token + "' has no valid id");
      SetToken(*impl, token, id.get<std::int32_t>());
    }
    impl->continuing_prefix = model->value("continuing_subword_prefix", "##");
    impl->max_chars_per_word = model->value("max_input_chars_per_word", std::size_t{100});
    const std::string unk = model->value("unk_token", "[UNK]");
    if (auto it = impl->vocab.find(unk); it != impl->vocab.end()) impl->unk = it->second;
  } else if (type == "Unigram") {
    impl->model = Impl::kUnigram;
    const auto vocab = model->find("vocab");
    if (vocab == model->end() || !vocab->is_array() || vocab->size() > kMaxVocab)
      return DataLoss(what + ": Unigram vocab is not a list of [token, score]");
    double min_score = std::numeric_limits<double>::infinity();
    for (const auto& entry : *vocab) {
      if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number())
        return DataLoss(what + ": Unigram vocab entry " + entry.dump() + " is not [token, score]");
      const auto id = static_cast<std::int32_t>(impl->scores.size());
      const std::string token = entry[0].get<std::string>();
      impl->scores.push_back(entry[1].get<double>());
      min_score = std::min(min_score, impl->scores.back());
      impl->max_piece_bytes = std::max(impl->max_piece_bytes, token.size());
      SetToken(*impl, token, id);
    }
    // The library's penalty for a character no piece covers.
    impl->unk_score = min_score - 10.0;
    if (auto unk = model->find("unk_id"); unk != model->end() && unk->is_number_unsigned()) {
      if (unk->get<std::uint64_t>() >= impl->scores.size())
        return DataLoss(what + ": Unigram unk_id is outside the vocabulary");
      impl->unk = unk->get<std::int32_t>();
    }
    if (model->value("byte_fallback", false))
      return InvalidArgument(what + ": Unigram byte_fallback is not supported");
  } else {
    return InvalidArgument(what + ": tokenizer model type '" + type +
                           "' is not supported (WordPiece, Unigram)");
  }

  if (auto added = j.find("added_tokens"); added != j.end() && added->is_array()) {
    for (const auto& a : *added) {
      if (!a.is_object() || !a.contains("content") || !a["content"].is_string() ||
          !a.contains("id") || !a["id"].is_number_unsigned() ||
          a["id"].get<std::uint64_t>() >= kMaxVocab)
        return DataLoss(what + ": added token " + a.dump() + " has no content or id");
      const std::string content = a["content"].get<std::string>();
      const auto id = a["id"].get<std::int32_t>();
      AddedToken t{Decode(content), id, a.value("normalized", false)};
      if (t.normalized) impl->Normalize(&t.content);
      impl->added.push_back(std::move(t));
      SetToken(*impl, content, id);
    }
  }
  impl->description = type + " tokenizer, " + std::to_string(impl->vocab.size()) + " tokens";
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

void Tokenizer::Encode(std::string_view text, std::vector<std::int32_t>* ids) const {
  impl_->Encode(Decode(text), ids);
}

std::optional<std::int32_t> Tokenizer::unk_id() const { return impl_->unk; }
const std::vector<std::string>& Tokenizer::tokens() const { return impl_->tokens; }
std::string Tokenizer::Describe() const { return impl_->description; }

}  // namespace semcached::embed
