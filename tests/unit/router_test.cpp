#include "server/router.h"

#include <gtest/gtest.h>

namespace semcached::server {
namespace {

HttpResponse Named(const char* name) { return HttpResponse::Text(200, name); }

TEST(Router, MatchesLiteralAndParameterSegments) {
  Router r;
  r.Add("GET", "/healthz", [](const HttpRequest&) { return Named("health"); });
  r.Add("DELETE", "/v1/caches/{cacheId}/entries/{entryId}",
        [](const HttpRequest&) { return Named("delete"); });
  auto m = r.Find("DELETE", "/v1/caches/c1/entries/e9");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.pattern, "/v1/caches/{cacheId}/entries/{entryId}");
  EXPECT_EQ(m.params.at("cacheId"), "c1");
  EXPECT_EQ(m.params.at("entryId"), "e9");
  EXPECT_EQ((*m.handler)(HttpRequest{}).body, "delete");
}

TEST(Router, ParameterWithSuffix) {
  Router r;
  r.Add("POST", "/v1beta/models/{model}:generateContent",
        [](const HttpRequest&) { return Named("gen"); });
  r.Add("POST", "/v1beta/models/{model}:streamGenerateContent",
        [](const HttpRequest&) { return Named("stream"); });
  auto m = r.Find("POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ((*m.handler)(HttpRequest{}).body, "stream");
  EXPECT_EQ(m.params.at("model"), "gemini-2.0-flash");
  EXPECT_EQ(r.Find("POST", "/v1beta/models/:generateContent").handler, nullptr);
}

TEST(Router, WrongMethodListsAllowedMethods) {
  Router r;
  r.Add("GET", "/metrics", [](const HttpRequest&) { return Named("m"); });
  auto m = r.Find("POST", "/metrics");
  EXPECT_EQ(m.handler, nullptr);
  ASSERT_EQ(m.allowed.size(), 1u);
  EXPECT_EQ(m.allowed[0], "GET");
  EXPECT_EQ(m.pattern, "/metrics");
}

TEST(Router, UnknownPathIsUnmatched) {
  Router r;
  r.Add("GET", "/a/{x}", [](const HttpRequest&) { return Named("a"); });
  auto m = r.Find("GET", "/a/b/c");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.allowed.empty());
  EXPECT_EQ(m.pattern, "unmatched");
}

TEST(Router, DuplicateRouteThrows) {
  Router r;
  r.Add("GET", "/x", [](const HttpRequest&) { return Named("x"); });
  EXPECT_THROW(r.Add("GET", "/x", [](const HttpRequest&) { return Named("y"); }),
               std::invalid_argument);
}

}  // namespace
}  // namespace semcached::server
