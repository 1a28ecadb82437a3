#include "cache/redis/redis_cache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "cache/fingerprint.h"
#include "cache/guards.h"
#include "cache/redis/schema.h"
#include "common/tracing.h"

namespace semcached::cache {

namespace field = redis_schema::field;
using store::RedisStoreOptions;
using store::RedisVectorStore;
using store::SearchRequest;
using store::ValidateCollectionName;

namespace {

using Steady = std::chrono::steady_clock;
using Micros = std::chrono::duration<double, std::micro>;

// A FILTER expression for an attribute scope, when Redis's filter language can say it
// (plain field names, values without quotes or backslashes); otherwise empty, and the scope
// is checked on the candidates only.
std::string ScopeFilter(const cache::Attributes& scope) {
  std::string out;
  for (const auto& [k, v] : scope) {
    const bool plain_key = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (!plain_key || v.find_first_of("\"\\") != std::string::npos) return "";
    if (!out.empty()) out += " and ";
    out += "." + k + " == \"" + v + "\"";
  }
  return out;
}

const std::string* FieldText(const redis::Reply& hash, std::string_view name) {
  const redis::Reply* f = hash.Field(name);
  return f != nullptr && f->IsText() ? &f->str : nullptr;
}

std::int64_t FieldInt(const redis::Reply& hash, std::string_view name) {
  const redis::Reply* f = hash.Field(name);
  if (f == nullptr) return 0;
  auto v = f->AsInteger();
  return v.ok() ? *v : 0;
}

// The EXEC reply of a transaction: nil when aborted, else one reply per command.
Status CheckExec(const Result<redis::Reply>& r, const char* what) {
  if (!r.ok()) return r.status();
  if (r->IsError()) return Internal(std::string("redis ") + what + ": " + r->str);
  if (r->IsNil()) return Unavailable(std::string("redis ") + what + ": transaction aborted");
  for (const auto& e : r->elements) {
    if (e.IsError()) return Internal(std::string("redis ") + what + ": " + e.str);
  }
  return Status::Ok();
}

}  // namespace

RedisCache::RedisCache(cache::CacheOptions options, redis::Executor& executor,
                       RedisCacheOptions redis_options, Clock clock, Generation generation)
    : options_(std::move(options)),
      redis_(executor),
      redis_options_(std::move(redis_options)),
      clock_(std::move(clock)),
      keys_(redis_options_.key_namespace, options_.id),
      generation_(std::make_shared<const Generation>(std::move(generation))),
      instance_id_(cache::MakeEntryId(cache::RandomU64(), cache::RandomU64())) {
  shares_labels_ = true;
}

Status RedisCache::ShareLabels() {
  std::lock_guard one_at_a_time(labels_mu_);
  std::vector<redis::Args> adds;
  for (const auto& [entry, l] : TakeOutgoingLabels()) {
    char similarity[32];
    std::snprintf(similarity, sizeof similarity, "%.6f", static_cast<double>(l.similarity));
    adds.push_back({"XADD", keys_.Labels(), "MAXLEN", "~", std::to_string(kMaxSharedLabels), "*",
                    "e", entry, "s", similarity, "r", l.refused_by_guards ? "1" : "0", "c",
                    l.same_question ? "1" : "0", "o", instance_id_});
  }
  if (!adds.empty()) {
    for (const auto& r : redis_.ExecuteMany(std::move(adds))) {
      if (!r.ok()) return r.status();  // these labels stay this instance's alone
      if (Status s = redis::ReplyStatus(*r, "XADD"); !s.ok()) return s;
    }
  }
  // The others' labels since the last read, a batch at a time.
  for (;;) {
    auto got =
        redis_.Execute({"XRANGE", keys_.Labels(), "(" + labels_read_to_, "+", "COUNT", "5000"});
    if (!got.ok()) return got.status();
    if (Status s = redis::ReplyStatus(*got, "XRANGE"); !s.ok()) return s;
    for (const redis::Reply& item : got->elements) {
      if (item.elements.size() != 2 || !item.elements[0].IsText()) continue;
      labels_read_to_ = item.elements[0].str;
      const redis::Reply& fields = item.elements[1];
      const redis::Reply *e = fields.Field("e"), *sim = fields.Field("s"), *r = fields.Field("r"),
                         *c = fields.Field("c"), *o = fields.Field("o");
      if (!e || !sim || !r || !c || !o || o->str == instance_id_) continue;
      auto similarity = sim->AsDouble();
      if (!similarity.ok() || !(*similarity >= -1 && *similarity <= 1)) continue;
      ImportLabel(e->str, {static_cast<float>(*similarity), r->str == "1", c->str == "1"});
    }
    if (got->elements.size() < 5000) return Status::Ok();
  }
}

namespace {

// NS:{C}:generation's value (absent: 0); -1 for what no semcached writes.
std::int64_t GenerationOf(const redis::Reply& reply) {
  if (reply.IsNil()) return 0;
  auto n = reply.AsInteger();
  return n.ok() && *n >= 0 ? *n : -1;
}

// The vector set of one generation of a cache.
Result<std::shared_ptr<store::RedisVectorStore>> OpenVectorSet(
    redis::Executor& executor, const RedisCacheOptions& redis_options, const std::string& id,
    std::int64_t generation, std::size_t dim) {
  RedisStoreOptions so;
  so.key_namespace = redis_options.key_namespace;
  so.collection = id;
  so.collection_options.dim = dim;
  so.collection_options.quantization = redis_options.quantization;
  so.collection_options.M = redis_options.M;
  auto opened = RedisVectorStore::OpenKey(
      executor, so, redis_schema::Keys(redis_options.key_namespace, id).Vectors(generation));
  if (!opened.ok()) return opened.status();
  return std::shared_ptr<store::RedisVectorStore>(std::move(*opened));
}

// What Redis records of a cache's vectors: the embedder identity (nil before the first
// instance records it) and the generation, read in one step.
struct VectorRecord {
  redis::Reply embedder;
  std::int64_t generation = 0;
};

Result<VectorRecord> ReadVectorRecord(redis::Executor& executor, const redis_schema::Keys& keys) {
  auto recorded = executor.Execute({"MGET", keys.Embedder(), keys.Generation()});
  if (!recorded.ok()) return recorded.status();
  if (!recorded->IsAggregate() || recorded->elements.size() != 2)
    return Internal("redis MGET: unexpected reply");
  VectorRecord out;
  out.embedder = std::move(recorded->elements[0]);
  out.generation = GenerationOf(recorded->elements[1]);
  if (out.generation < 0) return DataLoss(keys.Generation() + " is not a generation number");
  return out;
}

}  // namespace

Result<std::unique_ptr<RedisCache>> RedisCache::Create(cache::CacheOptions options,
                                                       std::unique_ptr<embed::Embedder> embedder,
                                                       redis::Executor& executor,
                                                       RedisCacheOptions redis_options,
                                                       Clock clock) {
  if (options.id.empty()) return InvalidArgument("a cache needs an id");
  if (!embedder) return InvalidArgument("a cache needs an embedder");
  if (Status s = ValidateCollectionName(options.id); !s.ok()) return s;
  // The first instance records its embedder; any other must embed the same way.
  const redis_schema::Keys keys(redis_options.key_namespace, options.id);
  Generation generation;
  generation.identity = embedder->identity();
  auto recorded = ReadVectorRecord(executor, keys);
  if (!recorded.ok()) return recorded.status();
  generation.number = recorded->generation;
  redis::Reply record = std::move(recorded->embedder);
  std::size_t dim = generation.identity.dim;
  if (record.IsNil()) {
    auto info = executor.Execute({"VINFO", keys.Vectors(generation.number)});
    if (!info.ok()) return info.status();
    const auto* d = info->IsNil() ? nullptr : info->Field("vector-dim");
    if (d && d->AsInteger().ok() &&
        static_cast<std::size_t>(*d->AsInteger()) != generation.identity.dim) {
      embed::EmbedderIdentity old;
      old.kind = "an earlier embedder";
      old.dim = static_cast<std::size_t>(*d->AsInteger());
      if (!redis_options.allow_embedder_change)
        return InvalidArgument(embed::EmbedderMismatch(options.id, old, generation.identity));
      dim = old.dim;
    } else {
      auto set = executor.Execute({"SET", keys.Embedder(), generation.identity.ToJson(), "NX"});
      if (!set.ok()) return set.status();
      if (set->IsNil()) {  // lost a race
        auto again = executor.Execute({"GET", keys.Embedder()});
        if (!again.ok()) return again.status();
        record = *again;
      }
    }
  }
  if (record.IsText()) {
    auto was = embed::EmbedderIdentity::FromJson(record.str);
    if (!was) return DataLoss(keys.Embedder() + " is not an embedder identity");
    if (!was->SameVectors(generation.identity)) {
      if (!redis_options.allow_embedder_change)
        return InvalidArgument(embed::EmbedderMismatch(options.id, *was, generation.identity));
      generation.identity = *was;  // what the vectors are until Reembed replaces them
      dim = was->dim;
    }
  }
  auto vectors = OpenVectorSet(executor, redis_options, options.id, generation.number, dim);
  if (!vectors.ok()) return vectors.status();
  generation.vectors = std::move(*vectors);
  generation.embedder = std::move(embedder);
  if (!clock) clock = SystemNowMs;
  return std::unique_ptr<RedisCache>(new RedisCache(std::move(options), executor,
                                                    std::move(redis_options), std::move(clock),
                                                    std::move(generation)));
}

std::shared_ptr<const RedisCache::Generation> RedisCache::Current() const {
  std::lock_guard lock(generation_mu_);
  return generation_;
}

Status RedisCache::FollowGeneration(const Generation& used) {
  if (Current()->number != used.number) return Status::Ok();  // this process switched already
  auto recorded = ReadVectorRecord(redis_, keys_);
  if (!recorded.ok()) return recorded.status();
  const std::int64_t number = recorded->generation;
  if (number == used.number) return Status::Ok();
  const redis::Reply& record = recorded->embedder;
  auto now = record.IsText() ? embed::EmbedderIdentity::FromJson(record.str) : std::nullopt;
  if (!now) return DataLoss(keys_.Embedder() + " is not an embedder identity");
  if (!now->SameVectors(used.identity))
    return FailedPrecondition("cache '" + options_.id + "' was reembedded (by another instance) " +
                              "with " + now->Describe() + ", and this instance embeds with " +
                              used.identity.Describe() +
                              ": restart it with the cache's new embedder settings");
  auto vectors = OpenVectorSet(redis_, redis_options_, options_.id, number, used.identity.dim);
  if (!vectors.ok()) return vectors.status();
  std::lock_guard lock(generation_mu_);
  if (generation_->number == used.number) {
    auto next = std::make_shared<Generation>(*generation_);
    next->number = number;
    next->vectors = std::move(*vectors);
    generation_ = std::move(next);
  }
  return Status::Ok();
}

std::string RedisCache::Key(const std::string& suffix) const { return keys_.Of(suffix); }

Result<std::string> RedisCache::Store(const std::string& prompt, const std::string& response,
                                      const cache::Attributes& attributes,
                                      std::optional<std::int64_t> ttl_ms) {
  auto normalized = cache::CheckStore(options_, prompt, response, attributes, ttl_ms);
  if (!normalized.ok()) return normalized.status();
  const std::string exact = cache::ExactKey(options_.id, *normalized, {});
  const std::string attrs = nlohmann::json(attributes).dump();
  // Twice at most: a reembed may switch the generation between the embedding and the write.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto generation = Current();
    auto vec = generation->embedder->EmbedToStore(*normalized);
    if (!vec.ok()) return vec.status();
    const std::string id = cache::MakeEntryId(cache::RandomU64(), cache::RandomU64());
    const std::int64_t now = clock_();
    const std::int64_t ttl = ttl_ms ? *ttl_ms : options_.default_ttl_ms;
    const std::int64_t expires = ttl > 0 ? now + ttl : 0;
    std::vector<redis::Args> tx;
    // One field and its value a line.
    // clang-format off
    tx.push_back({"HSET", keys_.Entry(id),
                  field::kPrompt,        prompt,
                  field::kResponse,      response,
                  field::kAttributes,    attrs,
                  field::kNormalized,    *normalized,
                  field::kCreatedMs,     std::to_string(now),
                  field::kExpiresMs,     std::to_string(expires),
                  field::kTtlMs,         std::to_string(ttl > 0 ? ttl : 0),
                  field::kExactKey,      exact,
                  field::kLastAccessMs,  std::to_string(now),
                  field::kHits,          "0",
                  field::kResponseBytes, std::to_string(response.size()),
                  field::kTextBytes,     std::to_string(cache::TextBytes(prompt, response, attributes))});
    // clang-format on
    if (ttl > 0) tx.push_back({"PEXPIRE", keys_.Entry(id), std::to_string(ttl)});
    tx.push_back({"SADD", keys_.Exact(exact), id});
    tx.push_back({"SADD", keys_.Ids(), id});
    if (ttl > 0) tx.push_back({"ZADD", keys_.Expiry(), std::to_string(expires), id});
    tx.push_back({"INCR", keys_.Writes()});
    auto vadd = generation->vectors->WriteCommands({id, std::move(*vec), attrs});
    if (!vadd.ok()) return vadd.status();
    for (auto& command : *vadd) tx.push_back(std::move(command));
    tx.push_back({"GET", keys_.Generation()});  // last: read in the same step as the write
    auto done = redis_.Transaction(std::move(tx));
    if (Status s = CheckExec(done, "store"); !s.ok()) {
      // Commands of a transaction that failed part-way are undone (VADD last, so a failed
      // VADD leaves only these to remove).
      (void)redis_.Transaction(DeleteCommands(id, exact, *generation));
      return s;
    }
    if (!done->elements.empty() && GenerationOf(done->elements.back()) == generation->number) {
      counters_.stores.fetch_add(1, std::memory_order_relaxed);
      EvictOverLimit(now);
      return id;
    }
    // A reembed switched before this write: its vector went to a set no longer searched.
    (void)redis_.Transaction(DeleteCommands(id, exact, *generation));
    if (Status s = FollowGeneration(*generation); !s.ok()) return s;
  }
  return Unavailable("cache '" + options_.id + "' changed its vectors while storing; try again");
}

