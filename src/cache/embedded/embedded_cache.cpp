#include "cache/embedded/embedded_cache.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include <spdlog/spdlog.h>

#include "cache/fingerprint.h"
#include "common/durable_file.h"
#include "common/memory.h"
#include "common/tracing.h"

namespace semcached::cache {
namespace {

constexpr std::int64_t kExpiryUnknown = std::numeric_limits<std::int64_t>::max();

using Micros = std::chrono::duration<double, std::micro>;
using Steady = std::chrono::steady_clock;

}  // namespace

// The embedder that made a cache's vectors is recorded beside them (id.embedder); opening them
// with another is refused. Files from before the record was kept are taken as the current
// embedder's when the dimensions agree (and the record is written then).
static Status CheckEmbedderIdentity(const std::string& dir, const std::string& id,
                                    const embed::Embedder& embedder, bool has_vectors,
                                    std::size_t saved_dim) {
  const std::string path = dir + "/" + id + ".embedder";
  const embed::EmbedderIdentity now = embedder.identity();
  if (auto text = ReadWholeFile(path); text.ok()) {
    auto recorded = embed::EmbedderIdentity::FromJson(*text);
    if (!recorded) return DataLoss(path + " is not an embedder identity");
    if (recorded->SameVectors(now)) return Status::Ok();
    return InvalidArgument(embed::EmbedderMismatch(id, *recorded, now));
  }
  if (has_vectors && saved_dim != 0 && saved_dim != now.dim) {
    embed::EmbedderIdentity old;
    old.kind = "an earlier embedder";
    old.dim = saved_dim;
    return InvalidArgument(embed::EmbedderMismatch(id, old, now));
  }
  return WriteFileDurably(path, now.ToJson() + "\n");
}

Result<std::unique_ptr<EmbeddedCache>> EmbeddedCache::Create(
    CacheOptions options, std::unique_ptr<embed::Embedder> embedder, Clock clock,
    EmbeddedOptions embedded) {
  if (options.id.empty()) return InvalidArgument("a cache needs an id");
  if (!embedder) return InvalidArgument("a cache needs an embedder");
  if (!(options.similarity_threshold >= 0 && options.similarity_threshold <= 1)) {
    return InvalidArgument("similarity threshold must be within 0..1");
  }
  LoadedState loaded;
  std::unique_ptr<CachePersistence> persistence;
  if (!embedded.persist_dir.empty()) {
    vector::HnswIndex::LoadOptions lo;
    lo.originals_path = embedded.originals_path;
    auto p = CachePersistence::Open(embedded.persist_dir, options.id, embedded.fsync, &loaded, lo);
    if (!p.ok()) return p.status();
    persistence = std::move(*p);
  }
  std::unique_ptr<vector::HnswIndex> index = std::move(loaded.index);
  std::size_t fresh_dim = embedder->dim();
  if (!embedded.persist_dir.empty() && embedded.allow_embedder_change) {
    // The old vectors are restored as they are, into an index of their own dimension.
    if (!index && !loaded.journal.empty() && !loaded.journal.front().entry.vector.empty())
      fresh_dim = loaded.journal.front().entry.vector.size();
  } else if (!embedded.persist_dir.empty()) {
    const bool has_vectors = index != nullptr || !loaded.journal.empty();
    const std::size_t saved_dim =
        index ? index->options().dim
              : (loaded.journal.empty() ? 0 : loaded.journal.front().entry.vector.size());
    if (Status s = CheckEmbedderIdentity(embedded.persist_dir, options.id, *embedder, has_vectors,
                                         saved_dim);
        !s.ok())
      return s;
  }
  if (!index) {
    vector::HnswOptions io;
    io.dim = fresh_dim;
    io.metric = vector::Metric::kCosine;
    io.originals_path = embedded.originals_path;
    auto created = vector::HnswIndex::Create(io);
    if (!created.ok()) return created.status();
    index = std::move(*created);
  }
  if (!clock) clock = SystemNowMs;
  std::unique_ptr<EmbeddedCache> cache(new EmbeddedCache(std::move(options), std::move(embedder),
                                                         std::move(clock), std::move(index)));
  cache->embedded_ = std::move(embedded);
  if (persistence) {
    if (Status st = cache->Restore(loaded); !st.ok()) return st;
    cache->persistence_ = std::move(persistence);
    if (auto labels = ReadWholeFile(cache->LabelsPath()); labels.ok()) {
      const std::size_t read = cache->RestoreLabels(*labels);
      cache->labels_saved_ = cache->labels_added();  // not shared yet: no lock needed
      spdlog::info("cache {}: {} labelled lookups restored", cache->options_.id, read);
    }
  }
  return cache;
}

std::string EmbeddedCache::LabelsPath() const {
  return embedded_.persist_dir + "/" + options_.id + ".labels";
}

Status EmbeddedCache::SaveLabels(bool only_when_due) {
  std::lock_guard<std::mutex> one_at_a_time(labels_save_mu_);
  if (embedded_.persist_dir.empty() || labels_added() == labels_saved_) return Status::Ok();
  if (only_when_due && std::chrono::steady_clock::now() - labels_saved_at_ <
                           std::chrono::milliseconds(kLabelsSaveIntervalMs))
    return Status::Ok();
  const std::uint64_t added = labels_added();
  if (Status s = WriteFileDurably(LabelsPath(), SerializeLabels()); !s.ok()) return s;
  labels_saved_ = added;
  labels_saved_at_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

// An entry from the snapshot or the journal into its own slot (its vector is in the index).
Status EmbeddedCache::RestoreLocked(const StoredEntry& stored) {
  if (stored.label > std::numeric_limits<std::uint32_t>::max()) {
    return DataLoss("cache " + options_.id + ": entry label " + std::to_string(stored.label) +
                    " is not a slot number");
  }
  const auto slot = static_cast<std::uint32_t>(stored.label);
  auto normalized = NormalizePrompt(stored.prompt, options_.normalize);
  if (!normalized.ok())
    return DataLoss("cache " + options_.id + ": a stored prompt no longer normalizes");
  if (slot >= slots_.size()) slots_.resize(std::size_t{slot} + 1);
  embedder_->Observe(*normalized);  // the built-in embedder relearns its weights
  InsertLocked(slot, EntryText::Make(stored.prompt, stored.response, stored.attributes),
               ExactKey128(options_.id, *normalized, {}), stored.tag, stored.created_ms,
               stored.expires_ms, stored.ttl_ms);
  return Status::Ok();
}

// Snapshot entries (their vectors are in the loaded index), then the journal in order.
Status EmbeddedCache::Restore(LoadedState& loaded) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (const auto& stored : loaded.entries) {
    if (Status s = RestoreLocked(stored); !s.ok()) return s;
  }
  for (auto& rec : loaded.journal) {
    switch (rec.type) {
      case JournalRecord::Type::kStore:
        if (Find(rec.entry.label) != nullptr)
          EraseLocked(static_cast<std::uint32_t>(rec.entry.label));
        if (Status st =
                index_->Add(rec.entry.label, rec.entry.vector.data(), rec.entry.vector.size());
            !st.ok()) {
          return DataLoss("cache " + options_.id +
                          ": journal vector refused by the index: " + st.message());
        }
        if (Status s = RestoreLocked(rec.entry); !s.ok()) return s;
        break;
      case JournalRecord::Type::kDelete:
        if (Find(rec.label) != nullptr) EraseLocked(static_cast<std::uint32_t>(rec.label));
        break;
      case JournalRecord::Type::kFlush:
        for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
          if (slots_[slot].text) EraseLocked(slot);
        }
        break;
    }
  }
  // Slots no entry came back to are free; so is every label the index holds without one
  // (an entry whose journal record never made it to disk).
  free_slots_.clear();
  for (std::size_t slot = slots_.size(); slot-- > 0;) {
    if (!slots_[slot].text) {
      free_slots_.push_back(static_cast<std::uint32_t>(slot));
      if (index_->Contains(slot)) (void)index_->Remove(slot);
    }
  }
  restored_entries_ = live_;
  return Status::Ok();
}

