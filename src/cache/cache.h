// The semantic cache as the routes see it, whatever holds the entries.
//
// A cache answers a prompt from an exact tier (the normalized prompt's SHA-256 within the
// cache; an entry matches when its attributes include every attribute the search names) and
// a semantic tier (the normalized prompt embedded and searched among entries in the same
// attribute scope; the best candidate at or above the similarity threshold, cosine 0..1,
// that also passes the guards), in the order a request asks for. Expired entries are never
// returned. Two implementations: EmbeddedCache (cache/embedded/: our HNSW index, files in
// data_dir) and RedisCache (cache/redis/: entries and vectors in Redis 8, shared by every
// instance that points at the same Redis). The request checks both apply are here, once.
// Must not: include vector/, redis/, store/ or HTTP headers (the backends bring those).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/smart_ptr/intrusive_ptr.hpp>

#include "cache/clusters.h"
#include "cache/drift.h"
#include "cache/error_bound.h"
#include "cache/experiment.h"
#include "cache/guards.h"
#include "cache/normalize.h"
#include "cache/tuning.h"
#include "common/status.h"

namespace semcached::embed {
class Embedder;
}

namespace semcached::cache {

enum class Strategy { kExact, kSemantic };

// Which entry leaves first when a cache is full. Victims are chosen by sampling (as Redis
// does): the worst of `eviction_samples` random entries, so a hit never takes a write lock.
enum class Eviction {
  kLru,    // least recently used
  kLfu,    // fewest hits, hits halving every `lfu_half_life_ms` without use
  kValue,  // least (1 + decayed hits) x response size / entry size: what saves the least
};
// Names as the configuration and the API spell them, each enum's in one table.
const std::vector<std::pair<std::string, Eviction>>& EvictionNames();
const std::vector<std::pair<std::string, Strategy>>& StrategyNames();
const char* EvictionName(Eviction e);
const char* StrategyName(Strategy s);
bool ParseStrategy(std::string_view text, Strategy* out);

// Entry ids: 32 lower-case hex digits (the LangCache entryId shape), two 64-bit halves.
std::string MakeEntryId(std::uint64_t high, std::uint64_t low);
bool ParseEntryId(std::string_view id, std::uint64_t* high, std::uint64_t* low);
// A random 64-bit number from a generator of the calling thread (ids, eviction samples).
std::uint64_t RandomU64();
// Milliseconds since the epoch: the clock of a cache that is given none.
std::int64_t SystemNowMs();

using Attributes = std::map<std::string, std::string>;

struct CacheOptions {
  std::string id;
  float similarity_threshold = 0.85f;  // cosine similarity, 0..1
  // A request's own threshold may tighten the cache's but not go below this (0: any).
  float min_similarity_threshold = 0;
  std::int64_t default_ttl_ms = 0;  // 0: entries do not expire
  bool sliding_ttl = false;         // a hit restarts the entry's TTL
  NormalizeOptions normalize;
  GuardOptions guards;
  std::vector<Strategy> strategies = {Strategy::kExact, Strategy::kSemantic};
  std::vector<std::string> allowed_attributes;  // empty: any attribute name
  std::size_t max_prompt_bytes = 64 * 1024;
  std::size_t max_response_bytes = 1024 * 1024;
  std::size_t semantic_candidates = 4;  // nearest neighbours checked against threshold and guards
  std::size_t search_ef = 24;           // a cache wants the best candidate, not a ranked list
  std::size_t max_entries = 0;          // 0: no limit
  std::size_t max_bytes = 0;            // text bytes (prompt, response, attributes); 0: no limit
  Eviction eviction = Eviction::kLru;
  std::size_t eviction_samples = 16;
  std::int64_t lfu_half_life_ms = 10 * 60 * 1000;
  // What a hit saves, estimated: the model call it replaces, at these prices (USD per million
  // tokens; defaults are a small current model's list prices), tokens estimated from text.
  double input_usd_per_mtok = 0.15;
  double output_usd_per_mtok = 0.60;
  // Feedback that an entry's answer was wrong for a prompt also deletes the entry.
  bool feedback_deletes_wrong = false;
  // Shadow mode: every lookup runs and its would-be hit is recorded, but nothing is served
  // (a request can ask for the same with SearchQuery::shadow).
  bool shadow = false;
  // Verification, for callers that can ask the model themselves (the proxy): this share of
  // would-be semantic hits, and every one within `verify_band` (cosine) above the threshold,
  // is withheld so the caller compares the model's answer with the cached one.
  double verify_fraction = 0;
  float verify_band = 0;
  // Two answers agree when their texts are equal or their embeddings are at least this similar.
  float answer_agreement = 0.9f;
  // Adaptive thresholds (cache/error_bound.h): above 0, a semantic hit at or above the
  // threshold (now a floor) is served only while the labelled lookups bound its error rate
  // within this, at 95% confidence; otherwise it is withheld for verification.
  double max_error_rate = 0;
  // An A/B experiment on the threshold and bound (cache/experiment.h); no arms: none.
  ExperimentOptions experiment;
};

// Why a found hit was not served.
enum class Withheld { kShadow, kVerify };
inline constexpr std::size_t kWithheldReasons = 2;
const char* WithheldName(Withheld w);  // "shadow", "verify"
// Similarity buckets of answer comparisons: below 0.50, then 0.05 wide up to 1.00.
inline constexpr std::size_t kSimilarityBuckets = 11;
std::size_t SimilarityBucket(float similarity);
const char* SimilarityBucketName(std::size_t bucket);  // "<0.50", "0.50", ..., "0.95"

// What an entry says, immutable once stored: hits share it instead of copying the text.
// Prompt, response and attributes (length-prefixed name, value pairs in name order) follow a
// 16-byte header in one allocation, counted by an intrusive reference count: an entry's text
// costs one allocation and 8 bytes of pointer, which matters when a cache holds millions of
// them (and fewer small long-lived allocations leave fewer holes in the heap). The
// normalized prompt is not kept; it is derived again from the prompt where it is needed.
class EntryText;
using EntryTextRef = boost::intrusive_ptr<const EntryText>;

class EntryText {
 public:
  static EntryTextRef Make(std::string_view prompt, std::string_view response,
                           const Attributes& attributes = {});
  EntryText(const EntryText&) = delete;
  EntryText& operator=(const EntryText&) = delete;

