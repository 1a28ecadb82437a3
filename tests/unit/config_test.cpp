#include "app/config.h"

#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace semcached::app {
namespace {

using semcached::testing::TempDir;
using semcached::testing::WriteFile;

TEST(Config, DefaultsWhenNoSource) {
  auto c = LoadConfig({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server.host, "127.0.0.1");
  EXPECT_EQ(c->server.port, 8080);
  EXPECT_EQ(c->store, "embedded");
  EXPECT_EQ(c->log.format, "text");
}

TEST(Config, PrecedenceIsFileThenEnvironmentThenFlags) {
  TempDir dir;
  WriteFile(dir.File("c.toml"),
            "data_dir = \"/from/file\"\n"
            "[server]\nport = 1111\nhost = \"0.0.0.0\"\nthreads = 3\n"
            "[log]\nlevel = \"warn\"\n");
  ConfigSources s;
  s.file = dir.File("c.toml");
  s.env = {{"SEMCACHED_SERVER_PORT", "2222"}, {"SEMCACHED_LOG_LEVEL", "error"}};
  s.flags = {{"server.port", "3333"}};
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server.port, 3333);       // flag beats environment and file
  EXPECT_EQ(c->log.level, "error");      // environment beats file
  EXPECT_EQ(c->server.host, "0.0.0.0");  // file beats default
  EXPECT_EQ(c->server.threads, 3);
  EXPECT_EQ(c->data_dir, "/from/file");
  EXPECT_EQ(c->server.idle_timeout_ms, 60'000);  // default where nobody spoke
}

TEST(Config, LaterFlagWins) {
  ConfigSources s;
  s.flags = {{"server.port", "1"}, {"server.port", "2"}};
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server.port, 2);
}

TEST(Config, OtelSettingsAreCheckedAtLoad) {
  ConfigSources s;
  s.flags = {{"otel.endpoint", "http://collector:4318"},
             {"otel.headers", "x-api-key=abc, x-team = search"},
             {"otel.resource_attributes", "deployment.environment.name=prod"}};
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto headers = ParseKeyValues(c->otel.headers);
  ASSERT_TRUE(headers.ok());
  ASSERT_EQ(headers->size(), 2u);
  EXPECT_EQ((*headers)[1].first, "x-team");
  EXPECT_EQ((*headers)[1].second, "search");
  EXPECT_EQ(RenderToml(*c).find("abc"), std::string::npos);  // headers carry keys: masked

  s.flags = {{"otel.endpoint", "collector:4318"}};
  auto bad = LoadConfig(s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("otel.endpoint"), std::string::npos);
  s.flags = {{"otel.headers", "x-api-key"}};
  bad = LoadConfig(s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'x-api-key' is not name=value"), std::string::npos)
      << bad.status().message();
}

TEST(Config, UnknownKeyInFileIsRefusedByName) {
  TempDir dir;
  WriteFile(dir.File("c.toml"), "[server]\nprot = 1\n");
  ConfigSources s;
  s.file = dir.File("c.toml");
  auto c = LoadConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("server.prot"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("unknown"), std::string::npos);
  EXPECT_NE(c.status().message().find("c.toml"), std::string::npos);
}

TEST(Config, UnknownEnvironmentVariableIsRefused) {
  ConfigSources s;
  s.env = {{"SEMCACHED_SERVR_PORT", "1"}};
  auto c = LoadConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("SEMCACHED_SERVR_PORT"), std::string::npos);
}

TEST(Config, VariablesReadElsewhereAreNotKeys) {
  ConfigSources s;
  s.env = {{"SEMCACHED_CONFIG", "/x.toml"}, {"SEMCACHED_SIMD", "avx2"}};
  EXPECT_TRUE(LoadConfig(s).ok());
  s.env = {{"SEMCACHED_SIMD", "sse9"}};
  auto c = LoadConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("SEMCACHED_SIMD"), std::string::npos);
}

TEST(Config, UnknownFlagKeyIsRefused) {
  ConfigSources s;
  s.flags = {{"server.nope", "1"}};
  auto c = LoadConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("server.nope"), std::string::npos);
}

struct BadValue {
  const char* key;
  const char* value;
  const char* reason;
};

class ConfigBadValue : public ::testing::TestWithParam<BadValue> {};

TEST_P(ConfigBadValue, IsRefusedWithKeyAndReason) {
  ConfigSources s;
  s.flags = {{GetParam().key, GetParam().value}};
  auto c = LoadConfig(s);
  ASSERT_FALSE(c.ok()) << GetParam().key << "=" << GetParam().value;
  EXPECT_EQ(c.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(GetParam().key), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find(GetParam().reason), std::string::npos)
      << c.status().message();
}