std::optional<RedisCache::Loaded> RedisCache::Parse(const std::string& id,
                                                    const redis::Reply& hash) const {
  if (!hash.IsAggregate() || hash.elements.empty()) return std::nullopt;
  const std::string* p = FieldText(hash, field::kPrompt);
  const std::string* r = FieldText(hash, field::kResponse);
  const std::string* n = FieldText(hash, field::kNormalized);
  if (p == nullptr || r == nullptr || n == nullptr) return std::nullopt;
  Loaded e;
  e.id = id;
  e.normalized = *n;
  cache::Attributes attributes;
  if (const std::string* a = FieldText(hash, field::kAttributes)) {
    auto j = nlohmann::json::parse(*a, nullptr, false);
    if (j.is_object()) {
      for (const auto& [k, v] : j.items()) {
        if (v.is_string()) attributes.emplace(k, v.get<std::string>());
      }
    }
  }
  e.text = cache::EntryText::Make(*p, *r, attributes);
  e.expires_ms = FieldInt(hash, field::kExpiresMs);
  e.ttl_ms = FieldInt(hash, field::kTtlMs);
  e.hits = static_cast<std::uint64_t>(std::max<std::int64_t>(0, FieldInt(hash, field::kHits)));
  if (const std::string* x = FieldText(hash, field::kExactKey)) e.exact = *x;
  return e;
}

