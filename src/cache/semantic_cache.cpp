#include "cache/semantic_cache.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include <spdlog/spdlog.h>

#include "cache/fingerprint.h"

namespace semcached::cache {
namespace {

using Micros = std::chrono::duration<double, std::micro>;
using Steady = std::chrono::steady_clock;

std::int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t RandomTag() {
  thread_local std::mt19937_64 rng(
      std::random_device{}() ^
      static_cast<std::uint64_t>(Steady::now().time_since_epoch().count()));
  return rng();
}

// The label from an id made by Entry::Id, or 0 when the text is not one.
bool ParseId(const std::string& id, std::uint64_t* label, std::uint64_t* tag) {
  if (id.size() != 32) return false;
  std::uint64_t parts[2] = {0, 0};
  for (int i = 0; i < 32; ++i) {
    char c = id[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    parts[i / 16] = (parts[i / 16] << 4) | static_cast<std::uint64_t>(v);
  }
  *label = parts[0];
  *tag = parts[1];
  return true;
}

}  // namespace

std::string Entry::Id() const {
  static const char* hex = "0123456789abcdef";
  std::string id(32, '0');
  for (int i = 0; i < 16; ++i) {
    id[i] = hex[(label >> (60 - 4 * i)) & 15];
    id[16 + i] = hex[(tag >> (60 - 4 * i)) & 15];
  }
  return id;
}

const char* EvictionName(Eviction e) {
  switch (e) {
    case Eviction::kLru: return "lru";
    case Eviction::kLfu: return "lfu";
    case Eviction::kValue: return "value";
  }
  return "lru";
}

bool ParseEviction(std::string_view text, Eviction* out) {
  for (Eviction e : {Eviction::kLru, Eviction::kLfu, Eviction::kValue}) {
    if (text == EvictionName(e)) {
      *out = e;
      return true;
    }
  }
  return false;
}

const char* StrategyName(Strategy s) { return s == Strategy::kExact ? "exact" : "semantic"; }

bool ParseStrategy(std::string_view text, Strategy* out) {
  if (text == "exact") {
    *out = Strategy::kExact;
    return true;
  }
  if (text == "semantic") {
    *out = Strategy::kSemantic;
    return true;
  }
  return false;
}

Result<std::unique_ptr<SemanticCache>> SemanticCache::Create(
    CacheOptions options, std::unique_ptr<embed::Embedder> embedder, Clock clock) {
  if (options.id.empty()) return InvalidArgument("a cache needs an id");
  if (!embedder) return InvalidArgument("a cache needs an embedder");
  if (!(options.similarity_threshold >= 0 && options.similarity_threshold <= 1)) {
    return InvalidArgument("similarity threshold must be within 0..1");
  }
  LoadedState loaded;
  std::unique_ptr<CachePersistence> persistence;
  if (!options.persist_dir.empty()) {
    vector::HnswIndex::LoadOptions lo;
    lo.originals_path = options.originals_path;
    auto p = CachePersistence::Open(options.persist_dir, options.id, options.fsync, &loaded, lo);
    if (!p.ok()) return p.status();
    persistence = std::move(*p);
  }
  std::unique_ptr<vector::HnswIndex> index = std::move(loaded.index);
  if (index && index->options().dim != embedder->dim()) {
    return InvalidArgument("cache " + options.id + ": its saved index has " +
                           std::to_string(index->options().dim) +
                           " dimensions but the embedder gives " + std::to_string(embedder->dim()) +
                           "; flush the cache's files or keep the embedder");
  }
  if (!index) {
    vector::HnswOptions io;
    io.dim = embedder->dim();
    io.metric = vector::Metric::kCosine;
    io.originals_path = options.originals_path;
    auto created = vector::HnswIndex::Create(io);
    if (!created.ok()) return created.status();
    index = std::move(*created);
  }
  if (!clock) clock = SystemNowMs;
  std::unique_ptr<SemanticCache> cache(new SemanticCache(std::move(options), std::move(embedder),
                                                         std::move(clock), std::move(index)));
  if (persistence) {
    if (Status st = cache->Restore(loaded); !st.ok()) return st;
    cache->persistence_ = std::move(persistence);
  }
  return cache;
}

Result<Entry> SemanticCache::MakeEntry(const StoredEntry& stored) {
  auto normalized = NormalizePrompt(stored.prompt, options_.normalize);
  if (!normalized.ok())
    return DataLoss("cache " + options_.id + ": a stored prompt no longer normalizes");
  Entry e;
  e.label = stored.label;
  e.tag = stored.tag;
  e.created_ms = stored.created_ms;
  e.expires_ms = stored.expires_ms;
  e.ttl_ms = stored.ttl_ms;
  auto text = std::make_shared<EntryText>();
  text->prompt = stored.prompt;
  text->response = stored.response;
  text->attributes = stored.attributes;
  text->normalized = std::move(*normalized);
  e.exact_key = ExactKey64(options_.id, text->normalized, {});
  embedder_->Observe(text->normalized);  // the built-in embedder relearns its weights
  e.text = std::move(text);
  e.use = std::make_shared<EntryUse>();
  e.use->last_access_ms.store(e.created_ms);
  return e;
}

// Snapshot entries (their vectors are in the loaded index), then the journal in order.
Status SemanticCache::Restore(LoadedState& loaded) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::uint64_t next = std::max<std::uint64_t>(loaded.next_label, 1);
  for (const auto& stored : loaded.entries) {
    auto e = MakeEntry(stored);
    if (!e.ok()) return e.status();
    next = std::max(next, stored.label + 1);
    InsertLocked(std::move(*e));
  }
  for (auto& rec : loaded.journal) {
    switch (rec.type) {
      case JournalRecord::Type::kStore: {
        auto e = MakeEntry(rec.entry);
        if (!e.ok()) return e.status();
        next = std::max(next, rec.entry.label + 1);
        if (auto old = entries_.find(rec.entry.label); old != entries_.end()) EraseLocked(old);
        if (Status st =
                index_->Add(rec.entry.label, rec.entry.vector.data(), rec.entry.vector.size());
            !st.ok()) {
          return DataLoss("cache " + options_.id +
                          ": journal vector refused by the index: " + st.message());
        }
        InsertLocked(std::move(*e));
        break;
      }
      case JournalRecord::Type::kDelete:
        if (auto it = entries_.find(rec.label); it != entries_.end()) EraseLocked(it);
        break;
      case JournalRecord::Type::kFlush:
        while (!entries_.empty()) EraseLocked(entries_.begin());
        break;
    }
  }
  next_label_.store(next);
  restored_entries_ = entries_.size();
  return Status::Ok();
}

Status SemanticCache::LogLocked(const JournalRecord& record) {
  return persistence_ ? persistence_->Append(record) : Status::Ok();
}

void SemanticCache::InsertLocked(Entry e) {
  exact_[e.exact_key].push_back(e.label);
  bytes_ += EntryBytes(e);
  e.slot = labels_.size();
  labels_.push_back(e.label);
  if (e.expires_ms != 0) {
    expiry_.emplace(e.expires_ms, e.label);
    next_expiry_.store(expiry_.begin()->first, std::memory_order_relaxed);
  }
  const std::uint64_t label = e.label;
  entries_.emplace(label, std::move(e));
}

Status SemanticCache::Snapshot() {
  std::unique_lock<std::shared_mutex> lock(mu_);  // writes wait; the cut is consistent
  if (!persistence_) return Status::Ok();
  std::vector<StoredEntry> out;
  out.reserve(entries_.size());
  for (const auto& [label, e] : entries_) {
    StoredEntry se;
    se.label = label;
    se.tag = e.tag;
    se.created_ms = e.created_ms;
    se.expires_ms = ExpiresAt(e);
    se.ttl_ms = e.ttl_ms;
    se.prompt = e.text->prompt;
    se.response = e.text->response;
    se.attributes = e.text->attributes;
    out.push_back(std::move(se));
  }
  return persistence_->Snapshot(out, *index_, next_label_.load());
}

void SemanticCache::DropPersistence() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  persistence_.reset();
}

