#include "app/reembed.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include <thread>

#include <nlohmann/json.hpp>

#include "app/cache_admin.h"
#include "app/progress.h"
#include "cache/embedded/embedded_cache.h"
#include "cache/redis/redis_cache.h"
#include "common/http_client.h"
#include "embed/caching_embedder.h"

namespace semcached::app {
namespace {

// The server holds the data directory: ask it, through the admin API, to reembed while it
// keeps answering, and follow its progress.
int ReembedOnline(const Config& config, const std::string& cache_id, const CacheConfig& settings,
                  const std::string& url, bool progress) {
  auto fail = [](int code, const std::string& why) {
    std::cerr << "semcached reembed: " << why << "\n";
    return code;
  };
  if (config.admin_api_key.empty())
    return fail(1, "data_dir '" + config.data_dir +
                       "' is in use by a running semcached, and reembedding through it needs "
                       "admin_api_key (or stop it and run this again)");
  nlohmann::json body = nlohmann::json::object();
  const nlohmann::json all = CacheConfigToJson(settings);
  for (auto it = all.begin(); it != all.end(); ++it)
    if (it.key().rfind("embedder", 0) == 0) body[it.key()] = it.value();
  HttpClient http;
  HttpRequest start;
  start.url = url + "/v1/caches/" + cache_id + "/reembed";
  start.headers = {"Authorization: Bearer " + config.admin_api_key,
                   "Content-Type: application/json"};
  start.body = body.dump();
  auto started = http.Perform(start);
  if (!started.ok()) return fail(1, start.url + ": " + started.status().message());
  if (started->status != 202)
    return fail(
        started->status == 404 || started->status == 400 ? 2 : 1,
        "the server refused: HTTP " + std::to_string(started->status) + " " + started->body);
  std::cerr << "reembedding cache '" << cache_id << "' in the running server at " << url
            << "; it keeps answering from the old vectors until the switch\n";
  const auto t0 = std::chrono::steady_clock::now();
  HttpRequest poll;
  poll.method = "GET";
  poll.url = start.url;
  poll.headers = {start.headers[0]};
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto r = http.Perform(poll);
    if (!r.ok() || r->status != 200)
      return fail(1, "lost the server while it reembedded: " +
                         (r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message()));
    const auto j = nlohmann::json::parse(r->body, nullptr, false);
    const std::string state = j.value("state", "");
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress)
      ShowProgress("entries", j.value("done", 0u), j.value("total", 0u), secs, state != "running");
    if (state == "running") continue;
    if (state != "done") return fail(1, "reembed failed: " + j.value("error", state));
    std::cerr << "cache '" << cache_id << "' switched to the new vectors\n";
    if (j.contains("note")) std::cerr << "note: " << j["note"].get<std::string>() << "\n";
    return 0;
  }
}

// A Redis cache, reembedded from here: Redis is shared, there is no lock to take.
int ReembedInRedis(const Config& config, const std::string& cache_id, const CacheConfig& settings,
                   redis::Executor& redis, bool progress) {
  auto fail = [](int code, const std::string& why) {
    std::cerr << "semcached reembed: " << why << "\n";
    return code;
  };
  auto embedder = MakeEmbedder(config, settings);
  if (!embedder.ok()) return fail(1, embedder.status().message());
  const embed::EmbedderIdentity target = (*embedder)->identity();
  cache::RedisCacheOptions ro;
  ro.allow_embedder_change = true;
  auto made = cache::RedisCache::Create(
      ToCacheOptions(settings),
      std::make_unique<embed::CachingEmbedder>(std::move(*embedder), 10000), redis, ro);
  if (!made.ok()) return fail(1, made.status().message());
  auto& cache = **made;
  std::cerr << "reembedding " << cache.Stats().entries << " entries of cache '" << cache_id
            << "' in Redis with " << target.Describe()
            << "; every instance keeps answering from the old vectors until the switch\n";
  auto show = ProgressBar(progress, "entries");
  auto next = MakeEmbedder(config, settings);
  if (!next.ok()) return fail(1, next.status().message());
  if (Status s =
          cache.Reembed(std::make_unique<embed::CachingEmbedder>(std::move(*next), 10000), show);
      !s.ok())
    return fail(1, s.message());
  std::cerr << "cache '" << cache_id << "' now holds vectors made by " << target.Describe()
            << " (generation " << cache.generation()
            << "); instances configured with the old embedder refuse it until restarted with "
               "the new settings\n";
  return 0;
}

}  // namespace

int RunReembed(const Config& config, const std::string& cache_id, bool progress,
               const std::string& server_url, redis::Executor* redis) {
  auto fail = [](int code, const std::string& why) {
    std::cerr << "semcached reembed: " << why << "\n";
    return code;
  };
  auto settings = FindCacheConfig(config, cache_id);
  if (!settings.ok()) return fail(2, settings.status().message());
  const std::string store = settings->store.empty() ? config.store : settings->store;
  if (store == "redis") {
    if (!server_url.empty())
      return ReembedOnline(config, cache_id, *settings, server_url, progress);
    if (redis == nullptr)
      return fail(2,
                  "cache '" + cache_id + "' keeps its entries in Redis, but redis.url is not set");
    return ReembedInRedis(config, cache_id, *settings, *redis, progress);
  }
  if (config.persist.fsync == "off")
    return fail(2, "persist.fsync is off: cache '" + cache_id + "' has no files to reembed");

  const std::string lock_path = config.data_dir + "/semcached.lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return fail(1, "cannot open " + lock_path);
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    const std::string url = !server_url.empty() ? server_url
                                                : "http://" + config.server.host + ":" +
                                                      std::to_string(config.server.port);
    return ReembedOnline(config, cache_id, *settings, url, progress);
  }

  auto embedder = MakeEmbedder(config, *settings);
  if (!embedder.ok()) return fail(1, embedder.status().message());
  const embed::EmbedderIdentity target = (*embedder)->identity();

  cache::EmbeddedOptions eo;
  eo.originals_path = config.data_dir + "/" + cache_id + ".vectors.f32";
  eo.persist_dir = config.data_dir;
  cache::ParseFsyncPolicy(config.persist.fsync, &eo.fsync);
  eo.allow_embedder_change = true;
  // Opened with the new embedder, but its old vectors as they are: only Reembed follows.
  auto made = cache::EmbeddedCache::Create(
      ToCacheOptions(*settings),
      std::make_unique<embed::CachingEmbedder>(std::move(*embedder), 10000), {}, eo);
  if (!made.ok()) return fail(1, made.status().message());
  auto& cache = **made;
  std::cerr << "reembedding " << cache.Stats().entries << " entries of cache '" << cache_id
            << "' with " << target.Describe() << "\n";
  auto show = ProgressBar(progress, "entries");
  auto next = MakeEmbedder(config, *settings);
  if (!next.ok()) return fail(1, next.status().message());
  if (Status s =
          cache.Reembed(std::make_unique<embed::CachingEmbedder>(std::move(*next), 10000), show);
      !s.ok())
    return fail(1, s.message());
  made->reset();  // closes the files; the new vectors are in the snapshot
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(config.data_dir, ec))
    if (f.path().filename().string().rfind(cache_id + ".vectors.f32.reembed", 0) == 0)
      std::filesystem::remove(f.path(), ec);
  std::cerr << "cache '" << cache_id << "' now holds vectors made by " << target.Describe() << "\n";
  ::close(lock_fd);
  return 0;
}

}  // namespace semcached::app
