// One semantic cache: entries (prompt, response, attributes, TTL) answered by an exact tier
// and a semantic tier, in the order a request asks for.
//
//  - exact: the normalized prompt's SHA-256 within the cache; an entry matches when its
//    attributes include every attribute the search names;
//  - semantic: the normalized prompt is embedded and searched in the vector index among
//    entries in the same attribute scope; the best candidate at or above the similarity
//    threshold (cosine, 0..1) that also passes the guards (numbers and negation agree) is
//    the hit.
// Expired entries are never returned; Sweep() removes them from every structure.
//
// This class knows nothing of HTTP or Redis: the LangCache routes (server/) call it, and
// the clock is injected so TTL is testable.
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

#include "cache/guards.h"
#include "cache/normalize.h"
#include "cache/persistence.h"
#include "common/status.h"
#include "embed/embedder.h"
#include "vector/hnsw_index.h"

namespace semcached::cache {

enum class Strategy { kExact, kSemantic };

// Which entry leaves first when a cache is full. Victims are chosen by sampling (as Redis
// does): the worst of `eviction_samples` random entries, so a hit never takes a write lock.
enum class Eviction {
  kLru,    // least recently used
  kLfu,    // fewest hits, hits halving every `lfu_half_life_ms` without use
  kValue,  // least (1 + decayed hits) x response size / entry size: what saves the least
};
const char* EvictionName(Eviction e);
bool ParseEviction(std::string_view text, Eviction* out);
const char* StrategyName(Strategy s);
bool ParseStrategy(std::string_view text, Strategy* out);

using Attributes = std::map<std::string, std::string>;

struct CacheOptions {
  std::string id;
  float similarity_threshold = 0.85f;  // cosine similarity, 0..1
  std::int64_t default_ttl_ms = 0;     // 0: entries do not expire
  bool sliding_ttl = false;            // a hit restarts the entry's TTL
  NormalizeOptions normalize;
  GuardOptions guards;
  std::vector<Strategy> strategies = {Strategy::kExact, Strategy::kSemantic};
  std::vector<std::string> allowed_attributes;  // empty: any attribute name
  std::size_t max_prompt_bytes = 64 * 1024;
  std::size_t max_response_bytes = 1024 * 1024;
  std::size_t semantic_candidates = 4;  // nearest neighbours checked against threshold and guards
  std::string originals_path;   // float32 vectors in this file (RAM holds codes); empty: RAM
  std::size_t search_ef = 32;   // a cache wants the best candidate, not a ranked list
  std::size_t max_entries = 0;  // 0: no limit
  std::size_t max_bytes = 0;    // text bytes (prompt, response, attributes); 0: no limit
  Eviction eviction = Eviction::kLru;
  std::size_t eviction_samples = 16;
  std::int64_t lfu_half_life_ms = 10 * 60 * 1000;
  // What a hit saves, estimated: the model call it replaces, at these prices (USD per million
  // tokens; defaults are a small current model's list prices), tokens estimated from text.
  double input_usd_per_mtok = 0.15;
  double output_usd_per_mtok = 0.60;
  // Durability (persistence.h): entries and index in this directory; empty: memory only.
  std::string persist_dir;
  FsyncPolicy fsync = FsyncPolicy::kEverySecond;
  std::size_t snapshot_journal_bytes = 64u << 20;  // MaybeSnapshot writes one past this
};

// Use of an entry, updated by searches under a shared lock.
struct EntryUse {
  std::atomic<std::int64_t> last_access_ms{0};
  std::atomic<std::uint64_t> hits{0};
};

// What an entry says, immutable once stored: hits share it instead of copying the text.
struct EntryText {
  std::string prompt;
  std::string response;
  Attributes attributes;
  std::string normalized;
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

struct Hit {
  std::string id;
  std::shared_ptr<const EntryText> entry;
  float similarity = 0;
  Strategy strategy = Strategy::kExact;
};

struct SearchQuery {
  std::string prompt;
  std::optional<float> threshold;
  std::vector<Strategy> strategies;  // empty: the cache's default
  Attributes attributes;
};

// What a lookup did, for metrics and the X-Semcached-* headers.
struct LookupTrace {
  std::optional<Strategy> hit_tier;
  float best_similarity = -1;  // best semantic candidate seen, hit or not
  int guard_rejections = 0;
  double normalize_us = 0, embed_us = 0, search_us = 0, guards_us = 0;
};

struct CacheStats {
  std::size_t entries = 0;
  std::size_t bytes = 0;  // prompt, response and attribute text
  std::uint64_t lookups = 0, exact_hits = 0, semantic_hits = 0, misses = 0, guard_rejections = 0;
  std::uint64_t stores = 0, expired = 0, deleted = 0, evicted = 0;
  std::uint64_t tokens_saved = 0;  // estimated prompt + response tokens of every hit
  double cost_saved_usd = 0;       // estimated, at the cache's prices
};

// Tokens in a text, estimated without a tokenizer: about 4 bytes per token for English
// (the rule of thumb OpenAI and Anthropic publish), at least 1.
std::uint64_t EstimateTokens(std::string_view text);

class SemanticCache {
 public:
  using Clock = std::function<std::int64_t()>;  // milliseconds since the epoch

  static Result<std::unique_ptr<SemanticCache>> Create(CacheOptions options,
                                                       std::unique_ptr<embed::Embedder> embedder,
                                                       Clock clock = {});

  // Stores an entry; its id. ttl_ms overrides the cache default (0 or less: refused).
  Result<std::string> Store(const std::string& prompt, const std::string& response,
                            const Attributes& attributes, std::optional<std::int64_t> ttl_ms);
  // The best hit, if any (the LangCache API returns it as a one-element list).
  Result<std::vector<Hit>> Search(const SearchQuery& query, LookupTrace* trace = nullptr);
  Status Delete(const std::string& entry_id);
  // Deletes every entry whose attributes include all of these (none: every entry); how many.
  Result<std::size_t> DeleteByAttributes(const Attributes& attributes);
  void Flush();
  // Removes expired entries; how many.
  std::size_t Sweep();
  // Writes a snapshot (persisted caches only; Ok otherwise); MaybeSnapshot only when the
  // journal has grown past options().snapshot_journal_bytes.
  Status Snapshot();
  Status MaybeSnapshot();
  // Stops writing files (the cache is being deleted; requests still holding it carry on in
  // memory), so its files can be removed.
  void DropPersistence();
  // What was recovered at start-up (for the log).
  std::size_t restored_entries() const { return restored_entries_; }

  CacheStats Stats() const;
  const CacheOptions& options() const { return options_; }

 private:
  SemanticCache(CacheOptions options, std::unique_ptr<embed::Embedder> embedder, Clock clock,
                std::unique_ptr<vector::HnswIndex> index);
  Status ValidateAttributes(const Attributes& attributes, const char* field) const;
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

  mutable std::atomic<std::uint64_t> lookups_{0}, exact_hits_{0}, semantic_hits_{0}, misses_{0},
      guard_rejections_{0}, stores_{0}, expired_{0}, deleted_{0}, evicted_{0}, tokens_saved_{0},
      cost_saved_nano_usd_{0};
};

}  // namespace semcached::cache