Status EmbeddedCache::LogLocked(const JournalRecord& record) {
  return persistence_ ? persistence_->Append(record) : Status::Ok();
}

const Entry* EmbeddedCache::Find(std::uint64_t label) const {
  if (label >= slots_.size()) return nullptr;
  const Entry& e = slots_[label];
  return e.text ? &e : nullptr;
}

std::uint32_t EmbeddedCache::TakeSlotLocked() {
  if (!free_slots_.empty()) {
    std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  if (slots_.size() >= std::numeric_limits<std::uint32_t>::max()) return kNoSlot;
  slots_.emplace_back();
  return static_cast<std::uint32_t>(slots_.size() - 1);
}

void EmbeddedCache::FreeSlotLocked(std::uint32_t slot) { free_slots_.push_back(slot); }

void EmbeddedCache::LowerNextExpiry(std::int64_t expires_ms) {
  if (expires_ms == 0) return;
  std::int64_t cur = next_expiry_.load(std::memory_order_relaxed);
  while ((cur == 0 || expires_ms < cur) &&
         !next_expiry_.compare_exchange_weak(cur, expires_ms, std::memory_order_relaxed)) {
  }
}

void EmbeddedCache::InsertLocked(std::uint32_t slot, EntryTextRef text, ExactDigest exact,
                                 std::uint64_t tag, std::int64_t created_ms,
                                 std::int64_t expires_ms, std::int64_t ttl_ms) {
  Entry& e = slots_[slot];
  e.exact = exact;
  e.tag = tag;
  e.created_ms = created_ms;
  e.expires_ms = expires_ms;
  e.ttl_ms = ttl_ms;
  e.last_access_ms.store(created_ms, std::memory_order_relaxed);
  e.hits.store(0, std::memory_order_relaxed);
  bytes_ += text->text_bytes();
  e.text = std::move(text);
  // Newest first in its chain.
  auto [head, fresh] = exact_.try_emplace(e.exact.key, slot);
  e.next_same_key = fresh ? kNoSlot : head->second;
  head->second = slot;
  ++live_;
  LowerNextExpiry(expires_ms);
}

Status EmbeddedCache::Snapshot() {
  Status written = WriteSnapshot();
  ReleaseFreeMemory();  // the copy of every entry it wrote
  if (Status labels = SaveLabels(/*only_when_due=*/false); written.ok() && !labels.ok())
    return labels;
  return written;
}

Status EmbeddedCache::Reembed(std::unique_ptr<embed::Embedder> next_embedder,
                              const ReembedProgress& progress) {
  if (!next_embedder) return InvalidArgument("reembed needs an embedder");
  std::lock_guard one_at_a_time(reembed_mu_);
  std::shared_ptr<embed::Embedder> next = std::move(next_embedder);
  const std::string new_originals =
      embedded_.originals_path.empty()
          ? ""
          : embedded_.originals_path + ".reembed" + std::to_string(vectors_epoch_ + 1);
  // What to embed: every live entry as it is now (slot, tag, prompt).
  struct Work {
    std::uint32_t slot;
    std::uint64_t tag;
    std::string prompt;
  };
  std::vector<Work> work;
  vector::HnswOptions io;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    io = index_->options();
    work.reserve(live_);
    for (std::uint32_t slot = 0; slot < slots_.size(); ++slot)
      if (slots_[slot].text)
        work.push_back({slot, slots_[slot].tag, std::string(slots_[slot].text->prompt())});
  }
  io.dim = next->dim();
  io.originals_path = new_originals;
  auto made = vector::HnswIndex::Create(io);
  if (!made.ok()) return made.status();
  std::shared_ptr<vector::HnswIndex> fresh = std::move(*made);
  auto embed_into = [&](const std::string& prompt, std::uint32_t slot) -> Status {
    auto normalized = NormalizePrompt(prompt, options_.normalize);
    if (!normalized.ok()) return normalized.status();
    auto vec = next->EmbedToStore(*normalized);
    if (!vec.ok()) return vec.status();
    return fresh->Add(slot, vec->data(), vec->size());
  };
  // The bulk, outside the lock: the cache answers from the old vectors meanwhile. An embedder
  // that learns from the entries (the n-gram one's term weights) sees them all first, so the
  // first entry is embedded with the same weights as the last.
  for (const Work& w : work) {
    auto normalized = NormalizePrompt(w.prompt, options_.normalize);
    if (normalized.ok()) next->Observe(*normalized);
  }
  std::size_t done = 0;
  for (const Work& w : work) {
    if (Status s = embed_into(w.prompt, w.slot); !s.ok()) return s;
    if (progress && (++done % 256 == 0 || done == work.size())) progress(done, work.size());
  }
  if (progress && work.empty()) progress(0, 0);

  std::unique_lock<std::shared_mutex> lock(mu_);
  // Catch up: entries deleted since (or their slot reused) leave the new index; entries
  // stored since join it.
  boost::unordered_flat_map<std::uint32_t, std::uint64_t> built;
  built.reserve(work.size());
  for (const Work& w : work) built.emplace(w.slot, w.tag);
  for (const auto& [slot, tag] : built) {
    if (!slots_[slot].text || slots_[slot].tag != tag) (void)fresh->Remove(slot);
  }
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const Entry& e = slots_[slot];
    if (!e.text) continue;
    auto it = built.find(slot);
    if (it != built.end() && it->second == e.tag) continue;
    const std::string stored(e.text->prompt());
    if (auto normalized = NormalizePrompt(stored, options_.normalize); normalized.ok())
      next->Observe(*normalized);
    if (Status s = embed_into(stored, slot); !s.ok()) return s;
  }
  index_ = std::move(fresh);
  embedder_ = std::move(next);
  embedder_remote_.store(embedder_->Remote(), std::memory_order_relaxed);
  ++vectors_epoch_;
  ForgetSimilarities();
  if (embedded_.persist_dir.empty()) return Status::Ok();
  // The new state on disk before the record that names its embedder.
  if (Status s = WriteSnapshotLocked(); !s.ok()) return s;
  return WriteFileDurably(embedded_.persist_dir + "/" + options_.id + ".embedder",
                          embedder_->identity().ToJson() + "\n");
}