Status SemanticCache::MaybeSnapshot() {
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!persistence_ || persistence_->journal_bytes() < options_.snapshot_journal_bytes)
      return Status::Ok();
  }
  return Snapshot();
}

SemanticCache::SemanticCache(CacheOptions options, std::unique_ptr<embed::Embedder> embedder,
                             Clock clock, std::unique_ptr<vector::HnswIndex> index)
    : options_(std::move(options)),
      embedder_(std::move(embedder)),
      clock_(std::move(clock)),
      index_(std::move(index)) {}

std::int64_t SemanticCache::ExpiresAt(const Entry& e) const {
  if (e.expires_ms == 0) return 0;
  if (!options_.sliding_ttl) return e.expires_ms;
  return std::max(e.expires_ms, e.use->last_access_ms.load(std::memory_order_relaxed) + e.ttl_ms);
}

bool SemanticCache::Matches(const Entry& e, const Attributes& scope, std::int64_t now) const {
  std::int64_t expires = ExpiresAt(e);
  if (expires != 0 && expires <= now) return false;
  for (const auto& [k, v] : scope) {
    auto it = e.text->attributes.find(k);
    if (it == e.text->attributes.end() || it->second != v) return false;
  }
  return true;
}

std::size_t SemanticCache::EntryBytes(const Entry& e) const {
  const EntryText& t = *e.text;
  std::size_t b = t.prompt.size() + t.response.size() + t.normalized.size();
  for (const auto& [k, v] : t.attributes) b += k.size() + v.size();
  return b;
}

