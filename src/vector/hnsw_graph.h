// The HNSW graph of HnswIndex (hnsw_index.h): node storage, distances on int8 codes and
// float32 originals, greedy descent, best-first search of a level, link selection (hnswlib's
// heuristic) and insertion. Private to vector/: only the index's own files include it.
//
// Why a header of its own: the graph is what searches and inserts run, and what maintenance
// (hnsw_maintenance.cpp) and the file format (hnsw_file.cpp) read and rebuild; each of those
// needs the node layout. Concurrency lives here too: link lists are written under striped
// node locks and read without them (see LoadLink/StoreLink).
// Must not: validate caller input (hnsw_index.cpp does), do I/O beyond the row stores, or
// decide when to recalibrate or compact (maintenance does).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <queue>

#include <boost/unordered/unordered_flat_map.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "vector/hnsw_index.h"
#include "vector/kernels.h"
#include "vector/quantizer.h"
#include "vector/row_store.h"

namespace semcached::vector {

constexpr std::uint32_t kNone = 0xFFFFFFFFu;
constexpr std::size_t kSegmentRows = 1 << 14;
constexpr std::size_t kLockStripes = 1 << 14;
constexpr std::uint32_t kReady = 1;
constexpr std::uint32_t kDeleted = 2;

// Fixed-size record per node. `flags` is accessed through std::atomic_ref.
struct NodeRecord {
  std::uint64_t label;
  std::int32_t level;
  std::uint32_t flags;
  std::uint32_t* upper;  // level * (1 + M) ids for levels 1..level, or null
};

// Header of a code row; the int8 codes follow.
struct StoredMeta {
  float alpha;
  std::int32_t sum;
  float norm2;
  std::uint32_t version;
};
static_assert(sizeof(StoredMeta) == 16);

inline std::size_t RoundUp(std::size_t v, std::size_t to) { return (v + to - 1) / to * to; }

// Starts loading every cache line a row touches (rows are not line-aligned).
inline void PrefetchSpan(const void* at, std::size_t bytes) {
  const auto first = reinterpret_cast<std::uintptr_t>(at) & ~std::uintptr_t{63};
  const auto last = reinterpret_cast<std::uintptr_t>(at) + bytes - 1;
  for (std::uintptr_t line = first; line <= last; line += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(line));
}

inline std::uint64_t SplitMix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

using DistId = std::pair<float, std::uint32_t>;
struct FarthestOnTop {
  bool operator()(const DistId& a, const DistId& b) const { return a.first < b.first; }
};
struct ClosestOnTop {
  bool operator()(const DistId& a, const DistId& b) const { return a.first > b.first; }
};
using MaxHeap = std::priority_queue<DistId, std::vector<DistId>, FarthestOnTop>;
using MinHeap = std::priority_queue<DistId, std::vector<DistId>, ClosestOnTop>;

// A generation-tagged visited set, reused across searches of one thread.
struct VisitedSet {
  std::vector<std::uint16_t> tags;
  std::uint16_t generation = 0;
  void Reset(std::size_t n) {
    if (tags.size() < n) tags.resize(RoundUp(n, kSegmentRows), 0);
    if (++generation == 0) {
      std::fill(tags.begin(), tags.end(), 0);
      generation = 1;
    }
  }
  bool TestAndSet(std::uint32_t id) {
    // Nodes linked after the search began can have ids past the size it started with.
    if (id >= tags.size()) tags.resize(RoundUp(std::size_t{id} + 1, kSegmentRows), 0);
    if (tags[id] == generation) return true;
    tags[id] = generation;
    return false;
  }
};

inline thread_local VisitedSet tls_visited;

// Codes for every node under one params version, replaced whole on recalibration.
struct CodeSpace {
  Int8Params params;
  std::unique_ptr<RowStore> codes;
  std::unique_ptr<RowStore> bits;
};

class HnswIndex::Impl {
 public:
  explicit Impl(const HnswOptions& o)
      : opt(o),
        dim(o.dim),
        M(std::max<std::size_t>(o.M, 2)),
        M0(2 * M),
        code_row(sizeof(StoredMeta) + RoundUp(o.dim, 16)),
        level_mult(1.0 / std::log(static_cast<double>(M))),
        k(Kernels()),
        floats(o.dim * sizeof(float), kSegmentRows, o.originals_path),
        nodes(sizeof(NodeRecord), kSegmentRows),
        links0((1 + 2 * std::max<std::size_t>(o.M, 2)) * sizeof(std::uint32_t), kSegmentRows),
        node_locks(new std::mutex[kLockStripes]) {}

