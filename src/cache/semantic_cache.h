// SemanticCache: the embedded Cache (cache.h), held in this process.
//
// Entries live in memory maps keyed by their label in an HNSW index (vector/hnsw_index.h);
// an optional snapshot + journal in data_dir makes them durable (persistence.h). Sweep()
// removes expired entries from every structure; eviction samples entries when a limit is
// reached. The clock is injected so TTL is testable. No HTTP, no Redis.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/cache.h"
#include "embed/embedder.h"
#include "vector/hnsw_index.h"

namespace semcached::cache {

// Use of an entry, updated by searches under a shared lock.
struct EntryUse {
  std::atomic<std::int64_t> last_access_ms{0};
  std::atomic<std::uint64_t> hits{0};
};

// Entry ids are 32 hex digits: the entry's index label and a random tag, so an id leads
// straight to its entry and a guessed or stale id does not match.
struct Entry {
  std::shared_ptr<const EntryText> text;
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;  // 0: never (with sliding TTL: the expiry at store time)
  std::int64_t ttl_ms = 0;
  std::uint64_t label = 0;      // in the vector index; the key of every map
  std::uint64_t tag = 0;        // random half of the id
  std::uint64_t exact_key = 0;  // ExactKey64 of the normalized prompt
  std::size_t slot = 0;         // position in the eviction sample vector
  std::shared_ptr<EntryUse> use;

  std::string Id() const;
};

class SemanticCache final : public Cache {
 public:
  using Clock = std::function<std::int64_t()>;  // milliseconds since the epoch

  static Result<std::unique_ptr<SemanticCache>> Create(CacheOptions options,
                                                       std::unique_ptr<embed::Embedder> embedder,
                                                       Clock clock = {});

  Result<std::string> Store(const std::string& prompt, const std::string& response,
                            const Attributes& attributes,
                            std::optional<std::int64_t> ttl_ms) override;
  Result<std::vector<Hit>> Search(const SearchQuery& query, LookupTrace* trace = nullptr) override;
  Status Delete(const std::string& entry_id) override;
  Result<std::size_t> DeleteByAttributes(const Attributes& attributes) override;
  Status Flush() override;
  std::size_t Sweep() override;
  // Writes a snapshot (persisted caches only; Ok otherwise); MaybeSnapshot only when the
  // journal has grown past options().snapshot_journal_bytes.
  Status Snapshot() override;
  Status MaybeSnapshot() override;
  // Stops writing files (the cache is being deleted; requests still holding it carry on in
  // memory), so its files can be removed.
  void DropPersistence() override;
  // What was recovered at start-up (for the log).
  std::size_t restored_entries() const override { return restored_entries_; }

  CacheStats Stats() const override;
  const CacheOptions& options() const override { return options_; }
  const char* store_name() const override { return "embedded"; }

 private:
  SemanticCache(CacheOptions options, std::unique_ptr<embed::Embedder> embedder, Clock clock,
                std::unique_ptr<vector::HnswIndex> index);
  bool Matches(const Entry& e, const Attributes& scope, std::int64_t now) const;
  std::int64_t ExpiresAt(const Entry& e) const;  // 0: never
  void EraseLocked(std::unordered_map<std::uint64_t, Entry>::iterator it);
  void InsertLocked(Entry e);
  Status LogLocked(const JournalRecord& record);  // Ok when not persisted
  Status Restore(LoadedState& loaded);
  Result<Entry> MakeEntry(const StoredEntry& stored);
  std::size_t EntryBytes(const Entry& e) const;
  void Touch(const Entry& e, std::int64_t now) const;
  double EvictionScore(const Entry& e, std::int64_t now) const;  // lower leaves first
  void EvictLocked(std::int64_t now);

  CacheOptions options_;
  std::unique_ptr<embed::Embedder> embedder_;
  Clock clock_;
  std::unique_ptr<vector::HnswIndex> index_;
  std::unique_ptr<CachePersistence> persistence_;
  std::size_t restored_entries_ = 0;

  mutable std::shared_mutex mu_;
  std::unordered_map<std::uint64_t, Entry> entries_;                     // label -> entry
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> exact_;  // exact key -> labels
  std::multimap<std::int64_t, std::uint64_t> expiry_;                    // expires_ms -> label
  std::atomic<std::int64_t> next_expiry_{0};                             // 0: none pending
  std::vector<std::uint64_t> labels_;                                    // for eviction samples
  std::atomic<std::uint64_t> next_label_{1};
  std::size_t bytes_ = 0;
};

}  // namespace semcached::cache
