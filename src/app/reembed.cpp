#include "app/reembed.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "app/cache_admin.h"
#include "cache/embedded/embedded_cache.h"
#include "embed/caching_embedder.h"

namespace semcached::app {

int RunReembed(const Config& config, const std::string& cache_id, bool progress) {
  auto fail = [](int code, const std::string& why) {
    std::cerr << "semcached reembed: " << why << "\n";
    return code;
  };
  auto settings = FindCacheConfig(config, cache_id);
  if (!settings.ok()) return fail(2, settings.status().message());
  const std::string store = settings->store.empty() ? config.store : settings->store;
  if (store == "redis")
    return fail(2, "cache '" + cache_id +
                       "' keeps its vectors in Redis; reembed handles embedded caches only");
  if (config.persist.fsync == "off")
    return fail(2, "persist.fsync is off: cache '" + cache_id + "' has no files to reembed");

  const std::string lock_path = config.data_dir + "/semcached.lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
    return fail(1, "data_dir '" + config.data_dir +
                       "' is in use by a running semcached: stop it first (lock " + lock_path +
                       ")");

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
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  auto show = [&](std::size_t done, std::size_t total) {
    if (!progress) return;
    const auto now = std::chrono::steady_clock::now();
    if (done != total && now - last < std::chrono::milliseconds(100)) return;
    last = now;
    const double share = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const int filled = static_cast<int>(share * 30);
    const double secs = std::chrono::duration<double>(now - start).count();
    std::fprintf(stderr, "\r  [%s%s] %3.0f%% %zu/%zu entries, %.0f/s",
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(30 - filled), ' ').c_str(), share * 100, done,
                 total, secs > 0 ? static_cast<double>(done) / secs : 0.0);
    if (done == total) std::fprintf(stderr, "\n");
  };
  auto next = MakeEmbedder(config, *settings);
  if (!next.ok()) return fail(1, next.status().message());
  if (Status s =
          cache.Reembed(std::make_unique<embed::CachingEmbedder>(std::move(*next), 10000), show);
      !s.ok())
    return fail(1, s.message());
  made->reset();  // closes the files; the new vectors are in the snapshot
  std::error_code ec;
  std::filesystem::remove(eo.originals_path + ".reembed", ec);
  std::cerr << "cache '" << cache_id << "' now holds vectors made by " << target.Describe() << "\n";
  ::close(lock_fd);
  return 0;
}

}  // namespace semcached::app