  ~Impl() {
    const std::uint32_t n = ScanLimit();
    for (std::uint32_t i = 0; i < n; ++i) delete[] Node(i)->upper;
  }

  // ---- storage access ----
  // Ids below this have rows in every store. `count` alone is not enough: an insert takes
  // its id before it reserves rows, so a scan bounded by `count` could reach a row whose
  // segment does not exist yet. Rows within capacity but not yet written read as zero
  // flags (not ready) and are skipped.
  std::uint32_t ScanLimit() const {
    std::size_t cap = std::min({nodes.capacity(), floats.capacity(), links0.capacity()});
    return static_cast<std::uint32_t>(
        std::min<std::size_t>(count.load(std::memory_order_acquire), cap));
  }
  NodeRecord* Node(std::uint32_t id) const { return nodes.RowAs<NodeRecord>(id); }
  const float* Float(std::uint32_t id) const { return floats.RowAs<float>(id); }
  std::uint32_t Flags(std::uint32_t id) const {
    return std::atomic_ref<std::uint32_t>(Node(id)->flags).load(std::memory_order_acquire);
  }
  void SetFlag(std::uint32_t id, std::uint32_t f) {
    std::atomic_ref<std::uint32_t>(Node(id)->flags).fetch_or(f, std::memory_order_acq_rel);
  }
  bool Live(std::uint32_t id) const { return (Flags(id) & (kReady | kDeleted)) == kReady; }
  std::mutex& Lock(std::uint32_t id) const { return node_locks[SplitMix(id) & (kLockStripes - 1)]; }
  // Link list of a node at a level: [count, ids...].
  std::uint32_t* Links(std::uint32_t id, int level) const {
    if (level == 0) return links0.RowAs<std::uint32_t>(id);
    return Node(id)->upper + static_cast<std::size_t>(level - 1) * (1 + M);
  }
  std::size_t MaxLinks(int level) const { return level == 0 ? M0 : M; }
  // Link entries are written under the node's lock, each with a release store, and read
  // without it, each with an acquire load: a search never waits on a writer, and whatever mix
  // of old and new entries it reads is a list of valid node ids whose rows it may read (the
  // acquire on an id orders it after everything its writer did before storing it).
  static std::uint32_t LoadLink(const std::uint32_t* at) {
    return std::atomic_ref<std::uint32_t>(*const_cast<std::uint32_t*>(at))
        .load(std::memory_order_acquire);
  }
  static void StoreLink(std::uint32_t* at, std::uint32_t value) {
    std::atomic_ref<std::uint32_t>(*at).store(value, std::memory_order_release);
  }
  // Replaces a list: ids first, then the count.
  static void StoreLinks(std::uint32_t* list, const std::vector<std::uint32_t>& ids) {
    for (std::size_t i = 0; i < ids.size(); ++i) StoreLink(list + 1 + i, ids[i]);
    StoreLink(list, static_cast<std::uint32_t>(ids.size()));
  }

  // ---- distances ----
  struct Query {
    const float* vec;  // normalized when the metric is cosine
    QueryCode code;
    std::vector<std::uint64_t> bits;
  };

  float ToDistance(float dot, float qnorm2, float xnorm2) const {
    switch (opt.metric) {
      case Metric::kCosine: return 1.f - dot;
      case Metric::kInnerProduct: return -dot;
      case Metric::kL2: return std::max(0.f, qnorm2 + xnorm2 - 2.f * dot);
    }
    return 1.f - dot;
  }

  float CodeDistance(const CodeSpace& s, const Query& q, std::uint32_t id) const {
    const std::uint8_t* row = s.codes->Row(id);
    const auto* meta = reinterpret_cast<const StoredMeta*>(row);
    const auto* codes = reinterpret_cast<const std::int8_t*>(row + sizeof(StoredMeta));
    float dot;
    if (opt.wide_query) {
      std::int32_t kd = k.dot_i16i8(q.code.wide.data(), codes, dim);
      dot = q.code.offset_dot + meta->alpha * q.code.wide_scale * static_cast<float>(kd);
    } else {
      std::int32_t kd = k.dot_u8i8(q.code.biased.data(), codes, dim);
      dot = q.code.offset_dot +
            meta->alpha * q.code.w_scale * static_cast<float>(kd - 128 * meta->sum);
    }
    return ToDistance(dot, q.code.norm2, meta->norm2);
  }