void RedisCache::EvictOverLimit(std::int64_t now) {
  if (options_.max_entries == 0) return;
  auto count = redis_.Execute({"SCARD", keys_.Ids()});
  if (!count.ok() || !count->AsInteger().ok()) return;
  const std::int64_t over = *count->AsInteger() - static_cast<std::int64_t>(options_.max_entries);
  // A store evicts at most a few: a cache whose limit was lowered shrinks over several stores.
  constexpr std::int64_t kMostPerStore = 8;
  for (std::int64_t i = 0; i < std::min(over, kMostPerStore); ++i) {
    auto sample =
        redis_.Execute({"SRANDMEMBER", keys_.Ids(),
                        std::to_string(std::max<std::size_t>(options_.eviction_samples, 1))});
    if (!sample.ok() || !sample->IsAggregate() || sample->elements.empty()) return;
    std::vector<redis::Args> gets;
    for (const auto& id : sample->elements) {
      gets.push_back({"HMGET", keys_.Entry(id.str), field::kLastAccessMs, field::kHits,
                      field::kResponseBytes, field::kTextBytes, field::kExactKey,
                      field::kCreatedMs});
    }
    auto uses = redis_.ExecuteMany(std::move(gets));
    std::string victim, victim_exact;
    double worst = 0;
    for (std::size_t k = 0; k < uses.size(); ++k) {
      if (!uses[k].ok() || !uses[k]->IsAggregate() || uses[k]->elements.size() != 6) return;
      const auto& f = uses[k]->elements;
      auto number = [&](std::size_t at) -> std::int64_t {
        auto v = f[at].AsInteger();
        return v.ok() ? *v : 0;
      };
      if (!f[4].IsText()) {  // its hash expired: the cheapest eviction there is
        victim = sample->elements[k].str;
        victim_exact.clear();
        break;
      }
      const std::int64_t last = f[0].IsText() ? number(0) : number(5);  // older entries: created
      const double score = cache::EvictionScore(
          options_, last, static_cast<std::uint64_t>(std::max<std::int64_t>(0, number(1))),
          static_cast<std::size_t>(std::max<std::int64_t>(0, number(2))),
          static_cast<std::size_t>(std::max<std::int64_t>(0, number(3))), now);
      if (victim.empty() || score < worst) {
        victim = sample->elements[k].str;
        victim_exact = f[4].str;
        worst = score;
      }
    }
    if (victim.empty()) return;
    if (!CheckExec(redis_.Transaction(DeleteCommands(victim, victim_exact, *Current())), "evict")
             .ok())
      return;
    counters_.evicted.fetch_add(1, std::memory_order_relaxed);
  }
}