  std::string_view prompt() const { return {data(), prompt_size_}; }
  std::string_view response() const { return {data() + prompt_size_, response_size_}; }
  // Calls f(name, value) for each attribute, in name order.
  template <typename F>
  void ForEachAttribute(F&& f) const {
    std::size_t at = std::size_t{prompt_size_} + response_size_;
    while (at < size_) {
      std::string_view name = Field(&at);
      std::string_view value = Field(&at);
      f(name, value);
    }
  }
  Attributes attributes() const;
  std::optional<std::string_view> attribute(std::string_view name) const;
  // Whether every name/value pair of `scope` is among the attributes.
  bool HasAll(const Attributes& scope) const;
  // Prompt, response, attribute names and values, in bytes.
  std::size_t text_bytes() const;

 private:
  EntryText(std::uint32_t size, std::uint32_t prompt_size, std::uint32_t response_size)
      : size_(size), prompt_size_(prompt_size), response_size_(response_size) {}
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  std::string_view Field(std::size_t* at) const;
  friend void intrusive_ptr_add_ref(const EntryText* t);
  friend void intrusive_ptr_release(const EntryText* t);

  mutable std::atomic<std::uint32_t> refs_{0};
  std::uint32_t size_, prompt_size_, response_size_;
};
static_assert(sizeof(EntryText) == 16);

struct Hit {
  std::string id;
  EntryTextRef entry;
  float similarity = 0;
  Strategy strategy = Strategy::kExact;
  int arm = -1;  // the experiment arm that found it (-1: none)
};

// An entry a backend found for one tier, before Cache::Search has judged it.
struct Candidate {
  std::string id;
  EntryTextRef entry;           // null: not loaded (below the similarity the search asked to load)
  float similarity = 1;         // cosine; 1 for the exact tier
  std::int64_t expires_ms = 0;  // when it stops being served; 0: never
  std::int64_t ttl_ms = 0;      // the entry's own TTL (what a sliding TTL restarts)
  std::uint64_t hits = 0;       // uses recorded so far
  // The normalized prompt as the backend stored it; empty: Search normalizes entry->prompt().
  std::string normalized;
  // The backend's own reference for RecordUse (the embedded cache: its entry's address).
  std::uintptr_t handle = 0;
};

struct SearchQuery {
  std::string prompt;
  std::optional<float> threshold;
  std::vector<Strategy> strategies;  // empty: the cache's default
  Attributes attributes;
  // false: the caller knows what a hit saved (a proxy reads the upstream's usage) and
  // reports it with RecordSavings instead of the cache's text-length estimate.
  bool estimate_savings = true;
  bool shadow = false;      // find the would-be hit, serve nothing (as the cache's shadow mode)
  bool can_verify = false;  // the caller compares withheld hits with the model's answer
  // The experiment's split key (a user id, say); empty: the value of the experiment's split
  // attribute among `attributes`, if any. A request that sets its own threshold takes part in
  // no arm.
  std::string split_key;
};

// What a lookup did, for metrics and the X-Semcached-* headers.
struct LookupTrace {
  std::optional<Strategy> hit_tier;
  // A hit found but not served (shadow mode, or held back for verification), and why.
  std::optional<Hit> withheld;
  Withheld withheld_reason = Withheld::kShadow;
  float best_similarity = -1;  // best semantic candidate seen, hit or not
  int guard_rejections = 0;
  // Rejections by guard, indexed by GuardVerdict (kPass unused).
  std::array<int, kGuardVerdicts> rejections_by_guard{};
  double normalize_us = 0, embed_us = 0, search_us = 0, guards_us = 0;
  int arm = -1;  // the experiment arm that served the lookup (-1: none), and its name
  std::string arm_name;
};

// Memory a cache holds in this process, by part. A Redis cache holds its vectors and graph in
// Redis: its parts here are zero.
struct CacheMemory {
  std::size_t text = 0;     // prompt, response and attribute text (what max_bytes counts)
  std::size_t vectors = 0;  // codes, and float32 originals unless they are file-backed
  std::size_t graph = 0;    // the index's links and id map
};

inline constexpr std::size_t kLifeBuckets = 10;

struct CacheStats {
  std::size_t entries = 0;
  std::size_t bytes = 0;  // prompt, response and attribute text
  std::uint64_t lookups = 0, exact_hits = 0, semantic_hits = 0, misses = 0, guard_rejections = 0;
  std::uint64_t stores = 0, expired = 0, deleted = 0, evicted = 0;
  std::uint64_t tokens_saved = 0;    // estimated prompt + response tokens of every hit
  double cost_saved_usd = 0;         // estimated, at the cache's prices
  double latency_saved_seconds = 0;  // upstream time of the calls hits replaced (proxy hits)
  std::uint64_t feedback_correct = 0, feedback_wrong = 0;  // labels applications sent
  // Hits found but not served, by reason and tier (0 exact, 1 semantic).
  std::array<std::array<std::uint64_t, 2>, kWithheldReasons> withheld{};
  // Withheld hits whose answer was compared with the model's: by tier and similarity bucket.
  std::array<std::array<std::uint64_t, kSimilarityBuckets>, 2> agreements{}, disagreements{};
  // Hits on entries with a TTL, by how much of their TTL had passed: [i] is i/10 to (i+1)/10.
  std::array<std::uint64_t, kLifeBuckets> hits_by_life{};
  // Lookups timed whole, and the time of all of them and of their embedding.
  std::uint64_t timed_lookups = 0;
  double lookup_seconds = 0, embed_seconds = 0;
};

// Tokens in a text, estimated without a tokenizer: about 4 bytes per token for English
// (the rule of thumb OpenAI and Anthropic publish), at least 1.
std::uint64_t EstimateTokens(std::string_view text);

// The counters every store keeps, the same way.
struct CacheCounters {
  std::atomic<std::uint64_t> lookups{0}, exact_hits{0}, semantic_hits{0}, misses{0},
      guard_rejections{0}, stores{0}, expired{0}, deleted{0}, evicted{0}, tokens_saved{0},
      cost_saved_nano_usd{0}, latency_saved_micros{0}, feedback_correct{0}, feedback_wrong{0};
  std::array<std::array<std::atomic<std::uint64_t>, 2>, kWithheldReasons> withheld{};
  std::array<std::array<std::atomic<std::uint64_t>, kSimilarityBuckets>, 2> agreements{},
      disagreements{};
  std::array<std::atomic<std::uint64_t>, kLifeBuckets> hits_by_life{};
  std::atomic<std::uint64_t> timed_lookups{0}, lookup_micros{0}, embed_micros{0};
  // A hit on an entry that expires at `expires_ms` after a TTL of `ttl_ms`.
  void CountLife(std::int64_t now, std::int64_t expires_ms, std::int64_t ttl_ms);
  void CountTime(double lookup_us, double embed_us);
  // A hit by its tier; with `estimate`, also what it saved, estimated from its text (the USD
  // returned).
  double CountHit(const Hit& hit, const CacheOptions& options, bool estimate);
  // What a hit saved, as the caller measured it.
  void AddSavings(std::uint64_t tokens, double usd, double seconds);
  void Fill(CacheStats* s) const;
};

// An application's word on an answer: whether the entry's response was right for a prompt.
struct Feedback {
  std::string prompt;  // the prompt that got the entry's answer
  bool correct = true;
  Attributes attributes;  // the request's scope, as searched (checked like a search's)
  std::string split_key;  // as the search's (SearchQuery::split_key)
};

struct FeedbackOutcome {
  float similarity = 0;            // cosine of the prompt to the entry's prompt
  bool refused_by_guards = false;  // the guards would not have served it
  bool deleted = false;            // wrong, and the cache deletes what is reported wrong
};

// One entry as an export writes it.
struct ExportedEntry {
  std::string id;
  EntryTextRef text;
  std::int64_t ttl_left_ms = 0;  // 0: it does not expire
  std::vector<float> vector;     // when asked for
};

// The caching interface every store implements.
class Cache {
 public:
  virtual ~Cache() = default;
  // Stores an entry; its id. ttl_ms overrides the cache default (0 or less: refused).
  virtual Result<std::string> Store(const std::string& prompt, const std::string& response,
                                    const Attributes& attributes,
                                    std::optional<std::int64_t> ttl_ms) = 0;
  // The best hit, if any (the LangCache API returns it as a one-element list): the request
  // checked and normalized, then the tiers in the order asked, each by the store, counted here.
  Result<std::vector<Hit>> Search(const SearchQuery& query, LookupTrace* trace = nullptr);
  virtual Status Delete(const std::string& entry_id) = 0;
  // Deletes every entry whose attributes include all of these (none: every entry); how many.
  virtual Result<std::size_t> DeleteByAttributes(const Attributes& attributes) = 0;
  virtual Status Flush() = 0;
  // Removes expired entries from every structure; how many.
  virtual std::size_t Sweep() = 0;
  virtual CacheStats Stats() const = 0;
  // Walks the index on the embedded store (O(entries)): for scrapes and stats, not lookups.
  virtual CacheMemory Memory() const { return {.text = Stats().bytes}; }
  // Recall@k of the semantic tier's search at `ef` against an exact scan, with up to `queries`
  // of the cache's own vectors as queries. Slow (exact scans): for advice, not lookups.
  // One probe per value of `efs`; the exact scans are shared.
  struct RecallProbe {
    std::size_t queries = 0, k = 0, ef = 0;
    double recall = 0;
  };
  Result<std::vector<RecallProbe>> ProbeRecall(std::size_t queries,
                                               const std::vector<std::size_t>& efs, std::size_t k);
  virtual const CacheOptions& options() const = 0;
  virtual const char* store_name() const = 0;  // "embedded" | "redis"
  // Calls `emit` with every entry that has not expired, in the store's order, until it returns
  // false. Stores that cannot list their entries refuse it.
  virtual Status ForEachEntry(bool with_vectors,
                              const std::function<bool(const ExportedEntry&)>& emit) {
    (void)with_vectors;
    (void)emit;
    return FailedPrecondition(std::string("a cache on the ") + store_name() +
                              " store cannot be exported");
  }
  // The embedder's description ("model2vec minishlab/potion-base-4M-int8, 128-d, ...") and
  // whether it is an embedding server.
  struct EmbedderInfo {
    std::string description;
    bool remote = false;
  };
  virtual EmbedderInfo EmbedderOf() const { return {}; }
  // Whether a request to this cache may wait on the network (a Redis store, an embedding
  // server): the HTTP server then runs it on its worker pool, never on an I/O thread.
  virtual bool MayBlock() const { return false; }
  // What a hit saved, when the caller knows it better than the estimate (see SearchQuery).
  // `arm` is the hit's (Hit::arm).
  void RecordSavings(std::uint64_t tokens, double usd, double seconds, int arm = -1);
  // Records a label on an entry's answer: the (similarity, correct) observation feeds Tuning.
  // NotFound for an entry the cache does not hold; a wrong label deletes the entry when the
  // cache says so.
  Result<FeedbackOutcome> RecordFeedback(const std::string& entry_id, const Feedback& feedback);
  // A withheld hit's answer against the model's answer to the same request: equal texts, or
  // embeddings at least `answer_agreement` similar, label the hit right; the label feeds
  // Tuning like feedback does. Whether they agreed.
  Result<bool> RecordAnswerComparison(const Hit& withheld, std::string_view cached_answer,
                                      std::string_view model_answer);
  // What each threshold would have served of the labelled lookups so far (cache/tuning.h).
  TuningReport Tuning(double target_false_hit_rate) const;
  // The labels, oldest first, one line each ("entry-id similarity refused correct"): what a
  // store keeps across restarts. Restoring replays them as if they were added again; lines
  // that do not parse are skipped. How many were read.
  std::string SerializeLabels() const;
  std::size_t RestoreLabels(std::string_view text);
  // Whether the traffic has shifted, as of the last closed window of lookups (cache/drift.h).
  DriftReport Drift() const { return drift_.Report(); }
  // What the adaptive thresholds rest on now (all zero for a cache without them).
  struct AdaptiveState {
    std::size_t labels = 0;        // in the cache's curve
    std::size_t curve_blocks = 0;  // pooled similarity ranges of the curve
    double allowance = 0;          // the largest estimated error a hit may carry to be served
  };
  AdaptiveState Adaptive() const;
  // The threshold and bound of lookups in no experiment arm: the configuration's, until an
  // experiment ends with a winner.
  struct ServingPolicy {
    float threshold = 0;
    double max_error_rate = 0;
  };
  ServingPolicy Policy() const;
  // A/B experiments (cache/experiment.h). Setting one replaces the running one and its counts
  // (no arms: none). Ending one makes the winner's threshold and bound the cache's policy;
  // FailedPrecondition when none is running, NotFound for a name that is no arm.
  void SetExperiment(const ExperimentOptions& experiment);
  Result<ExperimentArm> EndExperiment(const std::string& winner);
  struct ExperimentSnapshot {
    ExperimentOptions options;
    std::vector<ArmReport> arms;
    std::string winner;  // empty while it runs
  };
  // The experiment running or last ended (no arms: there was none).
  ExperimentSnapshot Experiment() const;
  // How long a request an arm served took, as the caller saw it (upstream time included).
  void RecordArmLatency(int arm, double seconds);
  // The clusters of an adaptive cache's entries (cache/clusters.h): fitted once it holds
  // kMinClusteredEntries, again whenever it has grown by half or shrunk to half since, from a
  // sample of kClusterSample vectors. The labels of a cluster's entries are the prior of its
  // entries between the cache's curve and an entry's own; a cluster whose centroid moved past
  // kClusterShiftCosine at a refit starts its statistics again. Called by the sweeper once a
  // second (cheap when nothing is due); a no-op for caches without adaptive thresholds.
  Status MaintainClusters();
  static constexpr std::size_t kMinClusteredEntries = 200;
  static constexpr std::size_t kClusterSample = 5000;
  static constexpr float kClusterShiftCosine = 0.95f;
  struct ClusterInfo {
    std::size_t size = 0;    // entries of the fit sample
    std::size_t labels = 0;  // labels of its entries since its statistics last started
    // The lowest similarity at which a hit on an entry of the cluster with no labels of its own
    // has its error bounded within the cache's bound (none: not yet at any similarity).
    std::optional<float> threshold;
  };
  struct ClusterState {
    std::size_t fitted_entries = 0;  // the cache's entries at the last fit
    std::uint64_t refits = 0, resets = 0;
    std::vector<ClusterInfo> clusters;
  };
  ClusterState Clusters(bool with_thresholds = true) const;
  // Grows with every label (a store saves its labels when it has moved).
  std::uint64_t labels_added() const { return labels_added_.load(std::memory_order_relaxed); }
  // Labelled lookups kept for Tuning, and lookups whose best similarity it reports the
  // traffic share of: the most recent ones.
  static constexpr std::size_t kMaxLabelled = 100000;
  static constexpr std::size_t kMaxRecorded = 100000;
  // Stores shared by several instances send the labels this instance recorded since the last
  // call and take in the others' (called once a second; a no-op elsewhere).
  virtual Status ShareLabels() { return Status::Ok(); }
  // Durability hooks of stores that keep files (no-ops elsewhere).
  virtual Status Snapshot() { return Status::Ok(); }
  virtual Status MaybeSnapshot() { return Status::Ok(); }
  virtual void DropPersistence() {}
  virtual std::size_t restored_entries() const { return 0; }
  // Recomputes every entry's vector from its stored prompt with `next`, while the cache keeps
  // answering from the old vectors, and then switches to the new ones in one step; `progress`
  // gets (done, total). Stores that cannot refuse it.
  using ReembedProgress = std::function<void(std::size_t done, std::size_t total)>;
  virtual Status Reembed(std::unique_ptr<embed::Embedder> next, const ReembedProgress& progress);