Status EmbeddedCache::WriteSnapshot() {
  std::unique_lock<std::shared_mutex> lock(mu_);  // writes wait; the cut is consistent
  return WriteSnapshotLocked();
}

Status EmbeddedCache::WriteSnapshotLocked() {
  if (!persistence_) return Status::Ok();
  // One entry's copy at a time: the whole cache is never copied to be saved.
  auto each = [this](const std::function<void(const StoredEntry&)>& emit) {
    StoredEntry se;
    for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
      const Entry& e = slots_[slot];
      if (!e.text) continue;
      se.label = slot;
      se.tag = e.tag;
      se.created_ms = e.created_ms;
      se.expires_ms = ExpiresAt(e);
      se.ttl_ms = e.ttl_ms;
      se.prompt = e.text->prompt();
      se.response = e.text->response();
      se.attributes = e.text->attributes();
      emit(se);
    }
  };
  return persistence_->Snapshot(live_, each, *index_, slots_.size());
}

void EmbeddedCache::DropPersistence() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  persistence_.reset();
}

Status EmbeddedCache::MaybeSnapshot() {
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!persistence_) return Status::Ok();
    if (persistence_->journal_bytes() < embedded_.snapshot_journal_bytes) {
      lock.unlock();
      return SaveLabels(/*only_when_due=*/true);
    }
  }
  return Snapshot();
}