  // Distances to several nodes with one batched kernel call.
  void CodeDistances(const CodeSpace& s, const Query& q, const std::uint32_t* ids, std::size_t n,
                     float* out) const {
    const std::uint8_t* rows[64];
    for (std::size_t base = 0; base < n; base += 64) {
      const std::size_t m = std::min<std::size_t>(64, n - base);
      for (std::size_t i = 0; i < m; ++i) rows[i] = s.codes->Row(ids[base + i]);
      RowDistances(q, rows, m, out + base);
    }
  }

  // The same for code rows already located (at most 64).
  void RowDistances(const Query& q, const std::uint8_t* const* rows, std::size_t m,
                    float* out) const {
    const std::int8_t* ptrs[64];
    std::int32_t dots[64];
    for (std::size_t i = 0; i < m; ++i)
      ptrs[i] = reinterpret_cast<const std::int8_t*>(rows[i] + sizeof(StoredMeta));
    if (opt.wide_query) {
      k.dot_i16i8_many(q.code.wide.data(), ptrs, m, dim, dots);
    } else {
      k.dot_u8i8_many(q.code.biased.data(), ptrs, m, dim, dots);
    }
    for (std::size_t i = 0; i < m; ++i) {
      const auto* meta = reinterpret_cast<const StoredMeta*>(rows[i]);
      float dot =
          opt.wide_query
              ? q.code.offset_dot + meta->alpha * q.code.wide_scale * static_cast<float>(dots[i])
              : q.code.offset_dot +
                    meta->alpha * q.code.w_scale * static_cast<float>(dots[i] - 128 * meta->sum);
      out[i] = ToDistance(dot, q.code.norm2, meta->norm2);
    }
  }

  float FloatDistance(const float* q, float qnorm2, std::uint32_t id) const {
    const float* x = Float(id);
    switch (opt.metric) {
      case Metric::kCosine: return 1.f - k.dot_f32(q, x, dim);
      case Metric::kInnerProduct: return -k.dot_f32(q, x, dim);
      case Metric::kL2: return k.l2sq_f32(q, x, dim);
    }
    (void)qnorm2;
    return 0;
  }

  void PrepareQuery(const CodeSpace* s, const float* vec, Query* q) const {
    q->vec = vec;
    if (s != nullptr) {
      EncodeQuery(s->params, vec, &q->code);
      if (s->bits) {
        q->bits.resize(BinaryWords(dim));
        EncodeBinary(s->params, vec, q->bits.data());
      }
    }
  }

  // Writes a node's code; returns how many components were clipped.
  std::uint32_t WriteCode(CodeSpace& s, std::uint32_t id, bool count_drift = true) {
    std::uint8_t* row = s.codes->Row(id);
    CodeMeta m =
        Encode(s.params, Float(id), reinterpret_cast<std::int8_t*>(row + sizeof(StoredMeta)));
    auto* meta = reinterpret_cast<StoredMeta*>(row);
    *meta = StoredMeta{m.alpha, m.sum, m.norm2, m.version};
    if (s.bits) EncodeBinary(s.params, Float(id), s.bits->RowAs<std::uint64_t>(id));
    if (count_drift) {
      window_components.fetch_add(dim, std::memory_order_relaxed);
      window_clipped.fetch_add(m.clipped, std::memory_order_relaxed);
    }
    return m.clipped;
  }

  std::unique_ptr<CodeSpace> NewSpace(Int8Params params) const {
    auto s = std::make_unique<CodeSpace>();
    s->params = std::move(params);
    s->codes = std::make_unique<RowStore>(code_row, kSegmentRows);
    if (opt.binary_codes) {
      s->bits = std::make_unique<RowStore>(BinaryWords(dim) * 8, kSegmentRows);
    }
    return s;
  }

  // ---- graph ----
  int RandomLevel(std::uint32_t id) const {
    double u = static_cast<double>(
                   SplitMix(opt.seed ^ (std::uint64_t{id} * 0x632BE59BD9B4E019ULL)) >> 11) *
               (1.0 / 9007199254740992.0);
    u = std::max(u, 1e-300);
    return static_cast<int>(-std::log(u) * level_mult);
  }

