// Faults against the real server: Redis is killed (SIGKILL) under a steady load of inserts and
// searches through the Redis store, then restarted on the same port from its append-only file.
// Every call must end within its timeout, the breaker must open, traffic must recover by
// itself within 5 s of the restart, every acknowledged insert must survive (appendfsync
// always), and no element a search returns may be half-written.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../store/conformance.h"
#include "redis/client.h"
#include "store/redis_store.h"
#include "test_support.h"

namespace semcached::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(RedisResilience, KillAndRestartUnderLoad) {
  RedisServer server({"--appendonly", "yes", "--appendfsync", "always"});
  redis::ClientOptions o;
  o.port = server.port();
  o.pool_min = 2;
  o.pool_max = 8;
  o.command_timeout_ms = 400;
  o.connect_timeout_ms = 200;
  o.breaker_open_ms = 250;
  auto client = std::move(*redis::Client::Create(o));
  store::RedisStoreOptions so;
  so.collection = "resilience";
  so.collection_options.dim = 16;
  auto store = std::move(*store::RedisVectorStore::Open(*client, so));

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::vector<std::pair<Clock::time_point, bool>> outcomes;  // every call: when it ended, ok
  std::atomic<long long> slowest_ms{0};
  auto record = [&](Clock::time_point start, bool ok) {
    auto end = Clock::now();
    long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(end - start).count();
    long long prev = slowest_ms.load();
    while (ms > prev && !slowest_ms.compare_exchange_weak(prev, ms)) {
    }
    std::lock_guard lock(mu);
    outcomes.emplace_back(end, ok);
  };

  std::vector<std::thread> workers;
  struct JoinOnExit {  // a failed assertion or a throw must not leave threads running
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinOnExit() {
      stop.store(true);
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_on_exit{stop, workers};
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937 rng(w);
      for (int seq = 0; !stop.load(); ++seq) {
        std::string id = "w" + std::to_string(w) + "-" + std::to_string(seq);
        std::string attrs =
            R"({"writer":)" + std::to_string(w) + R"(,"seq":)" + std::to_string(seq) + "}";
        auto start = Clock::now();
        Status s = store->Add({id, RandomUnit(rng, 16), attrs});
        record(start, s.ok());
        if (s.ok()) {
          std::lock_guard lock(mu);
          acknowledged.insert(id);
        } else {
          std::this_thread::sleep_for(5ms);
        }
      }
    });
    workers.emplace_back([&, w] {
      std::mt19937 rng(100 + w);
      while (!stop.load()) {
        auto start = Clock::now();
        auto hits = store->Search(RandomUnit(rng, 16), {.k = 5, .with_attributes = true});
        record(start, hits.ok());
        if (!hits.ok()) std::this_thread::sleep_for(5ms);
      }
    });
  }

  std::this_thread::sleep_for(1s);
  server.Kill();
  const auto killed = Clock::now();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(client->Stats().breaker, redis::BreakerState::kOpen);
  const auto restart_begun = Clock::now();
  server.Restart();  // returns once the server answers, its append-only file loaded
  const auto restarted = Clock::now();
  std::this_thread::sleep_for(6s);
  stop.store(true);
  for (auto& t : workers) t.join();
  workers.clear();

  // No call outlived its timeout by more than scheduling slack.
  EXPECT_LE(slowest_ms.load(), 400 + 300) << "a call took " << slowest_ms.load() << " ms";
  // Calls failed while Redis was down, and succeeded before and after.
  std::size_t before = 0, during_failed = 0, after_ok = 0;
  Clock::time_point last_failure{};
  for (auto [when, ok] : outcomes) {
    if (when < killed) before += ok;
    if (when > killed + 100ms && when < restarted) during_failed += !ok;
    if (!ok) last_failure = std::max(last_failure, when);
    if (when > restarted) after_ok += ok;
  }
  EXPECT_GT(before, 10u);
  EXPECT_GT(during_failed, 10u);
  EXPECT_GT(after_ok, 100u);
  const auto recovery =
      std::chrono::duration_cast<std::chrono::milliseconds>(last_failure - restarted).count();
  const auto startup =
      std::chrono::duration_cast<std::chrono::milliseconds>(restarted - restart_begun).count();
  std::cout << "[ resilience ] calls: " << outcomes.size() << ", Redis restart took " << startup
            << " ms; last failure " << recovery
            << " ms after it answered; slowest call: " << slowest_ms.load()
            << " ms, breaker opened " << client->Stats().breaker_opened << " time(s)\n";
  EXPECT_LT(recovery, 5000) << "success rate not back to 100% within 5 s of the restart";
  EXPECT_GE(client->Stats().breaker_opened, 1u);

  // Every acknowledged insert survived the kill (appendfsync always), whole.
  std::vector<redis::Args> checks;
  std::vector<std::string> ids(acknowledged.begin(), acknowledged.end());
  for (const auto& id : ids) checks.push_back({"VGETATTR", store->key(), id});
  auto replies = client->ExecuteMany(checks);
  std::size_t missing = 0;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    ASSERT_TRUE(replies[i].ok()) << replies[i].status().ToString();
    if (!replies[i]->IsText()) {
      ++missing;
      continue;
    }
    auto j = nlohmann::json::parse(replies[i]->str);
    EXPECT_TRUE(j.contains("seq") && j.contains("writer")) << ids[i];
  }
  EXPECT_EQ(missing, 0u) << "acknowledged inserts lost";
  // Whatever a search returns now is complete: a vector and its attributes.
  std::mt19937 rng(7);
  for (int q = 0; q < 20; ++q) {
    auto hits = store->Search(RandomUnit(rng, 16), {.k = 10, .with_attributes = true});
    ASSERT_TRUE(hits.ok());
    for (const auto& h : *hits) {
      EXPECT_FALSE(h.attributes.empty()) << h.id;
      auto v = store->Vector(h.id);
      ASSERT_TRUE(v.ok());
      EXPECT_TRUE(v->has_value() && (*v)->size() == 16u) << h.id;
    }
  }
}

}  // namespace
}  // namespace semcached::testing