Result<std::string> SemanticCache::Store(const std::string& prompt, const std::string& response,
                                         const Attributes& attributes,
                                         std::optional<std::int64_t> ttl_ms) {
  auto normalized = CheckStore(options_, prompt, response, attributes, ttl_ms);
  if (!normalized.ok()) return normalized.status();

  embedder_->Observe(*normalized);
  auto vec = embedder_->Embed(*normalized);
  if (!vec.ok()) return vec.status();

  Entry e;
  e.tag = RandomTag();
  auto text = std::make_shared<EntryText>();
  text->prompt = prompt;
  text->response = response;
  text->attributes = attributes;
  text->normalized = std::move(*normalized);
  e.text = text;
  e.created_ms = clock_();
  e.use = std::make_shared<EntryUse>();
  e.use->last_access_ms.store(e.created_ms);
  std::int64_t ttl = ttl_ms ? *ttl_ms : options_.default_ttl_ms;
  e.expires_ms = ttl > 0 ? e.created_ms + ttl : 0;
  e.ttl_ms = ttl > 0 ? ttl : 0;
  e.exact_key = ExactKey64(options_.id, text->normalized, {});

  // The index is thread-safe: add outside the cache lock so searches are not held up by a
  // graph insert. Until the maps below know the label, searches skip it.
  e.label = next_label_.fetch_add(1, std::memory_order_relaxed);
  Status s = index_->Add(e.label, vec->data(), vec->size());
  if (!s.ok()) return s;
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (persistence_) {
    // Durable before acknowledged: under fsync "always" the record is on disk when this returns.
    JournalRecord rec;
    rec.type = JournalRecord::Type::kStore;
    rec.entry = {e.label, e.tag,    e.created_ms, e.expires_ms, e.ttl_ms,
                 prompt,  response, attributes,   *vec};
    if (Status logged = LogLocked(rec); !logged.ok()) {
      (void)index_->Remove(e.label);
      return logged;
    }
  }
  std::string id = e.Id();
  std::int64_t now = e.created_ms;
  InsertLocked(std::move(e));
  counters_.stores.fetch_add(1, std::memory_order_relaxed);
  EvictLocked(now);
  return id;
}