 protected:
  // The tiers of a search whose request is checked. A backend finds candidates and nothing
  // more: Search applies the threshold, the scope, expiry and the guards, chooses the hit and
  // has its use recorded. An error ends the search. Backends add their stage timings to
  // `trace` (embed_us, search_us).
  //
  // Entries whose exact key (ExactKey of the normalized prompt in the cache) is this prompt's,
  // in any scope.
  virtual Result<std::vector<Candidate>> ExactCandidates(const std::string& normalized,
                                                         const SearchQuery& query,
                                                         LookupTrace& trace) = 0;
  // The nearest entries by embedding similarity, best first. The scope and `now` may narrow
  // the search where the index can filter as it walks; candidates below `load_floor` may come
  // without their entry, and after the first of them none need come (a backend need not
  // fetch what cannot be a hit; the first still tells the best similarity seen).
  virtual Result<std::vector<Candidate>> SemanticCandidates(const std::string& normalized,
                                                            float load_floor,
                                                            const SearchQuery& query,
                                                            std::int64_t now,
                                                            LookupTrace& trace) = 0;
  // The chosen candidate was served: its use counts for eviction and a sliding TTL.
  virtual void RecordUse(const Candidate& chosen, std::int64_t now) = 0;
  // The store's clock (milliseconds since the epoch).
  virtual std::int64_t NowMs() const = 0;
  // One entry by id, loaded (NotFound if the cache does not hold it).
  virtual Result<Candidate> EntryById(const std::string& entry_id) = 0;
  // Cosine similarity of two normalized prompts under the cache's embedder.
  virtual Result<float> PromptSimilarity(const std::string& a, const std::string& b) = 0;
  // For the clusters: up to `n` entries' vectors (a sample when the cache holds more), and one
  // entry's (NotFound if the cache does not hold it). A store without them has no clusters.
  virtual Result<std::vector<std::vector<float>>> SampleVectors(std::size_t) {
    return std::vector<std::vector<float>>{};
  }
  virtual Result<std::vector<float>> EntryVector(const std::string& entry_id) {
    return NotFound("no vector for " + entry_id);
  }
  // For the recall probes: the ids of the k entries nearest to `query` as the semantic tier's
  // search finds them at `ef`, or by an exact scan when `ef` is 0.
  virtual Result<std::vector<std::string>> NearestIds(const std::vector<float>& query,
                                                      std::size_t k, std::size_t ef) {
    (void)query;
    (void)k;
    (void)ef;
    return FailedPrecondition(std::string("the ") + store_name() + " store has no recall probe");
  }