std::int64_t RedisCache::NowMs() const { return clock_(); }

Result<cache::Candidate> RedisCache::EntryById(const std::string& entry_id) {
  auto missing = NotFound("no entry " + entry_id + " in cache " + options_.id);
  std::uint64_t high = 0, low = 0;
  if (!cache::ParseEntryId(entry_id, &high, &low)) return missing;
  auto hash = redis_.Execute({"HGETALL", keys_.Entry(entry_id)});
  if (!hash.ok()) return hash.status();
  auto loaded = Parse(entry_id, *hash);
  if (!loaded) return missing;
  cache::Candidate c;
  c.id = entry_id;
  c.entry = loaded->text;
  c.normalized = loaded->normalized;
  c.expires_ms = loaded->expires_ms;
  c.ttl_ms = loaded->ttl_ms;
  c.hits = loaded->hits;
  return c;
}

Result<std::vector<std::vector<float>>> RedisCache::SampleVectors(std::size_t n) {
  // SRANDMEMBER with a positive count: distinct ids. One VEMB each (the sweeper's thread,
  // once per fit).
  auto ids = redis_.Execute({"SRANDMEMBER", keys_.Ids(), std::to_string(n)});
  if (!ids.ok()) return ids.status();
  if (Status s = redis::ReplyStatus(*ids, "SRANDMEMBER"); !s.ok()) return s;
  const auto generation = Current();
  std::vector<std::vector<float>> out;
  for (const auto& id : ids->elements) {
    auto v = generation->vectors->Vector(id.str);
    if (!v.ok()) return v.status();
    if (*v) out.push_back(std::move(**v));
  }
  return out;
}

cache::Cache::EmbedderInfo RedisCache::EmbedderOf() const {
  const auto generation = Current();
  return {generation->embedder->identity().Describe(), generation->embedder->Remote()};
}

Result<std::vector<std::string>> RedisCache::NearestIds(const std::vector<float>& query,
                                                        std::size_t k, std::size_t ef) {
  SearchRequest r;
  r.k = k;
  r.exact = ef == 0;  // VSIM ... TRUTH: a linear scan
  if (ef > 0) r.ef = ef;
  auto found = Current()->vectors->Search(query, r);
  if (!found.ok()) return found.status();
  std::vector<std::string> out;
  for (auto& h : *found) out.push_back(std::move(h.id));
  return out;
}

Status RedisCache::ForEachEntry(bool with_vectors,
                                const std::function<bool(const ExportedEntry&)>& emit) {
  const auto generation = Current();
  const std::int64_t now = NowMs();
  std::string cursor = "0";
  do {
    auto page = redis_.Execute({"SSCAN", keys_.Ids(), cursor, "COUNT", "500"});
    if (!page.ok()) return page.status();
    if (Status s = redis::ReplyStatus(*page, "SSCAN"); !s.ok()) return s;
    if (page->elements.size() != 2) return Internal("redis SSCAN: an unexpected reply");
    cursor = page->elements[0].str;
    std::vector<std::string> ids;
    std::vector<redis::Args> gets;
    for (const auto& id : page->elements[1].elements) {
      ids.push_back(id.str);
      gets.push_back({"HGETALL", keys_.Entry(id.str)});
    }
    auto hashes = redis_.ExecuteMany(std::move(gets));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (!hashes[i].ok()) return hashes[i].status();
      auto e = Parse(ids[i], *hashes[i]);
      if (!e) continue;  // expired or deleted since the page was read
      ExportedEntry out;
      out.id = ids[i];
      out.text = std::move(e->text);
      if (options_.sliding_ttl) {
        out.ttl_left_ms = e->ttl_ms;  // the hash's expiry moves with use: its TTL restarts
      } else if (e->expires_ms != 0) {
        if (e->expires_ms <= now) continue;
        out.ttl_left_ms = e->expires_ms - now;
      }
      if (with_vectors) {
        auto v = generation->vectors->Vector(ids[i]);
        if (!v.ok()) return v.status();
        if (!*v) continue;
        out.vector = std::move(**v);
      }
      if (!emit(out)) return Status::Ok();
    }
  } while (cursor != "0");
  return Status::Ok();
}