EmbeddedCache::EmbeddedCache(CacheOptions options, std::unique_ptr<embed::Embedder> embedder,
                             Clock clock, std::unique_ptr<vector::HnswIndex> index)
    : options_(std::move(options)),
      embedder_(std::move(embedder)),
      embedder_remote_(embedder_->Remote()),
      clock_(std::move(clock)),
      index_(std::move(index)) {}

std::int64_t EmbeddedCache::ExpiresAt(const Entry& e) const {
  if (e.expires_ms == 0) return 0;
  if (!options_.sliding_ttl) return e.expires_ms;
  return std::max(e.expires_ms, e.last_access_ms.load(std::memory_order_relaxed) + e.ttl_ms);
}

bool EmbeddedCache::Matches(const Entry& e, const Attributes& scope, std::int64_t now) const {
  std::int64_t expires = ExpiresAt(e);
  if (expires != 0 && expires <= now) return false;
  return e.text->HasAll(scope);
}

Result<std::string> EmbeddedCache::Store(const std::string& prompt, const std::string& response,
                                         const Attributes& attributes,
                                         std::optional<std::int64_t> ttl_ms) {
  auto normalized = CheckStore(options_, prompt, response, attributes, ttl_ms);
  if (!normalized.ok()) return normalized.status();

  std::shared_ptr<embed::Embedder> embedder;
  std::shared_ptr<vector::HnswIndex> index;
  std::uint64_t epoch;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    embedder = embedder_;
    index = index_;
    epoch = vectors_epoch_;
  }
  embedder->Observe(*normalized);
  auto vec = embedder->EmbedToStore(*normalized);
  if (!vec.ok()) return vec.status();

  auto text = EntryText::Make(prompt, response, attributes);
  const ExactDigest exact = ExactKey128(options_.id, *normalized, {});  // before the lock
  const std::uint64_t tag = RandomU64();
  const std::int64_t created = clock_();
  const std::int64_t ttl = ttl_ms ? *ttl_ms : options_.default_ttl_ms;
  const std::int64_t expires = ttl > 0 ? created + ttl : 0;

  std::uint32_t slot;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    slot = TakeSlotLocked();
  }
  if (slot == kNoSlot)
    return Status(ErrorCode::kResourceExhausted, "cache " + options_.id + " holds 2^32 entries");
  // The index is thread-safe: add outside the cache lock so searches are not held up by a
  // graph insert. Until the slot holds the entry, searches skip its label.
  Status s = index->Add(slot, vec->data(), vec->size());
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (s.ok() && epoch != vectors_epoch_) {
    // Reembed switched meanwhile: the vector went to the old index. Embed again for the new.
    auto again = embedder_->EmbedToStore(*normalized);
    s = again.ok() ? index_->Add(slot, again->data(), again->size()) : again.status();
    if (s.ok()) vec = std::move(again);
  }
  if (!s.ok()) {
    FreeSlotLocked(slot);
    return s;
  }
  if (persistence_) {
    // Durable before acknowledged: under fsync "always" the record is on disk when this returns.
    JournalRecord rec;
    rec.type = JournalRecord::Type::kStore;
    rec.entry = {slot,   tag,      created,    expires, ttl > 0 ? ttl : 0,
                 prompt, response, attributes, *vec};
    if (Status logged = LogLocked(rec); !logged.ok()) {
      (void)index_->Remove(slot);
      FreeSlotLocked(slot);
      return logged;
    }
  }
  InsertLocked(slot, std::move(text), exact, tag, created, expires, ttl > 0 ? ttl : 0);
  counters_.stores.fetch_add(1, std::memory_order_relaxed);
  EvictLocked(created);
  return MakeEntryId(slot, tag);
}