Result<std::vector<Hit>> SemanticCache::Search(const SearchQuery& q, LookupTrace* trace) {
  LookupTrace local;
  LookupTrace& t = trace ? *trace : local;
  auto t0 = Steady::now();
  auto checked = CheckSearch(options_, q);
  if (!checked.ok()) return checked.status();
  const std::string* normalized = &checked->first;
  const float threshold = checked->second;
  t.normalize_us = Micros(Steady::now() - t0).count();
  counters_.lookups.fetch_add(1, std::memory_order_relaxed);

  const auto& strategies = q.strategies.empty() ? options_.strategies : q.strategies;
  const std::int64_t now = clock_();
  std::vector<Hit> hits;
  for (Strategy strategy : strategies) {
    if (strategy == Strategy::kExact) {
      const std::uint64_t key = ExactKey64(options_.id, *normalized, {});
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto it = exact_.find(key);
      if (it == exact_.end()) continue;
      for (std::uint64_t label : it->second) {
        auto e = entries_.find(label);
        if (e != entries_.end() && e->second.text->normalized == *normalized &&
            Matches(e->second, q.attributes, now)) {
          Touch(e->second, now);
          hits.push_back({e->second.Id(), e->second.text, 1.0f, Strategy::kExact});
          break;
        }
      }
    } else {
      auto te = Steady::now();
      auto vec = embedder_->Embed(*normalized);
      if (!vec.ok()) return vec.status();
      t.embed_us += Micros(Steady::now() - te).count();
      std::shared_lock<std::shared_mutex> lock(mu_);
      std::function<bool(std::uint64_t)> filter = [&](std::uint64_t label) {
        auto e = entries_.find(label);
        return e != entries_.end() && Matches(e->second, q.attributes, now);
      };
      vector::SearchParams p;
      p.k = options_.semantic_candidates;
      p.ef = std::max(options_.search_ef, p.k);
      // With no scope and nothing that can expire, every live node of the index is a valid
      // entry: the walk needs no per-node predicate (deletions are tombstones there).
      const bool unscoped =
          q.attributes.empty() && next_expiry_.load(std::memory_order_relaxed) == 0;
      if (!unscoped) p.filter = &filter;
      auto ts = Steady::now();
      auto found = index_->Search(vec->data(), vec->size(), p);
      t.search_us += Micros(Steady::now() - ts).count();
      if (!found.ok()) return found.status();
      auto tg = Steady::now();
      for (const auto& h : *found) {
        float sim = vector::HnswIndex::Similarity(vector::Metric::kCosine, h.distance);
        t.best_similarity = std::max(t.best_similarity, sim);
        if (sim < threshold) break;
        auto found_entry = entries_.find(h.label);
        if (found_entry == entries_.end()) continue;  // added to the index, not yet to the maps
        const Entry& e = found_entry->second;
        if (CheckGuards(*normalized, e.text->normalized, options_.guards) != GuardVerdict::kPass) {
          ++t.guard_rejections;
          counters_.guard_rejections.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        Touch(e, now);
        hits.push_back({e.Id(), e.text, std::min(sim, 1.0f), Strategy::kSemantic});
        break;
      }
      t.guards_us += Micros(Steady::now() - tg).count();
    }
    if (!hits.empty()) {
      t.hit_tier = hits.front().strategy;
      counters_.CountHit(hits.front(), options_, q.estimate_savings);
      return hits;
    }
  }
  counters_.misses.fetch_add(1, std::memory_order_relaxed);
  return hits;
}

void SemanticCache::EraseLocked(std::unordered_map<std::uint64_t, Entry>::iterator it) {
  const Entry& e = it->second;
  (void)index_->Remove(e.label);
  auto key = exact_.find(e.exact_key);
  if (key != exact_.end()) {
    auto& labels = key->second;
    labels.erase(std::remove(labels.begin(), labels.end(), e.label), labels.end());
    if (labels.empty()) exact_.erase(key);
  }
  bytes_ -= EntryBytes(e);
  if (e.expires_ms != 0) {
    auto range = expiry_.equal_range(e.expires_ms);
    for (auto x = range.first; x != range.second; ++x) {
      if (x->second == e.label) {
        expiry_.erase(x);
        break;
      }
    }
    next_expiry_.store(expiry_.empty() ? 0 : expiry_.begin()->first, std::memory_order_relaxed);
  }
  if (e.slot + 1 != labels_.size()) {
    labels_[e.slot] = labels_.back();
    entries_.at(labels_[e.slot]).slot = e.slot;
  }
  labels_.pop_back();
  entries_.erase(it);
}

void SemanticCache::Touch(const Entry& e, std::int64_t now) const {
  if (!e.use) return;
  e.use->last_access_ms.store(now, std::memory_order_relaxed);
  e.use->hits.fetch_add(1, std::memory_order_relaxed);
}

double SemanticCache::EvictionScore(const Entry& e, std::int64_t now) const {
  const double last = static_cast<double>(e.use->last_access_ms.load(std::memory_order_relaxed));
  if (options_.eviction == Eviction::kLru) return last;
  const double idle = std::max(0.0, static_cast<double>(now) - last);
  const double decayed =
      static_cast<double>(e.use->hits.load(std::memory_order_relaxed)) *
      std::exp2(-idle / static_cast<double>(std::max<std::int64_t>(options_.lfu_half_life_ms, 1)));
  if (options_.eviction == Eviction::kLfu) return decayed;
  // kValue: what a hit saves grows with the response (the tokens not generated again);
  // what keeping it costs grows with all its bytes.
  return (1.0 + decayed) * static_cast<double>(e.text->response.size()) /
         static_cast<double>(std::max<std::size_t>(EntryBytes(e), 1));
}

void SemanticCache::EvictLocked(std::int64_t now) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  auto over = [&] {
    return (options_.max_entries > 0 && entries_.size() > options_.max_entries) ||
           (options_.max_bytes > 0 && bytes_ > options_.max_bytes && entries_.size() > 1);
  };
  while (over() && !labels_.empty()) {
    std::uint64_t victim = 0;
    bool chosen = false;
    double worst = 0;
    // A cache no larger than the sample is scanned whole: exact policy when it is cheap.
    const bool whole = labels_.size() <= options_.eviction_samples;
    const std::size_t samples = whole ? labels_.size() : options_.eviction_samples;
    for (std::size_t i = 0; i < samples; ++i) {
      const std::uint64_t label = whole ? labels_[i] : labels_[rng() % labels_.size()];
      const Entry& e = entries_.at(label);
      double score = EvictionScore(e, now);
      if (!chosen || score < worst) {
        victim = label;
        worst = score;
        chosen = true;
      }
    }
    JournalRecord rec;
    rec.type = JournalRecord::Type::kDelete;
    rec.label = victim;
    if (Status logged = LogLocked(rec); !logged.ok()) spdlog::error("{}", logged.message());
    EraseLocked(entries_.find(victim));
    counters_.evicted.fetch_add(1, std::memory_order_relaxed);
  }
}

