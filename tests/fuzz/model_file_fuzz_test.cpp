// Fuzzes the static-model loader: thousands of damaged model.safetensors, tokenizer.json and
// config.json files, by random byte edits and by headers that lie on purpose (offsets,
// shapes, dtypes and lengths rewritten to other values). Whatever the bytes, Load must
// return an error or an embedder that then embeds to finite vectors; it must never crash
// or read out of bounds (this suite runs under ASan in CI).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "embed/static_embedder.h"

namespace semcached::embed {
namespace {

using nlohmann::json;

const char* kWords[] = {"[PAD]",    "[UNK]", "how",   "do",   "i",     "reset", "my",
                        "password", "##s",   "##ing", "play", "strum", "?",     "!",
                        ".",        "cafe",  "北",    "a",    "b",     "c"};
constexpr std::size_t kVocab = sizeof(kWords) / sizeof(kWords[0]);
constexpr std::size_t kDim = 4;

std::string TokenizerJson(bool unigram) {
  json t;
  t["added_tokens"] = json::array({{{"id", 0}, {"content", "[PAD]"}, {"normalized", false}},
                                   {{"id", 1}, {"content", "[UNK]"}, {"normalized", false}}});
  t["normalizer"] = {{"type", "BertNormalizer"}, {"lowercase", true}};
  if (unigram) {
    t["pre_tokenizer"] = {{"type", "Metaspace"},
                          {"replacement", "\xE2\x96\x81"},
                          {"prepend_scheme", "always"},
                          {"split", true}};
    json vocab = json::array();
    for (std::size_t i = 0; i < kVocab; ++i)
      vocab.push_back({i < 2 ? kWords[i] : std::string("\xE2\x96\x81") + kWords[i], -1.0 - i});
    t["model"] = {{"type", "Unigram"}, {"unk_id", 1}, {"vocab", vocab}};
  } else {
    t["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    json vocab = json::object();
    for (std::size_t i = 0; i < kVocab; ++i) vocab[kWords[i]] = i;
    t["model"] = {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", vocab}};
  }
  return t.dump();
}

std::string Safetensors(const json& header, const std::string& data) {
  const std::string h = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.size() >> (8 * i)) & 0xFF);
  return out + h + data;
}

// A valid model: float32, float16 or int8 table, optionally vocabulary-quantized.
StaticModelFiles Seed(int variant, std::mt19937_64& rng) {
  StaticModelFiles f;
  f.name = "fuzz";
  f.config_json = R"({"normalize": true})";
  f.tokenizer_json = TokenizerJson(variant == 3);
  std::uniform_int_distribution<int> byte(0, 255);
  json header;
  std::string data;
  const std::size_t rows = variant == 2 ? 5 : kVocab;
  const char* dtype = variant == 1 ? "F16" : variant == 0 ? "I8" : "F32";
  const std::size_t elem = variant == 1 ? 2 : variant == 0 ? 1 : 4;
  std::string table(rows * kDim * elem, '\0');
  for (std::size_t i = 0; i < table.size(); ++i) table[i] = static_cast<char>(byte(rng));
  if (elem == 4) {  // finite floats
    for (std::size_t i = 0; i < rows * kDim; ++i) {
      const float v = static_cast<float>(byte(rng) - 128) / 64.0f;
      std::memcpy(&table[4 * i], &v, 4);
    }
  } else if (elem == 2) {
    for (std::size_t i = 0; i < rows * kDim; ++i) table[2 * i + 1] &= 0x3B;  // no inf/nan
  }
  header["embeddings"] = {
      {"dtype", dtype}, {"shape", {rows, kDim}}, {"data_offsets", {0, table.size()}}};
  data = table;
  if (variant == 2) {
    std::string mapping(kVocab * 4, '\0'), weights(kVocab * 8, '\0');
    for (std::size_t i = 0; i < kVocab; ++i) {
      const std::int32_t row = static_cast<std::int32_t>(i % rows);
      const double w = 0.5 + static_cast<double>(i) / kVocab;
      std::memcpy(&mapping[4 * i], &row, 4);
      std::memcpy(&weights[8 * i], &w, 8);
    }
    header["mapping"] = {{"dtype", "I32"},
                         {"shape", {kVocab}},
                         {"data_offsets", {data.size(), data.size() + mapping.size()}}};
    data += mapping;
    header["weights"] = {{"dtype", "F64"},
                         {"shape", {kVocab}},
                         {"data_offsets", {data.size(), data.size() + weights.size()}}};
    data += weights;
  }
  f.safetensors = Safetensors(header, data);
  return f;
}

// Rewrites one field of the safetensors header to a plausible lie.
void LieInHeader(StaticModelFiles& f, std::mt19937_64& rng) {
  std::uint64_t len = 0;
  std::memcpy(&len, f.safetensors.data(), 8);
  json header = json::parse(f.safetensors.substr(8, len));
  const std::string data = f.safetensors.substr(8 + len);
  std::vector<std::string> names;
  for (auto& [k, v] : header.items()) names.push_back(k);
  json& t = header[names[rng() % names.size()]];
  static const std::int64_t kLies[] = {
      0, 1, -1, 3, 7, 8, 1 << 20, 4294967296LL, std::numeric_limits<std::int64_t>::max()};
  const auto lie = kLies[rng() % std::size(kLies)];
  switch (rng() % 6) {
    case 0: t["data_offsets"][rng() % 2] = lie; break;
    case 1:
      t["data_offsets"][1] = t["data_offsets"][1].get<std::int64_t>() + (rng() % 9) - 4;
      break;
    case 2: t["shape"][rng() % t["shape"].size()] = lie; break;
    case 3: t["shape"].push_back(rng() % 3); break;
    case 4: {
      static const char* kTypes[] = {"F64", "F32", "F16", "BF16", "I64",
                                     "I32", "I8",  "U8",  "BOOL", "X"};
      t["dtype"] = kTypes[rng() % std::size(kTypes)];
      break;
    }
    case 5: t = json::array(); break;
  }
  f.safetensors = Safetensors(header, data);
}

void MutateBytes(std::string& b, std::mt19937_64& rng) {
  if (b.empty()) return;
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 4) {
      case 0: b[rng() % b.size()] = static_cast<char>(rng()); break;
      case 1: b.resize(rng() % b.size()); break;  // truncated
      case 2: b.insert(rng() % b.size(), 1, static_cast<char>(rng())); break;
      case 3: {  // a digit changed: a number in a JSON header or file
        for (int tries = 0; tries < 64; ++tries) {
          std::size_t at = rng() % b.size();
          if (b[at] >= '0' && b[at] <= '9') {
            b[at] = static_cast<char>('0' + rng() % 10);
            break;
          }
        }
        break;
      }
    }
    if (b.empty()) return;
  }
}