Result<std::vector<float>> RedisCache::EntryVector(const std::string& entry_id) {
  auto v = Current()->vectors->Vector(entry_id);
  if (!v.ok()) return v.status();
  if (!*v) return NotFound("no entry " + entry_id + " in cache " + options_.id);
  return std::move(**v);
}

Result<float> RedisCache::PromptSimilarity(const std::string& a, const std::string& b) {
  return embed::CosineOf(*Current()->embedder, a, b);
}

cache::Candidate RedisCache::CandidateOf(Loaded&& e, float similarity) const {
  cache::Candidate c;
  c.id = std::move(e.id);
  c.entry = std::move(e.text);
  c.similarity = similarity;
  // Redis expires the hash itself; the time stored beside it also covers the moment between
  // a clock tick and that. A sliding TTL moves the hash's expiry, not the stored time.
  c.expires_ms = options_.sliding_ttl ? 0 : e.expires_ms;
  c.ttl_ms = e.ttl_ms;
  c.hits = e.hits;
  c.normalized = std::move(e.normalized);
  return c;
}

Result<std::vector<cache::Candidate>> RedisCache::ExactCandidates(const std::string& normalized,
                                                                  const cache::SearchQuery&,
                                                                  cache::LookupTrace& t) {
  const std::string exact = cache::ExactKey(options_.id, normalized, {});
  auto ts = Steady::now();
  auto ids = redis_.Execute({"SMEMBERS", keys_.Exact(exact)});
  if (!ids.ok()) return ids.status();
  std::vector<redis::Args> gets;
  std::vector<std::string> names;
  for (const auto& id : ids->elements) {
    if (!id.IsText()) continue;
    names.push_back(id.str);
    gets.push_back({"HGETALL", keys_.Entry(id.str)});
  }
  auto hashes = redis_.ExecuteMany(std::move(gets));
  t.search_us += Micros(Steady::now() - ts).count();
  std::vector<cache::Candidate> out;
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    if (!hashes[i].ok()) return hashes[i].status();
    auto e = Parse(names[i], *hashes[i]);
    if (!e) {  // expired or deleted: forget it here too
      redis_.ExecuteAsync({"SREM", keys_.Exact(exact), names[i]}, [](Result<redis::Reply>) {});
      continue;
    }
    out.push_back(CandidateOf(std::move(*e), 1.0f));
  }
  return out;
}

Result<std::vector<cache::Candidate>> RedisCache::SemanticCandidates(const std::string& normalized,
                                                                     float load_floor,
                                                                     const cache::SearchQuery& q,
                                                                     std::int64_t,
                                                                     cache::LookupTrace& t) {
  SearchRequest r;
  r.filter = ScopeFilter(q.attributes);
  const bool filtered_here = r.filter.empty() && !q.attributes.empty();
  r.k = options_.semantic_candidates * (filtered_here ? 8 : 1);
  r.ef = std::max<std::size_t>(options_.search_ef, r.k);
  if (!r.filter.empty()) r.filter_ef = std::max<std::size_t>(r.ef * 10, 200);
  auto generation = Current();
  auto te = Steady::now();
  std::optional<tracing::Span> embed_span(std::in_place, "cache.embed");
  auto vec = generation->embedder->Embed(normalized);
  if (!vec.ok()) {
    embed_span->SetError(vec.status().message());
    return vec.status();
  }
  embed_span.reset();
  t.embed_us += Micros(Steady::now() - te).count();
  auto ts = Steady::now();
  // The vector search and the candidates' hashes (VSIM, then one pipeline of HGETALL).
  tracing::Span search_span("cache.search");
  auto found = generation->vectors->Search(*vec, r);
  if (!found.ok()) return found.status();
  if (found->empty()) {
    // An empty cache, or a reembed switched and dropped the set searched: which one?
    auto now = redis_.Execute({"GET", keys_.Generation()});
    if (!now.ok()) return now.status();
    if (GenerationOf(*now) != generation->number) {
      if (Status s = FollowGeneration(*generation); !s.ok()) return s;
      generation = Current();
      te = Steady::now();
      vec = generation->embedder->Embed(normalized);
      if (!vec.ok()) return vec.status();
      t.embed_us += Micros(Steady::now() - te).count();
      found = generation->vectors->Search(*vec, r);
      if (!found.ok()) return found.status();
    }
  }
  // Hashes only for what can be a hit: VSIM ranks best first, so they are a prefix.
  std::vector<redis::Args> gets;
  for (const auto& h : *found) {
    if (h.similarity >= load_floor) gets.push_back({"HGETALL", keys_.Entry(h.id)});
  }
  auto hashes = redis_.ExecuteMany(std::move(gets));
  t.search_us += Micros(Steady::now() - ts).count();
  std::vector<cache::Candidate> out;
  out.reserve(found->size());
  for (std::size_t i = 0; i < found->size(); ++i) {
    const auto& candidate = (*found)[i];
    if (i >= hashes.size()) {  // below the floor: the best of them, for its similarity only
      cache::Candidate unloaded;
      unloaded.similarity = candidate.similarity;
      out.push_back(std::move(unloaded));
      break;
    }
    if (!hashes[i].ok()) return hashes[i].status();
    auto e = Parse(candidate.id, *hashes[i]);
    if (!e) {  // its hash expired: the sweeper's work, done here for this one
      for (auto& vrem : generation->vectors->RemoveCommands(candidate.id))
        redis_.ExecuteAsync(std::move(vrem), [](Result<redis::Reply>) {});
      continue;
    }
    out.push_back(CandidateOf(std::move(*e), candidate.similarity));
  }
  return out;
}

