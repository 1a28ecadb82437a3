#include "store/redis_store.h"

#include <cctype>
#include <cstring>

#include "store/filter.h"
#include "store/score.h"

namespace semcached::store {

namespace {

std::string Blob(std::span<const float> v) {
  // FP32 little-endian, as VADD/VSIM expect (x86-64 is little-endian).
  std::string out(v.size() * sizeof(float), '\0');
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// An error reply the store did not expect: the server's words, kept for the operator.
Status ServerError(const redis::Reply& reply, const char* command) {
  return Internal(std::string("redis ") + command + ": " + reply.str);
}

const char* QuantFlag(Quantization q) { return SpellingOf(q).vadd_flag; }

const char* VinfoQuantName(Quantization q) { return SpellingOf(q).vinfo_type; }

}  // namespace

std::string RedisVectorKey(const std::string& key_namespace, const std::string& tag) {
  return key_namespace + ":{" + tag + "}:vectors";
}

Status ValidateCollectionName(const std::string& name) {
  if (name.empty() || name.size() > 128)
    return InvalidArgument("collection name must have 1 to 128 characters");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return InvalidArgument("collection name '" + name +
                             "' may hold only letters, digits, '_', '-' and '.'");
    }
  }
  return Status::Ok();
}

RedisVectorStore::RedisVectorStore(redis::Executor& client, const RedisStoreOptions& options,
                                   std::string key)
    : client_(client), options_(options), key_(std::move(key)) {}

Result<std::unique_ptr<RedisVectorStore>> RedisVectorStore::Open(redis::Executor& client,
                                                                 const RedisStoreOptions& options) {
  if (Status s = ValidateCollectionName(options.collection); !s.ok()) return s;
  return OpenKey(client, options, RedisVectorKey(options.key_namespace, options.collection));
}

Result<std::unique_ptr<RedisVectorStore>> RedisVectorStore::OpenKey(
    redis::Executor& client, const RedisStoreOptions& options, std::string key) {
  const auto& c = options.collection_options;
  if (c.dim == 0) return InvalidArgument("a collection needs a dimension");
  if (c.reduce >= c.dim) return InvalidArgument("REDUCE must be smaller than the dimension");
  if (c.M < 4 || c.M > 512) return InvalidArgument("M must be between 4 and 512");
  if (options.batch_size == 0) return InvalidArgument("batch_size must be positive");
  std::unique_ptr<RedisVectorStore> store(new RedisVectorStore(client, options, std::move(key)));
  if (Status s = store->CheckExisting(); !s.ok()) return s;
  return store;
}

Status RedisVectorStore::CheckExisting() {
  auto info = client_.Execute({"VINFO", key_});
  if (!info.ok()) return info.status();
  if (info->IsNil()) return Status::Ok();  // created by the first VADD
  if (info->IsError()) return ServerError(*info, "VINFO");
  const auto& c = options_.collection_options;
  if (const auto* q = info->Field("quant-type"); q && q->str != VinfoQuantName(c.quantization)) {
    return InvalidArgument("vector set " + key_ + " exists with quantization " + q->str + ", not " +
                           VinfoQuantName(c.quantization) + ": open it with the same flags");
  }
  if (const auto* m = info->Field("hnsw-m");
      m && m->AsInteger().ok() && static_cast<std::size_t>(*m->AsInteger()) != c.M) {
    return InvalidArgument("vector set " + key_ + " exists with M " +
                           std::to_string(*m->AsInteger()) + ", not " + std::to_string(c.M));
  }
  const std::size_t stored_dim = c.reduce != 0 ? c.reduce : c.dim;
  const auto* d = info->Field("vector-dim");
  if (d && d->AsInteger().ok() && static_cast<std::size_t>(*d->AsInteger()) != stored_dim) {
    return InvalidArgument("vector set " + key_ + " exists with dimension " +
                           std::to_string(*d->AsInteger()) + ", not " + std::to_string(stored_dim));
  }
  return Status::Ok();
}