std::int64_t EmbeddedCache::NowMs() const { return clock_(); }

Result<Candidate> EmbeddedCache::EntryById(const std::string& entry_id) {
  std::uint64_t label = 0, tag = 0;
  auto missing = NotFound("no entry " + entry_id + " in cache " + options_.id);
  if (!ParseEntryId(entry_id, &label, &tag)) return missing;
  std::shared_lock<std::shared_mutex> lock(mu_);
  const Entry* e = Find(label);
  if (e == nullptr || e->tag != tag || !e->text) return missing;
  return CandidateOf(static_cast<std::uint32_t>(label), *e, 1.0f);
}

Result<float> EmbeddedCache::PromptSimilarity(const std::string& a, const std::string& b) {
  std::shared_ptr<embed::Embedder> embedder;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    embedder = embedder_;
  }
  return embed::CosineOf(*embedder, a, b);
}

Result<std::vector<std::vector<float>>> EmbeddedCache::SampleVectors(std::size_t n) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<std::uint32_t> live;
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot)
    if (slots_[slot].text) live.push_back(slot);
  // A uniform sample: the first n of a partial shuffle.
  const std::size_t take = std::min(n, live.size());
  for (std::size_t i = 0; i < take; ++i)
    std::swap(live[i], live[i + RandomU64() % (live.size() - i)]);
  std::vector<std::vector<float>> out;
  out.reserve(take);
  for (std::size_t i = 0; i < take; ++i) {
    auto v = index_->Get(live[i]);
    if (v.ok()) out.push_back(std::move(*v));
  }
  return out;
}

Status EmbeddedCache::ForEachEntry(bool with_vectors,
                                   const std::function<bool(const ExportedEntry&)>& emit) {
  // The entries' references under the lock (cheap: no text is copied), the rest after it.
  struct Item {
    std::uint32_t slot;
    std::uint64_t tag;
    EntryTextRef text;
    std::int64_t expires_ms;
  };
  std::vector<Item> items;
  std::shared_ptr<vector::HnswIndex> index;
  const std::int64_t now = NowMs();
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    index = index_;
    items.reserve(slots_.size());
    for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
      const Entry& e = slots_[slot];
      if (!e.text) continue;
      const std::int64_t expires = ExpiresAt(e);
      if (expires != 0 && expires <= now) continue;
      items.push_back({slot, e.tag, e.text, expires});
    }
  }
  for (const Item& item : items) {
    ExportedEntry out;
    out.id = MakeEntryId(item.slot, item.tag);
    out.text = item.text;
    out.ttl_left_ms = item.expires_ms == 0 ? 0 : item.expires_ms - now;
    if (with_vectors) {
      auto v = index->Get(item.slot);
      if (!v.ok()) continue;  // deleted since the list was taken
      out.vector = std::move(*v);
    }
    if (!emit(out)) break;
  }
  return Status::Ok();
}