INSTANTIATE_TEST_SUITE_P(Values, ConfigBadValue,
                         ::testing::Values(BadValue{"server.port", "abc", "not an integer"},
                                           BadValue{"server.port", "70000", "out of range"},
                                           BadValue{"server.port", "-1", "out of range"},
                                           BadValue{"server.port", "", "not an integer"},
                                           BadValue{"server.port", "80x", "not an integer"},
                                           BadValue{"server.max_body_bytes", "10", "out of range"},
                                           BadValue{"log.level", "loud", "not one of"},
                                           BadValue{"log.format", "xml", "not one of"},
                                           BadValue{"store", "mongo", "not one of"},
                                           BadValue{"redis.url", "http://x", "redis://"}));

TEST(Config, WrongTypeInFileIsRefused) {
  TempDir dir;
  WriteFile(dir.File("c.toml"), "[server]\nport = \"8080\"\n");
  ConfigSources s;
  s.file = dir.File("c.toml");
  auto c = LoadConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("expected an integer"), std::string::npos);

  WriteFile(dir.File("c.toml"), "[log]\nlevel = 3\n");
  c = LoadConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("expected a string"), std::string::npos);
}

TEST(Config, SyntaxErrorNamesTheLine) {
  TempDir dir;
  WriteFile(dir.File("c.toml"), "[server]\nport = 1\nhost = \n");
  ConfigSources s;
  s.file = dir.File("c.toml");
  auto c = LoadConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("line 3"), std::string::npos) << c.status().message();
}

TEST(Config, MissingFileIsRefused) {
  ConfigSources s;
  s.file = "/nonexistent/semcached.toml";
  auto c = LoadConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/semcached.toml"), std::string::npos);
}

TEST(Config, RedisStoreNeedsUrl) {
  ConfigSources s;
  s.flags = {{"store", "redis"}};
  EXPECT_FALSE(LoadConfig(s).ok());
  s.flags.push_back({"redis.url", "redis://127.0.0.1:6379"});
  EXPECT_TRUE(LoadConfig(s).ok());
}

TEST(Config, EveryKeyHasAnEnvironmentName) {
  EXPECT_EQ(EnvNameForKey("server.max_body_bytes"), "SEMCACHED_SERVER_MAX_BODY_BYTES");
  for (const auto& k : ListKeys()) {
    ConfigSources s;
    s.env = {{EnvNameForKey(k.name), k.default_value}};
    if (k.name == "data_dir") continue;  // empty is refused on purpose
    EXPECT_TRUE(LoadConfig(s).ok()) << k.name;
  }
}

TEST(Config, RenderedTomlLoadsBackToTheSameValues) {
  ConfigSources s;
  s.flags = {{"server.port", "4321"}, {"log.format", "json"}};
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok());
  TempDir dir;
  WriteFile(dir.File("c.toml"), RenderToml(*c));
  ConfigSources again;
  again.file = dir.File("c.toml");
  auto d = LoadConfig(again);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->server.port, 4321);
  EXPECT_EQ(d->log.format, "json");
}

}  // namespace
}  // namespace semcached::app