  // Label sharing (stores that set shares_labels_): labels recorded here since the last call,
  // oldest first; and another instance's label, taken in as if recorded here (not sent on).
  struct OutgoingLabel {
    std::string entry_id;
    LabelledLookup label;
  };
  std::vector<OutgoingLabel> TakeOutgoingLabels();
  void ImportLabel(const std::string& entry_id, const LabelledLookup& label);
  bool shares_labels_ = false;
  static constexpr std::size_t kMaxOutgoingLabels = 10000;  // beyond: dropped, not grown

  // After a reembed: similarities under the old vectors say nothing of the new, so the labels
  // (adaptive thresholds, tuning), the recorded lookups and the drift windows start again.
  void ForgetSimilarities();

  // Every implementation counts here, and fills its Stats() from here.
  mutable CacheCounters counters_;

 private:
  // `cluster`: of the entry (ClusterOfEntry), -1 unknown.
  void AddLabel(const LabelledLookup& l, const std::string& entry_id, int cluster,
                bool outgoing = true);
  // One lookup into the drift monitor; a shift is logged.
  void RecordDrift(float best_similarity, bool hit);
  DriftMonitor drift_;
  // The best similarity a lookup saw (1 for an exact hit), into a lock-free ring.
  void RecordBest(float similarity);
  std::unique_ptr<std::atomic<float>[]> recorded_ { new std::atomic<float>[ kMaxRecorded ] };
  std::atomic<std::uint64_t> recorded_count_{0};
  // Whether the labels so far let a semantic hit on this entry at this similarity be served.
  // (The lookup's bound is recorded in the error budget.)
  ErrorDecision DecideAdaptive(const std::string& entry_id, int cluster, float similarity,
                               double max_error_rate, ErrorBudget& budget);
  // However much budget is left, a hit whose error bound is above this is not served.
  static constexpr double kMaxHitError = 0.5;
  // A broader scope's estimate counts as at most this many labels under a narrower one's.
  static constexpr double kPriorStrength = 50;
  mutable std::mutex labelled_mu_;
  std::vector<LabelledLookup> labelled_;       // a ring of kMaxLabelled once full
  std::vector<std::string> labelled_entries_;  // the entry of each, beside it
  std::vector<std::uint64_t> labelled_seq_;    // and its number (labels_added_ when added)
  std::vector<OutgoingLabel> outgoing_;        // not yet shared (stores that share)
  std::atomic<std::uint64_t> labels_added_{0};
  std::size_t labelled_next_ = 0;
  // The adaptive thresholds' evidence: each labelled entry's own, and the whole cache's.
  std::unordered_map<std::string, ErrorEvidence> evidence_by_entry_;
  ErrorEvidence cache_evidence_{10000};
  // The cache-wide chance of a wrong hit by similarity, refitted every kLabelsPerFit labels;
  // and what the recent lookups' hits cost in error.
  ErrorCurve error_curve_;
  std::size_t labels_since_fit_ = 0;
  static constexpr std::size_t kLabelsPerFit = 32;
  static constexpr std::size_t kLabelsBeforeBudget = 200;
  static constexpr double kWrongBeforeBudget = 4;
  ErrorBudget error_budget_;  // of lookups in no arm (an adaptive arm has its own)
  // The clusters, under labelled_mu_: the model, each cluster's labels, the label number each
  // cluster's statistics start from, and the clusters of entries looked up so far.
  bool UsesAdaptive() const;
  int ClusterOfEntry(const std::string& entry_id);  // -1: no clusters, or no vector
  std::shared_ptr<const ClusterModel> clusters_;
  // A cluster's labels (the most recent kClusterLabels) and its curve, refitted every
  // kLabelsPerFit of them.
  struct ClusterLabels {
    ErrorEvidence evidence{kClusterLabels};
    ErrorCurve curve;
    std::size_t since_fit = 0;
  };
  static constexpr std::size_t kClusterLabels = 2000;
  std::vector<ClusterLabels> cluster_labels_;
  std::vector<std::uint64_t> cluster_since_;
  std::unordered_map<std::string, int> entry_cluster_;
  static constexpr std::size_t kMaxEntryClusters = 100000;  // beyond: forgotten, looked up again
  std::size_t clustered_entries_ = 0;
  std::uint64_t cluster_refits_ = 0, cluster_resets_ = 0;
  std::mutex refit_mu_;  // one refit at a time
  // An exact hit (0) or a miss (ErrorBudget::kNoHit) into the budget (adaptive caches only).
  void RecordErrorCost(double mean, double max_error_rate, ErrorBudget& budget);