void RedisCache::RecordUse(const cache::Candidate& chosen, std::int64_t now) {
  // Fire and forget, both: a lost extension only means the entry expires at its earlier time,
  // a lost use only that eviction sees one hit fewer.
  if (options_.sliding_ttl && chosen.ttl_ms > 0) {
    redis_.ExecuteAsync({"PEXPIRE", keys_.Entry(chosen.id), std::to_string(chosen.ttl_ms)},
                        [](Result<redis::Reply>) {});
    redis_.ExecuteAsync(
        {"ZADD", keys_.Expiry(), "XX", std::to_string(now + chosen.ttl_ms), chosen.id},
        [](Result<redis::Reply>) {});
  }
  if (options_.max_entries == 0) return;
  // FXX: only fields that exist are set, so a hash deleted or expired since it was read is not
  // brought back as a stub. Concurrent hits may count once: eviction needs an order, not a
  // census.
  redis_.ExecuteAsync({"HSETEX", keys_.Entry(chosen.id), "FXX", "FIELDS", "2", field::kLastAccessMs,
                       std::to_string(now), field::kHits, std::to_string(chosen.hits + 1)},
                      [](Result<redis::Reply>) {});
}

std::vector<redis::Args> RedisCache::DeleteCommands(const std::string& id, const std::string& exact,
                                                    const Generation& generation) const {
  std::vector<redis::Args> out{{"UNLINK", keys_.Entry(id)},
                               {"SREM", keys_.Ids(), id},
                               {"ZREM", keys_.Expiry(), id},
                               {"INCR", keys_.Writes()}};
  for (auto& vrem : generation.vectors->RemoveCommands(id)) out.push_back(std::move(vrem));
  if (!exact.empty()) out.push_back({"SREM", keys_.Exact(exact), id});
  return out;
}