namespace semcached::app {
namespace {

TEST(ConfigCaches, ArrayOfTablesDeclaresCaches) {
  semcached::testing::TempDir dir;
  semcached::testing::WriteFile(dir.File("c.toml"), R"(
[[caches]]
id = "faq"
api_keys = ["k1", "k2"]
similarity_threshold = 0.9
ttl_ms = 60000
allowed_attributes = ["user"]
guard_numbers = false
normalize_casefold = false
normalize_trim_punctuation = false
search_ef = 40

[[caches]]
id = "chat"
)");
  ConfigSources s;
  s.file = dir.File("c.toml");
  auto c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->caches.size(), 2u);
  EXPECT_EQ(c->caches[0].id, "faq");
  EXPECT_EQ(c->caches[0].api_keys, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_DOUBLE_EQ(c->caches[0].similarity_threshold, 0.9);
  EXPECT_EQ(c->caches[0].ttl_ms, 60000);
  EXPECT_FALSE(c->caches[0].guard_numbers);
  EXPECT_TRUE(c->caches[0].guard_negation);
  EXPECT_FALSE(c->caches[0].normalize_casefold);
  EXPECT_FALSE(c->caches[0].normalize_trim_punctuation);
  EXPECT_TRUE(c->caches[0].normalize_nfkc);
  EXPECT_TRUE(c->caches[0].normalize_whitespace);
  EXPECT_EQ(c->caches[0].search_ef, 40);
  EXPECT_EQ(c->caches[1].id, "chat");
  EXPECT_TRUE(c->caches[1].normalize_casefold);
  EXPECT_EQ(c->caches[1].search_ef, 24);
  // Unset, the threshold is the embedder's measured default.
  EXPECT_DOUBLE_EQ(c->caches[1].similarity_threshold, 0);
  EXPECT_EQ(c->caches[1].embedder, "model2vec");
  EXPECT_FLOAT_EQ(ToCacheOptions(c->caches[1]).similarity_threshold,
                  static_cast<float>(DefaultSimilarityThreshold("model2vec")));
  // API keys are never printed.
  EXPECT_EQ(RenderToml(*c).find("k1"), std::string::npos);
}

TEST(ConfigCaches, BadCacheTablesAreRefusedByName) {
  semcached::testing::TempDir dir;
  struct Case {
    const char* toml;
    const char* expect;
  };
  for (const Case& k : {Case{"[[caches]]\nid = \"a\"\nthreshold = 1\n", "caches[0].threshold"},
                        Case{"[[caches]]\nid = \"a\"\nsimilarity_threshold = 2.0\n", "within 0..1"},
                        Case{"[[caches]]\napi_keys = [\"k\"]\n", "needs an id"},
                        Case{"[[caches]]\nid = \"a\"\n[[caches]]\nid = \"a\"\n", "declared twice"},
                        Case{"[[caches]]\nid = \"a\"\napi_keys = \"k\"\n", "array of strings"},
                        Case{"[[caches]]\nid = \"a\"\nnormalize_nfkc = 1\n", "true or false"},
                        Case{"[[caches]]\nid = \"a\"\nsearch_ef = 0\n", "1..4096"},
                        Case{"[[caches]]\nid = \"a\"\nexperiment_arms = [\"x threshold=0.9\"]\n",
                             "caches[0].experiment_arms"},
                        Case{"[[caches]]\nid = \"a\"\nexperiment_arms = [\"x threshold=0.9\", "
                             "\"y treshold=0.8\"]\n",
                             "unknown setting 'treshold'"},
                        Case{"caches = 3\n", "[[caches]]"}}) {
    semcached::testing::WriteFile(dir.File("c.toml"), k.toml);
    ConfigSources s;
    s.file = dir.File("c.toml");
    auto c = LoadConfig(s);
    ASSERT_FALSE(c.ok()) << k.toml;
    EXPECT_NE(c.status().message().find(k.expect), std::string::npos) << c.status().message();
  }
}

}  // namespace
}  // namespace semcached::app