bool EmbeddedCache::MayBlock() const { return embedder_remote_.load(std::memory_order_relaxed); }

Cache::EmbedderInfo EmbeddedCache::EmbedderOf() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return {embedder_->identity().Describe(), embedder_->Remote()};
}

Result<std::vector<float>> EmbeddedCache::EntryVector(const std::string& entry_id) {
  std::uint64_t label = 0, tag = 0;
  auto missing = NotFound("no entry " + entry_id + " in cache " + options_.id);
  if (!ParseEntryId(entry_id, &label, &tag)) return missing;
  std::shared_lock<std::shared_mutex> lock(mu_);
  const Entry* e = Find(label);
  if (e == nullptr || e->tag != tag) return missing;
  return index_->Get(label);
}

Candidate EmbeddedCache::CandidateOf(std::uint32_t slot, const Entry& e, float similarity) const {
  Candidate c;
  c.id = MakeEntryId(slot, e.tag);
  c.entry = e.text;
  c.similarity = similarity;
  c.expires_ms = ExpiresAt(e);
  c.ttl_ms = e.ttl_ms;
  c.handle = reinterpret_cast<std::uintptr_t>(&e);
  return c;
}

Result<std::vector<Candidate>> EmbeddedCache::ExactCandidates(const std::string& normalized,
                                                              const SearchQuery&, LookupTrace&) {
  const ExactDigest digest = ExactKey128(options_.id, normalized, {});
  std::vector<Candidate> out;
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto head = exact_.find(digest.key);
  for (std::uint32_t slot = head == exact_.end() ? kNoSlot : head->second; slot != kNoSlot;
       slot = slots_[slot].next_same_key) {
    const Entry& e = slots_[slot];
    if (e.text && e.exact.check == digest.check) out.push_back(CandidateOf(slot, e, 1.0f));
  }
  return out;
}

Result<std::vector<Candidate>> EmbeddedCache::SemanticCandidates(const std::string& normalized,
                                                                 float load_floor,
                                                                 const SearchQuery& q,
                                                                 std::int64_t now, LookupTrace& t) {
  auto te = Steady::now();
  std::shared_ptr<embed::Embedder> embedder;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    embedder = embedder_;
  }
  std::optional<tracing::Span> embed_span(std::in_place, "cache.embed");
  auto vec = embedder->Embed(normalized);
  if (!vec.ok()) {
    embed_span->SetError(vec.status().message());
    return vec.status();
  }
  embed_span.reset();
  t.embed_us += Micros(Steady::now() - te).count();
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (embedder != embedder_) {  // Reembed switched meanwhile: embed for the new index
    vec = embedder_->Embed(normalized);
    if (!vec.ok()) return vec.status();
  }
  std::function<bool(std::uint64_t)> filter = [&](std::uint64_t label) {
    const Entry* e = Find(label);
    return e != nullptr && Matches(*e, q.attributes, now);
  };
  vector::SearchParams p;
  p.k = options_.semantic_candidates;
  p.ef = std::max(options_.search_ef, p.k);
  // Only candidates that could reach the floor are re-scored in float32.
  p.rescore_max_distance = 1.0f - load_floor + kRescoreMargin;
  p.rescore_band = kRescoreBand;
  // With no scope and nothing that can expire, every live node of the index is a valid
  // entry: the walk needs no per-node predicate (deletions are tombstones there).
  const bool unscoped = q.attributes.empty() && next_expiry_.load(std::memory_order_relaxed) == 0;
  if (!unscoped) p.filter = &filter;
  auto ts = Steady::now();
  std::optional<tracing::Span> search_span(std::in_place, "cache.search");
  auto found = index_->Search(vec->data(), vec->size(), p);
  search_span.reset();
  t.search_us += Micros(Steady::now() - ts).count();
  if (!found.ok()) return found.status();
  std::vector<Candidate> out;
  out.reserve(found->size());
  for (const auto& h : *found) {
    const float sim = vector::HnswIndex::Similarity(vector::Metric::kCosine, h.distance);
    const Entry* e = sim >= load_floor ? Find(h.label) : nullptr;
    if (e == nullptr) {  // below the floor, or its slot not filled yet: ranked, not served
      Candidate unloaded;
      unloaded.similarity = sim;
      out.push_back(std::move(unloaded));
      if (sim < load_floor) break;  // ranked: nothing after it can be served either
      continue;
    }
    out.push_back(CandidateOf(static_cast<std::uint32_t>(h.label), *e, sim));
  }
  return out;
}

