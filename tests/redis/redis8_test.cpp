// Tests against a real Redis 8 server started on a free loopback port.
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "redis/probe.h"
#include "test_support.h"

namespace semcached::testing {
namespace {

using namespace std::chrono_literals;

struct Reply {
  explicit Reply(void* r) : r(static_cast<redisReply*>(r)) {}
  ~Reply() {
    if (r) freeReplyObject(r);
  }
  redisReply* r;
};

std::unique_ptr<redisContext, void (*)(redisContext*)> Connect(int port) {
  return {redisConnect("127.0.0.1", port), redisFree};
}

TEST(Redis8, VaddAndVsimOnRealServer) {
  RedisServer redis;
  auto c = Connect(redis.port());
  ASSERT_TRUE(c && !c->err);

  // Vectors go as FP32 little-endian blobs, as the store will send them.
  auto add = [&](const char* id, std::vector<float> v) {
    const char* argv[] = {"VADD", "docs", "FP32", reinterpret_cast<const char*>(v.data()), id};
    size_t lens[] = {4, 4, 4, v.size() * sizeof(float), strlen(id)};
    Reply r(redisCommandArgv(c.get(), 5, argv, lens));
    return r.r && r.r->type == REDIS_REPLY_INTEGER && r.r->integer == 1;
  };
  EXPECT_TRUE(add("east", {1, 0, 0, 0}));
  EXPECT_TRUE(add("north", {0, 1, 0, 0}));
  EXPECT_TRUE(add("northeast", {0.7f, 0.7f, 0, 0}));

  Reply card(redisCommand(c.get(), "VCARD docs"));
  ASSERT_EQ(card.r->type, REDIS_REPLY_INTEGER);
  EXPECT_EQ(card.r->integer, 3);
  Reply dim(redisCommand(c.get(), "VDIM docs"));
  EXPECT_EQ(dim.r->integer, 4);

  Reply sim(redisCommand(c.get(), "VSIM docs VALUES 4 0.9 0.1 0 0 WITHSCORES COUNT 2"));
  ASSERT_EQ(sim.r->type, REDIS_REPLY_ARRAY) << (sim.r->str ? sim.r->str : "");
  ASSERT_EQ(sim.r->elements, 4u);  // RESP2: id, score, id, score
  EXPECT_STREQ(sim.r->element[0]->str, "east");
  EXPECT_STREQ(sim.r->element[2]->str, "northeast");
  double best = std::stod(sim.r->element[1]->str);
  // Redis reports (1 + cosine) / 2.
  double cos = (0.9) / std::sqrt(0.81 + 0.01);
  EXPECT_NEAR(best, (1 + cos) / 2, 1e-2);

  Reply rem(redisCommand(c.get(), "VREM docs east"));
  EXPECT_EQ(rem.r->integer, 1);
  Reply after(redisCommand(c.get(), "VSIM docs VALUES 4 0.9 0.1 0 0 COUNT 1"));
  ASSERT_EQ(after.r->elements, 1u);
  EXPECT_STREQ(after.r->element[0]->str, "northeast");
}

TEST(Redis8, ProbeReadsServerVersion) {
  RedisServer redis;
  auto address = redis::ParseRedisUrl(redis.url());
  ASSERT_TRUE(address.ok());
  auto version = redis::ServerVersion(*address, 1000);
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(version->rfind("8.", 0), 0u) << *version;
  EXPECT_TRUE(redis::Ping(*address, 1000).ok());
  redis.Stop();
  EXPECT_FALSE(redis::Ping(*address, 300).ok());
}

TEST(Redis8, VersionCommandPrintsRedisVersion) {
  RedisServer redis;
  auto r = RunCommand({SemcachedServer::BinaryPath(), "version", "--redis-url", redis.url()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("server 8."), std::string::npos) << r.output;
}

TEST(Redis8, ReadyzFollowsRedis) {
  auto redis = std::make_unique<RedisServer>();
  SemcachedServer server({"--redis-url", redis->url()});
  auto ready = HttpRequestOnce(server.port(), "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  EXPECT_EQ(nlohmann::json::parse(ready->body)["checks"]["redis"], "ok");

  redis->Stop();
  std::this_thread::sleep_for(1100ms);  // past the cached result
  auto down = HttpRequestOnce(server.port(), "GET", "/readyz");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 503) << down->body;
  // Liveness does not depend on Redis.
  auto health = HttpRequestOnce(server.port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(Redis8, ClientMetricsOnTheMetricsPage) {
  auto redis = std::make_unique<RedisServer>();
  SemcachedServer server({"--redis-url", redis->url(), "--set", "redis.pool_min=2", "--set",
                          "redis.breaker_open_ms=60000", "--set", "redis.command_timeout_ms=300"});
  ASSERT_EQ(HttpRequestOnce(server.port(), "GET", "/readyz")->status, 200);
  auto page = HttpRequestOnce(server.port(), "GET", "/metrics")->body;
  EXPECT_NE(page.find(R"(semcached_redis_command_duration_seconds_count{command="PING"} 1)"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("semcached_redis_pool_connections 2"), std::string::npos);
  EXPECT_NE(page.find("semcached_redis_breaker_state 0"), std::string::npos);
  EXPECT_NE(page.find("semcached_redis_retries_total 0"), std::string::npos);

  redis->Kill();
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(1100ms / 8 + 1100ms * (i == 0));
    HttpRequestOnce(server.port(), "GET", "/readyz");
  }
  page = HttpRequestOnce(server.port(), "GET", "/metrics")->body;
  EXPECT_NE(page.find("semcached_redis_breaker_state 1"), std::string::npos) << page;
  EXPECT_NE(page.find("semcached_redis_breaker_opened_total 1"), std::string::npos);
  EXPECT_NE(page.find(R"(semcached_redis_command_errors_total{kind=")"), std::string::npos);
}

TEST(ParseRedisUrl, Forms) {
  auto a = redis::ParseRedisUrl("redis://user:pw@example:6380/2");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "example");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->username, "user");
  EXPECT_EQ(a->password, "pw");
  EXPECT_EQ(a->db, 2);
  auto b = redis::ParseRedisUrl("rediss://h");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->port, 6379);
  EXPECT_FALSE(redis::ParseRedisUrl("http://h").ok());
  EXPECT_FALSE(redis::ParseRedisUrl("redis://h:99999").ok());
  EXPECT_FALSE(redis::ParseRedisUrl("redis://h/x").ok());
}

}  // namespace
}  // namespace semcached::testing

namespace semcached::testing {
namespace {

TEST(Redis8, RedisCacheWithAByteLimitIsRefusedAtStartup) {
  RedisServer redis;
  TempDir dir;
  WriteFile(dir.File("c.toml"), "[[caches]]\nid = \"r\"\nstore = \"redis\"\nmax_bytes = 10\n");
  auto r =
      RunCommand({SemcachedServer::BinaryPath(), "serve", "--port", "0", "--data-dir",
                  dir.File("data"), "--config", dir.File("c.toml"), "--redis-url", redis.url()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("max_bytes applies to embedded caches"), std::string::npos) << r.output;
}

// The embedder of a Redis cache changes with `semcached reembed`: it recomputes the vectors in
// Redis while servers keep answering, then switches; a server still configured with the old
// embedder refuses semantic lookups (and says why) but keeps its exact hits; a server started
// with the new settings answers paraphrases through the new model.
TEST(Redis8, ReembedCommandMovesARedisCacheToAnotherEmbedder) {
  RedisServer redis;
  TempDir dir;
  const std::string config = dir.File("c.toml");
  auto write_config = [&](const char* embedder) {
    WriteFile(config, std::string("[[caches]]\nid = \"faq\"\nstore = \"redis\"\nembedder = \"") +
                          embedder + "\"\n");
  };
  const std::map<std::string, std::string> json = {{"Content-Type", "application/json"}};
  auto search = [&](int port, const std::string& prompt) {
    nlohmann::json body = {{"prompt", prompt}};
    return HttpRequestOnce(port, "POST", "/v1/caches/faq/entries/search", body.dump(), json);
  };
  write_config("ngram");
  SemcachedServer old_settings({"--config", config, "--redis-url", redis.url()});
  const std::vector<std::string> prompts = {
      "What is the cheapest way to ship a parcel?", "How do I reset my router password?",
      "What time does the pharmacy open on Sundays?", "How do I make cold brew coffee at home?"};
  std::vector<std::string> ids;
  for (const auto& p : prompts) {
    nlohmann::json body = {{"prompt", p}, {"response", "answer to " + p}};
    auto r =
        HttpRequestOnce(old_settings.port(), "POST", "/v1/caches/faq/entries", body.dump(), json);
    ASSERT_TRUE(r && r->status == 201);
    ids.push_back(nlohmann::json::parse(r->body)["entryId"]);
  }
  write_config("model2vec");
  auto reembed = RunCommand({SemcachedServer::BinaryPath(), "reembed", "faq", "--config", config,
                             "--redis-url", redis.url()});
  ASSERT_EQ(reembed.exit_code, 0) << reembed.output;
  EXPECT_NE(reembed.output.find("4/4 entries"), std::string::npos) << reembed.output;
  EXPECT_NE(reembed.output.find("generation 1"), std::string::npos) << reembed.output;

  // The server that still embeds with n-grams: exact hits yes, semantic lookups refused.
  auto exact = search(old_settings.port(), prompts[1]);
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->status, 200) << exact->body;
  auto refused = search(old_settings.port(), "how can I reset the password of my router");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_NE(refused->body.find("was reembedded"), std::string::npos) << refused->body;
  EXPECT_NE(refused->body.find("restart it"), std::string::npos) << refused->body;

  SemcachedServer new_settings({"--config", config, "--redis-url", redis.url()});
  auto hit = search(new_settings.port(), "how can I reset the password of my router");
  ASSERT_TRUE(hit && hit->status == 200) << (hit ? hit->body : "no reply");
  const auto data = nlohmann::json::parse(hit->body)["data"];
  ASSERT_EQ(data.size(), 1u) << hit->body;
  EXPECT_EQ(data[0]["id"], ids[1]);
}

}  // namespace
}  // namespace semcached::testing
