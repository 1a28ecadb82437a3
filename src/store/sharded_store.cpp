#include "store/sharded_store.h"

#include <algorithm>
#include <unordered_map>

#include "common/hash.h"
#include "store/filter.h"

namespace semcached::store {

Result<Placement> ParsePlacement(const std::string& name) {
  if (name == "hash") return Placement::kHash;
  if (name == "simhash") return Placement::kSimHash;
  return InvalidArgument("placement must be hash or simhash, not '" + name + "'");
}

ShardedStore::ShardedStore(redis::Executor& executor, const ShardedStoreOptions& options)
    : executor_(executor), options_(options) {}

Result<std::unique_ptr<ShardedStore>> ShardedStore::Open(redis::Executor& executor,
                                                         const ShardedStoreOptions& options) {
  if (options.shards == 0 || options.shards > 1024)
    return InvalidArgument("shards must be between 1 and 1024");
  if (Status s = ValidateCollectionName(options.base.collection); !s.ok()) return s;
  std::unique_ptr<ShardedStore> store(new ShardedStore(executor, options));
  for (std::size_t i = 0; i < options.shards; ++i) {
    const std::string tag = options.base.collection + "~" + std::to_string(i);
    auto shard = RedisVectorStore::OpenKey(executor, options.base,
                                           RedisVectorKey(options.base.key_namespace, tag));
    if (!shard.ok()) return shard.status();
    store->shards_.push_back(std::move(*shard));
  }
  if (options.placement == Placement::kSimHash) {
    // ceil(log2(shards)) hyperplanes, components uniform in [-1, 1] from a keyed hash: the
    // same on every machine and every build, unlike <random>'s distributions.
    std::size_t bits = 1;
    while ((std::size_t{1} << bits) < options.shards) ++bits;
    const std::size_t dim = options.base.collection_options.dim;
    for (std::size_t p = 0; p < bits; ++p) {
      std::vector<float> plane(dim);
      for (std::size_t i = 0; i < dim; ++i) {
        const std::uint64_t h = Mix64(options.seed ^ Mix64(p * dim + i + 1));
        plane[i] = static_cast<float>(
            static_cast<double>(h >> 11) / static_cast<double>(1ULL << 53) * 2.0 - 1.0);
      }
      store->planes_.push_back(std::move(plane));
    }
  }
  return store;
}

std::size_t ShardedStore::ShardOf(const Element& e) const {
  if (options_.placement == Placement::kHash) return Fnv1a64(e.id, options_.seed) % shards_.size();
  std::size_t code = 0;
  for (std::size_t p = 0; p < planes_.size(); ++p) {
    double dot = 0;
    for (std::size_t i = 0; i < e.vector.size(); ++i)
      dot += static_cast<double>(planes_[p][i]) * e.vector[i];
    if (dot >= 0) code |= std::size_t{1} << p;
  }
  return code % shards_.size();
}

Result<std::vector<redis::Args>> ShardedStore::WriteCommands(const Element& e) const {
  if (Status s = ValidateElement(e, options_.base.collection_options.dim); !s.ok()) return s;
  return PlaceCommands(e);
}

std::vector<redis::Args> ShardedStore::RemoveCommands(const std::string& id) const {
  if (options_.placement == Placement::kHash) {
    return {{"VREM", shards_[ShardOf({id, {}, {}})]->key(), id}};
  }
  std::vector<redis::Args> out;
  for (const auto& shard : shards_) out.push_back({"VREM", shard->key(), id});
  return out;
}

std::string ShardedStore::HashTagFor(const Element& e) const {
  return shards_[ShardOf(e)]->HashTagFor(e);
}

std::vector<std::string> ShardedStore::SetKeys() const {
  std::vector<std::string> out;
  for (const auto& shard : shards_) out.push_back(shard->key());
  return out;
}

std::vector<redis::Args> ShardedStore::PlaceCommands(const Element& e) const {
  const std::size_t target = ShardOf(e);
  std::vector<redis::Args> out;
  out.push_back(shards_[target]->VaddArgs(e));
  if (options_.placement == Placement::kSimHash) {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      if (i != target) out.push_back({"VREM", shards_[i]->key(), e.id});
    }
  }
  return out;
}

namespace {

Status FirstFailure(const std::vector<Result<redis::Reply>>& replies, const char* what) {
  for (const auto& r : replies) {
    if (!r.ok()) return r.status();
    if (r->IsError()) return Internal(std::string("redis ") + what + ": " + r->str);
  }
  return Status::Ok();
}

}  // namespace

Status ShardedStore::Add(const Element& e) {
  if (Status s = ValidateElement(e, options_.base.collection_options.dim); !s.ok()) return s;
  return FirstFailure(executor_.ExecuteMany(PlaceCommands(e)), "VADD");
}

std::vector<Status> ShardedStore::AddBatch(const std::vector<Element>& elements) {
  std::vector<Status> out(elements.size());
  const std::size_t batch = options_.base.batch_size;
  for (std::size_t start = 0; start < elements.size(); start += batch) {
    const std::size_t end = std::min(elements.size(), start + batch);
    std::vector<redis::Args> commands;
    std::vector<std::pair<std::size_t, std::size_t>> owner;  // element, number of commands
    for (std::size_t i = start; i < end; ++i) {
      out[i] = ValidateElement(elements[i], options_.base.collection_options.dim);
      if (!out[i].ok()) continue;
      auto cmds = PlaceCommands(elements[i]);
      owner.emplace_back(i, cmds.size());
      for (auto& c : cmds) commands.push_back(std::move(c));
    }
    auto replies = executor_.ExecuteMany(std::move(commands));
    std::size_t at = 0;
    for (auto [element, count] : owner) {
      std::vector<Result<redis::Reply>> mine;
      for (std::size_t j = 0; j < count; ++j) mine.push_back(std::move(replies[at++]));
      out[element] = FirstFailure(mine, "VADD");
    }
  }
  return out;
}