  // Copies a node's links at a level under its lock.
  std::size_t ReadLinks(std::uint32_t id, int level, std::uint32_t* out) const {
    const std::uint32_t* l = Links(id, level);
    const std::size_t n = std::min<std::size_t>(LoadLink(l), MaxLinks(level));
    for (std::size_t i = 0; i < n; ++i) out[i] = LoadLink(l + 1 + i);
    return n;
  }

  // Greedy descent through one upper level.
  std::pair<float, std::uint32_t> Greedy(const CodeSpace& s, const Query& q, std::uint32_t cur,
                                         float cur_dist, int level) const {
    std::uint32_t buf[64];
    float dists[64];
    bool changed = true;
    while (changed) {
      changed = false;
      std::size_t n = ReadLinks(cur, level, buf);
      CodeDistances(s, q, buf, n, dists);
      for (std::size_t i = 0; i < n; ++i) {
        if (dists[i] < cur_dist) {
          cur_dist = dists[i];
          cur = buf[i];
          changed = true;
        }
      }
    }
    return {cur_dist, cur};
  }

  // Best-first search of one level. `results` receives at most ef nodes that pass `accept`;
  // every node is used for navigation.
  template <typename Accept>
  MaxHeap SearchLevel(const CodeSpace& s, const Query& q, std::uint32_t entry_id, float entry_dist,
                      std::size_t ef, int level, Accept&& accept) const {
    VisitedSet& visited = tls_visited;
    visited.Reset(count.load(std::memory_order_acquire));
    MaxHeap results;
    MinHeap candidates;
    visited.TestAndSet(entry_id);
    if (accept(entry_id)) results.emplace(entry_dist, entry_id);
    candidates.emplace(entry_dist, entry_id);
    float bound = results.empty() ? std::numeric_limits<float>::max() : entry_dist;

    std::uint32_t buf[128], fresh[128];
    const std::uint8_t* rows[128];
    float dists[128];
    while (!candidates.empty()) {
      auto [d, c] = candidates.top();
      if (d > bound && results.size() >= ef) break;
      candidates.pop();
      std::size_t n = ReadLinks(c, level, buf);
      std::size_t m = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (!visited.TestAndSet(buf[i])) {
          // The code rows are random reads: start them all, every cache line of each, before
          // the kernel needs them (a row is several lines; the hardware prefetcher would
          // fetch them one miss at a time).
          rows[m] = s.codes->Row(buf[i]);
          PrefetchSpan(rows[m], code_row);
          fresh[m++] = buf[i];
        }
      }
      if (!candidates.empty()) {
        // And the next node's link list, which the next round reads first: all of it (a
        // level-0 list is 4 + 8M bytes, three lines at M = 16).
        PrefetchSpan(Links(candidates.top().second, level),
                     (1 + MaxLinks(level)) * sizeof(std::uint32_t));
      }
      for (std::size_t at = 0; at < m; at += 64)
        RowDistances(q, rows + at, std::min<std::size_t>(64, m - at), dists + at);
      for (std::size_t i = 0; i < m; ++i) {
        if (results.size() < ef || dists[i] < bound) {
          candidates.emplace(dists[i], fresh[i]);
          if (accept(fresh[i])) {
            results.emplace(dists[i], fresh[i]);
            if (results.size() > ef) results.pop();
          }
          if (!results.empty()) bound = results.top().first;
        }
      }
    }
    return results;
  }

