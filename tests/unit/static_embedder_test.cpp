// The static-model embedder against the Python model2vec package's own outputs (the fixtures
// in ../shared/models/model2vec-fixtures, computed upstream), its loader against damaged
// files, and the built-in default model.
#include "embed/static_embedder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "embed/safetensors.h"
#include "embed/tokenizer.h"

namespace semcached::embed {
namespace {

const std::string kFixtures = std::string(SEMCACHED_SHARED_DIR) + "/models/model2vec-fixtures";

#define REQUIRE_FIXTURES()                 \
  if (!std::filesystem::exists(kFixtures)) \
  GTEST_SKIP() << kFixtures << " is not on this machine (the shared model fixtures)"

std::vector<float> ReadExpected(const std::string& file) {
  std::ifstream in(kFixtures + "/" + file);
  const auto j = nlohmann::json::parse(in);
  return j.at(0).get<std::vector<float>>();
}

std::unique_ptr<StaticEmbedder> LoadFixture(const std::string& variant,
                                            StaticEmbedderOptions options = {}) {
  auto files = ReadStaticModelDir(kFixtures + "/" + variant);
  EXPECT_TRUE(files.ok()) << files.status().ToString();
  if (!files.ok()) return nullptr;
  auto e = StaticEmbedder::Load(*files, options);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(*e) : nullptr;
}

void ExpectRelativelyNear(const std::vector<float>& got, const std::vector<float>& want,
                          double rel) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], rel * std::max(1e-6, std::fabs(static_cast<double>(want[i]))))
        << "component " << i;
}

std::string LongHello() {
  std::string s;
  for (int i = 0; i < 1000; ++i) s += i ? " hello" : "hello";
  return s;
}

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / std::sqrt(na * nb);
}

TEST(StaticEmbedder, Float32MatchesModel2VecOnAShortText) {
  REQUIRE_FIXTURES();
  auto e = LoadFixture("test-model-float32");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dim(), 2u);
  ExpectRelativelyNear(*e->Embed("hello world"), ReadExpected("embeddings_short.json"), 1e-5);
}

TEST(StaticEmbedder, LongTextStopsAt512TokensAsModel2VecDoes) {
  REQUIRE_FIXTURES();
  auto e = LoadFixture("test-model-float32");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->TokenIds(LongHello()).size(), 512u);
  ExpectRelativelyNear(*e->Embed(LongHello()), ReadExpected("embeddings_long.json"), 1e-5);
}

TEST(StaticEmbedder, VocabularyQuantizedModelMapsAndWeighsRows) {
  REQUIRE_FIXTURES();
  auto e = LoadFixture("test-model-vocab-quantized");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dim(), 64u);
  ExpectRelativelyNear(*e->Embed(LongHello()), ReadExpected("embeddings_vocab_quantized.json"),
                       1e-5);
}

TEST(StaticEmbedder, SentenceTransformersLayoutLoadsTheSameModel) {
  REQUIRE_FIXTURES();
  auto e = LoadFixture("test-model-sentence-transformers");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->normalizes());
  ExpectRelativelyNear(*e->Embed("hello world"), ReadExpected("embeddings_short.json"), 1e-5);
}

TEST(StaticEmbedder, Float16AndInt8TablesEncodeLikeTheFloat32One) {
  REQUIRE_FIXTURES();
  auto f32 = LoadFixture("test-model-float32");
  auto f16 = LoadFixture("test-model-float16");
  auto i8 = LoadFixture("test-model-int8");
  ASSERT_TRUE(f32 && f16 && i8);
  EXPECT_EQ(f16->table_dtype(), "F16");
  EXPECT_EQ(i8->table_dtype(), "I8");
  for (const char* text : {"hello world", "how do I reset my password?", "caf\xC3\xA9 au lait"}) {
    const auto want = *f32->Embed(text);
    ExpectRelativelyNear(*f16->Embed(text), want, 2e-3);
    EXPECT_GT(Cosine(*i8->Embed(text), want), 0.999) << text;
  }
}

TEST(StaticEmbedder, TextWithNoKnownTokenEmbedsToZerosAsModel2VecDoes) {
  REQUIRE_FIXTURES();
  auto e = LoadFixture("test-model-float32", {.zeros_for_unknown_text = true});
  ASSERT_NE(e, nullptr);
  for (const char* text : {"", "   ", "\xE2\x80\x8B", "[UNK] [UNK]"}) {
    const auto v = *e->Embed(text);
    EXPECT_EQ(v, std::vector<float>(2, 0.0f)) << text;
  }
}

TEST(StaticEmbedder, TextWithNoKnownTokenGetsADirectionOfItsOwnForCaches) {
  auto e = StaticEmbedder::Load(DefaultStaticModel());
  ASSERT_TRUE(e.ok());
  const auto a = *(*e)->Embed("\xF0\x9F\x99\x82\xF0\x9F\x99\x82");  // two emoji
  const auto b = *(*e)->Embed("\xF0\x9F\x8E\x89");
  EXPECT_EQ(a, *(*e)->Embed("\xF0\x9F\x99\x82\xF0\x9F\x99\x82"));
  double norm = 0;
  for (float x : a) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_LT(Cosine(a, b), 0.5);
  EXPECT_LT(Cosine(a, *(*e)->Embed("how do I reset my password")), 0.5);
}