redis::Args RedisVectorStore::VaddArgs(const Element& e) const {
  const auto& c = options_.collection_options;
  redis::Args args{"VADD", key_};
  if (c.reduce != 0) args.insert(args.end(), {"REDUCE", std::to_string(c.reduce)});
  args.insert(args.end(), {"FP32", Blob(e.vector), e.id});
  if (options_.threaded_insert) args.emplace_back("CAS");
  args.insert(args.end(), {QuantFlag(c.quantization), "EF", std::to_string(c.ef_construction), "M",
                           std::to_string(c.M), "SETATTR", e.attributes});
  return args;
}

Result<std::vector<redis::Args>> RedisVectorStore::WriteCommands(const Element& e) const {
  if (Status s = ValidateElement(e, options_.collection_options.dim); !s.ok()) return s;
  return std::vector<redis::Args>{VaddArgs(e)};
}

std::vector<redis::Args> RedisVectorStore::RemoveCommands(const std::string& id) const {
  return {{"VREM", key_, id}};
}

std::string RedisVectorStore::HashTagFor(const Element&) const {
  const auto open = key_.find('{');
  const auto close = key_.find('}', open);
  return open == std::string::npos || close == std::string::npos
             ? key_
             : key_.substr(open + 1, close - open - 1);
}

Status RedisVectorStore::Add(const Element& e) {
  if (Status s = ValidateElement(e, options_.collection_options.dim); !s.ok()) return s;
  auto r = client_.Execute(VaddArgs(e));
  if (!r.ok()) return r.status();
  if (r->IsError()) return ServerError(*r, "VADD");
  return Status::Ok();
}

std::vector<Status> RedisVectorStore::AddBatch(const std::vector<Element>& elements) {
  std::vector<Status> out(elements.size());
  const std::size_t batch = options_.batch_size;
  for (std::size_t start = 0; start < elements.size(); start += batch) {
    const std::size_t end = std::min(elements.size(), start + batch);
    std::vector<redis::Args> commands;
    std::vector<std::size_t> which;
    for (std::size_t i = start; i < end; ++i) {
      out[i] = ValidateElement(elements[i], options_.collection_options.dim);
      if (!out[i].ok()) continue;
      commands.push_back(VaddArgs(elements[i]));
      which.push_back(i);
    }
    auto results = client_.ExecuteMany(std::move(commands));
    for (std::size_t j = 0; j < results.size(); ++j) {
      if (!results[j].ok()) {
        out[which[j]] = results[j].status();
      } else if (results[j]->IsError()) {
        out[which[j]] = ServerError(*results[j], "VADD");
      }
    }
  }
  return out;
}

redis::Args RedisVectorStore::VsimArgs(std::span<const float> query, const SearchRequest& r) const {
  redis::Args args{"VSIM", key_, "FP32", Blob(query), "WITHSCORES", "COUNT", std::to_string(r.k)};
  if (r.ef != 0) args.insert(args.end(), {"EF", std::to_string(std::max(r.ef, r.k))});
  if (!r.filter.empty()) {
    args.insert(args.end(), {"FILTER", r.filter});
    if (r.filter_ef != 0) args.insert(args.end(), {"FILTER-EF", std::to_string(r.filter_ef)});
  }
  if (r.exact) args.emplace_back("TRUTH");
  return args;
}

Result<std::vector<Hit>> RedisVectorStore::ParseVsim(const redis::Reply& reply) {
  if (reply.IsError()) return ServerError(reply, "VSIM");
  std::vector<Hit> hits;
  if (reply.IsNil()) return hits;
  if (!reply.IsAggregate() || reply.elements.size() % 2 != 0) {
    return Internal("redis VSIM: unexpected reply: " + reply.Describe());
  }
  hits.reserve(reply.elements.size() / 2);
  for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
    auto score = reply.elements[i + 1].AsDouble();
    if (!score.ok()) return Internal("redis VSIM: " + score.status().message());
    Hit h;
    h.id = reply.elements[i].str;
    h.similarity = CosineFromRedisScore(*score);
    hits.push_back(std::move(h));
  }
  return hits;
}