  // hnswlib's heuristic: keep a candidate only if it is closer to the base than to every
  // neighbour already kept, so links spread in different directions.
  std::vector<std::uint32_t> SelectNeighbors(const CodeSpace& s, std::uint32_t base,
                                             std::vector<DistId> cands, std::size_t m) const {
    if (opt.exact_construction) {
      for (auto& c : cands) c.first = FloatDistance(Float(base), 0, c.second);
    }
    std::sort(cands.begin(), cands.end());
    std::vector<std::uint32_t> kept;
    if (cands.size() <= m) {
      for (auto& c : cands) kept.push_back(c.second);
      return kept;
    }
    if (opt.exact_construction) {
      for (const auto& [dist, id] : cands) {
        if (kept.size() >= m) break;
        bool good = true;
        for (std::uint32_t kid : kept) {
          if (FloatDistance(Float(id), 0, kid) < dist) {
            good = false;
            break;
          }
        }
        if (good) kept.push_back(id);
      }
      return kept;
    }
    // Each kept node is turned into a query once (at most m of them), and every later
    // candidate is compared against those: far fewer decodes than preparing each candidate.
    thread_local std::vector<float> decoded;
    thread_local std::vector<Query> kept_queries;
    decoded.resize(dim);
    if (kept_queries.size() < m) kept_queries.resize(m);
    for (const auto& [dist, id] : cands) {
      if (kept.size() >= m) break;
      bool good = true;
      for (std::size_t j = 0; j < kept.size(); ++j) {
        if (CodeDistance(s, kept_queries[j], id) < dist) {
          good = false;
          break;
        }
      }
      if (!good) continue;
      const std::uint8_t* row = s.codes->Row(id);
      CodeMeta cm;
      cm.alpha = reinterpret_cast<const StoredMeta*>(row)->alpha;
      Decode(s.params, reinterpret_cast<const std::int8_t*>(row + sizeof(StoredMeta)), cm,
             decoded.data());
      PrepareQuery(&s, decoded.data(), &kept_queries[kept.size()]);
      kept.push_back(id);
    }
    return kept;
  }

  // Adds `id` to `neighbor`'s links at `level`, shrinking them with the heuristic when full.
  void Connect(const CodeSpace& s, std::uint32_t neighbor, std::uint32_t id, int level) {
    const std::size_t cap = MaxLinks(level);
    std::lock_guard<std::mutex> lock(Lock(neighbor));
    std::uint32_t* l = Links(neighbor, level);
    std::size_t n = l[0];
    for (std::size_t i = 0; i < n; ++i) {
      if (l[1 + i] == id) return;
    }
    if (n < cap) {
      StoreLink(l + 1 + n, id);
      StoreLink(l, static_cast<std::uint32_t>(n + 1));
      return;
    }
    thread_local std::vector<float> decoded;
    decoded.resize(dim);
    const std::uint8_t* row = s.codes->Row(neighbor);
    CodeMeta cm;
    cm.alpha = reinterpret_cast<const StoredMeta*>(row)->alpha;
    Decode(s.params, reinterpret_cast<const std::int8_t*>(row + sizeof(StoredMeta)), cm,
           decoded.data());
    Query nq;
    PrepareQuery(&s, decoded.data(), &nq);
    std::vector<DistId> cands;
    cands.reserve(n + 1);
    for (std::size_t i = 0; i < n; ++i) cands.emplace_back(CodeDistance(s, nq, l[1 + i]), l[1 + i]);
    cands.emplace_back(CodeDistance(s, nq, id), id);
    StoreLinks(l, SelectNeighbors(s, neighbor, std::move(cands), cap));
  }

  // Links a node whose float and code rows are written into the graph.
  void Link(const CodeSpace& s, std::uint32_t id) {
    NodeRecord* node = Node(id);
    const int level = node->level;
    std::unique_lock<std::mutex> entry_lock(entry_mu);
    int top = max_level.load();
    if (level <= top) entry_lock.unlock();
    std::uint32_t ep = entry.load();
    if (ep == kNone) {
      entry.store(id);
      max_level.store(level);
      return;
    }
    Query q;
    PrepareQuery(&s, Float(id), &q);
    float ep_dist = CodeDistance(s, q, ep);
    for (int l = top; l > level; --l) std::tie(ep_dist, ep) = Greedy(s, q, ep, ep_dist, l);
    for (int l = std::min(level, top); l >= 0; --l) {
      MaxHeap found = SearchLevel(s, q, ep, ep_dist, opt.ef_construction, l,
                                  [&](std::uint32_t c) { return c != id; });
      std::vector<DistId> cands;
      cands.reserve(found.size());
      while (!found.empty()) {
        cands.push_back(found.top());
        found.pop();
      }
      if (cands.empty()) continue;
      auto best = *std::min_element(cands.begin(), cands.end());
      auto kept = SelectNeighbors(s, id, std::move(cands), M);
      {
        std::lock_guard<std::mutex> lock(Lock(id));
        StoreLinks(Links(id, l), kept);
      }
      for (std::uint32_t n : kept) Connect(s, n, id, l);
      ep = best.second;
      ep_dist = best.first;
    }
    if (level > top) {
      entry.store(id);
      max_level.store(level);
    }
  }