namespace semcached::app {
namespace {

// Every setting away from its default, so a key that is read or written wrong shows.
const char* kEveryCacheSetting = R"(
[[caches]]
id = "all"
api_keys = ["secret-1"]
similarity_threshold = 0.925
ttl_ms = 90000
sliding_ttl = true
allowed_attributes = ["user", "lang"]
guard_numbers = false
guard_negation = false
normalize_nfkc = false
normalize_casefold = false
normalize_whitespace = false
normalize_trim_punctuation = false
max_entries = 500
max_bytes = 1000000
eviction = "value"
search_ef = 77
semantic_candidates = 9
store = "embedded"
search_strategies = ["semantic", "exact"]
input_usd_per_mtok = 2.5
output_usd_per_mtok = 10
experiment_arms = ["static threshold=0.9", "adaptive threshold=0.8 max_error_rate=0.02 weight=2"]
experiment_split = "user"
embedder = "openai"
embedder_url = "http://127.0.0.1:9/v1"
embedder_model = "m"
embedder_dim = 256
embedder_api_key_env = "EMB_KEY"
embedder_timeout_ms = 1234
)";

Result<Config> LoadToml(const std::string& text) {
  semcached::testing::TempDir dir;
  semcached::testing::WriteFile(dir.File("c.toml"), text);
  ConfigSources s;
  s.file = dir.File("c.toml");
  return LoadConfig(s);
}

TEST(ConfigCaches, EnumsAndListsAreTypedAtLoadAndReachTheRuntimeOptions) {
  auto c = LoadToml(kEveryCacheSetting);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const CacheConfig& cc = c->caches.at(0);
  EXPECT_EQ(cc.eviction, cache::Eviction::kValue);
  EXPECT_EQ(cc.search_strategies,
            (std::vector<cache::Strategy>{cache::Strategy::kSemantic, cache::Strategy::kExact}));
  const cache::CacheOptions o = ToCacheOptions(cc);
  EXPECT_EQ(o.id, "all");
  EXPECT_FLOAT_EQ(o.similarity_threshold, 0.925f);
  EXPECT_EQ(o.default_ttl_ms, 90000);
  EXPECT_TRUE(o.sliding_ttl);
  EXPECT_EQ(o.allowed_attributes, (std::vector<std::string>{"user", "lang"}));
  EXPECT_FALSE(o.guards.numbers);
  EXPECT_FALSE(o.guards.negation);
  EXPECT_FALSE(o.normalize.nfkc);
  EXPECT_FALSE(o.normalize.casefold);
  EXPECT_FALSE(o.normalize.collapse_whitespace);
  EXPECT_FALSE(o.normalize.trim_punctuation);
  EXPECT_EQ(o.max_entries, 500u);
  EXPECT_EQ(o.max_bytes, 1000000u);
  EXPECT_EQ(o.eviction, cache::Eviction::kValue);
  EXPECT_EQ(o.search_ef, 77u);
  EXPECT_EQ(o.semantic_candidates, 9u);
  EXPECT_EQ(o.strategies, cc.search_strategies);
  EXPECT_DOUBLE_EQ(o.input_usd_per_mtok, 2.5);
  EXPECT_DOUBLE_EQ(o.output_usd_per_mtok, 10);
  EXPECT_EQ(o.experiment.split_attribute, "user");
  ASSERT_EQ(o.experiment.arms.size(), 2u);
  EXPECT_EQ(o.experiment.arms[1].name, "adaptive");
  EXPECT_DOUBLE_EQ(o.experiment.arms[1].max_error_rate, 0.02);
  EXPECT_DOUBLE_EQ(o.experiment.arms[1].weight, 2);
}

TEST(ConfigCaches, TheAdminApiBodyReadsTheSameTableAsTheFile) {
  auto from_file = LoadToml(kEveryCacheSetting);
  ASSERT_TRUE(from_file.ok());
  nlohmann::json body = {
      {"id", "all"},
      {"api_keys", {"secret-1"}},
      {"similarity_threshold", 0.925},
      {"ttl_ms", 90000},
      {"sliding_ttl", true},
      {"allowed_attributes", {"user", "lang"}},
      {"guard_numbers", false},
      {"guard_negation", false},
      {"normalize_nfkc", false},
      {"normalize_casefold", false},
      {"normalize_whitespace", false},
      {"normalize_trim_punctuation", false},
      {"max_entries", 500},
      {"max_bytes", 1000000},
      {"eviction", "value"},
      {"search_ef", 77},
      {"semantic_candidates", 9},
      {"store", "embedded"},
      {"search_strategies", {"semantic", "exact"}},
      {"input_usd_per_mtok", 2.5},
      {"output_usd_per_mtok", 10},
      {"experiment_arms",
       {"static threshold=0.9", "adaptive threshold=0.8 max_error_rate=0.02 weight=2"}},
      {"experiment_split", "user"},
      {"embedder", "openai"},
      {"embedder_url", "http://127.0.0.1:9/v1"},
      {"embedder_model", "m"},
      {"embedder_dim", 256},
      {"embedder_api_key_env", "EMB_KEY"},
      {"embedder_timeout_ms", 1234}};
  auto from_json = CacheConfigFromJson(body);
  ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
  EXPECT_EQ(CacheConfigToJson(*from_json), CacheConfigToJson(from_file->caches.at(0)));
  EXPECT_EQ(from_json->api_keys, from_file->caches.at(0).api_keys);
  // The JSON form never names a key, only how many there are.
  EXPECT_EQ(CacheConfigToJson(*from_json)["api_keys"], 1);
  // The same refusals, named by field.
  auto bad = CacheConfigFromJson({{"id", "x"}, {"eviction", "fifo"}});
  ASSERT_FALSE(bad.ok());
  ASSERT_EQ(bad.status().fields().size(), 1u);
  EXPECT_EQ(bad.status().fields()[0].field, "eviction");
  EXPECT_NE(bad.status().message().find("not one of: lru, lfu, value"), std::string::npos);
  auto twice = CacheConfigFromJson({{"id", "x"}, {"search_strategies", {"exact", "exact"}}});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("listed twice"), std::string::npos);
  EXPECT_FALSE(CacheConfigFromJson({{"id", "x"}, {"ttl_ms", "60000"}}).ok());  // typed, not text
}

TEST(ConfigCaches, RenderedCachesLoadBackToTheSameSettings) {
  auto c = LoadToml(kEveryCacheSetting);
  ASSERT_TRUE(c.ok());
  const std::string rendered = RenderToml(*c);
  EXPECT_EQ(rendered.find("secret-1"), std::string::npos);
  auto again = LoadToml(rendered);
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << rendered;
  EXPECT_EQ(CacheConfigToJson(again->caches.at(0)), CacheConfigToJson(c->caches.at(0)));
}

TEST(ConfigCaches, EveryCacheKeyIsListedWithItsDefault) {
  std::set<std::string> names;
  for (const auto& k : ListCacheKeys()) {
    names.insert(k.name);
    EXPECT_FALSE(k.help.empty()) << k.name;
  }
  const nlohmann::json all = CacheConfigToJson(CacheConfig{});
  for (const auto& [name, value] : all.items()) EXPECT_TRUE(names.count(name)) << name;
  EXPECT_EQ(names.size(), all.size());
}

}  // namespace
}  // namespace semcached::app
