// EmbeddedCache: the Cache (cache/cache.h) held in this process.
//
// Entries live in slots whose numbers are their labels in an HNSW index
// (vector/hnsw_index.h), with a map from exact digests to slots; an optional snapshot +
// journal in data_dir makes them durable (persistence.h). A search's tiers return candidates
// from the digest map and the index; Cache::Search judges them. Sweep() removes expired
// entries from every structure; eviction samples entries when a limit is reached. The clock is
// injected so TTL is testable. Must not: include HTTP or Redis headers, or decide a hit.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "cache/cache.h"
#include "cache/embedded/persistence.h"
#include "cache/fingerprint.h"
#include "embed/embedder.h"
#include "vector/hnsw_index.h"

namespace semcached::cache {

// One entry, kept in a slot of a deque (its label in the vector index is its slot number, so
// a search result leads straight to it and no map keyed by label is needed). Ids are 32 hex
// digits: the slot and a random tag, so a guessed or stale id (its slot since reused) does
// not match. 72 bytes; with the index's code and links and the exact map, the cost of
// an entry beyond its text stays under 1 KB at 512 dimensions (bench/cache_memory.cpp).
inline constexpr std::uint32_t kNoSlot = 0xFFFFFFFFu;

struct Entry {
  EntryTextRef text;      // null: the slot is free or still being filled
  std::uint64_t tag = 0;  // random half of the id
  ExactDigest exact;      // of the normalized prompt
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;  // 0: never (with sliding TTL: the expiry at store time)
  std::int64_t ttl_ms = 0;
  // Use, updated by searches under the shared lock.
  mutable std::atomic<std::int64_t> last_access_ms{0};
  mutable std::atomic<std::uint32_t> hits{0};
  // The next slot whose exact digest has the same key (the same prompt stored under other
  // attributes, mostly), or kNoSlot: the exact map holds the first of each chain.
  std::uint32_t next_same_key = kNoSlot;
};
static_assert(sizeof(Entry) == 72);

// What only the embedded cache has: where its files go.
struct EmbeddedOptions {
  std::string originals_path;  // float32 vectors in this file (RAM holds codes); empty: RAM
  // Durability (persistence.h): entries and index in this directory; empty: memory only.
  std::string persist_dir;
  FsyncPolicy fsync = FsyncPolicy::kEverySecond;
  std::size_t snapshot_journal_bytes = 64u << 20;  // MaybeSnapshot writes one past this
  // For `semcached reembed` only: opens files whose vectors another embedder made (the
  // recorded identity is not checked); Reembed must follow before any search or store.
  bool allow_embedder_change = false;
};

class EmbeddedCache final : public Cache {
 public:
  using Clock = std::function<std::int64_t()>;  // milliseconds since the epoch

  // Semantic candidates are re-scored in float32 only when their int8 distance is within the
  // load floor's (the threshold) plus this: the int8 error on the built-in embedder's vectors stays
  // well below it (tested), so every candidate that can qualify is re-scored, and misses read no
  // floats.
  static constexpr float kRescoreMargin = 0.1f;
  // And of those, only the ones int8 puts within this of the k-th best: the int8 error stays
  // under half of it on both built-in embedders (tested), so the top k come out in float32's
  // order while most float rows (512 bytes each at 128-d, a random read) are never touched.
  static constexpr float kRescoreBand = 0.08f;

  static Result<std::unique_ptr<EmbeddedCache>> Create(CacheOptions options,
                                                       std::unique_ptr<embed::Embedder> embedder,
                                                       Clock clock = {},
                                                       EmbeddedOptions embedded = {});

  Result<std::string> Store(const std::string& prompt, const std::string& response,
                            const Attributes& attributes,
                            std::optional<std::int64_t> ttl_ms) override;
  Status Delete(const std::string& entry_id) override;
  Result<std::size_t> DeleteByAttributes(const Attributes& attributes) override;
  Status Flush() override;
  std::size_t Sweep() override;
  // Writes a snapshot (persisted caches only; Ok otherwise); MaybeSnapshot only when the
  // journal has grown past EmbeddedOptions::snapshot_journal_bytes.
  Status Snapshot() override;
  // Recomputes every entry's vector from its stored prompt with `next` into a new index while
  // the cache keeps answering (searches and stores use the old embedder and index), catches up
  // the entries stored or deleted meanwhile, then switches in one step under the write lock:
  // index, embedder, and (persisted caches) a snapshot of the new state followed by the record
  // of `next`'s identity, so a crash leaves the old state or the new vectors under the old
  // record (which a second run repairs). `progress` is called with (done, total).
  Status Reembed(std::unique_ptr<embed::Embedder> next,
                 const ReembedProgress& progress = {}) override;
  Status MaybeSnapshot() override;
  // Stops writing files (the cache is being deleted; requests still holding it carry on in
  // memory), so its files can be removed.
  void DropPersistence() override;
  // What was recovered at start-up (for the log).
  std::size_t restored_entries() const override { return restored_entries_; }