  // ---- nodes ----
  Result<std::uint32_t> NewNode(std::uint64_t label, const float* vec) {
    std::uint32_t id = count.fetch_add(1);
    if (id == kNone) return Internal("index is full");
    Status s = floats.Reserve(id + 1);
    if (s.ok()) s = nodes.Reserve(id + 1);
    if (s.ok()) s = links0.Reserve(id + 1);
    if (!s.ok()) return s;
    std::copy(vec, vec + dim, floats.RowAs<float>(id));
    NodeRecord* node = Node(id);
    node->label = label;
    node->level = RandomLevel(id);
    node->upper = nullptr;
    if (node->level > 0) {
      std::size_t n = static_cast<std::size_t>(node->level) * (1 + M);
      node->upper = new std::uint32_t[n]();
    }
    links0.RowAs<std::uint32_t>(id)[0] = 0;
    return id;
  }

  Status CodeAndLink(CodeSpace& s, std::uint32_t id) {
    Status st = s.codes->Reserve(id + 1);
    if (st.ok() && s.bits) st = s.bits->Reserve(id + 1);
    if (!st.ok()) return st;
    std::uint32_t clipped = WriteCode(s, id);
    Link(s, id);
    if (clipped * 8 > dim) {
      // Coded mostly at the range limits, this node's distances (and so its links) are
      // poor; it is linked again after the next recalibration.
      std::lock_guard<std::mutex> lock(poor_mu);
      poorly_coded.push_back(id);
    }
    return Status::Ok();
  }

  // ---- scans ----
  template <typename Accept>
  std::vector<DistId> ExactScan(const float* q, float qnorm2, std::size_t k_wanted,
                                Accept&& accept) const {
    MaxHeap heap;
    const std::uint32_t n = ScanLimit();
    for (std::uint32_t id = 0; id < n; ++id) {
      if (!Live(id) || !accept(id)) continue;
      float d = FloatDistance(q, qnorm2, id);
      if (heap.size() < k_wanted) {
        heap.emplace(d, id);
      } else if (d < heap.top().first) {
        heap.pop();
        heap.emplace(d, id);
      }
    }
    std::vector<DistId> out;
    while (!heap.empty()) {
      out.push_back(heap.top());
      heap.pop();
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

  HnswOptions opt;
  std::size_t dim, M, M0, code_row;
  double level_mult;
  const KernelTable& k;

  // Shared by Add/Search/Remove, exclusive to swap the code space or finish calibration.
  mutable std::shared_mutex state_mu;
  std::unique_ptr<CodeSpace> space;  // null while buffering

  RowStore floats;
  RowStore nodes;
  RowStore links0;
  std::atomic<std::uint32_t> count{0};

  std::mutex entry_mu;
  std::atomic<std::uint32_t> entry{kNone};
  std::atomic<int> max_level{-1};

  mutable std::shared_mutex label_mu;
  // Flat (open addressing): no allocation per vector, about 16 bytes a slot.
  boost::unordered_flat_map<std::uint64_t, std::uint32_t> label_to_id;
  std::atomic<std::size_t> tombstones{0};

  std::unique_ptr<std::mutex[]> node_locks;

  std::mutex poor_mu;
  std::vector<std::uint32_t> poorly_coded;

  std::atomic<std::uint64_t> window_components{0};
  std::atomic<std::uint64_t> window_clipped{0};
  std::size_t live_at_calibration = 0;
  std::atomic<std::uint64_t> recalibrations{0};
};

using Impl = HnswIndex::Impl;

inline bool Ready(const Impl& impl, std::uint32_t id) { return (impl.Flags(id) & kReady) != 0; }

// A fresh graph for these options; generation numbers its originals file (compaction builds a
// new graph beside the old one).
std::unique_ptr<Impl> NewImpl(const HnswOptions& o, std::uint64_t generation);

// Inserts into one Impl; returns whether the index asks for calibration or recalibration.
struct AddOutcome {
  bool calibrate_now = false;
  bool recalibrate = false;
};
Result<AddOutcome> AddToImpl(Impl& impl, std::uint64_t label, const float* v);

}  // namespace semcached::vector
