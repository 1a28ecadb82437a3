// The pooled asynchronous Redis client against a real Redis 8: protocol, pool, pipelining,
// authentication, TLS, timeouts, retries, the circuit breaker and shutdown.
#include <atomic>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "redis/client.h"
#include "test_support.h"

namespace semcached::testing {
namespace {

using namespace std::chrono_literals;
using redis::Client;
using redis::ClientOptions;
using redis::Reply;
using redis::ReplyType;
using Clock = std::chrono::steady_clock;

ClientOptions OptionsFor(const RedisServer& server, int protocol = 2) {
  ClientOptions o;
  o.port = server.port();
  o.protocol = protocol;
  o.pool_min = 2;
  o.pool_max = 8;
  o.connect_timeout_ms = 500;
  o.command_timeout_ms = 500;
  o.breaker_open_ms = 300;
  return o;
}

std::unique_ptr<Client> MustCreate(const ClientOptions& o) {
  auto c = Client::Create(o);
  if (!c.ok()) throw std::runtime_error(c.status().ToString());
  return std::move(*c);
}

class RedisClientProtocol : public ::testing::TestWithParam<int> {};

TEST_P(RedisClientProtocol, BinarySafeValuesAndBothReplyShapes) {
  RedisServer server;
  auto client = MustCreate(OptionsFor(server, GetParam()));
  std::string blob("\0\r\n\xff binary", 12);
  auto set = client->Execute({"SET", "k", blob});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->str, "OK");
  auto get = client->Execute({"GET", "k"});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->str, blob);
  EXPECT_TRUE(client->Execute({"GET", "absent"})->IsNil());

  ASSERT_TRUE(client->Execute({"HSET", "h", "a", "1", "b", "2.5"}).ok());
  auto all = client->Execute({"HGETALL", "h"});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->type, GetParam() == 3 ? ReplyType::kMap : ReplyType::kArray);
  ASSERT_NE(all->Field("b"), nullptr);
  EXPECT_DOUBLE_EQ(*all->Field("b")->AsDouble(), 2.5);

  auto err = client->Execute({"NOSUCHCOMMAND"});
  ASSERT_TRUE(err.ok());  // the call worked; the reply is the server's error
  EXPECT_TRUE(err->IsError());
  EXPECT_FALSE(redis::ReplyStatus(*err, "NOSUCHCOMMAND").ok());
}

INSTANTIATE_TEST_SUITE_P(Resp, RedisClientProtocol, ::testing::Values(2, 3),
                         [](const auto& info) { return "RESP" + std::to_string(info.param); });

TEST(RedisClient, ReadsTheEvictionPolicyAndFlagsThoseThatEvictKeysWithoutTtl) {
  for (const auto& [policy, evicts] : std::vector<std::pair<std::string, bool>>{
           {"noeviction", false}, {"allkeys-lru", true}, {"volatile-lru", false}}) {
    RedisServer server({"--maxmemory-policy", policy});
    for (int protocol : {2, 3}) {  // an array, or a map
      ClientOptions o;
      o.port = server.port();
      o.protocol = protocol;
      auto client = MustCreate(o);
      auto read = redis::MaxmemoryPolicy(*client);
      ASSERT_TRUE(read.ok()) << read.status().ToString();
      EXPECT_EQ(*read, policy);
      EXPECT_EQ(redis::EvictsKeysWithoutTtl(*read), evicts) << policy;
    }
  }
  EXPECT_TRUE(redis::EvictsKeysWithoutTtl("allkeys-lfu"));
  EXPECT_FALSE(redis::EvictsKeysWithoutTtl("volatile-ttl"));
}

