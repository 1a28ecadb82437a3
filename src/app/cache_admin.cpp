#include "app/cache_admin.h"

#include "common/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>

#include "cache/embedded/embedded_cache.h"
#include "cache/embedded/persistence.h"
#include "cache/redis/redis_cache.h"
#include "embed/builtin_embedder.h"
#include "embed/caching_embedder.h"
#include "embed/http_embedder.h"
#include "embed/static_embedder.h"

namespace semcached::app {

using nlohmann::json;

namespace {

// One loaded copy of each static model per process: caches naming the same model share its
// tables (Embed on a StaticEmbedder reads only, so sharing across threads is safe).
class SharedStaticEmbedder final : public embed::Embedder {
 public:
  explicit SharedStaticEmbedder(std::shared_ptr<embed::StaticEmbedder> model)
      : model_(std::move(model)) {}
  std::size_t dim() const override { return model_->dim(); }
  std::string name() const override { return model_->name(); }
  embed::EmbedderIdentity identity() const override { return model_->identity(); }
  Result<std::vector<float>> Embed(std::string_view text) override { return model_->Embed(text); }

 private:
  std::shared_ptr<embed::StaticEmbedder> model_;
};

Result<std::shared_ptr<embed::StaticEmbedder>> LoadStaticModelOnce(const Config& config,
                                                                   const std::string& model) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<embed::StaticEmbedder>> loaded;
  auto where = ResolveStaticModel(config, model);
  if (!where.ok()) return where.status();
  std::lock_guard lock(mu);
  if (auto shared = loaded[*where].lock()) return shared;
  auto files = where->empty() ? Result<embed::StaticModelFiles>(embed::DefaultStaticModel())
                              : embed::ReadStaticModelDir(*where);
  if (!files.ok()) return files.status();
  if (!model.empty()) files->name = model;
  auto made = embed::StaticEmbedder::Load(*files);
  if (!made.ok()) return made.status();
  std::shared_ptr<embed::StaticEmbedder> shared = std::move(*made);
  spdlog::info("embedder {}: {}, {} dimensions, weights sha256 {}", shared->name(),
               shared->tokenizer().Describe(), shared->dim(), shared->weights_sha256());
  loaded[*where] = shared;
  return shared;
}

}  // namespace

Result<CacheConfig> FindCacheConfig(const Config& config, const std::string& id) {
  std::ifstream in(config.data_dir + "/caches.json");
  if (in) {
    json all = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (all.is_object() && all.contains(id)) return CacheConfigFromJson(all[id]);
  }
  for (const auto& c : DeclaredCaches(config))
    if (c.id == id) return c;
  return NotFound("no cache '" + id + "' in the configuration or " + config.data_dir +
                  "/caches.json");
}

Result<std::string> ResolveStaticModel(const Config& config, const std::string& model) {
  if (model.empty()) return std::string();  // the built-in one
  std::error_code ec;
  if (std::filesystem::is_directory(model, ec)) return model;
  const std::string models_dir =
      config.models_dir.empty() ? config.data_dir + "/models" : config.models_dir;
  const std::string repo = model.substr(0, model.find('@'));
  const auto slash = repo.find('/');
  const bool hub_name = slash != std::string::npos && slash > 0 && slash + 1 < repo.size() &&
                        repo.find('/', slash + 1) == std::string::npos && repo[0] != '.';
  if (!hub_name) {
    return NotFound("embedder_model '" + model +
                    "' is neither a model directory nor OWNER/NAME of a pulled model");
  }
  const std::string dir = models_dir + "/" + repo;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFound("model " + repo + " is not in " + models_dir + ": run `semcached model pull " +
                    model + "` first");
  }
  return dir;
}

