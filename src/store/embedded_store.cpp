#include "store/embedded_store.h"

#include <mutex>

#include <nlohmann/json.hpp>

#include "store/filter.h"

namespace semcached::store {

struct EmbeddedStore::Meta {
  std::string id;
  std::string attributes;
  nlohmann::json parsed;  // null when there are no attributes
};

std::shared_ptr<const EmbeddedStore::Meta> EmbeddedStore::MakeMeta(std::string id,
                                                                   std::string attributes) {
  auto m = std::make_shared<Meta>();
  m->id = std::move(id);
  if (!attributes.empty()) m->parsed = nlohmann::json::parse(attributes, nullptr, false);
  m->attributes = std::move(attributes);
  return m;
}

Result<std::unique_ptr<EmbeddedStore>> EmbeddedStore::Create(const CollectionOptions& options) {
  if (options.dim == 0) return InvalidArgument("a collection needs a dimension");
  if (options.reduce != 0)
    return InvalidArgument(
        "REDUCE is a Redis store option; the embedded store keeps every dimension");
  vector::HnswOptions h;
  h.dim = options.dim;
  h.metric = vector::Metric::kCosine;
  h.M = options.M;
  h.ef_construction = options.ef_construction;
  auto index = vector::HnswIndex::Create(h);
  if (!index.ok()) return index.status();
  return std::unique_ptr<EmbeddedStore>(new EmbeddedStore(options, std::move(*index)));
}

EmbeddedStore::EmbeddedStore(const CollectionOptions& options,
                             std::unique_ptr<vector::HnswIndex> index)
    : options_(options), index_(std::move(index)) {}

// Lock order: the index calls the filter (which takes mu_ shared) under its own lock, so mu_
// is never held while calling into the index.
Status EmbeddedStore::Add(const Element& e) {
  if (Status s = ValidateElement(e, options_.dim); !s.ok()) return s;
  std::uint64_t label;
  bool inserted;
  {
    std::unique_lock lock(mu_);
    auto [it, fresh] = labels_.try_emplace(e.id, next_label_);
    if (fresh) ++next_label_;
    label = it->second;
    inserted = fresh;
  }
  Status s = index_->Add(label, e.vector.data(), e.vector.size());
  std::unique_lock lock(mu_);
  if (!s.ok()) {
    auto it = labels_.find(e.id);
    if (inserted && it != labels_.end() && it->second == label) labels_.erase(it);
    return s;
  }
  meta_[label] = MakeMeta(e.id, e.attributes);
  return Status::Ok();
}

std::vector<Status> EmbeddedStore::AddBatch(const std::vector<Element>& elements) {
  std::vector<Status> out;
  out.reserve(elements.size());
  for (const auto& e : elements) out.push_back(Add(e));
  return out;
}

Result<std::vector<Hit>> EmbeddedStore::Search(std::span<const float> query,
                                               const SearchRequest& r) const {
  if (Status s = ValidateQuery(query, options_.dim, r); !s.ok()) return s;
  std::shared_ptr<const Filter> filter;
  if (!r.filter.empty()) {
    auto f = Filter::Parse(r.filter);
    if (!f.ok()) return f.status();
    filter = std::move(*f);
  }
  vector::SearchParams p;
  p.k = r.k;
  p.ef = std::max<std::size_t>(r.ef == 0 ? 64 : r.ef, r.k);
  if (filter && r.filter_ef > p.ef) p.ef = r.filter_ef;
  p.precision = r.exact ? vector::Precision::kExact : vector::Precision::kInt8Rescore;
  std::function<bool(std::uint64_t)> predicate;
  if (filter) {
    predicate = [this, &filter](std::uint64_t label) {
      std::shared_ptr<const Meta> m;
      {
        std::shared_lock lock(mu_);
        auto it = meta_.find(label);
        if (it == meta_.end()) return false;
        m = it->second;
      }
      return !m->parsed.is_null() && filter->Matches(m->parsed);
    };
    p.filter = &predicate;
  }
  auto hits = index_->Search(query.data(), query.size(), p);
  if (!hits.ok()) return hits.status();
  std::vector<Hit> out;
  out.reserve(hits->size());
  std::shared_lock lock(mu_);
  for (const auto& h : *hits) {
    auto it = meta_.find(h.label);
    if (it == meta_.end()) continue;  // removed while the search ran
    Hit hit;
    hit.id = it->second->id;
    hit.similarity = vector::HnswIndex::Similarity(vector::Metric::kCosine, h.distance);
    if (r.with_attributes) hit.attributes = it->second->attributes;
    out.push_back(std::move(hit));
  }
  return out;
}

Result<bool> EmbeddedStore::Remove(const std::string& id) {
  std::uint64_t label;
  {
    std::unique_lock lock(mu_);
    auto it = labels_.find(id);
    if (it == labels_.end()) return false;
    label = it->second;
    labels_.erase(it);
    meta_.erase(label);
  }
  Status s = index_->Remove(label);
  if (!s.ok() && s.code() != ErrorCode::kNotFound) return s;
  return true;
}

Result<std::optional<std::vector<float>>> EmbeddedStore::Vector(const std::string& id) const {
  std::uint64_t label;
  {
    std::shared_lock lock(mu_);
    auto it = labels_.find(id);
    if (it == labels_.end()) return std::optional<std::vector<float>>();
    label = it->second;
  }
  auto v = index_->Get(label);
  if (!v.ok()) {
    if (v.status().code() == ErrorCode::kNotFound) return std::optional<std::vector<float>>();
    return v.status();
  }
  return std::optional<std::vector<float>>(std::move(*v));
}

Result<std::optional<std::string>> EmbeddedStore::Attributes(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = labels_.find(id);
  if (it == labels_.end()) return std::optional<std::string>();
  return std::optional<std::string>(meta_.at(it->second)->attributes);
}

Status EmbeddedStore::SetAttributes(const std::string& id, const std::string& attributes) {
  if (Status s = ValidateAttributes(attributes); !s.ok()) return s;
  std::unique_lock lock(mu_);
  auto it = labels_.find(id);
  if (it == labels_.end()) return NotFound("no element '" + id + "'");
  meta_[it->second] = MakeMeta(id, attributes);
  return Status::Ok();
}

Result<StoreInfo> EmbeddedStore::Info() const {
  StoreInfo info;
  info.backend = "embedded";
  {
    std::shared_lock lock(mu_);
    info.size = labels_.size();
  }
  info.dim = options_.dim;
  info.quantization = options_.quantization;
  info.M = options_.M;
  return info;
}

Status EmbeddedStore::Clear() {
  std::unordered_map<std::string, std::uint64_t> labels;
  {
    std::unique_lock lock(mu_);
    labels.swap(labels_);
    meta_.clear();
  }
  for (const auto& [id, label] : labels) {
    Status s = index_->Remove(label);
    if (!s.ok() && s.code() != ErrorCode::kNotFound) return s;
  }
  return Status::Ok();
}

}  // namespace semcached::store
