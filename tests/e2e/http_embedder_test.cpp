// The OpenAI-compatible embedder against a local fake embedding server that speaks the
// real wire protocol (POST /v1/embeddings, JSON in and out) on a loopback port: a paid
// embedding API cannot run here, so this stands in for it.
#include "embed/http_embedder.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_server.h"
#include "test_support.h"

namespace semcached::embed {
namespace {

class FakeEmbeddingServer {
 public:
  explicit FakeEmbeddingServer(int fail_first = 0, int delay_ms = 0)
      : fail_left_(fail_first), delay_ms_(delay_ms) {
    router_.Add("POST", "/v1/embeddings", [this](const server::HttpRequest& req) {
      calls_.fetch_add(1);
      last_auth_ = std::string(req.Header("authorization"));
      if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
      if (fail_left_.fetch_sub(1) > 0)
        return server::HttpResponse::Json(503, R"({"error":"busy"})");
      auto body = nlohmann::json::parse(req.body);
      nlohmann::json data = nlohmann::json::array();
      int i = 0;
      for (const auto& text : body["input"]) {
        // Deterministic 8-d vector from the text: length and first byte, unnormalized.
        std::string t = text.get<std::string>();
        std::vector<float> v(8, 0.5f);
        v[0] = static_cast<float>(t.size());
        v[1] = t.empty() ? 0.f : static_cast<float>(static_cast<unsigned char>(t[0]));
        data.push_back({{"object", "embedding"}, {"index", i++}, {"embedding", v}});
      }
      return server::HttpResponse::Json(
          200,
          nlohmann::json({{"object", "list"}, {"data", data}, {"model", body["model"]}}).dump());
    });
    server::ServerOptions o;
    o.port = 0;
    o.threads = 2;
    http_ = std::make_unique<server::HttpServer>(o, router_, metrics_);
    EXPECT_TRUE(http_->Listen().ok());
    thread_ = std::thread([this] { http_->Run(false); });
  }
  ~FakeEmbeddingServer() {
    http_->Shutdown();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_->port()) + "/v1"; }
  int calls() const { return calls_.load(); }
  std::string last_auth() const { return last_auth_; }

 private:
  std::atomic<int> fail_left_;
  int delay_ms_;
  std::atomic<int> calls_{0};
  std::string last_auth_;
  server::Router router_;
  server::Metrics metrics_;
  std::unique_ptr<server::HttpServer> http_;
  std::thread thread_;
};

TEST(HttpEmbedder, EmbedsTruncatesAndNormalizes) {
  FakeEmbeddingServer fake;
  setenv("FAKE_EMBED_KEY", "sk-test", 1);
  HttpEmbedderOptions o;
  o.base_url = fake.url();
  o.model = "fake-8";
  o.api_key_env = "FAKE_EMBED_KEY";
  o.dim = 4;
  HttpEmbedder e(o);
  auto v = e.Embed("hello");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 4u);
  double norm = 0;
  for (float x : *v) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_GT((*v)[0], (*v)[2]);  // 5 vs 0.5 before normalization
  EXPECT_EQ(fake.last_auth(), "Bearer sk-test");
  auto batch = e.EmbedBatch({"a", "bbb", "cc"});
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_LT((*batch)[0][0], (*batch)[1][0]);
  EXPECT_EQ(fake.calls(), 2);
}

TEST(HttpEmbedder, RetriesTransientFailures) {
  FakeEmbeddingServer fake(/*fail_first=*/2);
  HttpEmbedderOptions o;
  o.base_url = fake.url();
  o.model = "fake";
  o.backoff_ms = 5;
  HttpEmbedder e(o);
  auto v = e.Embed("x");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(fake.calls(), 3);
  EXPECT_EQ(v->size(), 8u);
}

TEST(HttpEmbedder, GivesUpWithinTheTimeout) {
  FakeEmbeddingServer slow(0, /*delay_ms=*/1000);
  HttpEmbedderOptions o;
  o.base_url = slow.url();
  o.model = "fake";
  o.timeout_ms = 100;
  o.max_retries = 1;
  o.backoff_ms = 5;
  HttpEmbedder e(o);
  auto t0 = std::chrono::steady_clock::now();
  auto v = e.Embed("x");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_LT(took, std::chrono::milliseconds(900));  // two attempts of 100 ms, not the server's 1 s

  HttpEmbedderOptions down;
  down.base_url = "http://127.0.0.1:1/v1";  // nothing listens on port 1
  down.model = "fake";
  down.max_retries = 0;
  HttpEmbedder d(down);
  auto r = d.Embed("x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace semcached::embed

namespace semcached::embed {
namespace {

// A cache declared with embedder = "openai", served by the real binary, embedding through
// the fake server over HTTP.
TEST(HttpEmbedder, CacheUsesItThroughConfiguration) {
  FakeEmbeddingServer fake;
  semcached::testing::TempDir dir;
  semcached::testing::WriteFile(dir.File("c.toml"),
                                "[[caches]]\nid = \"remote\"\nembedder = \"openai\"\n"
                                "embedder_url = \"" +
                                    fake.url() +
                                    "\"\n"
                                    "embedder_model = \"fake-8\"\nembedder_dim = 8\n");
  semcached::testing::SemcachedServer server({"--config", dir.File("c.toml")});
  auto stored =
      semcached::testing::HttpRequestOnce(server.port(), "POST", "/v1/caches/remote/entries",
                                          R"({"prompt":"hello","response":"world"})");
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->status, 201) << stored->body;
  // Same length and first letter: the fake gives the same vector, so a semantic hit.
  auto hit = semcached::testing::HttpRequestOnce(
      server.port(), "POST", "/v1/caches/remote/entries/search", R"({"prompt":"hxyzw"})");
  ASSERT_TRUE(hit);
  ASSERT_EQ(hit->status, 200) << hit->body;
  auto body = nlohmann::json::parse(hit->body);
  ASSERT_EQ(body["data"].size(), 1u) << hit->body;
  EXPECT_EQ(body["data"][0]["response"], "world");
  EXPECT_EQ(body["data"][0]["searchStrategy"], "semantic");
  EXPECT_GE(fake.calls(), 2);
}

TEST(HttpEmbedder, ConfigurationRefusesAnIncompleteRemoteEmbedder) {
  semcached::testing::TempDir dir;
  semcached::testing::WriteFile(dir.File("c.toml"),
                                "[[caches]]\nid = \"r\"\nembedder = \"openai\"\n");
  auto r = semcached::testing::RunCommand(
      {semcached::testing::SemcachedServer::BinaryPath(), "serve", "--config", dir.File("c.toml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("embedder_dim"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace semcached::embed