Result<std::unique_ptr<embed::Embedder>> MakeEmbedder(const Config& config, const CacheConfig& c) {
  if (c.embedder == "openai") {
    embed::HttpEmbedderOptions ho;
    ho.base_url = c.embedder_url;
    ho.model = c.embedder_model;
    ho.dim = static_cast<std::size_t>(c.embedder_dim);
    ho.api_key_env = c.embedder_api_key_env;
    ho.timeout_ms = static_cast<int>(c.embedder_timeout_ms);
    return std::unique_ptr<embed::Embedder>(std::make_unique<embed::HttpEmbedder>(ho));
  }
  if (c.embedder == "ngram" || c.embedder == "builtin")
    return std::unique_ptr<embed::Embedder>(std::make_unique<embed::BuiltinEmbedder>());
  auto model = LoadStaticModelOnce(config, c.embedder_model);
  if (!model.ok()) {
    return Status(model.status().code(), "cache '" + c.id + "': " + model.status().message());
  }
  return std::unique_ptr<embed::Embedder>(std::make_unique<SharedStaticEmbedder>(*model));
}

Result<std::unique_ptr<cache::Cache>> MakeCache(const Config& config, const CacheConfig& c,
                                                redis::Executor* redis) {
  const std::string store = c.store.empty() ? config.store : c.store;
  if (store == "redis" && redis == nullptr) {
    return InvalidArgument("cache '" + c.id +
                           "' keeps its entries in Redis, but redis.url is not set");
  }
  if (store == "redis" && c.max_bytes != 0) {
    return InvalidArgument("cache '" + c.id +
                           "': max_bytes applies to embedded caches; bound a Redis cache with "
                           "max_entries (or TTLs)");
  }
  const cache::CacheOptions o = ToCacheOptions(c);
  cache::EmbeddedOptions eo;
  // Float originals (for re-scoring) live in a file: RAM holds codes and graph only.
  eo.originals_path = config.data_dir + "/" + c.id + ".vectors.f32";
  if (config.persist.fsync != "off") {
    eo.persist_dir = config.data_dir;
    cache::ParseFsyncPolicy(config.persist.fsync, &eo.fsync);
    eo.snapshot_journal_bytes = static_cast<std::size_t>(config.persist.snapshot_journal_mb) << 20;
  }
  auto made_embedder = MakeEmbedder(config, c);
  if (!made_embedder.ok()) return made_embedder.status();
  std::unique_ptr<embed::Embedder> embedder = std::move(*made_embedder);
  // Popular prompts are embedded once (the LRU keeps 10,000 per cache).
  if (store == "redis") {
    auto made = cache::RedisCache::Create(
        o, std::make_unique<embed::CachingEmbedder>(std::move(embedder), 10000), *redis);
    if (!made.ok()) return made.status();
    (*made)->SetExperiment(o.experiment);
    return std::unique_ptr<cache::Cache>(std::move(*made));
  }
  auto made = cache::EmbeddedCache::Create(
      o, std::make_unique<embed::CachingEmbedder>(std::move(embedder), 10000), {}, eo);
  if (!made.ok()) return made.status();
  (*made)->SetExperiment(o.experiment);
  if ((*made)->restored_entries() > 0) {
    spdlog::info("cache '{}': {} entries restored from {}", c.id, (*made)->restored_entries(),
                 config.data_dir);
  }
  return std::unique_ptr<cache::Cache>(std::move(*made));
}

CacheAdmin::CacheAdmin(const Config& config, cache::CacheRegistry& registry, redis::Executor* redis)
    : config_(config), registry_(registry), redis_(redis) {}

Status CacheAdmin::LoadSaved() {
  const std::string path = config_.data_dir + "/caches.json";
  std::ifstream in(path);
  if (!in) return Status::Ok();  // none created yet
  json all = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (all.is_discarded() || !all.is_object())
    return DataLoss(path + " is not a JSON object of cache definitions");
  std::lock_guard lock(mu_);
  for (auto& [id, body] : all.items()) {
    auto c = CacheConfigFromJson(body);
    if (!c.ok()) return DataLoss(path + ": cache '" + id + "': " + c.status().message());
    if (registry_.Find(c->id).ok()) {
      spdlog::warn(
          "cache '{}' from {} is also declared in the configuration; the configuration wins", id,
          path);
      continue;
    }
    auto made = MakeCache(config_, *c, redis_);
    if (!made.ok()) return made.status();
    if (Status s = registry_.Add(std::move(*made), c->api_keys, /*removable=*/true); !s.ok())
      return s;
    saved_[c->id] = body;
  }
  return Status::Ok();
}