Status RedisCache::Delete(const std::string& entry_id) {
  auto missing = NotFound("no entry " + entry_id + " in cache " + options_.id);
  std::uint64_t high = 0, low = 0;
  if (!cache::ParseEntryId(entry_id, &high, &low)) return missing;
  auto exact = redis_.Execute({"HGET", keys_.Entry(entry_id), field::kExactKey});
  if (!exact.ok()) return exact.status();
  if (!exact->IsText()) return missing;
  if (Status s =
          CheckExec(redis_.Transaction(DeleteCommands(entry_id, exact->str, *Current())), "delete");
      !s.ok())
    return s;
  counters_.deleted.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Result<std::size_t> RedisCache::DeleteByAttributes(const cache::Attributes& attributes) {
  if (Status s = cache::CheckAttributes(options_, attributes, "attributes"); !s.ok()) return s;
  auto ids = redis_.Execute({"SMEMBERS", keys_.Ids()});
  if (!ids.ok()) return ids.status();
  std::size_t n = 0;
  constexpr std::size_t kBatch = 500;
  for (std::size_t start = 0; start < ids->elements.size(); start += kBatch) {
    std::vector<redis::Args> gets;
    std::vector<std::string> names;
    for (std::size_t i = start; i < std::min(ids->elements.size(), start + kBatch); ++i) {
      names.push_back(ids->elements[i].str);
      gets.push_back({"HGETALL", keys_.Entry(names.back())});
    }
    auto hashes = redis_.ExecuteMany(std::move(gets));
    for (std::size_t i = 0; i < hashes.size(); ++i) {
      if (!hashes[i].ok()) return hashes[i].status();
      auto e = Parse(names[i], *hashes[i]);
      // Expired entries whose hash Redis has not removed yet go too.
      if (!e || !e->text->HasAll(attributes)) continue;
      if (Status s =
              CheckExec(redis_.Transaction(DeleteCommands(e->id, e->exact, *Current())), "delete");
          !s.ok())
        return s;
      ++n;
    }
  }
  counters_.deleted.fetch_add(n, std::memory_order_relaxed);
  return n;
}

Status RedisCache::Flush() {
  auto ids = redis_.Execute({"SMEMBERS", keys_.Ids()});
  if (!ids.ok()) return ids.status();
  std::vector<redis::Args> gets;
  for (const auto& id : ids->elements)
    gets.push_back({"HGET", keys_.Entry(id.str), field::kExactKey});
  auto exacts = redis_.ExecuteMany(std::move(gets));
  std::vector<redis::Args> unlinks;
  for (std::size_t i = 0; i < exacts.size(); ++i) {
    unlinks.push_back({"UNLINK", keys_.Entry(ids->elements[i].str)});
    if (exacts[i].ok() && exacts[i]->IsText())
      unlinks.push_back({"UNLINK", keys_.Exact(exacts[i]->str)});
  }
  redis::Args unlink_all{"UNLINK"};
  for (const auto& key : Current()->vectors->SetKeys()) unlink_all.push_back(key);
  unlink_all.insert(unlink_all.end(), {keys_.Ids(), keys_.Expiry()});
  unlinks.push_back(std::move(unlink_all));
  unlinks.push_back({"INCR", keys_.Writes()});
  for (const auto& r : redis_.ExecuteMany(std::move(unlinks))) {
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

std::size_t RedisCache::Sweep() {
  // Every instance may sweep: each step is idempotent. Hashes expire in Redis by themselves;
  // this removes their ids from the vector set and the bookkeeping sets.
  const std::int64_t now = clock_();
  auto due = redis_.Execute(
      {"ZRANGEBYSCORE", keys_.Expiry(), "-inf", std::to_string(now), "LIMIT", "0", "1000"});
  if (!due.ok() || !due->IsAggregate() || due->elements.empty()) return 0;
  std::vector<redis::Args> checks;
  for (const auto& id : due->elements) checks.push_back({"PTTL", keys_.Entry(id.str)});
  auto ttls = redis_.ExecuteMany(std::move(checks));
  std::size_t n = 0;
  for (std::size_t i = 0; i < ttls.size(); ++i) {
    const std::string& id = due->elements[i].str;
    // A slid entry is still alive (PTTL > 0): file it under its new time instead.
    if (ttls[i].ok() && ttls[i]->AsInteger().ok() && *ttls[i]->AsInteger() > 0) {
      redis_.ExecuteAsync({"ZADD", keys_.Expiry(), std::to_string(now + *ttls[i]->AsInteger()), id},
                          [](Result<redis::Reply>) {});
      continue;
    }
    if (CheckExec(redis_.Transaction(DeleteCommands(id, "", *Current())), "sweep").ok()) ++n;
  }
  counters_.expired.fetch_add(n, std::memory_order_relaxed);
  return n;
}

namespace {

// The switch, in one step on the server: only if no other reembed switched (generation) and,
// unless ARGV[1] is -1, nothing was stored or deleted since the catch-up (writes). Its keys
// share one slot.
constexpr const char* kSwitchScript = R"lua(
local writes = tonumber(redis.call('GET', KEYS[1]) or '0')
local generation = tonumber(redis.call('GET', KEYS[3]) or '0')
if generation ~= tonumber(ARGV[4]) then return -1 end
if ARGV[1] ~= '-1' and writes ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('UNLINK', KEYS[4])
return 1
)lua";

constexpr std::size_t kReembedBatch = 500;
// Catch-up rounds that wait for a quiet moment; after them the switch goes ahead and one more
// round, on the live set, adds what was stored in between (briefly found by its exact key only).
constexpr int kQuietRounds = 3;
constexpr const char* kReembedLockMs = "60000";

}  // namespace

Result<std::vector<std::string>> RedisCache::ReembedBatch(const std::vector<std::string>& ids,
                                                          embed::Embedder& embedder,
                                                          const store::RedisVectorStore& into) {
  std::vector<redis::Args> gets;
  gets.reserve(ids.size());
  for (const auto& id : ids)
    gets.push_back({"HMGET", keys_.Entry(id), field::kNormalized, field::kAttributes});
  auto texts = redis_.ExecuteMany(std::move(gets));
  std::vector<redis::Args> vadds;
  std::vector<std::string> written;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (!texts[i].ok()) return texts[i].status();
    const auto& f = texts[i]->elements;
    if (f.size() != 2 || !f[0].IsText()) continue;  // gone meanwhile: nothing to embed
    auto vec = embedder.EmbedToStore(f[0].str);
    if (!vec.ok()) return vec.status();
    auto vadd = into.WriteCommands({ids[i], std::move(*vec), f[1].IsText() ? f[1].str : ""});
    if (!vadd.ok()) return vadd.status();
    for (auto& command : *vadd) vadds.push_back(std::move(command));
    written.push_back(ids[i]);
  }
  for (const auto& r : redis_.ExecuteMany(std::move(vadds))) {
    if (!r.ok()) return r.status();
    if (r->IsError()) return Internal("redis VADD: " + r->str);
  }
  return written;
}

Status RedisCache::Reembed(std::unique_ptr<embed::Embedder> next_embedder,
                           const ReembedProgress& progress) {
  if (!next_embedder) return InvalidArgument("reembed needs an embedder");
  std::lock_guard one_at_a_time(reembed_mu_);
  const auto from = Current();
  std::shared_ptr<embed::Embedder> next(std::move(next_embedder));
  const embed::EmbedderIdentity identity = next->identity();
  // One instance at a time over the whole Redis: the lock expires if this one dies.
  const std::string token = cache::MakeEntryId(cache::RandomU64(), cache::RandomU64());
  auto locked = redis_.Execute({"SET", keys_.ReembedLock(), token, "NX", "PX", kReembedLockMs});
  if (!locked.ok()) return locked.status();
  if (locked->IsNil())
    return Status(ErrorCode::kAlreadyExists,
                  "cache '" + options_.id + "' is being reembedded by another instance");
  struct Unlock {
    RedisCache* self;
    const std::string& token;
    ~Unlock() {
      auto held = self->redis_.Execute({"GET", self->keys_.ReembedLock()});
      if (held.ok() && held->IsText() && held->str == token)
        (void)self->redis_.Execute({"DEL", self->keys_.ReembedLock()});
    }
  } unlock{this, token};

  if (Status s = FollowGeneration(*from); !s.ok() && s.code() != ErrorCode::kFailedPrecondition)
    return s;
  if (Current()->number != from->number)
    return FailedPrecondition("cache '" + options_.id +
                              "' was reembedded by another instance meanwhile");
  const std::int64_t number = from->number + 1;
  // A set left by a reembed that died part-way is started again.
  if (auto r = redis_.Execute({"UNLINK", keys_.Vectors(number)}); !r.ok()) return r.status();
  auto into = OpenVectorSet(redis_, redis_options_, options_.id, number, next->dim());
  if (!into.ok()) return into.status();

  auto total_reply = redis_.Execute({"SCARD", keys_.Ids()});
  if (!total_reply.ok()) return total_reply.status();
  std::size_t total = static_cast<std::size_t>(
      std::max<std::int64_t>(0, total_reply->AsInteger().ok() ? *total_reply->AsInteger() : 0));
  std::unordered_set<std::string> done;
  auto embed_these = [&](const std::vector<std::string>& ids) -> Status {
    for (std::size_t at = 0; at < ids.size(); at += kReembedBatch) {
      std::vector<std::string> batch(
          ids.begin() + static_cast<std::ptrdiff_t>(at),
          ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), at + kReembedBatch)));
      auto written = ReembedBatch(batch, *next, **into);
      if (!written.ok()) return written.status();
      done.insert(written->begin(), written->end());
      (void)redis_.Execute({"PEXPIRE", keys_.ReembedLock(), kReembedLockMs});
      total = std::max(total, done.size());
      if (progress) progress(done.size(), total);
    }
    return Status::Ok();
  };
  auto fail = [&](Status s) {
    (void)redis_.Execute({"UNLINK", keys_.Vectors(number)});
    return s;
  };

  // Every entry as it is now, SSCAN batch by batch (Redis stays responsive).
  std::string cursor = "0";
  do {
    auto page =
        redis_.Execute({"SSCAN", keys_.Ids(), cursor, "COUNT", std::to_string(kReembedBatch)});
    if (!page.ok()) return fail(page.status());
    if (!page->IsAggregate() || page->elements.size() != 2 || !page->elements[0].IsText())
      return fail(Internal("redis SSCAN: unexpected reply"));
    cursor = page->elements[0].str;
    std::vector<std::string> ids;
    for (const auto& id : page->elements[1].elements)
      if (id.IsText() && !done.count(id.str)) ids.push_back(id.str);
    if (Status s = embed_these(ids); !s.ok()) return fail(s);
  } while (cursor != "0");

  // Then what changed meanwhile: the ids present but not embedded, and those embedded but gone.
  auto catch_up = [&]() -> Status {
    auto ids = redis_.Execute({"SMEMBERS", keys_.Ids()});
    if (!ids.ok()) return ids.status();
    std::unordered_set<std::string> present;
    std::vector<std::string> missing;
    for (const auto& id : ids->elements) {
      if (!id.IsText()) continue;
      present.insert(id.str);
      if (!done.count(id.str)) missing.push_back(id.str);
    }
    std::vector<redis::Args> vrems;
    for (auto it = done.begin(); it != done.end();) {
      if (present.count(*it)) {
        ++it;
        continue;
      }
      for (auto& vrem : (*into)->RemoveCommands(*it)) vrems.push_back(std::move(vrem));
      it = done.erase(it);
    }
    for (const auto& r : redis_.ExecuteMany(std::move(vrems)))
      if (!r.ok()) return r.status();
    total = present.size();
    return embed_these(missing);
  };
  for (int round = 0;; ++round) {
    const bool quiet_or_not = round >= kQuietRounds;
    auto writes = redis_.Execute({"GET", keys_.Writes()});
    if (!writes.ok()) return fail(writes.status());
    const std::int64_t writes_seen =
        writes->IsNil() ? 0 : (writes->AsInteger().ok() ? *writes->AsInteger() : 0);
    if (Status s = catch_up(); !s.ok()) return fail(s);
    auto switched = redis_.Execute(
        {"EVAL", kSwitchScript, "4", keys_.Writes(), keys_.Embedder(), keys_.Generation(),
         keys_.Vectors(from->number), quiet_or_not ? "-1" : std::to_string(writes_seen),
         identity.ToJson(), std::to_string(number), std::to_string(from->number)});
    if (!switched.ok()) return fail(switched.status());
    if (switched->IsError()) return fail(Internal("redis EVAL: " + switched->str));
    const std::int64_t outcome = switched->AsInteger().ok() ? *switched->AsInteger() : -1;
    if (outcome == -1)
      return fail(FailedPrecondition("cache '" + options_.id +
                                     "' was reembedded by another instance meanwhile"));
    if (outcome == 0) continue;
    {
      std::lock_guard lock(generation_mu_);
      auto now = std::make_shared<Generation>();
      now->number = number;
      now->embedder = next;
      now->vectors = *into;
      now->identity = identity;
      generation_ = std::move(now);
    }
    ForgetSimilarities();
    // The shared labels were of the old vectors too.
    (void)redis_.Execute({"UNLINK", keys_.Labels()});
    // Instances that stored between the catch-up and the switch (their transaction saw the
    // old generation, so they kept the entry): their entries join the live set now.
    if (quiet_or_not) {
      if (Status s = catch_up(); !s.ok()) return s;
    }
    if (progress) progress(done.size(), done.size());
    return Status::Ok();
  }
}

cache::CacheStats RedisCache::Stats() const {
  cache::CacheStats s;
  auto n = redis_.Execute({"SCARD", keys_.Ids()});
  if (n.ok() && n->AsInteger().ok()) s.entries = static_cast<std::size_t>(*n->AsInteger());
  counters_.Fill(&s);
  return s;
}

}  // namespace semcached::cache