TEST(ModelFileFuzz, DamagedModelsAreRefusedOrWorkNeverCrash) {
  std::mt19937_64 rng(2026);
  const char* texts[] = {"How do I reset my password?", "strumming playing!", "",
                         "caf\xC3\xA9 北京", "[UNK] [PAD] a b c"};
  int loaded = 0, refused = 0;
  for (int variant = 0; variant < 4; ++variant) {
    const StaticModelFiles seed = Seed(variant, rng);
    auto clean = StaticEmbedder::Load(seed);
    ASSERT_TRUE(clean.ok()) << "seed " << variant << ": " << clean.status().ToString();
    for (int it = 0; it < 2500; ++it) {
      StaticModelFiles f = seed;
      switch (rng() % 4) {
        case 0: LieInHeader(f, rng); break;
        case 1: MutateBytes(f.safetensors, rng); break;
        case 2: MutateBytes(f.tokenizer_json, rng); break;
        case 3: MutateBytes(f.config_json, rng); break;
      }
      auto e = StaticEmbedder::Load(f);
      if (!e.ok()) {
        ++refused;
        EXPECT_FALSE(e.status().message().empty());
        continue;
      }
      ++loaded;
      for (const char* text : texts) {
        auto v = (*e)->Embed(text);
        ASSERT_TRUE(v.ok());
        ASSERT_EQ(v->size(), (*e)->dim());
        for (float x : *v) ASSERT_TRUE(std::isfinite(x)) << "variant " << variant << " it " << it;
      }
    }
  }
  std::printf("model fuzz: %d damaged models loaded and embedded, %d refused\n", loaded, refused);
  // Both outcomes are reached: the mutations are neither all harmless nor all fatal.
  EXPECT_GT(loaded, 100);
  EXPECT_GT(refused, 1000);
}

}  // namespace
}  // namespace semcached::embed