TEST(StaticEmbedder, DefaultModelIsBuiltIn) {
  auto e = StaticEmbedder::Load(DefaultStaticModel());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->dim(), 128u);
  EXPECT_EQ((*e)->table_dtype(), "I8");
  EXPECT_EQ((*e)->weights_sha256(),
            "48003d10a1f686321e4e79f5f306fe1fcf1d2b883a90785c939563a506bb89be");
  const auto a = *(*e)->Embed("what is the cheapest way to ship a parcel");
  const auto b = *(*e)->Embed("how can I send a package for little money");
  const auto c = *(*e)->Embed("what is the boiling point of water at altitude");
  double norm = 0;
  for (float x : a) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_GT(Cosine(a, b), Cosine(a, c) + 0.2);
}

TEST(StaticModelDir, MissingFilesSayWhatWasExpected) {
  auto files = ReadStaticModelDir("/nonexistent/model");
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.status().message().find("model.safetensors"), std::string::npos);
}

// ---- the tokenizer: refusals -----------------------------------------------------------

TEST(Tokenizer, RefusesAModelTypeItDoesNotImplementByName) {
  auto t = Tokenizer::FromJson(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})", "tok");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("'BPE'"), std::string::npos) << t.status().message();
}

TEST(Tokenizer, RefusesANormalizerItDoesNotImplementByName) {
  auto t = Tokenizer::FromJson(
      R"({"normalizer": {"type": "Precompiled", "precompiled_charsmap": ""},
          "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})",
      "tok");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("'Precompiled'"), std::string::npos);
}

TEST(Tokenizer, WordPieceSplitsWithContinuationsAndLimitsWordLength) {
  auto t = Tokenizer::FromJson(
      R"({"normalizer": {"type": "BertNormalizer", "lowercase": true},
          "pre_tokenizer": {"type": "BertPreTokenizer"},
          "model": {"type": "WordPiece", "unk_token": "[UNK]", "max_input_chars_per_word": 10,
                    "vocab": {"[UNK]": 0, "play": 1, "##ing": 2, "strum": 3, "##ming": 4,
                              "?": 5, "cafe": 6}}})",
      "tok");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  std::vector<std::int32_t> ids;
  (*t)->Encode("Strumming? PLAYING caf\xC3\xA9 playingplaying xyz", &ids);
  // "playingplaying" is 14 characters, over the limit of 10: unknown, like "xyz".
  EXPECT_EQ(ids, (std::vector<std::int32_t>{3, 4, 5, 1, 2, 6, 0, 0}));
}

// ---- damaged weights -------------------------------------------------------------------

std::string Safetensors(const std::string& header, std::size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + std::string(data_bytes, '\1');
}

TEST(Safetensors, RefusesHeadersThatLie) {
  struct Case {
    std::string bytes;
    const char* says;
  };
  const Case cases[] = {
      {"abc", "shorter"},
      {Safetensors(R"({"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})", 8),
       "fall outside"},
      {Safetensors(R"({"t": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}})", 16),
       "needs 24 bytes"},
      {Safetensors(R"({"t": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}})", 2),
       "unknown dtype"},
      {Safetensors(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
       "not sizes"},
      {Safetensors(R"({"t": {"dtype": "U8", "shape": [4294967296, 4294967296, 16],
                             "data_offsets": [0, 4]}})",
                   4),
       "overflows"},
      {Safetensors(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                       "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}})",
                   6),
       "overlap"},
      {Safetensors("{not json", 0), "not a JSON object"},
  };
  for (const auto& c : cases) {
    auto f = SafetensorsFile::Parse(c.bytes, "m.safetensors");
    ASSERT_FALSE(f.ok()) << c.says;
    EXPECT_EQ(f.status().code(), ErrorCode::kDataLoss);
    EXPECT_NE(f.status().message().find(c.says), std::string::npos) << f.status().message();
  }
  // A header length past the file.
  std::string huge = Safetensors("{}", 0);
  huge[5] = 1;
  EXPECT_FALSE(SafetensorsFile::Parse(huge, "m").ok());
}

TEST(StaticEmbedder, RefusesATableOfTheWrongTypeOrShape) {
  StaticModelFiles files = DefaultStaticModel();
  files.safetensors = Safetensors(
      R"({"embeddings": {"dtype": "I32", "shape": [29528, 1], "data_offsets": [0, 118112]}})",
      118112);
  auto e = StaticEmbedder::Load(files);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("dtype I32"), std::string::npos) << e.status().message();

  files.safetensors = Safetensors(
      R"({"embeddings": {"dtype": "I8", "shape": [100, 4], "data_offsets": [0, 400]}})", 400);
  e = StaticEmbedder::Load(files);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("100 rows for 29528 tokens"), std::string::npos)
      << e.status().message();
}

}  // namespace
}  // namespace semcached::embed

namespace semcached::embed {
namespace {

TEST(EmbedderIdentity, OneModelUnderTwoNamesMakesTheSameVectors) {
  StaticModelFiles files = DefaultStaticModel();
  auto a = StaticEmbedder::Load(files);
  files.name = "/opt/models/potion";  // the same files, named by their path
  auto b = StaticEmbedder::Load(files);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->identity(), (*b)->identity());
  EXPECT_TRUE((*a)->identity().SameVectors((*b)->identity()));
  EmbedderIdentity other = (*a)->identity();
  other.weights_sha256 = std::string(64, '0');
  EXPECT_FALSE((*a)->identity().SameVectors(other));
  EXPECT_EQ((*a)->identity().Differences(other).size(), 1u);
  // Round trip through the record's JSON.
  auto back = EmbedderIdentity::FromJson((*a)->identity().ToJson());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, (*a)->identity());
  EXPECT_FALSE(EmbedderIdentity::FromJson("{\"kind\": 3}").has_value());
}

}  // namespace
}  // namespace semcached::embed
