#include "server/errors.h"

#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "common/logging.h"

namespace semcached::server {
namespace {

TEST(Errors, StatusMapsToLangCacheProblemShape) {
  Status s = InvalidArgument("prompt is required");
  s.WithField("prompt", "required", "prompt must be a non-empty string");
  HttpResponse r = ErrorResponse(s);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["status"], 400);
  EXPECT_EQ(j["type"], "/errors/invalid-data");
  EXPECT_EQ(j["title"], "Bad Request");
  EXPECT_EQ(j["detail"], "prompt is required");
  ASSERT_EQ(j["fields"].size(), 1u);
  EXPECT_EQ(j["fields"][0]["field"], "prompt");
  EXPECT_EQ(j["fields"][0]["rule"], "required");
}

TEST(Errors, EachCodeHasAStatus) {
  EXPECT_EQ(ErrorResponse(NotFound("x")).status, 404);
  EXPECT_EQ(ErrorResponse(Unavailable("x")).status, 424);
  EXPECT_EQ(ErrorResponse(Internal("x")).status, 500);
  EXPECT_EQ(ErrorResponse(Status(ErrorCode::kUnauthenticated, "x")).status, 401);
  EXPECT_EQ(ErrorResponse(Status(ErrorCode::kPermissionDenied, "x")).status, 403);
  EXPECT_EQ(ErrorResponse(Status(ErrorCode::kPayloadTooLarge, "x")).status, 413);
  EXPECT_EQ(ErrorResponse(Status(ErrorCode::kResourceExhausted, "x")).status, 429);
}

TEST(Errors, InvalidUtf8InDetailStillGivesValidJson) {
  HttpResponse r = ErrorResponse(400, "/errors/invalid-data", std::string("bad \xff byte"));
  EXPECT_FALSE(nlohmann::json::parse(r.body, nullptr, false).is_discarded());
}

TEST(Logging, JsonEscape) { EXPECT_EQ(JsonEscape("a\"b\\c\n\x01"), "a\\\"b\\\\c\\n\\u0001"); }

TEST(Logging, JsonEscapeRoundTripsEveryRunLength) {
  std::mt19937 rng(5);
  const std::vector<std::string> pieces = {
      "a",    "Z",    " ",    "\"",       "\\",           "\n",        "\t",
      "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "0123456789"};
  for (int i = 0; i < 5000; ++i) {
    std::string text;
    const std::size_t n = rng() % 40;
    for (std::size_t j = 0; j < n; ++j) {
      // Long clean runs too, so the eight-byte skip meets escapes at every offset.
      text += rng() % 3 == 0 ? pieces[rng() % pieces.size()] : std::string(rng() % 12, 'x');
    }
    auto parsed = nlohmann::json::parse("\"" + JsonEscape(text) + "\"");
    ASSERT_EQ(parsed.get<std::string>(), text);
  }
}

TEST(Status, ResultCarriesValueOrError) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(NotFound("gone"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(bad.status().ToString(), "not_found: gone");
}

}  // namespace
}  // namespace semcached::server
