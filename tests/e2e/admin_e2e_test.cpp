// The admin API, black-box: create, list, describe and delete caches while serving; its
// keys and refusals; and caches it created coming back after a restart.
#include <signal.h>

#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace semcached::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::optional<HttpReply> Admin(int port, const std::string& method, const std::string& path,
                               const std::string& body = "", const std::string& key = "adm1n") {
  std::map<std::string, std::string> headers{{"Content-Type", "application/json"}};
  if (!key.empty()) headers["Authorization"] = "Bearer " + key;
  return HttpRequestOnce(port, method, path, body, headers);
}

std::optional<HttpReply> Cache(int port, const std::string& method, const std::string& path,
                               const json& body, const std::string& key) {
  return HttpRequestOnce(
      port, method, path, body.dump(),
      {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + key}});
}

TEST(AdminE2E, DisabledWithoutAnAdminKey) {
  SemcachedServer server;
  auto r = Admin(server.port(), "GET", "/v1/caches");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("admin_api_key"), std::string::npos) << r->body;
}

TEST(AdminE2E, CreateUseListDescribeDelete) {
  TempDir dir;
  const std::string data = dir.File("data");
  SemcachedServer server({"--set", "admin_api_key=adm1n"}, {}, data);
  const int port = server.port();

  auto created = Admin(
      port, "POST", "/v1/caches",
      R"({"id":"docs","api_keys":["dk"],"similarity_threshold":0.9,"ttl_ms":60000,"eviction":"lfu"})");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  auto desc = json::parse(created->body);
  EXPECT_EQ(desc["id"], "docs");
  EXPECT_EQ(desc["source"], "api");
  EXPECT_NEAR(desc["similarity_threshold"].get<double>(), 0.9, 1e-6);
  EXPECT_EQ(desc["eviction"], "lfu");
  EXPECT_EQ(desc["api_keys"], 1);                              // how many, never which
  EXPECT_EQ(created->body.find("\"dk\""), std::string::npos);  // the key is not echoed

  // The new cache works through the LangCache routes with its own key, and only with it.
  auto stored = Cache(port, "POST", "/v1/caches/docs/entries",
                      {{"prompt", "What is semcached?"}, {"response", "A cache."}}, "dk");
  ASSERT_EQ(stored->status, 201) << stored->body;
  auto hit = Cache(port, "POST", "/v1/caches/docs/entries/search",
                   {{"prompt", "what is semcached"}}, "dk");
  ASSERT_EQ(hit->status, 200);
  EXPECT_EQ(json::parse(hit->body)["data"].size(), 1u);
  EXPECT_EQ(
      Cache(port, "POST", "/v1/caches/docs/entries/search", {{"prompt", "x"}}, "wrong")->status,
      401);

  auto list = Admin(port, "GET", "/v1/caches");
  ASSERT_EQ(list->status, 200);
  std::set<std::string> ids;
  const json listed = json::parse(list->body);
  for (const auto& c : listed["caches"]) ids.insert(c["id"]);
  EXPECT_EQ(ids, (std::set<std::string>{"default", "docs"}));
  auto one = Admin(port, "GET", "/v1/caches/docs");
  ASSERT_EQ(one->status, 200);
  EXPECT_EQ(json::parse(one->body)["entries"], 1);
  EXPECT_EQ(Admin(port, "GET", "/v1/caches/nope")->status, 404);

  // Refusals: bad settings name the field, a duplicate conflicts, keys are checked.
  auto bad = Admin(port, "POST", "/v1/caches", R"({"id":"b","similarity_threshold":2})");
  ASSERT_EQ(bad->status, 400);
  auto problem = json::parse(bad->body);
  EXPECT_EQ(problem["type"], "/errors/invalid-data");
  EXPECT_EQ(problem["fields"][0]["field"], "similarity_threshold") << bad->body;
  EXPECT_EQ(Admin(port, "POST", "/v1/caches", R"({"id":"../etc"})")->status, 400);
  EXPECT_EQ(Admin(port, "POST", "/v1/caches", R"({"id":"c","colour":"red"})")->status, 400);
  EXPECT_EQ(Admin(port, "POST", "/v1/caches", "not json")->status, 400);
  EXPECT_EQ(
      Admin(port, "POST", "/v1/caches", R"({"id":"s","search_strategies":["fuzzy"]})")->status,
      400);
  auto exact_only =
      Admin(port, "POST", "/v1/caches", R"({"id":"exactonly","search_strategies":["exact"]})");
  ASSERT_EQ(exact_only->status, 201) << exact_only->body;
  EXPECT_EQ(json::parse(exact_only->body)["search_strategies"], json::array({"exact"}));
  ASSERT_EQ(Admin(port, "DELETE", "/v1/caches/exactonly")->status, 204);
  EXPECT_EQ(Admin(port, "POST", "/v1/caches", R"({"id":"docs"})")->status, 409);
  EXPECT_EQ(Admin(port, "GET", "/v1/caches", "", "")->status, 401);
  EXPECT_EQ(Admin(port, "GET", "/v1/caches", "", "dk")->status, 403);
  auto declared = Admin(port, "DELETE", "/v1/caches/default");
  EXPECT_EQ(declared->status, 409);
  EXPECT_NE(declared->body.find("configuration file"), std::string::npos);

  // Delete: gone from the routes and from disk.
  EXPECT_TRUE(std::filesystem::exists(data + "/docs.0.journal"));
  ASSERT_EQ(Admin(port, "DELETE", "/v1/caches/docs")->status, 204);
  EXPECT_EQ(
      Cache(port, "POST", "/v1/caches/docs/entries/search", {{"prompt", "what is semcached"}}, "dk")
          ->status,
      404);
  EXPECT_FALSE(std::filesystem::exists(data + "/docs.0.journal"));
  EXPECT_EQ(Admin(port, "DELETE", "/v1/caches/docs")->status, 404);
}

TEST(AdminE2E, CreatedCachesAndTheirEntriesSurviveARestart) {
  TempDir dir;
  const std::string data = dir.File("data");
  {
    SemcachedServer server({"--set", "admin_api_key=adm1n"}, {}, data);
    ASSERT_EQ(
        Admin(server.port(), "POST", "/v1/caches", R"({"id":"kept","api_keys":["kk"]})")->status,
        201);
    ASSERT_EQ(Cache(server.port(), "POST", "/v1/caches/kept/entries",
                    {{"prompt", "Is it kept?"}, {"response", "Yes."}}, "kk")
                  ->status,
              201);
    server.process().Signal(SIGKILL);
    server.process().Wait(5s);
  }
  SemcachedServer server({"--set", "admin_api_key=adm1n"}, {}, data);
  auto hit = Cache(server.port(), "POST", "/v1/caches/kept/entries/search",
                   {{"prompt", "is it kept"}}, "kk");
  ASSERT_TRUE(hit);
  ASSERT_EQ(hit->status, 200) << hit->body;
  auto data_array = json::parse(hit->body)["data"];
  ASSERT_EQ(data_array.size(), 1u);
  EXPECT_EQ(data_array[0]["response"], "Yes.");
}

}  // namespace
}  // namespace semcached::testing
