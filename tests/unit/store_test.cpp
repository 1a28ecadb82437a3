// The embedded store through the conformance suite, and the filter language on its own.
#include <nlohmann/json.hpp>

#include "../store/conformance.h"
#include "store/embedded_store.h"
#include "store/filter.h"

namespace semcached::testing {
namespace {

const StoreFactory kEmbedded{
    "Embedded", [](const store::CollectionOptions& o) -> std::unique_ptr<store::VectorStore> {
      auto s = store::EmbeddedStore::Create(o);
      if (!s.ok()) throw std::runtime_error(s.status().ToString());
      return std::move(*s);
    }};

INSTANTIATE_TEST_SUITE_P(Embedded, StoreConformance, ::testing::Values(&kEmbedded),
                         [](const auto& info) { return info.param->name; });

bool Match(const char* expr, const char* attrs) {
  auto f = store::Filter::Parse(expr);
  if (!f.ok()) throw std::runtime_error(f.status().ToString());
  return (*f)->MatchesText(attrs);
}

TEST(Filter, RedisExpressionLanguage) {
  const char* movie =
      R"({"year": 1984, "rating": 8.1, "genre": "sci-fi", "tags": ["a", "b"], "seen": true})";
  EXPECT_TRUE(Match(".year >= 1980 and .rating > 7", movie));
  EXPECT_FALSE(Match(".year >= 1990 || .rating > 9", movie));
  EXPECT_TRUE(Match(".genre == 'sci-fi'", movie));
  EXPECT_TRUE(Match(R"(.genre != "drama")", movie));
  EXPECT_TRUE(Match(R"("b" in .tags)", movie));
  EXPECT_TRUE(Match(R"(.genre in ["drama", "sci-fi"])", movie));
  EXPECT_TRUE(Match(R"("sci" in .genre)", movie));
  EXPECT_TRUE(Match(".seen == true", movie));
  EXPECT_TRUE(Match("!(.year < 1980)", movie));
  EXPECT_TRUE(Match("not .year < 1980", movie));
  EXPECT_TRUE(Match("(.year - 1900) * 2 == 168", movie));
  EXPECT_TRUE(Match(".year % 100 == 84 and 2 ** 3 == 8", movie));
  EXPECT_TRUE(Match("-.rating < 0", movie));
  EXPECT_TRUE(Match(".year == \"1984\"", movie));  // numeric strings compare as numbers
  // A missing field makes the expression false, even under not/or.
  EXPECT_FALSE(Match(".missing == 1", movie));
  EXPECT_FALSE(Match("not (.missing == 1)", movie));
  EXPECT_FALSE(Match(".year > 0", ""));
  EXPECT_FALSE(Match(".year > 0", "not json"));
  EXPECT_FALSE(Match(".rating / 0 > 1", movie));
}

TEST(Filter, BadExpressionsNamePositionAndReason) {
  for (const char* bad :
       {"", ".a ==", "(.a", ".a == 1)", ".", "\"open", "a == 1", ".a > > 1", "[1,", ".a and"}) {
    auto f = store::Filter::Parse(bad);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_EQ(f.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(f.status().message().find("bad filter at character"), std::string::npos)
        << f.status().message();
  }
  std::string deep(200, '(');
  EXPECT_FALSE(store::Filter::Parse(deep + "1" + std::string(200, ')')).ok());
  EXPECT_FALSE(store::Filter::Parse(std::string(5000, '1')).ok());
}

}  // namespace
}  // namespace semcached::testing