void EmbeddedCache::RecordUse(const Candidate& chosen, std::int64_t now) {
  // No lock: slots never move or go away (the deque only grows), and the use fields are
  // atomics. An entry deleted since the search and its slot reused gets this one use: a
  // harmless error in an eviction order, cheaper than a second lock on every hit.
  const Entry* e = reinterpret_cast<const Entry*>(chosen.handle);
  e->last_access_ms.store(now, std::memory_order_relaxed);
  e->hits.fetch_add(1, std::memory_order_relaxed);
}

void EmbeddedCache::EraseLocked(std::uint32_t slot) {
  Entry& e = slots_[slot];
  (void)index_->Remove(slot);
  // Unlink from its chain.
  auto head = exact_.find(e.exact.key);
  if (head != exact_.end()) {
    if (head->second == slot) {
      if (e.next_same_key == kNoSlot) {
        exact_.erase(head);
      } else {
        head->second = e.next_same_key;
      }
    } else {
      for (std::uint32_t at = head->second; at != kNoSlot; at = slots_[at].next_same_key) {
        if (slots_[at].next_same_key == slot) {
          slots_[at].next_same_key = e.next_same_key;
          break;
        }
      }
    }
  }
  e.next_same_key = kNoSlot;
  bytes_ -= e.text->text_bytes();
  --live_;
  e.text.reset();
  FreeSlotLocked(slot);
}

double EmbeddedCache::EvictionScore(const Entry& e, std::int64_t now) const {
  return cache::EvictionScore(options_, e.last_access_ms.load(std::memory_order_relaxed),
                              e.hits.load(std::memory_order_relaxed), e.text->response().size(),
                              e.text->text_bytes(), now);
}

void EmbeddedCache::EvictLocked(std::int64_t now) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  auto over = [&] {
    return (options_.max_entries > 0 && live_ > options_.max_entries) ||
           (options_.max_bytes > 0 && bytes_ > options_.max_bytes && live_ > 1);
  };
  while (over()) {
    std::uint32_t victim = 0;
    bool chosen = false;
    double worst = 0;
    auto consider = [&](std::uint32_t slot) {
      const Entry& e = slots_[slot];
      if (!e.text) return false;
      double score = EvictionScore(e, now);
      if (!chosen || score < worst) {
        victim = slot;
        worst = score;
        chosen = true;
      }
      return true;
    };
    // A cache no larger than the sample is scanned whole: exact policy when it is cheap.
    // Otherwise random slots; free ones do not count, and since slots are reused before the
    // deque grows, most are live (a bounded number of tries covers a cache emptied by deletes).
    if (live_ <= options_.eviction_samples) {
      for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) consider(slot);
    } else {
      std::size_t sampled = 0;
      for (std::size_t tries = 0;
           sampled < options_.eviction_samples && tries < 64 * options_.eviction_samples; ++tries) {
        if (consider(static_cast<std::uint32_t>(rng() % slots_.size()))) ++sampled;
      }
      for (std::uint32_t slot = 0; !chosen && slot < slots_.size(); ++slot) consider(slot);
    }
    if (!chosen) return;
    JournalRecord rec;
    rec.type = JournalRecord::Type::kDelete;
    rec.label = victim;
    if (Status logged = LogLocked(rec); !logged.ok()) spdlog::error("{}", logged.message());
    EraseLocked(victim);
    counters_.evicted.fetch_add(1, std::memory_order_relaxed);
  }
}