Status CacheAdmin::SaveLocked() const {
  json all = json::object();
  for (const auto& [id, body] : saved_) all[id] = body;
  const std::string path = config_.data_dir + "/caches.json";
  const std::string text = all.dump(2) + "\n";
  return WriteFileDurably(path, text, 0600);  // holds API keys
}

CacheConfig CacheAdmin::ConfigOf(const std::string& id) const {
  if (auto it = saved_.find(id); it != saved_.end()) {
    auto c = CacheConfigFromJson(it->second);  // checked when it was created
    if (c.ok()) return *c;
  }
  for (const auto& c : DeclaredCaches(config_)) {
    if (c.id == id) return c;
  }
  CacheConfig unknown;
  unknown.id = id;
  return unknown;
}

json CacheAdmin::DescribeCache(const cache::Cache& c) const {
  const auto& o = c.options();
  auto st = c.Stats();
  json j = CacheConfigToJson(ConfigOf(o.id));  // the settings, by the configuration's table
  j["source"] = registry_.Removable(o.id) ? "api" : "config";
  j["store"] = c.store_name();
  j["persist"] =
      std::string(c.store_name()) == "redis" ? std::string("redis") : config_.persist.fsync;
  j["api_keys"] = registry_.KeysOf(o.id).size();  // how many, never which
  j["entries"] = st.entries;
  j["text_bytes"] = st.bytes;
  j["tokens_saved"] = st.tokens_saved;
  j["cost_saved_usd"] = st.cost_saved_usd;
  return j;
}

Result<json> CacheAdmin::Create(const json& body) {
  auto c = CacheConfigFromJson(body);
  if (!c.ok()) return c.status();
  if (c->id.empty()) {
    Status s = InvalidArgument("a cache needs an id");
    s.WithField("id", "required", "id is required");
    return s;
  }
  std::lock_guard lock(mu_);
  if (registry_.Find(c->id).ok())
    return Status(ErrorCode::kAlreadyExists, "cache '" + c->id + "' already exists");
  // Leftovers of an earlier cache of this name must not be loaded into the new one.
  if (Status s = cache::RemoveCacheFiles(config_.data_dir, c->id); !s.ok()) return s;
  auto made = MakeCache(config_, *c, redis_);
  if (!made.ok()) return made.status();
  std::shared_ptr<cache::Cache> cache = std::move(*made);
  if (Status s = registry_.Add(cache, c->api_keys, /*removable=*/true); !s.ok()) return s;
  saved_[c->id] = body;
  if (Status s = SaveLocked(); !s.ok()) {
    saved_.erase(c->id);
    (void)registry_.Remove(c->id);
    return s;
  }
  spdlog::info("cache '{}' created through the admin API", c->id);
  return DescribeCache(*cache);
}

Result<json> CacheAdmin::Describe(const std::string& id) const {
  auto c = registry_.Find(id);
  if (!c.ok()) return c.status();
  std::lock_guard lock(mu_);  // saved_
  return DescribeCache(**c);
}

json CacheAdmin::List() const {
  json out = json::array();
  std::lock_guard lock(mu_);  // saved_
  for (const auto& c : registry_.All()) out.push_back(DescribeCache(*c));
  return out;
}

Status CacheAdmin::Delete(const std::string& id) {
  std::lock_guard lock(mu_);
  if (auto job = jobs_.find(id); job != jobs_.end() && job->second->state.load() == 1)
    return Status(ErrorCode::kAlreadyExists,
                  "cache '" + id + "' is being reembedded; delete it when that is done");
  auto removed = registry_.Remove(id);
  if (!removed.ok()) return removed.status();
  saved_.erase(id);
  if (Status s = SaveLocked(); !s.ok()) return s;
  (*removed)->DropPersistence();
  if (Status s = cache::RemoveCacheFiles(config_.data_dir, id); !s.ok()) return s;
  spdlog::info("cache '{}' deleted through the admin API", id);
  return Status::Ok();
}