TEST(RedisClient, PipelinesConcurrentCommandsWithinThePoolLimit) {
  RedisServer server;
  auto o = OptionsFor(server);
  o.pool_max = 4;
  o.pipeline_depth = 8;
  auto client = MustCreate(o);
  constexpr int kCommands = 5000;
  std::atomic<int> ok{0}, done{0};
  std::promise<void> all;
  for (int i = 0; i < kCommands; ++i) {
    client->ExecuteAsync({"INCR", "counter"}, [&](Result<Reply> r) {
      if (r.ok() && r->type == ReplyType::kInteger) ok.fetch_add(1);
      if (done.fetch_add(1) + 1 == kCommands) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(20s), std::future_status::ready);
  EXPECT_EQ(ok.load(), kCommands);
  EXPECT_EQ(*client->Execute({"GET", "counter"})->AsInteger(), kCommands);
  auto stats = client->Stats();
  EXPECT_LE(stats.connects, 4u + stats.failures);
  EXPECT_EQ(stats.failures, 0u);

  // The blocking batch form keeps order.
  std::vector<redis::Args> batch;
  for (int i = 0; i < 300; ++i) batch.push_back({"ECHO", std::to_string(i)});
  auto results = client->ExecuteMany(batch);
  ASSERT_EQ(results.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(results[i]->str, std::to_string(i));
}

TEST(RedisClient, AuthenticatesWithUserAndSelectsTheDatabase) {
  RedisServer server(
      {"--requirepass", "s3cret", "--user", "app", "on", ">apppass", "~*", "&*", "+@all"});
  for (int protocol : {2, 3}) {
    auto o = OptionsFor(server, protocol);
    o.username = "app";
    o.password = "apppass";
    o.db = 3;
    auto client = MustCreate(o);
    auto set = client->Execute({"SET", "where", "db3"});
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    auto who = client->Execute({"ACL", "WHOAMI"});
    ASSERT_TRUE(who.ok());
    EXPECT_EQ(who->str, "app");
    auto db = client->Execute({"CLIENT", "INFO"});
    ASSERT_TRUE(db.ok());
    EXPECT_NE(db->str.find(" db=3 "), std::string::npos) << db->str;
  }
  // The default user with the plain requirepass password.
  auto o = OptionsFor(server);
  o.password = "s3cret";
  EXPECT_TRUE(MustCreate(o)->HealthCheck().ok());

  // A wrong password: every command fails with a clear error, quickly.
  o.password = "wrong";
  auto bad = MustCreate(o);
  auto start = Clock::now();
  auto r = bad->Execute({"PING"});
  EXPECT_FALSE(r.ok());
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST(RedisClient, SpeaksTls) {
  TempDir dir;
  auto gen = RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                         dir.File("key.pem"), "-out", dir.File("cert.pem"), "-days", "2", "-subj",
                         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  const int tls_port = FreePort();
  RedisServer server({"--tls-port", std::to_string(tls_port), "--tls-cert-file",
                      dir.File("cert.pem"), "--tls-key-file", dir.File("key.pem"),
                      "--tls-ca-cert-file", dir.File("cert.pem"), "--tls-auth-clients", "no"});
  auto o = OptionsFor(server, 3);
  o.port = tls_port;
  o.tls = true;
  o.tls_ca_file = dir.File("cert.pem");
  o.tls_server_name = "localhost";
  auto client = MustCreate(o);
  auto r = client->Execute({"SET", "secure", "yes"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(client->Execute({"GET", "secure"})->str, "yes");

  // A certificate for another name is refused.
  o.tls_server_name = "someone-else.example";
  auto wrong = MustCreate(o);
  EXPECT_FALSE(wrong->Execute({"PING"}).ok());
}

TEST(RedisClient, HungServerTimesOutAndClosesTheConnection) {
  RedisServer server;
  auto o = OptionsFor(server);
  o.command_timeout_ms = 300;
  auto client = MustCreate(o);
  ASSERT_TRUE(client->HealthCheck().ok());
  server.Pause();
  auto start = Clock::now();
  auto r = client->Execute({"GET", "x"});
  auto took = Clock::now() - start;
  server.Resume();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1500ms);
  // After the server wakes, traffic flows again.
  auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline && !client->HealthCheck().ok()) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(client->HealthCheck().ok());
}

TEST(RedisClient, RetriesAfterTheServerDropsItsConnections) {
  RedisServer server;
  auto client = MustCreate(OptionsFor(server));
  ASSERT_TRUE(client->HealthCheck().ok());
  auto admin = MustCreate(OptionsFor(server));
  ASSERT_TRUE(admin->HealthCheck().ok());
  for (int round = 0; round < 5; ++round) {
    auto id = client->Execute({"CLIENT", "ID"});
    ASSERT_TRUE(id.ok());
    auto killed = admin->Execute({"CLIENT", "KILL", "ID", std::to_string(id->integer)});
    ASSERT_TRUE(killed.ok());
    auto r = client->Execute({"SET", "after-kill", std::to_string(round)});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(client->Execute({"GET", "after-kill"})->str, "4");
}

TEST(RedisClient, BreakerOpensWhenRedisDiesAndTrafficRecoversAfterRestart) {
  RedisServer server;
  auto o = OptionsFor(server);
  o.command_timeout_ms = 300;
  auto client = MustCreate(o);
  ASSERT_TRUE(client->HealthCheck().ok());
  server.Kill();
  int failed = 0;
  for (int i = 0; i < 20; ++i) {
    auto start = Clock::now();
    auto r = client->Execute({"GET", "x"});
    EXPECT_LT(Clock::now() - start, 1s);  // never past the timeout (plus scheduling)
    if (!r.ok()) ++failed;
  }
  EXPECT_EQ(failed, 20);
  EXPECT_EQ(client->Stats().breaker, redis::BreakerState::kOpen);
  // Failing fast while open: far below the timeout.
  auto start = Clock::now();
  auto fast = client->Execute({"GET", "x"});
  EXPECT_FALSE(fast.ok());
  EXPECT_LT(Clock::now() - start, 100ms);
  EXPECT_NE(fast.status().message().find("circuit breaker"), std::string::npos)
      << fast.status().message();

  server.Restart();
  auto restarted = Clock::now();
  while (Clock::now() - restarted < 5s && !client->HealthCheck().ok())
    std::this_thread::sleep_for(20ms);
  EXPECT_LT(Clock::now() - restarted, 5s);
  EXPECT_TRUE(client->Execute({"SET", "x", "1"}).ok());
  EXPECT_EQ(client->Stats().breaker, redis::BreakerState::kClosed);
  EXPECT_GE(client->Stats().breaker_opened, 1u);
}

TEST(RedisClient, ShutdownAnswersEveryCommand) {
  RedisServer server;
  auto client = MustCreate(OptionsFor(server));
  std::atomic<int> answered{0};
  for (int i = 0; i < 2000; ++i) {
    client->ExecuteAsync({"INCR", "n"}, [&](Result<Reply>) { answered.fetch_add(1); });
  }
  client->Shutdown(2s);
  EXPECT_EQ(answered.load(), 2000);
  auto after = client->Execute({"PING"});
  EXPECT_FALSE(after.ok());
  EXPECT_NE(after.status().message().find("shutting down"), std::string::npos);
}

TEST(RedisClient, UnreachableServerFailsWithinTheTimeout) {
  ClientOptions o;
  o.port = FreePort();  // nobody listens
  o.pool_min = 1;
  o.command_timeout_ms = 300;
  auto client = MustCreate(o);
  auto start = Clock::now();
  auto r = client->Execute({"PING"});
  EXPECT_FALSE(r.ok());
  // Refused connects end as kUnavailable; if the retries use up the time first, the call
  // ends as kDeadlineExceeded. Either way, within the timeout.
  EXPECT_TRUE(r.status().code() == ErrorCode::kUnavailable ||
              r.status().code() == ErrorCode::kDeadlineExceeded)
      << r.status().ToString();
  EXPECT_LT(Clock::now() - start, 1s);
}

}  // namespace
}  // namespace semcached::testing