Status SemanticCache::Delete(const std::string& entry_id) {
  std::uint64_t label = 0, tag = 0;
  if (!ParseId(entry_id, &label, &tag))
    return NotFound("no entry " + entry_id + " in cache " + options_.id);
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = entries_.find(label);
  if (it == entries_.end() || it->second.tag != tag) {
    return NotFound("no entry " + entry_id + " in cache " + options_.id);
  }
  JournalRecord rec;
  rec.type = JournalRecord::Type::kDelete;
  rec.label = label;
  if (Status logged = LogLocked(rec); !logged.ok()) return logged;
  EraseLocked(it);
  counters_.deleted.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Result<std::size_t> SemanticCache::DeleteByAttributes(const Attributes& attributes) {
  // As the LangCache API defines it: no attributes match every entry.
  Status s = CheckAttributes(options_, attributes, "attributes");
  if (!s.ok()) return s;
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    if (Matches(it->second, attributes, 0)) {
      JournalRecord rec;
      rec.type = JournalRecord::Type::kDelete;
      rec.label = it->first;
      if (Status logged = LogLocked(rec); !logged.ok()) {
        counters_.deleted.fetch_add(n, std::memory_order_relaxed);
        return logged;
      }
      EraseLocked(it);
      ++n;
    }
    it = next;
  }
  counters_.deleted.fetch_add(n, std::memory_order_relaxed);
  return n;
}

Status SemanticCache::Flush() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  JournalRecord rec;
  rec.type = JournalRecord::Type::kFlush;
  if (Status logged = LogLocked(rec); !logged.ok())
    return logged;  // nothing erased: still consistent
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    EraseLocked(it);
    it = next;
  }
  return Status::Ok();
}

std::size_t SemanticCache::Sweep() {
  const std::int64_t now = clock_();
  // Most sweeps find nothing due: check without any lock.
  std::int64_t next = next_expiry_.load(std::memory_order_relaxed);
  if (next == 0 || next > now) return 0;
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::size_t n = 0;
  while (!expiry_.empty() && expiry_.begin()->first <= now) {
    auto it = entries_.find(expiry_.begin()->second);
    if (it == entries_.end()) {
      expiry_.erase(expiry_.begin());
      continue;
    }
    std::int64_t due = ExpiresAt(it->second);
    if (due > now) {
      // A hit slid this entry's TTL: file it under its new time.
      expiry_.erase(expiry_.begin());
      it->second.expires_ms = due;
      expiry_.emplace(due, it->first);
      continue;
    }
    EraseLocked(it);  // also drops the expiry record
    ++n;
  }
  next_expiry_.store(expiry_.empty() ? 0 : expiry_.begin()->first, std::memory_order_relaxed);
  counters_.expired.fetch_add(n, std::memory_order_relaxed);
  return n;
}

CacheStats SemanticCache::Stats() const {
  CacheStats s;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    s.entries = entries_.size();
    s.bytes = bytes_;
  }
  counters_.Fill(&s);
  return s;
}

}  // namespace semcached::cache