  // The experiment and the policy an ended one left, replaced whole; read under serving_mu_,
  // and only once has_serving_ says there is one (most caches never run an experiment).
  struct ServingState {
    ExperimentOptions experiment;
    std::uint64_t salt = 0;                   // of the split hash: the cache's id
    std::shared_ptr<ArmCounters[]> counters;  // an ended experiment's state keeps them
    std::vector<ErrorBudget> budgets;         // per arm, under labelled_mu_
    std::optional<ServingPolicy> settled;
    std::string winner;
    bool running() const { return !experiment.arms.empty() && winner.empty(); }
  };
  std::shared_ptr<ServingState> Serving() const;
  ServingPolicy PolicyOf(const ServingState* s) const;  // Policy() of a state already taken
  // The arm of a running experiment that `split_key` (or the split attribute) picks; -1: none.
  static int ArmOf(const ServingState& s, std::string_view split_key, const Attributes& attributes);
  ArmCounters* Arm(const std::shared_ptr<ServingState>& s, int arm) const;
  mutable std::mutex serving_mu_;
  std::shared_ptr<ServingState> serving_;
  std::atomic<bool> has_serving_{false};

 private:
  // The hit among a tier's candidates, or null.
  Candidate* ChooseExact(std::vector<Candidate>& found, const std::string& normalized,
                         const SearchQuery& query, std::int64_t now);
  Candidate* ChooseSemantic(std::vector<Candidate>& found, const std::string& normalized,
                            float threshold, const SearchQuery& query, std::int64_t now,
                            LookupTrace& trace);
  // Whether a semantic candidate passes the cache's guards; a rejection is counted.
  bool PassesGuards(const GuardText& query, const GuardText& candidate, LookupTrace& trace);
};

// Bytes of prompt, response, attribute names and values: what max_bytes counts.
std::size_t TextBytes(std::string_view prompt, std::string_view response,
                      const Attributes& attributes);

// How much an entry is worth keeping under the cache's eviction policy, the same for every
// store: lower leaves first.
double EvictionScore(const CacheOptions& options, std::int64_t last_access_ms, std::uint64_t hits,
                     std::size_t response_bytes, std::size_t entry_bytes, std::int64_t now);

// The checks every store applies, so both refuse the same requests with the same words.
Status CheckAttributes(const CacheOptions& options, const Attributes& attributes,
                       const char* field);
// A store request; the normalized prompt.
Result<std::string> CheckStore(const CacheOptions& options, const std::string& prompt,
                               const std::string& response, const Attributes& attributes,
                               std::optional<std::int64_t> ttl_ms);
// A search request; the normalized prompt and the threshold to use (the request's own, or
// `default_threshold`; negative: the cache's).
Result<std::pair<std::string, float>> CheckSearch(const CacheOptions& options,
                                                  const SearchQuery& query,
                                                  float default_threshold = -1);
// Field errors of the LangCache shape (400 with `fields`).
Status FieldError(const std::string& field, const std::string& rule, const std::string& message);

}  // namespace semcached::cache