Result<std::vector<Hit>> RedisVectorStore::Search(std::span<const float> query,
                                                  const SearchRequest& r) const {
  if (Status s = ValidateQuery(query, options_.collection_options.dim, r); !s.ok()) return s;
  if (!r.filter.empty()) {
    auto f = Filter::Parse(r.filter);  // refuse a bad filter with our message, before Redis
    if (!f.ok()) return f.status();
  }
  auto reply = client_.Execute(VsimArgs(query, r));
  if (!reply.ok()) return reply.status();
  auto hits = ParseVsim(*reply);
  if (!hits.ok() || !r.with_attributes || hits->empty()) return hits;
  std::vector<redis::Args> gets;
  for (const auto& h : *hits) gets.push_back({"VGETATTR", key_, h.id});
  auto attrs = client_.ExecuteMany(std::move(gets));
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    if (!attrs[i].ok()) return attrs[i].status();
    if (attrs[i]->IsText()) (*hits)[i].attributes = attrs[i]->str;
  }
  return hits;
}

Result<bool> RedisVectorStore::Remove(const std::string& id) {
  auto r = client_.Execute({"VREM", key_, id});
  if (!r.ok()) return r.status();
  if (r->IsError()) return ServerError(*r, "VREM");
  auto n = r->AsInteger();
  if (!n.ok()) return Internal("redis VREM: " + n.status().message());
  return *n != 0;
}

Result<std::optional<std::vector<float>>> RedisVectorStore::Vector(const std::string& id) const {
  auto r = client_.Execute({"VEMB", key_, id});
  if (!r.ok()) return r.status();
  if (r->IsNil()) return std::optional<std::vector<float>>();
  if (r->IsError()) {
    if (r->str.find("does not exist") != std::string::npos)
      return std::optional<std::vector<float>>();
    return ServerError(*r, "VEMB");
  }
  std::vector<float> v;
  v.reserve(r->elements.size());
  for (const auto& e : r->elements) {
    auto d = e.AsDouble();
    if (!d.ok()) return Internal("redis VEMB: " + d.status().message());
    v.push_back(static_cast<float>(*d));
  }
  return std::optional<std::vector<float>>(std::move(v));
}

Result<std::optional<std::string>> RedisVectorStore::Attributes(const std::string& id) const {
  auto exists = client_.ExecuteMany({{"VISMEMBER", key_, id}, {"VGETATTR", key_, id}});
  for (auto& r : exists) {
    if (!r.ok()) return r.status();
    if (r->IsError()) return ServerError(*r, "VGETATTR");
  }
  auto member = exists[0]->AsInteger();
  if (!member.ok() || *member == 0) return std::optional<std::string>();
  return std::optional<std::string>(exists[1]->IsText() ? exists[1]->str : std::string());
}

Status RedisVectorStore::SetAttributes(const std::string& id, const std::string& attributes) {
  if (Status s = ValidateAttributes(attributes); !s.ok()) return s;
  auto r = client_.Execute({"VSETATTR", key_, id, attributes});
  if (!r.ok()) return r.status();
  if (r->IsError()) return ServerError(*r, "VSETATTR");
  auto n = r->AsInteger();
  if (!n.ok() || *n == 0) return NotFound("no element '" + id + "'");
  return Status::Ok();
}

Result<StoreInfo> RedisVectorStore::Info() const {
  auto r = client_.Execute({"VCARD", key_});
  if (!r.ok()) return r.status();
  if (r->IsError()) return ServerError(*r, "VCARD");
  StoreInfo info;
  info.backend = "redis";
  info.size = static_cast<std::size_t>(r->AsInteger().ok() ? *r->AsInteger() : 0);
  info.dim = options_.collection_options.dim;
  info.quantization = options_.collection_options.quantization;
  info.M = options_.collection_options.M;
  return info;
}

Status RedisVectorStore::Clear() {
  auto r = client_.Execute({"DEL", key_});
  if (!r.ok()) return r.status();
  if (r->IsError()) return ServerError(*r, "DEL");
  return Status::Ok();
}

}  // namespace semcached::store