Result<std::vector<Hit>> ShardedStore::Search(std::span<const float> query,
                                              const SearchRequest& r) const {
  if (Status s = ValidateQuery(query, options_.base.collection_options.dim, r); !s.ok()) return s;
  if (!r.filter.empty()) {
    auto f = Filter::Parse(r.filter);
    if (!f.ok()) return f.status();
  }
  std::vector<redis::Args> commands;
  for (const auto& shard : shards_) commands.push_back(shard->VsimArgs(query, r));
  auto replies = executor_.ExecuteMany(std::move(commands));
  struct Found {
    Hit hit;
    std::size_t shard;
  };
  std::unordered_map<std::string, Found> best;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].ok()) return replies[i].status();
    auto hits = RedisVectorStore::ParseVsim(*replies[i]);
    if (!hits.ok()) return hits.status();
    for (auto& h : *hits) {
      auto it = best.find(h.id);
      if (it == best.end()) {
        std::string id = h.id;
        best.emplace(std::move(id), Found{std::move(h), i});
      } else if (it->second.hit.similarity < h.similarity) {
        it->second = Found{std::move(h), i};
      }
    }
  }
  std::vector<Found> merged;
  merged.reserve(best.size());
  for (auto& [id, f] : best) merged.push_back(std::move(f));
  std::sort(merged.begin(), merged.end(), [](const Found& a, const Found& b) {
    return a.hit.similarity != b.hit.similarity ? a.hit.similarity > b.hit.similarity
                                                : a.hit.id < b.hit.id;
  });
  if (merged.size() > r.k) merged.resize(r.k);
  if (r.with_attributes && !merged.empty()) {
    std::vector<redis::Args> gets;
    for (const auto& f : merged) gets.push_back({"VGETATTR", shards_[f.shard]->key(), f.hit.id});
    auto attrs = executor_.ExecuteMany(std::move(gets));
    for (std::size_t i = 0; i < attrs.size(); ++i) {
      if (!attrs[i].ok()) return attrs[i].status();
      if (attrs[i]->IsText()) merged[i].hit.attributes = attrs[i]->str;
    }
  }
  std::vector<Hit> out;
  out.reserve(merged.size());
  for (auto& f : merged) out.push_back(std::move(f.hit));
  return out;
}

Result<bool> ShardedStore::Remove(const std::string& id) {
  if (options_.placement == Placement::kHash) return shards_[ShardOf({id, {}, {}})]->Remove(id);
  std::vector<redis::Args> commands;
  for (const auto& shard : shards_) commands.push_back({"VREM", shard->key(), id});
  auto replies = executor_.ExecuteMany(std::move(commands));
  if (Status s = FirstFailure(replies, "VREM"); !s.ok()) return s;
  return std::any_of(replies.begin(), replies.end(),
                     [](const auto& r) { return r->AsInteger().ok() && *r->AsInteger() != 0; });
}

Result<std::optional<std::vector<float>>> ShardedStore::Vector(const std::string& id) const {
  if (options_.placement == Placement::kHash) return shards_[ShardOf({id, {}, {}})]->Vector(id);
  for (const auto& shard : shards_) {
    auto v = shard->Vector(id);
    if (!v.ok() || v->has_value()) return v;
  }
  return std::optional<std::vector<float>>();
}

Result<std::optional<std::string>> ShardedStore::Attributes(const std::string& id) const {
  if (options_.placement == Placement::kHash) return shards_[ShardOf({id, {}, {}})]->Attributes(id);
  for (const auto& shard : shards_) {
    auto a = shard->Attributes(id);
    if (!a.ok() || a->has_value()) return a;
  }
  return std::optional<std::string>();
}

Status ShardedStore::SetAttributes(const std::string& id, const std::string& attributes) {
  if (options_.placement == Placement::kHash)
    return shards_[ShardOf({id, {}, {}})]->SetAttributes(id, attributes);
  if (Status s = ValidateAttributes(attributes); !s.ok()) return s;
  for (const auto& shard : shards_) {
    Status s = shard->SetAttributes(id, attributes);
    if (s.code() != ErrorCode::kNotFound) return s;
  }
  return NotFound("no element '" + id + "'");
}

Result<StoreInfo> ShardedStore::Info() const {
  std::vector<redis::Args> commands;
  for (const auto& shard : shards_) commands.push_back({"VCARD", shard->key()});
  auto replies = executor_.ExecuteMany(std::move(commands));
  if (Status s = FirstFailure(replies, "VCARD"); !s.ok()) return s;
  StoreInfo info;
  info.backend = "redis-sharded";
  for (const auto& r : replies)
    info.size += static_cast<std::size_t>(r->AsInteger().ok() ? *r->AsInteger() : 0);
  info.dim = options_.base.collection_options.dim;
  info.quantization = options_.base.collection_options.quantization;
  info.M = options_.base.collection_options.M;
  return info;
}

Status ShardedStore::Clear() {
  std::vector<redis::Args> commands;
  for (const auto& shard : shards_) commands.push_back({"DEL", shard->key()});
  return FirstFailure(executor_.ExecuteMany(std::move(commands)), "DEL");
}

}  // namespace semcached::store