CacheAdmin::~CacheAdmin() {
  for (auto& w : workers_)
    if (w.joinable()) w.join();
}

Result<json> CacheAdmin::StartReembed(const std::string& id, const json& body) {
  std::lock_guard lock(mu_);
  auto found = registry_.Find(id);
  if (!found.ok()) return found.status();
  std::shared_ptr<cache::Cache> target = *found;
  if (auto job = jobs_.find(id); job != jobs_.end() && job->second->state.load() == 1)
    return Status(ErrorCode::kAlreadyExists, "cache '" + id + "' is being reembedded already");
  if (!body.is_object()) return InvalidArgument("the body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (key.rfind("embedder", 0) != 0) {
      Status s = InvalidArgument("reembed takes embedder settings only, not '" + key + "'");
      s.WithField(key, "embedder", "only the embedder* keys may change");
      return s;
    }
  }
  // The body's values, checked by the configuration's own table, over the cache's settings.
  json probe = body;
  probe["id"] = id;
  auto parsed = CacheConfigFromJson(probe);
  if (!parsed.ok()) return parsed.status();
  CacheConfig next_settings = ConfigOf(id);
  if (body.contains("embedder")) next_settings.embedder = parsed->embedder;
  if (body.contains("embedder_model")) next_settings.embedder_model = parsed->embedder_model;
  if (body.contains("embedder_url")) next_settings.embedder_url = parsed->embedder_url;
  if (body.contains("embedder_dim")) next_settings.embedder_dim = parsed->embedder_dim;
  if (body.contains("embedder_api_key_env"))
    next_settings.embedder_api_key_env = parsed->embedder_api_key_env;
  if (body.contains("embedder_timeout_ms"))
    next_settings.embedder_timeout_ms = parsed->embedder_timeout_ms;
  const json merged = body;
  auto next = MakeEmbedder(config_, next_settings);
  if (!next.ok()) return next.status();
  const embed::EmbedderIdentity identity = (*next)->identity();
  auto job = std::make_shared<ReembedJob>();
  job->state = 1;
  jobs_[id] = job;
  const bool api_created = saved_.count(id) > 0;
  std::unique_ptr<embed::Embedder> wrapped =
      std::make_unique<embed::CachingEmbedder>(std::move(*next), 10000);
  workers_.emplace_back(
      [this, id, target, job, merged, api_created, e = std::move(wrapped)]() mutable {
        Status s = target->Reembed(std::move(e), [&](std::size_t done, std::size_t total) {
          job->done = done;
          job->total = total;
        });
        if (s.ok()) {
          std::lock_guard lock(mu_);
          if (api_created && saved_.count(id)) {
            json saved = saved_[id];
            for (const auto& [key, value] : merged.items())
              if (key.rfind("embedder", 0) == 0) saved[key] = value;
            saved_[id] = saved;
            if (Status w = SaveLocked(); !w.ok()) s = w;
          } else {
            job->note =
                "the configuration file still names the old embedder: change it to the new "
                "one before the next start, or the cache will be refused";
          }
        }
        if (!s.ok()) job->error = s.message();
        job->state = s.ok() ? 2 : 3;
        spdlog::info("cache '{}': reembed {}", id, s.ok() ? "done" : "failed: " + s.message());
      });
  return json{{"state", "running"}, {"embedder", json::parse(identity.ToJson())}};
}

Result<json> CacheAdmin::ReembedStatus(const std::string& id) const {
  std::lock_guard lock(mu_);
  if (!registry_.Find(id).ok()) return NotFound("no cache '" + id + "'");
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return json{{"state", "idle"}};
  const ReembedJob& job = *it->second;
  static const char* kStates[] = {"idle", "running", "done", "failed"};
  const int state = job.state.load();
  json j = {{"state", kStates[state]}, {"done", job.done.load()}, {"total", job.total.load()}};
  if (state >= 2 && !job.error.empty()) j["error"] = job.error;
  if (state >= 2 && !job.note.empty()) j["note"] = job.note;
  return j;
}

}  // namespace semcached::app