  CacheStats Stats() const override;
  CacheMemory Memory() const override;

  const CacheOptions& options() const override { return options_; }
  const char* store_name() const override { return "embedded"; }

  // Every live entry, for an export.
  Status ForEachEntry(bool with_vectors,
                      const std::function<bool(const ExportedEntry&)>& emit) override;
  bool MayBlock() const override;
  EmbedderInfo EmbedderOf() const override;

 protected:
  Result<std::vector<Candidate>> ExactCandidates(const std::string& normalized,
                                                 const SearchQuery& query,
                                                 LookupTrace& trace) override;
  Result<std::vector<Candidate>> SemanticCandidates(const std::string& normalized, float load_floor,
                                                    const SearchQuery& query, std::int64_t now,
                                                    LookupTrace& trace) override;
  void RecordUse(const Candidate& chosen, std::int64_t now) override;
  std::int64_t NowMs() const override;
  Result<Candidate> EntryById(const std::string& entry_id) override;
  Result<float> PromptSimilarity(const std::string& a, const std::string& b) override;
  Result<std::vector<std::vector<float>>> SampleVectors(std::size_t n) override;
  Result<std::vector<float>> EntryVector(const std::string& entry_id) override;
  Result<std::vector<std::string>> NearestIds(const std::vector<float>& query, std::size_t k,
                                              std::size_t ef) override;

 private:
  EmbeddedCache(CacheOptions options, std::unique_ptr<embed::Embedder> embedder, Clock clock,
                std::unique_ptr<vector::HnswIndex> index);
  bool Matches(const Entry& e, const Attributes& scope, std::int64_t now) const;
  Candidate CandidateOf(std::uint32_t slot, const Entry& e, float similarity) const;
  std::int64_t ExpiresAt(const Entry& e) const;  // 0: never
  // The live entry in a slot, or null.
  const Entry* Find(std::uint64_t label) const;
  std::uint32_t TakeSlotLocked();  // kNoSlot when every slot number is in use
  void FreeSlotLocked(std::uint32_t slot);
  void EraseLocked(std::uint32_t slot);
  // Fills a taken slot (its vector is in the index already).
  void InsertLocked(std::uint32_t slot, EntryTextRef text, ExactDigest exact, std::uint64_t tag,
                    std::int64_t created_ms, std::int64_t expires_ms, std::int64_t ttl_ms);
  void LowerNextExpiry(std::int64_t expires_ms);
  Status LogLocked(const JournalRecord& record);  // Ok when not persisted
  Status Restore(LoadedState& loaded);
  // The adaptive thresholds' labels, in persist_dir beside the snapshots: saved with each
  // snapshot, and when they have moved, at most every kLabelsSaveIntervalMs.
  std::string LabelsPath() const;
  Status SaveLabels(bool only_when_due);
  static constexpr std::int64_t kLabelsSaveIntervalMs = 30000;
  std::mutex labels_save_mu_;       // guards the two below
  std::uint64_t labels_saved_ = 0;  // labels_added() when last saved
  std::chrono::steady_clock::time_point labels_saved_at_{};
  Status WriteSnapshot();        // Snapshot() without the heap trim that follows it
  Status WriteSnapshotLocked();  // the same, mu_ held exclusively by the caller
  Status RestoreLocked(const StoredEntry& stored);
  double EvictionScore(const Entry& e, std::int64_t now) const;  // lower leaves first
  void EvictLocked(std::int64_t now);

  CacheOptions options_;
  EmbeddedOptions embedded_;
  // Shared so that a search or store that started before Reembed switched may finish with
  // the ones it began with; read (copied) under mu_, replaced under mu_ held exclusively.
  std::shared_ptr<embed::Embedder> embedder_;
  // Whether embedder_ waits on the network: read on every request, without mu_.
  std::atomic<bool> embedder_remote_{false};
  Clock clock_;
  std::shared_ptr<vector::HnswIndex> index_;
  std::uint64_t vectors_epoch_ = 0;  // +1 at each switch of embedder and index
  std::mutex reembed_mu_;            // one Reembed at a time
  std::unique_ptr<CachePersistence> persistence_;
  std::size_t restored_entries_ = 0;

  mutable std::shared_mutex mu_;
  std::deque<Entry> slots_;                // label -> entry; never shrinks
  std::vector<std::uint32_t> free_slots_;  // reused before the deque grows
  // Exact digest key -> first slot of its chain. A flat map: no allocation per entry.
  boost::unordered_flat_map<std::uint64_t, std::uint32_t> exact_;
  std::size_t live_ = 0;
  std::size_t bytes_ = 0;
  // Earliest expiry of any entry, 0 when none can expire: sweeps and the unscoped search fast
  // path read it without the lock. It may be early (a hit slid a TTL), never late.
  std::atomic<std::int64_t> next_expiry_{0};
};

}  // namespace semcached::cache
