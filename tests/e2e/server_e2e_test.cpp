// Black-box tests of `semcached serve`: a real process on a free port, spoken to over TCP.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace semcached::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool IsJsonProblem(const HttpReply& r, int status, const std::string& type) {
  if (r.status != status) return false;
  if (r.headers.count("content-type") == 0 ||
      r.headers.at("content-type").find("application/json") == std::string::npos) {
    return false;
  }
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  return !j.is_discarded() && j.value("status", 0) == status && j.value("type", "") == type &&
         !j.value("title", "").empty();
}

TEST(ServerE2E, HealthReadyAndMetrics) {
  SemcachedServer server;
  auto health = HttpRequestOnce(server.port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(nlohmann::json::parse(health->body)["status"], "ok");

  auto ready = HttpRequestOnce(server.port(), "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;

  // A request is counted when its response has been written, which the client can see a
  // moment before the server does: scrape until the counts arrive (bounded).
  std::optional<HttpReply> metrics;
  for (int attempt = 0; attempt < 50; ++attempt) {
    metrics = HttpRequestOnce(server.port(), "GET", "/metrics");
    ASSERT_TRUE(metrics);
    if (metrics->body.find(R"(route="/readyz",status="200"} 1)") != std::string::npos &&
        metrics->body.find(R"(route="/healthz",status="200"} 1)") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->headers["content-type"].find("text/plain"), std::string::npos);
  const std::string& m = metrics->body;
  EXPECT_NE(
      m.find(R"(semcached_http_requests_total{method="GET",route="/healthz",status="200"} 1)"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find(
          R"(semcached_http_request_duration_seconds_count{method="GET",route="/readyz",status="200"} 1)"),
      std::string::npos);
  EXPECT_NE(m.find("process_resident_memory_bytes"), std::string::npos);
  EXPECT_NE(m.find("process_cpu_seconds_total"), std::string::npos);
  // This scrape's own connection is open; earlier ones may still be closing.
  auto at = m.find("\nsemcached_http_open_connections ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_GE(std::stod(m.substr(at + 33)), 1.0);
  EXPECT_NE(m.find("semcached_simd_level{level="), std::string::npos);
}

TEST(ServerE2E, KeepAliveServesSeveralRequestsOnOneConnection) {
  SemcachedServer server;
  RawHttpConnection c(server.port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
  }
  // Two pipelined requests in one write.
  ASSERT_TRUE(
      c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto a = c.ReadResponse();
  auto b = c.ReadResponse();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 200);
  EXPECT_NE(b->body.find("ready"), std::string::npos);
}

TEST(ServerE2E, OversizedBodyGets413WithJsonError) {
  SemcachedServer server({"--set", "server.max_body_bytes=2048"});
  std::string body(5000, 'x');
  auto r = HttpRequestOnce(server.port(), "POST", "/healthz", body,
                           {{"Content-Type", "application/json"}});
  ASSERT_TRUE(r);
  EXPECT_TRUE(IsJsonProblem(*r, 413, "/errors/payload-too-large")) << r->status << " " << r->body;
  EXPECT_NE(r->body.find("2048"), std::string::npos);

  // A chunked body that grows past the limit is refused too.
  RawHttpConnection c(server.port());
  std::string chunk(1500, 'y');
  char size[16];
  snprintf(size, sizeof(size), "%zx", chunk.size());
  ASSERT_TRUE(c.Send("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     std::string(size) + "\r\n" + chunk + "\r\n" + size + "\r\n" + chunk +
                     "\r\n0\r\n\r\n"));
  auto chunked = c.ReadResponse();
  ASSERT_TRUE(chunked);
  EXPECT_TRUE(IsJsonProblem(*chunked, 413, "/errors/payload-too-large")) << chunked->body;

  // The server is still fine afterwards.
  auto health = HttpRequestOnce(server.port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServerE2E, OversizedHeadGets431) {
  SemcachedServer server({"--set", "server.max_header_bytes=2048"});
  auto r =
      HttpRequestOnce(server.port(), "GET", "/healthz", "", {{"X-Big", std::string(4096, 'h')}});
  ASSERT_TRUE(r);
  EXPECT_TRUE(IsJsonProblem(*r, 431, "/errors/header-too-large")) << r->body;
}

TEST(ServerE2E, MalformedRequestGets400) {
  SemcachedServer server;
  for (const std::string& raw :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET /healthz HTTP/9.9\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n"),
        std::string("POST /healthz HTTP/1.1\r\nContent-Length: zz\r\n\r\n")}) {
    RawHttpConnection c(server.port());
    ASSERT_TRUE(c.Send(raw));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r) << raw;
    EXPECT_TRUE(IsJsonProblem(*r, 400, "/errors/invalid-data")) << raw << " -> " << r->body;
    EXPECT_TRUE(c.WaitForClose(5s));
  }
}

TEST(ServerE2E, UnknownRouteAndWrongMethodGetJsonErrors) {
  SemcachedServer server;
  auto nf = HttpRequestOnce(server.port(), "GET", "/nope");
  ASSERT_TRUE(nf);
  EXPECT_TRUE(IsJsonProblem(*nf, 404, "/errors/resource/not-found"));
  auto wm = HttpRequestOnce(server.port(), "DELETE", "/metrics");
  ASSERT_TRUE(wm);
  EXPECT_TRUE(IsJsonProblem(*wm, 405, "/errors/method-not-allowed"));
  EXPECT_EQ(wm->headers["allow"], "GET");
}

TEST(ServerE2E, SilentClientIsDroppedAfterReadTimeout) {
  SemcachedServer server({"--set", "server.read_timeout_ms=300"});
  RawHttpConnection c(server.port());
  ASSERT_TRUE(c.connected());
  auto start = Clock::now();
  EXPECT_TRUE(c.WaitForClose(10s)) << "the server kept a silent connection open";
  auto waited = Clock::now() - start;
  EXPECT_GE(waited, 250ms);  // not before the timeout...
  EXPECT_LT(waited, 8s);     // ...and not never

  // A request that starts but never finishes is dropped after the same timeout.
  RawHttpConnection partial(server.port());
  ASSERT_TRUE(partial.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  start = Clock::now();
  EXPECT_TRUE(partial.WaitForClose(10s));
  EXPECT_GE(Clock::now() - start, 250ms);

  // The server still answers others.
  auto health = HttpRequestOnce(server.port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServerE2E, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  SemcachedServer server({"--set", "server.idle_timeout_ms=300"});
  RawHttpConnection c(server.port());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.ReadResponse());
  EXPECT_TRUE(c.WaitForClose(10s));
}

TEST(ServerE2E, SigtermLetsARequestInFlightComplete) {
  SemcachedServer server;
  RawHttpConnection idle(server.port());  // open, no request: must be closed promptly
  RawHttpConnection busy(server.port());
  ASSERT_TRUE(idle.connected() && busy.connected());
  // Half a request is in flight when the signal arrives.
  ASSERT_TRUE(busy.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  std::this_thread::sleep_for(200ms);
  server.process().Signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(server.process().Running()) << "exited with a request in flight";
  EXPECT_TRUE(idle.WaitForClose(5s)) << "idle connection not closed on shutdown";
  ASSERT_TRUE(busy.Send("\r\n"));
  auto r = busy.ReadResponse();
  ASSERT_TRUE(r) << server.Log();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["connection"], "close");
  auto code = server.process().Wait(10s);
  ASSERT_TRUE(code) << "did not exit after draining";
  EXPECT_EQ(*code, 0) << server.Log();
  // No new connections once draining has finished.
  RawHttpConnection late(server.port());
  EXPECT_FALSE(late.connected());
}

TEST(ServerE2E, SigintAlsoShutsDownCleanly) {
  SemcachedServer server;
  ASSERT_TRUE(HttpRequestOnce(server.port(), "GET", "/healthz"));
  server.process().Signal(SIGINT);
  auto code = server.process().Wait(10s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
}

TEST(ServerE2E, JsonLogsOneLinePerRequestAtDebug) {
  SemcachedServer server({"--log-format", "json", "--log-level", "debug"});
  ASSERT_TRUE(HttpRequestOnce(server.port(), "GET", "/healthz?probe=1"));
  server.process().Signal(SIGTERM);
  ASSERT_TRUE(server.process().Wait(10s));
  std::string log = server.Log();
  int request_lines = 0;
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    std::string line = log.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg"));
    // Query values are not logged (they may hold API keys), only their names.
    if (j["msg"].get<std::string>().find("GET /healthz?probe=... 200") != std::string::npos) {
      ++request_lines;
    }
  }
  EXPECT_EQ(request_lines, 1) << log;
}

TEST(ServerE2E, BadConfigurationIsRefusedAtStartup) {
  TempDir dir;
  auto r = RunCommand({SemcachedServer::BinaryPath(), "serve", "--set", "server.prot=1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("server.prot"), std::string::npos) << r.output;

  r = RunCommand({SemcachedServer::BinaryPath(), "serve"}, {{"SEMCACHED_SERVER_PORT", "http"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("SEMCACHED_SERVER_PORT"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not an integer"), std::string::npos) << r.output;

  WriteFile(dir.File("bad.toml"), "[log]\nlevel = \"chatty\"\n");
  r = RunCommand({SemcachedServer::BinaryPath(), "serve", "--config", dir.File("bad.toml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("log.level"), std::string::npos) << r.output;
}

TEST(ServerE2E, FlagsBeatEnvironmentBeatFile) {
  TempDir dir;
  WriteFile(dir.File("c.toml"), "[server]\nport = 1111\nthreads = 3\n[log]\nlevel = \"warn\"\n");
  auto r = RunCommand(
      {SemcachedServer::BinaryPath(), "config", "--config", dir.File("c.toml"), "--port", "3333"},
      {{"SEMCACHED_SERVER_PORT", "2222"}, {"SEMCACHED_LOG_LEVEL", "error"}});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("port = 3333"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("level = 'error'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("threads = 3"), std::string::npos) << r.output;
}

TEST(ServerE2E, PortInUseIsAClearError) {
  SemcachedServer first;
  auto r = RunCommand({SemcachedServer::BinaryPath(), "serve", "--port",
                       std::to_string(first.port()), "--data-dir", "/tmp/semcached-test-inuse"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("cannot listen"), std::string::npos) << r.output;
}

TEST(ServerE2E, VersionNamesTheSimdLevel) {
  auto r = RunCommand({SemcachedServer::BinaryPath(), "version"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("semcached "), std::string::npos);
  EXPECT_NE(r.output.find("simd: "), std::string::npos);
  EXPECT_NE(r.output.find("redis: not configured"), std::string::npos);
}

}  // namespace
}  // namespace semcached::testing

namespace semcached::testing {
namespace {

int Entries(int port, const std::string& cache, const std::string& key) {
  auto r = HttpRequestOnce(port, "GET", "/v1/caches/" + cache + "/stats", "",
                           {{"Authorization", "Bearer " + key}});
  if (!r || r->status != 200) return -1;
  return nlohmann::json::parse(r->body)["entries"].get<int>();
}

TEST(ImportE2E, ImportsWholeFilesOrNothing) {
  TempDir dir;
  WriteFile(dir.File("c.toml"), "[[caches]]\nid = \"imp\"\napi_keys = [\"k\"]\n");
  SemcachedServer server({"--config", dir.File("c.toml")});
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  std::string good;
  for (int i = 0; i < 30; ++i) {
    good += R"({"prompt":"imported question )" + std::to_string(i) + R"(","response":"answer )" +
            std::to_string(i) + R"(","attributes":{"src":"file"}})" + "\n";
  }
  WriteFile(dir.File("good.jsonl"), good + "\n");
  auto r = RunCommand({SemcachedServer::BinaryPath(), "import", "imp", dir.File("good.jsonl"),
                       "--url", url, "--api-key", "k", "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("30 entries imported"), std::string::npos) << r.output;
  EXPECT_EQ(Entries(server.port(), "imp", "k"), 30);
  auto hit = HttpRequestOnce(server.port(), "POST", "/v1/caches/imp/entries/search",
                             R"({"prompt":"Imported question 17","attributes":{"src":"file"}})",
                             {{"Authorization", "Bearer k"}});
  ASSERT_TRUE(hit);
  EXPECT_NE(hit->body.find("answer 17"), std::string::npos) << hit->body;

  // A bad line: reported by number, nothing imported.
  WriteFile(dir.File("bad.jsonl"),
            good.substr(0, good.find('\n') + 1) +
                "{\"prompt\":\"p\",\"response\":\"r\"}\n{\"prompt\":3}\nnot json\n");
  r = RunCommand({SemcachedServer::BinaryPath(), "import", "imp", dir.File("bad.jsonl"), "--url",
                  url, "--api-key", "k", "--no-progress"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("line 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("line 4"), std::string::npos) << r.output;
  EXPECT_EQ(Entries(server.port(), "imp", "k"), 30);

  // The server refuses an entry part-way (a prompt over its size limit): rolled back.
  std::string partial;
  for (int i = 0; i < 5; ++i)
    partial += R"({"prompt":"partial )" + std::to_string(i) + R"(","response":"r"})" + "\n";
  partial += R"({"prompt":")" + std::string(70000, 'x') + R"(","response":"r"})" + "\n";
  WriteFile(dir.File("partial.jsonl"), partial);
  r = RunCommand({SemcachedServer::BinaryPath(), "import", "imp", dir.File("partial.jsonl"),
                  "--url", url, "--api-key", "k", "--no-progress"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("rolled back 5 of 5"), std::string::npos) << r.output;
  EXPECT_EQ(Entries(server.port(), "imp", "k"), 30);
}

// `semcached export` writes what `import` reads back: every entry with its attributes and the
// TTL it has left, optionally its vector; behind the cache's keys.
TEST(ExportE2E, ExportedEntriesImportIntoAnotherCache) {
  TempDir dir;
  WriteFile(dir.File("c.toml"),
            "[[caches]]\nid = \"from\"\napi_keys = [\"k\"]\n[[caches]]\nid = \"to\"\n"
            "api_keys = [\"k\"]\n");
  SemcachedServer server({"--config", dir.File("c.toml")});
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  for (int i = 0; i < 40; ++i) {
    std::string body = R"({"prompt":"exported question )" + std::to_string(i) +
                       R"(","response":"answer )" + std::to_string(i) +
                       R"(","attributes":{"team":"t)" + std::to_string(i % 2) + R"("})";
    if (i % 4 == 0) body += R"(,"ttlMillis":3600000)";
    auto stored = HttpRequestOnce(server.port(), "POST", "/v1/caches/from/entries", body + "}",
                                  {{"Authorization", "Bearer k"}});
    ASSERT_TRUE(stored && stored->status == 201);
  }
  auto r = RunCommand({SemcachedServer::BinaryPath(), "export", "from", "--out",
                       dir.File("from.jsonl"), "--vectors", "--url", url, "--api-key", "k"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("40 entries of cache from"), std::string::npos) << r.output;
  std::ifstream in(dir.File("from.jsonl"));
  std::string line;
  int lines = 0, with_ttl = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    ++lines;
    EXPECT_EQ(j["id"].get<std::string>().size(), 32u);
    EXPECT_EQ(j["attributes"].size(), 1u);
    EXPECT_EQ(j["vector"].size(), 128u);  // the default model's dimensions
    if (j.contains("ttlMillis")) {
      ++with_ttl;
      EXPECT_GT(j["ttlMillis"].get<long long>(), 3500000);
      EXPECT_LE(j["ttlMillis"].get<long long>(), 3600000);
    }
  }
  EXPECT_EQ(lines, 40);
  EXPECT_EQ(with_ttl, 10);
  // Read back into another cache: the same entries, searchable in their scope.
  r = RunCommand({SemcachedServer::BinaryPath(), "import", "to", dir.File("from.jsonl"), "--url",
                  url, "--api-key", "k", "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Entries(server.port(), "to", "k"), 40);
  auto hit = HttpRequestOnce(server.port(), "POST", "/v1/caches/to/entries/search",
                             R"({"prompt":"Exported question 17","attributes":{"team":"t1"}})",
                             {{"Authorization", "Bearer k"}});
  ASSERT_TRUE(hit);
  EXPECT_NE(hit->body.find("answer 17"), std::string::npos) << hit->body;
  // Without the cache's key: refused, nothing written.
  r = RunCommand({SemcachedServer::BinaryPath(), "export", "from", "--out", dir.File("no.jsonl"),
                  "--url", url, "--api-key", "wrong"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("HTTP 40"), std::string::npos) << r.output;
  EXPECT_FALSE(std::ifstream(dir.File("no.jsonl")).good());
}

}  // namespace
}  // namespace semcached::testing

namespace semcached::testing {
namespace {

// `semcached import` sends each line through the shared HTTP client; a bad line stops the
// import before anything is sent.
TEST(ServerE2E, ImportLoadsAJsonlFileIntoARunningServer) {
  SemcachedServer server;
  TempDir dir;
  WriteFile(dir.File("bad.jsonl"), "{\"prompt\":\"a\",\"response\":\"b\"}\nnot json\n");
  auto bad =
      RunCommand({SemcachedServer::BinaryPath(), "import", "default", dir.File("bad.jsonl"),
                  "--url", "http://127.0.0.1:" + std::to_string(server.port()), "--no-progress"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("line 2"), std::string::npos) << bad.output;
  WriteFile(dir.File("ok.jsonl"),
            "{\"prompt\":\"What is the capital of France?\",\"response\":\"Paris.\"}\n"
            "{\"prompt\":\"How tall is Mount Everest?\",\"response\":\"8,849 m\","
            "\"attributes\":{\"topic\":\"geo\"}}\n");
  auto ok =
      RunCommand({SemcachedServer::BinaryPath(), "import", "default", dir.File("ok.jsonl"), "--url",
                  "http://127.0.0.1:" + std::to_string(server.port()), "--no-progress"});
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("2 entries imported"), std::string::npos) << ok.output;
  auto hit =
      HttpRequestOnce(server.port(), "POST", "/v1/caches/default/entries/search",
                      R"({"prompt":"how tall is mount everest","attributes":{"topic":"geo"}})",
                      {{"Authorization", "Bearer any"}});
  ASSERT_TRUE(hit);
  auto data = nlohmann::json::parse(hit->body)["data"];
  ASSERT_EQ(data.size(), 1u) << hit->body;
  EXPECT_EQ(data[0]["response"], "8,849 m");
}

}  // namespace
}  // namespace semcached::testing