Status EmbeddedCache::Delete(const std::string& entry_id) {
  std::uint64_t label = 0, tag = 0;
  if (!ParseEntryId(entry_id, &label, &tag))
    return NotFound("no entry " + entry_id + " in cache " + options_.id);
  std::unique_lock<std::shared_mutex> lock(mu_);
  const Entry* e = Find(label);
  if (e == nullptr || e->tag != tag) {
    return NotFound("no entry " + entry_id + " in cache " + options_.id);
  }
  JournalRecord rec;
  rec.type = JournalRecord::Type::kDelete;
  rec.label = label;
  if (Status logged = LogLocked(rec); !logged.ok()) return logged;
  EraseLocked(static_cast<std::uint32_t>(label));
  counters_.deleted.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Result<std::size_t> EmbeddedCache::DeleteByAttributes(const Attributes& attributes) {
  // As the LangCache API defines it: no attributes match every entry.
  Status s = CheckAttributes(options_, attributes, "attributes");
  if (!s.ok()) return s;
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::size_t n = 0;
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const Entry& e = slots_[slot];
    if (!e.text || !Matches(e, attributes, 0)) continue;
    JournalRecord rec;
    rec.type = JournalRecord::Type::kDelete;
    rec.label = slot;
    if (Status logged = LogLocked(rec); !logged.ok()) {
      counters_.deleted.fetch_add(n, std::memory_order_relaxed);
      return logged;
    }
    EraseLocked(slot);
    ++n;
  }
  counters_.deleted.fetch_add(n, std::memory_order_relaxed);
  return n;
}

Status EmbeddedCache::Flush() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  JournalRecord rec;
  rec.type = JournalRecord::Type::kFlush;
  if (Status logged = LogLocked(rec); !logged.ok())
    return logged;  // nothing erased: still consistent
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
    if (slots_[slot].text) EraseLocked(slot);
  }
  return Status::Ok();
}

// Expiry keeps no ordered index (it would cost about 64 bytes an entry): a sweep that finds
// something due scans the slots, collecting what has expired under the shared lock and
// erasing it under the exclusive one, and learns the next due time on the way.
std::size_t EmbeddedCache::Sweep() {
  const std::int64_t now = clock_();
  // Most sweeps find nothing due: check without any lock.
  std::int64_t next = next_expiry_.load(std::memory_order_relaxed);
  if (next == 0 || next > now) return 0;
  // While the scan runs, the next due time is unknown but not "never" (the unscoped search
  // path must keep checking expiry); stores during the scan lower it themselves.
  next_expiry_.store(kExpiryUnknown, std::memory_order_relaxed);
  std::vector<std::uint32_t> due;
  std::int64_t earliest = 0;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
      const Entry& e = slots_[slot];
      if (!e.text) continue;
      const std::int64_t expires = ExpiresAt(e);
      if (expires == 0) continue;
      if (expires <= now) {
        due.push_back(slot);
      } else if (earliest == 0 || expires < earliest) {
        earliest = expires;
      }
    }
  }
  LowerNextExpiry(earliest);
  std::size_t n = 0;
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (std::uint32_t slot : due) {
    const Entry& e = slots_[slot];
    // Between the two locks the slot may have been deleted, refilled or its TTL slid.
    if (!e.text) continue;
    const std::int64_t expires = ExpiresAt(e);
    if (expires == 0 || expires > now) {
      LowerNextExpiry(expires);
      continue;
    }
    EraseLocked(slot);  // not journaled: a restart finds it expired and sweeps it again
    ++n;
  }
  // Nothing left that expires: back to "never".
  std::int64_t unknown = kExpiryUnknown;
  next_expiry_.compare_exchange_strong(unknown, 0, std::memory_order_relaxed);
  counters_.expired.fetch_add(n, std::memory_order_relaxed);
  return n;
}

CacheStats EmbeddedCache::Stats() const {
  CacheStats s;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    s.entries = live_;
    s.bytes = bytes_;
  }
  counters_.Fill(&s);
  return s;
}

Result<std::vector<std::string>> EmbeddedCache::NearestIds(const std::vector<float>& query,
                                                           std::size_t k, std::size_t ef) {
  std::shared_ptr<vector::HnswIndex> index;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    index = index_;
  }
  vector::SearchParams p;
  p.k = k;
  if (ef == 0)
    p.precision = vector::Precision::kExact;
  else
    p.ef = ef;
  auto found = index->Search(query.data(), query.size(), p);
  if (!found.ok()) return found.status();
  std::vector<std::string> out;
  for (const auto& h : *found) out.push_back(std::to_string(h.label));
  return out;
}

CacheMemory EmbeddedCache::Memory() const {
  CacheMemory m;
  std::shared_ptr<vector::HnswIndex> index;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    m.text = bytes_;
    index = index_;
  }
  if (index) {
    const vector::IndexStats st = index->Stats();
    m.vectors = st.code_bytes + (st.originals_on_disk ? 0 : st.original_bytes);
    m.graph = st.graph_bytes;
  }
  return m;
}

}  // namespace semcached::cache
