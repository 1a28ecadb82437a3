#include "vector/hnsw_index.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <queue>

#include <unistd.h>

#include <boost/unordered/unordered_flat_map.hpp>

namespace semcached::vector {
namespace {

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

std::size_t RoundUp(std::size_t v, std::size_t to) { return (v + to - 1) / to * to; }

std::uint64_t SplitMix(std::uint64_t x) {
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

thread_local VisitedSet tls_visited;

}  // namespace

const char* MetricName(Metric m) {
  switch (m) {
    case Metric::kCosine: return "cosine";
    case Metric::kInnerProduct: return "ip";
    case Metric::kL2: return "l2";
  }
  return "unknown";
}

float HnswIndex::Similarity(Metric metric, float distance) {
  switch (metric) {
    case Metric::kCosine: return 1.f - distance;
    case Metric::kInnerProduct: return -distance;
    case Metric::kL2: return -distance;
  }
  return -distance;
}

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
    return static_cast<std::uint32_t>(std::min<std::size_t>(count.load(std::memory_order_acquire), cap));
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
      dot = q.code.offset_dot + meta->alpha * q.code.w_scale * static_cast<float>(kd - 128 * meta->sum);
    }
    return ToDistance(dot, q.code.norm2, meta->norm2);
  }

  // Distances to several nodes with one batched kernel call.
  void CodeDistances(const CodeSpace& s, const Query& q, const std::uint32_t* ids, std::size_t n,
                     float* out) const {
    const std::int8_t* ptrs[64];
    std::int32_t dots[64];
    for (std::size_t base = 0; base < n; base += 64) {
      std::size_t m = std::min<std::size_t>(64, n - base);
      for (std::size_t i = 0; i < m; ++i) {
        ptrs[i] = reinterpret_cast<const std::int8_t*>(s.codes->Row(ids[base + i]) + sizeof(StoredMeta));
      }
      if (opt.wide_query) {
        k.dot_i16i8_many(q.code.wide.data(), ptrs, m, dim, dots);
      } else {
        k.dot_u8i8_many(q.code.biased.data(), ptrs, m, dim, dots);
      }
      for (std::size_t i = 0; i < m; ++i) {
        const auto* meta = reinterpret_cast<const StoredMeta*>(s.codes->Row(ids[base + i]));
        float dot = opt.wide_query
                        ? q.code.offset_dot + meta->alpha * q.code.wide_scale * static_cast<float>(dots[i])
                        : q.code.offset_dot +
                              meta->alpha * q.code.w_scale * static_cast<float>(dots[i] - 128 * meta->sum);
        out[base + i] = ToDistance(dot, q.code.norm2, meta->norm2);
      }
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
    CodeMeta m = Encode(s.params, Float(id), reinterpret_cast<std::int8_t*>(row + sizeof(StoredMeta)));
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
    double u = static_cast<double>(SplitMix(opt.seed ^ (std::uint64_t{id} * 0x632BE59BD9B4E019ULL)) >> 11) *
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
          const std::uint8_t* row = s.codes->Row(buf[i]);
          for (std::size_t off = 0; off < code_row; off += 64) __builtin_prefetch(row + off);
          fresh[m++] = buf[i];
        }
      }
      if (!candidates.empty()) {
        // And the next node's link list, which the next round reads first.
        __builtin_prefetch(Links(candidates.top().second, level));
      }
      CodeDistances(s, q, fresh, m, dists);
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

// ----------------------------------------------------------------------------------------
// Public interface: validation, calibration state, maintenance.

namespace {

// Background work of one index: recalibration and compaction, one at a time.
class Maintenance {
 public:
  explicit Maintenance(std::function<void(bool recalibrate, bool compact)> work)
      : work_(std::move(work)), thread_([this] { Run(); }) {}
  ~Maintenance() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Request(bool recalibrate, bool compact) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      recalibrate_ = recalibrate_ || recalibrate;
      compact_ = compact_ || compact;
    }
    cv_.notify_all();
  }
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [this] { return !busy_ && !recalibrate_ && !compact_; });
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || recalibrate_ || compact_; });
      if (stop_) return;
      bool r = recalibrate_, c = compact_;
      recalibrate_ = compact_ = false;
      busy_ = true;
      lock.unlock();
      work_(r, c);
      lock.lock();
      busy_ = false;
      idle_cv_.notify_all();
    }
  }
  std::function<void(bool, bool)> work_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  bool stop_ = false, recalibrate_ = false, compact_ = false, busy_ = false;
  std::thread thread_;
};

}  // namespace

struct HnswIndexState {
  // Add and Remove hold it shared; Save holds it exclusive so the file is one point in time.
  mutable std::shared_mutex write_gate;
  // Guards the Impl pointer itself: exclusive only to swap in a compacted graph.
  mutable std::shared_mutex swap_mu;
  std::unique_ptr<HnswIndex::Impl> impl;
  // Labels changed while a compaction copies the graph; replayed before the swap.
  std::mutex log_mu;
  bool logging = false;
  std::vector<std::uint64_t> changed;
  std::atomic<std::uint64_t> compactions{0};
  std::unique_ptr<Maintenance> maintenance;
};

}  // namespace semcached::vector

namespace semcached::vector {
namespace {

using Impl = HnswIndex::Impl;

bool Ready(const Impl& impl, std::uint32_t id) { return (impl.Flags(id) & kReady) != 0; }

// Live vectors, evenly sampled up to max_rows, copied row-major.
std::vector<float> SampleLive(const Impl& impl, std::size_t max_rows, std::size_t* rows) {
  std::vector<std::uint32_t> ids;
  const std::uint32_t n = impl.ScanLimit();
  for (std::uint32_t id = 0; id < n; ++id) {
    if (impl.Live(id)) ids.push_back(id);
  }
  std::size_t take = std::min(ids.size(), max_rows);
  std::vector<float> out(take * impl.dim);
  for (std::size_t i = 0; i < take; ++i) {
    const float* f = impl.Float(ids[i * ids.size() / take]);
    std::copy(f, f + impl.dim, out.begin() + static_cast<std::ptrdiff_t>(i * impl.dim));
  }
  *rows = take;
  return out;
}

std::unique_ptr<Impl> NewImpl(const HnswOptions& o, std::uint64_t generation) {
  HnswOptions copy = o;
  if (!copy.originals_path.empty()) {
    std::string suffix = std::to_string(generation);
    copy.originals_path.append(".").append(suffix);
  }
  return std::make_unique<Impl>(copy);
}

}  // namespace

HnswIndex::HnswIndex(const HnswOptions& options)
    : options_(options), state_(std::make_unique<HnswIndexState>()) {}

HnswIndex::~HnswIndex() {
  if (state_->maintenance) state_->maintenance.reset();  // joins the thread first
  std::string path = state_->impl ? state_->impl->opt.originals_path : "";
  state_->impl.reset();
  if (!path.empty()) std::remove(path.c_str());
}

Result<std::unique_ptr<HnswIndex>> HnswIndex::Create(const HnswOptions& options) {
  if (options.dim == 0 || options.dim > 65535) {
    return InvalidArgument("dimension must be 1..65535, got " + std::to_string(options.dim));
  }
  if (options.M < 2 || options.M > 64) return InvalidArgument("M must be 2..64");
  if (options.ef_construction < 1) return InvalidArgument("ef_construction must be at least 1");
  std::unique_ptr<HnswIndex> index(new HnswIndex(options));
  index->state_->impl = NewImpl(options, 0);
  Impl& impl = *index->state_->impl;
  if (!options.calibrate) impl.space = impl.NewSpace(PerVectorParams(options.dim));
  // Probe that storage works (a file-backed originals path may be unwritable).
  Status s = impl.floats.Reserve(1);
  if (!s.ok()) return s;
  if (options.background_maintenance) {
    HnswIndex* self = index.get();
    index->state_->maintenance =
        std::make_unique<Maintenance>([self](bool r, bool c) { self->Maintain(r, c); });
  }
  return index;
}

namespace {

Status CheckVector(const float* v, std::size_t dim, std::size_t expected) {
  if (v == nullptr) return InvalidArgument("vector is missing");
  if (dim != expected) {
    return InvalidArgument("vector has " + std::to_string(dim) + " dimensions; the index has " +
                           std::to_string(expected));
  }
  if (!AllFinite(v, dim)) return InvalidArgument("vector has a NaN or infinite component");
  return Status::Ok();
}

// Inserts into one Impl; returns whether the index asks for calibration or recalibration.
struct AddOutcome {
  bool calibrate_now = false;
  bool recalibrate = false;
};

Result<AddOutcome> AddToImpl(Impl& impl, std::uint64_t label, const float* v) {
  AddOutcome out;
  std::shared_lock<std::shared_mutex> state(impl.state_mu);
  auto id = impl.NewNode(label, v);
  if (!id.ok()) return id.status();
  if (impl.space) {
    Status s = impl.CodeAndLink(*impl.space, *id);
    if (!s.ok()) return s;
  }
  impl.SetFlag(*id, kReady);
  {
    std::unique_lock<std::shared_mutex> lock(impl.label_mu);
    auto [it, inserted] = impl.label_to_id.try_emplace(label, *id);
    if (!inserted) {
      impl.SetFlag(it->second, kDeleted);
      impl.tombstones.fetch_add(1);
      it->second = *id;
    }
  }
  if (!impl.space) {
    out.calibrate_now = impl.opt.calibrate &&
                        impl.count.load() >= std::max<std::size_t>(impl.opt.calibration_threshold, 1);
    return out;
  }
  if (!impl.opt.calibrate) return out;
  // Drift: the share of components clipped by the current ranges over the last window.
  std::uint64_t comps = impl.window_components.load(std::memory_order_relaxed);
  if (comps >= impl.opt.drift_window * impl.dim) {
    std::uint64_t clipped = impl.window_clipped.exchange(0);
    impl.window_components.store(0);
    double rate = static_cast<double>(clipped) / static_cast<double>(comps);
    double limit = std::max(impl.opt.drift_clip_rate, 4 * impl.space->params.sample_clip_rate);
    if (rate > limit) out.recalibrate = true;
  }
  // Growth: ranges learned from a sample eight times smaller than the data are stale.
  std::size_t live;
  {
    std::shared_lock<std::shared_mutex> lock(impl.label_mu);
    live = impl.label_to_id.size();
  }
  if (impl.live_at_calibration > 0 && live >= 8 * impl.live_at_calibration) out.recalibrate = true;
  return out;
}

// First calibration: learn params from the buffer, code every vector, build the graph.
Status CalibrateBuffered(Impl& impl) {
  std::unique_lock<std::shared_mutex> state(impl.state_mu);
  if (impl.space) return Status::Ok();
  std::size_t rows = 0;
  auto sample = SampleLive(impl, CalibrationOptions{}.max_sample, &rows);
  if (rows == 0) return Status::Ok();
  auto params = Calibrate(sample.data(), rows, impl.dim, 1);
  if (!params.ok()) return params.status();
  auto space = impl.NewSpace(std::move(*params));
  const std::uint32_t n = impl.ScanLimit();
  Status s = space->codes->Reserve(n);
  if (s.ok() && space->bits) s = space->bits->Reserve(n);
  if (!s.ok()) return s;
  for (std::uint32_t id = 0; id < n; ++id) {
    if (!impl.Live(id)) continue;
    impl.WriteCode(*space, id, false);
    impl.Link(*space, id);
  }
  impl.live_at_calibration = rows;
  impl.space = std::move(space);
  return Status::Ok();
}

Status RecalibrateImpl(Impl& impl) {
  std::unique_ptr<CodeSpace> fresh;
  std::vector<char> coded;
  {
    std::shared_lock<std::shared_mutex> state(impl.state_mu);
    if (!impl.space) return Status::Ok();  // still buffering: calibration will come
    std::size_t rows = 0;
    auto sample = SampleLive(impl, CalibrationOptions{}.max_sample, &rows);
    if (rows == 0) return Status::Ok();
    auto params = Calibrate(sample.data(), rows, impl.dim, impl.space->params.version + 1);
    if (!params.ok()) return params.status();
    fresh = impl.NewSpace(std::move(*params));
    const std::uint32_t n0 = impl.ScanLimit();
    Status s = fresh->codes->Reserve(n0);
    if (s.ok() && fresh->bits) s = fresh->bits->Reserve(n0);
    if (!s.ok()) return s;
    coded.assign(n0, 0);
    for (std::uint32_t id = 0; id < n0; ++id) {
      if (!Ready(impl, id)) continue;
      impl.WriteCode(*fresh, id, false);
      coded[id] = 1;
    }
  }
  // Short exclusive step: code what arrived meanwhile, then swap.
  std::unique_lock<std::shared_mutex> state(impl.state_mu);
  const std::uint32_t n1 = impl.ScanLimit();
  Status s = fresh->codes->Reserve(n1);
  if (s.ok() && fresh->bits) s = fresh->bits->Reserve(n1);
  if (!s.ok()) return s;
  for (std::uint32_t id = 0; id < n1; ++id) {
    if ((id >= coded.size() || !coded[id]) && Ready(impl, id)) impl.WriteCode(*fresh, id, false);
  }
  impl.space = std::move(fresh);
  {
    std::shared_lock<std::shared_mutex> lock(impl.label_mu);
    impl.live_at_calibration = impl.label_to_id.size();
  }
  impl.window_components.store(0);
  impl.window_clipped.store(0);
  impl.recalibrations.fetch_add(1);
  state.unlock();

  // Nodes that were linked while their codes clipped badly get links chosen with the new
  // codes, concurrently with other work like any insert.
  std::vector<std::uint32_t> relink;
  {
    std::lock_guard<std::mutex> lock(impl.poor_mu);
    relink.swap(impl.poorly_coded);
  }
  std::shared_lock<std::shared_mutex> shared(impl.state_mu);
  for (std::uint32_t id : relink) {
    if (impl.Live(id)) impl.Link(*impl.space, id);
  }
  return Status::Ok();
}

}  // namespace

Status HnswIndex::Add(std::uint64_t label, const float* vector, std::size_t dim) {
  Status s = CheckVector(vector, dim, options_.dim);
  if (!s.ok()) return s;
  std::vector<float> v(vector, vector + dim);
  if (options_.metric == Metric::kCosine && !NormalizeInPlace(v.data(), dim)) {
    return InvalidArgument("a zero vector has no direction: cosine distance is undefined");
  }
  return AddNormalized(label, std::move(v));
}

Status HnswIndex::AddNormalized(std::uint64_t label, std::vector<float> v) {
  Result<AddOutcome> outcome = AddOutcome{};
  {
    std::shared_lock<std::shared_mutex> writes(state_->write_gate);
    std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
    outcome = AddToImpl(*state_->impl, label, v.data());
    if (!outcome.ok()) return outcome.status();
    std::lock_guard<std::mutex> lock(state_->log_mu);
    if (state_->logging) state_->changed.push_back(label);
    if (outcome->calibrate_now) {
      Status s = CalibrateBuffered(*state_->impl);
      if (!s.ok()) return s;
    }
  }
  if (outcome->recalibrate) {
    if (state_->maintenance) {
      state_->maintenance->Request(true, false);
    } else {
      return Recalibrate();
    }
  }
  return Status::Ok();
}

Status HnswIndex::Remove(std::uint64_t label) {
  bool compact = false;
  {
    std::shared_lock<std::shared_mutex> writes(state_->write_gate);
    std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
    Impl& impl = *state_->impl;
    {
      std::unique_lock<std::shared_mutex> lock(impl.label_mu);
      auto it = impl.label_to_id.find(label);
      if (it == impl.label_to_id.end()) return NotFound("no vector with label " + std::to_string(label));
      impl.SetFlag(it->second, kDeleted);
      impl.label_to_id.erase(it);
    }
    std::size_t dead = impl.tombstones.fetch_add(1) + 1;
    compact = dead > 1000 && static_cast<double>(dead) > options_.compact_ratio * impl.count.load();
    std::lock_guard<std::mutex> lock(state_->log_mu);
    if (state_->logging) state_->changed.push_back(label);
  }
  if (compact && state_->maintenance) state_->maintenance->Request(false, true);
  return Status::Ok();
}

bool HnswIndex::Contains(std::uint64_t label) const {
  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  std::shared_lock<std::shared_mutex> lock(state_->impl->label_mu);
  return state_->impl->label_to_id.count(label) != 0;
}

Result<std::vector<float>> HnswIndex::Get(std::uint64_t label) const {
  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  const Impl& impl = *state_->impl;
  std::shared_lock<std::shared_mutex> lock(impl.label_mu);
  auto it = impl.label_to_id.find(label);
  if (it == impl.label_to_id.end()) return NotFound("no vector with label " + std::to_string(label));
  const float* f = impl.Float(it->second);
  return std::vector<float>(f, f + impl.dim);
}

std::size_t HnswIndex::size() const {
  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  std::shared_lock<std::shared_mutex> lock(state_->impl->label_mu);
  return state_->impl->label_to_id.size();
}

Result<std::vector<SearchHit>> HnswIndex::Search(const float* query, std::size_t dim,
                                                 const SearchParams& p) const {
  Status s = CheckVector(query, dim, options_.dim);
  if (!s.ok()) return s;
  std::vector<SearchHit> hits;
  if (p.k == 0) return hits;
  std::vector<float> qv(query, query + dim);
  if (options_.metric == Metric::kCosine && !NormalizeInPlace(qv.data(), dim)) {
    return InvalidArgument("a zero query vector has no direction: cosine distance is undefined");
  }
  float qnorm2 = 0;
  for (float x : qv) qnorm2 += x * x;

  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  const Impl& impl = *state_->impl;
  std::shared_lock<std::shared_mutex> state(impl.state_mu);
  auto accept = [&](std::uint32_t id) {
    return impl.Live(id) && (p.filter == nullptr || (*p.filter)(impl.Node(id)->label));
  };
  // In the graph, nodes are reached only through links made after their rows were written,
  // so when nothing is deleted and nothing filtered every reached node may be returned; the
  // walk then skips reading each node's record.
  const bool plain = p.filter == nullptr && impl.tombstones.load(std::memory_order_relaxed) == 0;
  auto accept_linked = [&](std::uint32_t id) { return plain || accept(id); };

  std::vector<DistId> found;
  const CodeSpace* space = impl.space.get();
  const std::size_t wanted = std::max<std::size_t>(p.k * std::max<std::size_t>(p.oversample, 1), p.k);
  if (space == nullptr || p.precision == Precision::kExact) {
    found = impl.ExactScan(qv.data(), qnorm2, p.k, accept);
  } else if (p.precision == Precision::kCascade) {
    if (!space->bits) return InvalidArgument("cascade search needs an index built with binary_codes");
    Impl::Query q;
    impl.PrepareQuery(space, qv.data(), &q);
    const std::size_t words = BinaryWords(dim);
    const std::size_t first = std::max<std::size_t>(wanted * 8, 256);
    std::priority_queue<std::pair<std::uint32_t, std::uint32_t>> ham;  // farthest on top
    const std::uint32_t n = impl.ScanLimit();
    for (std::uint32_t id = 0; id < n; ++id) {
      if (!accept(id)) continue;
      std::uint32_t h = impl.k.hamming(q.bits.data(), space->bits->RowAs<std::uint64_t>(id), words);
      if (ham.size() < first) {
        ham.emplace(h, id);
      } else if (h < ham.top().first) {
        ham.pop();
        ham.emplace(h, id);
      }
    }
    std::vector<std::uint32_t> ids;
    while (!ham.empty()) {
      ids.push_back(ham.top().second);
      ham.pop();
    }
    std::vector<float> d(ids.size());
    impl.CodeDistances(*space, q, ids.data(), ids.size(), d.data());
    for (std::size_t i = 0; i < ids.size(); ++i) found.emplace_back(d[i], ids[i]);
    std::sort(found.begin(), found.end());
    if (found.size() > wanted) found.resize(wanted);
    for (auto& f : found) f.first = impl.FloatDistance(qv.data(), qnorm2, f.second);
  } else {
    std::uint32_t ep = impl.entry.load();
    if (ep == kNone) return hits;
    Impl::Query q;
    impl.PrepareQuery(space, qv.data(), &q);
    float ep_dist = impl.CodeDistance(*space, q, ep);
    for (int l = impl.max_level.load(); l > 0; --l) {
      std::tie(ep_dist, ep) = impl.Greedy(*space, q, ep, ep_dist, l);
    }
    std::size_t ef = std::max(p.ef, p.k);
    if (p.precision == Precision::kInt8Rescore) ef = std::max(ef, wanted);
    MaxHeap heap = impl.SearchLevel(*space, q, ep, ep_dist, ef, 0, accept_linked);
    while (!heap.empty()) {
      found.push_back(heap.top());
      heap.pop();
    }
    std::reverse(found.begin(), found.end());
    if (p.filter != nullptr && found.size() < p.k) {
      // The filter let too few nodes through for the walk to find k: scan instead.
      found = impl.ExactScan(qv.data(), qnorm2, p.k, accept);
    } else if (p.precision == Precision::kInt8Rescore) {
      // Every candidate the walk kept is re-scored: int8 noise reorders close neighbours,
      // and the true k may sit anywhere in the ef list. ef (at least k * oversample) is the
      // knob for how many.
      for (auto& f : found) {
        if (f.first <= p.rescore_max_distance) {
          f.first = impl.FloatDistance(qv.data(), qnorm2, f.second);
        }
      }
    }
  }
  std::sort(found.begin(), found.end());
  hits.reserve(std::min(found.size(), p.k));
  for (const auto& [d, id] : found) {
    if (hits.size() >= p.k) break;
    std::uint64_t label = impl.Node(id)->label;
    // An update briefly leaves old and new node live together: report the label once.
    bool dup = false;
    for (const auto& h : hits) dup = dup || h.label == label;
    if (!dup) hits.push_back({label, d});
  }
  return hits;
}

Status HnswIndex::Recalibrate() {
  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  if (!options_.calibrate) return InvalidArgument("this index keeps per-vector Q8 codes (calibrate = false)");
  return RecalibrateImpl(*state_->impl);
}

Status HnswIndex::Compact() { return CompactNow(); }

void HnswIndex::WaitForMaintenance() {
  if (state_->maintenance) state_->maintenance->WaitIdle();
}

void HnswIndex::Maintain(bool recalibrate, bool compact) {
  if (compact) (void)CompactNow();
  if (recalibrate) (void)Recalibrate();
}

Status HnswIndex::CompactNow() {
  const std::uint64_t generation = state_->compactions.load() + 1;
  std::unique_ptr<Impl> fresh = NewImpl(options_, generation);
  {
    std::lock_guard<std::mutex> lock(state_->log_mu);
    state_->logging = true;
    state_->changed.clear();
  }
  {
    std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
    const Impl& old = *state_->impl;
    {
      std::shared_lock<std::shared_mutex> st(old.state_mu);
      if (old.space) fresh->space = fresh->NewSpace(old.space->params);
      fresh->live_at_calibration = old.live_at_calibration;
    }
    std::vector<std::pair<std::uint64_t, std::uint32_t>> live;
    {
      std::shared_lock<std::shared_mutex> lock(old.label_mu);
      live.assign(old.label_to_id.begin(), old.label_to_id.end());
    }
    std::sort(live.begin(), live.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
    for (const auto& [label, id] : live) {
      auto r = AddToImpl(*fresh, label, old.Float(id));
      if (!r.ok()) return r.status();
      if (r->calibrate_now) (void)CalibrateBuffered(*fresh);
    }
  }
  std::unique_ptr<Impl> retired;
  {
    std::unique_lock<std::shared_mutex> swap(state_->swap_mu);
    std::lock_guard<std::mutex> lock(state_->log_mu);
    Impl& old = *state_->impl;
    std::sort(state_->changed.begin(), state_->changed.end());
    state_->changed.erase(std::unique(state_->changed.begin(), state_->changed.end()),
                          state_->changed.end());
    for (std::uint64_t label : state_->changed) {
      auto it = old.label_to_id.find(label);
      if (it != old.label_to_id.end()) {
        auto r = AddToImpl(*fresh, label, old.Float(it->second));
        if (!r.ok()) return r.status();
      } else if (auto f = fresh->label_to_id.find(label); f != fresh->label_to_id.end()) {
        fresh->SetFlag(f->second, kDeleted);
        fresh->label_to_id.erase(f);
        fresh->tombstones.fetch_add(1);
      }
    }
    state_->logging = false;
    state_->changed.clear();
    fresh->recalibrations.store(old.recalibrations.load());
    retired = std::move(state_->impl);
    state_->impl = std::move(fresh);
    state_->compactions.fetch_add(1);
  }
  std::string path = retired->opt.originals_path;
  retired.reset();
  if (!path.empty()) std::remove(path.c_str());
  return Status::Ok();
}

IndexStats HnswIndex::Stats() const {
  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  const Impl& impl = *state_->impl;
  std::shared_lock<std::shared_mutex> state(impl.state_mu);
  IndexStats s;
  {
    std::shared_lock<std::shared_mutex> lock(impl.label_mu);
    s.live = impl.label_to_id.size();
    s.graph_bytes += impl.label_to_id.bucket_count() *
                     (sizeof(decltype(impl.label_to_id)::value_type) + 1);
  }
  s.nodes = impl.count.load();
  s.tombstones = impl.tombstones.load();
  s.calibrated = impl.space != nullptr;
  if (impl.space) {
    s.params_version = impl.space->params.version;
    s.scheme = impl.space->params.scheme;
    s.code_bytes = s.nodes * impl.code_row +
                   (impl.space->bits ? s.nodes * BinaryWords(impl.dim) * 8 : 0);
  }
  s.recalibrations = impl.recalibrations.load();
  s.compactions = state_->compactions.load();
  s.graph_bytes += s.nodes * (sizeof(NodeRecord) + impl.links0.row_bytes());
  const std::uint32_t limit = impl.ScanLimit();
  for (std::uint32_t id = 0; id < limit; ++id) {
    if (!Ready(impl, id)) continue;  // a node being inserted is still writing its record
    int level = impl.Node(id)->level;
    if (level > 0) s.graph_bytes += static_cast<std::size_t>(level) * (1 + impl.M) * 4;
  }
  s.original_bytes = s.nodes * impl.dim * sizeof(float);
  s.originals_on_disk = impl.floats.file_backed();
  s.max_level = impl.max_level.load();
  return s;
}

}  // namespace semcached::vector

// ----------------------------------------------------------------------------------------
// Persistence.
//
// File layout (all integers little-endian):
//   magic "SCHNSW\r\n" | u32 format version | sections... | end section
//   section: u32 tag | u64 payload bytes | u32 CRC-32 of the payload | payload
// Sections, in order: OPTS (options), PARM (int8 params, if calibrated), NODE (records),
// LNK0 (level-0 links), UPPR (upper links of nodes above level 0), CODE, BITS (optional),
// ORIG (float32 originals), END. Every section is checked before anything in it is used,
// and every id and count in it is checked against the others, so a damaged file is refused
// with a message instead of crashing a search later.

#include <zlib.h>

namespace semcached::vector {
namespace {

constexpr char kMagic[8] = {'S', 'C', 'H', 'N', 'S', 'W', '\r', '\n'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::uint32_t Tag(const char (&s)[5]) {
  return std::uint32_t(std::uint8_t(s[0])) | std::uint32_t(std::uint8_t(s[1])) << 8 |
         std::uint32_t(std::uint8_t(s[2])) << 16 | std::uint32_t(std::uint8_t(s[3])) << 24;
}
constexpr std::uint32_t kOpts = Tag("OPTS"), kParm = Tag("PARM"), kNode = Tag("NODE"),
                        kLnk0 = Tag("LNK0"), kUppr = Tag("UPPR"), kCode = Tag("CODE"),
                        kBits = Tag("BITS"), kOrig = Tag("ORIG"), kEnd = Tag("END!");
constexpr int kMaxLevel = 64;

struct SavedNode {
  std::uint64_t label;
  std::int32_t level;
  std::uint32_t flags;
};

// Writes sections to a FILE*, computing each CRC over the payload as it goes.
class Writer {
 public:
  explicit Writer(FILE* f) : f_(f) {}
  bool Raw(const void* p, std::size_t n) { return ok_ = ok_ && std::fwrite(p, 1, n, f_) == n; }
  template <typename T>
  bool Pod(const T& v) {
    return Raw(&v, sizeof(T));
  }
  // A section whose payload is produced by `fill` calling Chunk(); length known up front.
  template <typename Fill>
  bool Section(std::uint32_t tag, std::uint64_t length, Fill&& fill) {
    long start = std::ftell(f_);
    std::uint32_t crc_placeholder = 0;
    Pod(tag);
    Pod(length);
    Pod(crc_placeholder);
    crc_ = crc32(0L, Z_NULL, 0);
    written_ = 0;
    fill();
    if (!ok_ || written_ != length) return ok_ = false;
    long end = std::ftell(f_);
    std::fseek(f_, start + 12, SEEK_SET);
    Pod(crc_);
    std::fseek(f_, end, SEEK_SET);
    return ok_;
  }
  void Chunk(const void* p, std::size_t n) {
    crc_ = crc32(crc_, static_cast<const Bytef*>(p), static_cast<uInt>(n));
    written_ += n;
    Raw(p, n);
  }
  template <typename T>
  void ChunkPod(const T& v) {
    Chunk(&v, sizeof(T));
  }
  bool ok() const { return ok_; }

 private:
  FILE* f_;
  bool ok_ = true;
  std::uint32_t crc_ = 0;
  std::uint64_t written_ = 0;
};

// Reads sections; every read is bounded by the section's declared length and the file size.
class Reader {
 public:
  Reader(FILE* f, std::uint64_t file_size, std::string path)
      : f_(f), file_size_(file_size), path_(std::move(path)) {}

  Status Fail(const std::string& why) const {
    return DataLoss("index file " + path_ + " is damaged or not an index: " + why);
  }
  bool Raw(void* p, std::size_t n) { return std::fread(p, 1, n, f_) == n; }

  // Opens the next section; it must carry `tag`.
  Status Open(std::uint32_t tag, const char* name) {
    std::uint32_t got = 0, crc = 0;
    std::uint64_t len = 0;
    if (!Raw(&got, 4) || !Raw(&len, 8) || !Raw(&crc, 4)) {
      return Fail(std::string("truncated before section ") + name);
    }
    if (got != tag) return Fail(std::string("expected section ") + name);
    long pos = std::ftell(f_);
    if (pos < 0 || len > file_size_ - static_cast<std::uint64_t>(pos)) {
      return Fail(std::string("section ") + name + " runs past the end of the file");
    }
    left_ = len;
    expected_crc_ = crc;
    crc_ = crc32(0L, Z_NULL, 0);
    name_ = name;
    return Status::Ok();
  }
  std::uint64_t left() const { return left_; }
  Status Chunk(void* p, std::size_t n) {
    if (n > left_) return Fail(std::string("section ") + name_ + " is shorter than its contents");
    if (!Raw(p, n)) return Fail(std::string("truncated in section ") + name_);
    crc_ = crc32(crc_, static_cast<const Bytef*>(p), static_cast<uInt>(n));
    left_ -= n;
    return Status::Ok();
  }
  template <typename T>
  Status ChunkPod(T* v) {
    return Chunk(v, sizeof(T));
  }
  Status Close() {
    if (left_ != 0) return Fail(std::string("section ") + name_ + " has unread bytes");
    if (crc_ != expected_crc_) return Fail(std::string("checksum mismatch in section ") + name_);
    return Status::Ok();
  }

 private:
  FILE* f_;
  std::uint64_t file_size_;
  std::string path_;
  std::uint64_t left_ = 0;
  std::uint32_t expected_crc_ = 0, crc_ = 0;
  const char* name_ = "";
};

struct SavedOptions {
  std::uint32_t dim, metric, M, ef_construction, calibration_threshold, calibrate, binary_codes,
      drift_window;
  double drift_clip_rate, compact_ratio;
  std::uint64_t seed, nodes, live_at_calibration;
  std::uint32_t entry;
  std::int32_t max_level;
};

}  // namespace

Status HnswIndex::Save(const std::string& path) const {
  std::unique_lock<std::shared_mutex> writes(state_->write_gate);
  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  const Impl& impl = *state_->impl;
  std::shared_lock<std::shared_mutex> state(impl.state_mu);

  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
  Writer w(f);
  const std::uint32_t n = impl.ScanLimit();
  const std::size_t dim = impl.dim;

  w.Raw(kMagic, sizeof(kMagic));
  w.Pod(kFormatVersion);
  SavedOptions so{};
  so.dim = static_cast<std::uint32_t>(dim);
  so.metric = static_cast<std::uint32_t>(impl.opt.metric);
  so.M = static_cast<std::uint32_t>(impl.M);
  so.ef_construction = static_cast<std::uint32_t>(impl.opt.ef_construction);
  so.calibration_threshold = static_cast<std::uint32_t>(impl.opt.calibration_threshold);
  so.calibrate = impl.opt.calibrate;
  so.binary_codes = impl.opt.binary_codes;
  so.drift_window = static_cast<std::uint32_t>(std::min<std::size_t>(impl.opt.drift_window, 0xFFFFFFFFu));
  so.drift_clip_rate = impl.opt.drift_clip_rate;
  so.compact_ratio = impl.opt.compact_ratio;
  so.seed = impl.opt.seed;
  so.nodes = n;
  so.live_at_calibration = impl.live_at_calibration;
  so.entry = impl.entry.load();
  so.max_level = impl.max_level.load();
  w.Section(kOpts, sizeof(so), [&] { w.ChunkPod(so); });

  const CodeSpace* space = impl.space.get();
  if (space != nullptr) {
    const Int8Params& p = space->params;
    std::uint64_t len = 4 + 1 + 1 + 8 + 8 + 2 * dim * 4;
    w.Section(kParm, len, [&] {
      w.ChunkPod(p.version);
      w.ChunkPod(static_cast<std::uint8_t>(p.scheme));
      w.ChunkPod(static_cast<std::uint8_t>(p.clip));
      w.ChunkPod(p.sample_dot_error);
      w.ChunkPod(p.sample_clip_rate);
      w.Chunk(p.offset.data(), dim * 4);
      w.Chunk(p.scale.data(), dim * 4);
    });
  }
  w.Section(kNode, std::uint64_t{n} * sizeof(SavedNode), [&] {
    for (std::uint32_t id = 0; id < n; ++id) {
      const NodeRecord* r = impl.Node(id);
      SavedNode sn{r->label, r->level, impl.Flags(id) & (kReady | kDeleted)};
      w.ChunkPod(sn);
    }
  });
  // Links are read under their node locks: inserts are paused, but not a relink after a
  // recalibration.
  const std::size_t row0 = impl.links0.row_bytes();
  w.Section(kLnk0, std::uint64_t{n} * row0, [&] {
    for (std::uint32_t id = 0; id < n; ++id) {
      std::lock_guard<std::mutex> lock(impl.Lock(id));
      w.Chunk(impl.links0.Row(id), row0);
    }
  });
  std::uint64_t upper = 0;
  for (std::uint32_t id = 0; id < n; ++id) {
    upper += static_cast<std::uint64_t>(std::max(0, impl.Node(id)->level)) * (1 + impl.M) * 4;
  }
  w.Section(kUppr, upper, [&] {
    for (std::uint32_t id = 0; id < n; ++id) {
      const NodeRecord* r = impl.Node(id);
      if (r->level <= 0) continue;
      std::lock_guard<std::mutex> lock(impl.Lock(id));
      w.Chunk(r->upper, static_cast<std::size_t>(r->level) * (1 + impl.M) * 4);
    }
  });
  if (space != nullptr) {
    w.Section(kCode, std::uint64_t{n} * impl.code_row, [&] {
      for (std::uint32_t id = 0; id < n; ++id) w.Chunk(space->codes->Row(id), impl.code_row);
    });
    if (space->bits) {
      const std::size_t row = BinaryWords(dim) * 8;
      w.Section(kBits, std::uint64_t{n} * row, [&] {
        for (std::uint32_t id = 0; id < n; ++id) w.Chunk(space->bits->Row(id), row);
      });
    }
  }
  w.Section(kOrig, std::uint64_t{n} * dim * 4, [&] {
    for (std::uint32_t id = 0; id < n; ++id) w.Chunk(impl.Float(id), dim * 4);
  });
  w.Section(kEnd, 0, [] {});
  bool ok = w.ok() && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Unavailable("cannot write index file " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<std::unique_ptr<HnswIndex>> HnswIndex::Load(const std::string& path, const LoadOptions& lo) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return NotFound("cannot open index file " + path + ": " + std::strerror(errno));
  std::unique_ptr<FILE, int (*)(FILE*)> closer(f, std::fclose);
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  Reader r(f, size < 0 ? 0 : static_cast<std::uint64_t>(size), path);

  char magic[8];
  std::uint32_t version = 0;
  if (!r.Raw(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return r.Fail("bad magic");
  if (!r.Raw(&version, 4)) return r.Fail("truncated header");
  if (version != kFormatVersion) {
    return InvalidArgument("index file " + path + " has format version " + std::to_string(version) +
                           "; this build reads version " + std::to_string(kFormatVersion));
  }

  SavedOptions so{};
  Status s = r.Open(kOpts, "OPTS");
  if (s.ok()) s = r.ChunkPod(&so);
  if (s.ok()) s = r.Close();
  if (!s.ok()) return s;
  if (so.dim == 0 || so.dim > 65535 || so.metric > 2 || so.M < 2 || so.M > 64 ||
      so.max_level > kMaxLevel || so.max_level < -1 || so.nodes >= 0xFFFFFFFFull ||
      (so.nodes > 0 && so.entry != kNone && so.entry >= so.nodes) ||
      !std::isfinite(so.drift_clip_rate) || !std::isfinite(so.compact_ratio)) {
    return r.Fail("options out of range");
  }
  // A section cannot be larger than the file: bound the node count before allocating.
  if (so.nodes * sizeof(SavedNode) > static_cast<std::uint64_t>(size)) return r.Fail("node count larger than the file");

  HnswOptions o;
  o.dim = so.dim;
  o.metric = static_cast<Metric>(so.metric);
  o.M = so.M;
  o.ef_construction = std::max<std::uint32_t>(so.ef_construction, 1);
  o.calibration_threshold = so.calibration_threshold;
  o.calibrate = so.calibrate != 0;
  o.binary_codes = so.binary_codes != 0;
  o.drift_window = so.drift_window;
  o.drift_clip_rate = so.drift_clip_rate;
  o.compact_ratio = so.compact_ratio;
  o.seed = so.seed;
  o.originals_path = lo.originals_path;
  o.background_maintenance = lo.background_maintenance;

  std::unique_ptr<HnswIndex> index(new HnswIndex(o));
  index->state_->impl = NewImpl(o, 0);
  Impl& impl = *index->state_->impl;
  const std::uint32_t n = static_cast<std::uint32_t>(so.nodes);
  const std::size_t dim = o.dim;

  // The params section is present exactly when the index was calibrated (or Q8-only): the
  // CODE section tells. Peek at the next tag.
  long here = std::ftell(f);
  std::uint32_t next_tag = 0;
  if (!r.Raw(&next_tag, 4)) return r.Fail("truncated after OPTS");
  std::fseek(f, here, SEEK_SET);
  if (next_tag == kParm) {
    Int8Params p;
    std::uint8_t scheme = 0, clip = 0;
    p.offset.resize(dim);
    p.scale.resize(dim);
    s = r.Open(kParm, "PARM");
    if (s.ok()) s = r.ChunkPod(&p.version);
    if (s.ok()) s = r.ChunkPod(&scheme);
    if (s.ok()) s = r.ChunkPod(&clip);
    if (s.ok()) s = r.ChunkPod(&p.sample_dot_error);
    if (s.ok()) s = r.ChunkPod(&p.sample_clip_rate);
    if (s.ok()) s = r.Chunk(p.offset.data(), dim * 4);
    if (s.ok()) s = r.Chunk(p.scale.data(), dim * 4);
    if (s.ok()) s = r.Close();
    if (!s.ok()) return s;
    if (scheme > 2 || clip > 1 || !AllFinite(p.offset.data(), dim) || !AllFinite(p.scale.data(), dim)) {
      return r.Fail("int8 params out of range");
    }
    for (float sc : p.scale) {
      if (!(sc > 0)) return r.Fail("int8 scale not positive");
    }
    p.scheme = static_cast<Int8Scheme>(scheme);
    p.clip = static_cast<ClipMethod>(clip);
    impl.space = impl.NewSpace(std::move(p));
  } else if (!o.calibrate) {
    return r.Fail("a Q8-only index without params");
  }

  s = impl.floats.Reserve(std::max<std::uint32_t>(n, 1));
  if (s.ok()) s = impl.nodes.Reserve(n);
  if (s.ok()) s = impl.links0.Reserve(n);
  if (s.ok() && impl.space) s = impl.space->codes->Reserve(n);
  if (s.ok() && impl.space && impl.space->bits) s = impl.space->bits->Reserve(n);
  if (!s.ok()) return s;

  s = r.Open(kNode, "NODE");
  if (!s.ok()) return s;
  if (r.left() != std::uint64_t{n} * sizeof(SavedNode)) return r.Fail("NODE size does not match the node count");
  std::uint64_t upper_expected = 0;
  std::size_t tombstones = 0;
  for (std::uint32_t id = 0; id < n; ++id) {
    SavedNode sn{};
    s = r.ChunkPod(&sn);
    if (!s.ok()) return s;
    if (sn.level < 0 || sn.level > kMaxLevel || (sn.flags & ~(kReady | kDeleted)) != 0) {
      return r.Fail("node record out of range");
    }
    NodeRecord* rec = impl.Node(id);
    rec->label = sn.label;
    rec->level = sn.level;
    rec->flags = sn.flags;
    rec->upper = nullptr;
    impl.count.store(id + 1);  // so the destructor frees what was allocated on failure
    if (sn.level > 0) {
      rec->upper = new std::uint32_t[static_cast<std::size_t>(sn.level) * (1 + impl.M)]();
      upper_expected += static_cast<std::uint64_t>(sn.level) * (1 + impl.M) * 4;
    }
    if ((sn.flags & (kReady | kDeleted)) == kReady) {
      if (!impl.label_to_id.emplace(sn.label, id).second) return r.Fail("a label appears twice");
    } else {
      ++tombstones;
    }
  }
  s = r.Close();
  if (!s.ok()) return s;
  impl.tombstones.store(tombstones);

  auto check_links = [&](const std::uint32_t* l, std::size_t cap) {
    if (l[0] > cap) return false;
    for (std::uint32_t j = 0; j < l[0]; ++j) {
      if (l[1 + j] >= n) return false;
    }
    return true;
  };
  s = r.Open(kLnk0, "LNK0");
  if (!s.ok()) return s;
  if (r.left() != std::uint64_t{n} * impl.links0.row_bytes()) return r.Fail("LNK0 size does not match");
  for (std::uint32_t id = 0; id < n; ++id) {
    s = r.Chunk(impl.links0.Row(id), impl.links0.row_bytes());
    if (!s.ok()) return s;
    if (!check_links(impl.links0.RowAs<std::uint32_t>(id), impl.M0)) return r.Fail("level-0 link out of range");
  }
  s = r.Close();
  if (!s.ok()) return s;

  s = r.Open(kUppr, "UPPR");
  if (!s.ok()) return s;
  if (r.left() != upper_expected) return r.Fail("UPPR size does not match the node levels");
  for (std::uint32_t id = 0; id < n; ++id) {
    NodeRecord* rec = impl.Node(id);
    for (int l = 1; l <= rec->level; ++l) {
      std::uint32_t* links = impl.Links(id, l);
      s = r.Chunk(links, (1 + impl.M) * 4);
      if (!s.ok()) return s;
      if (!check_links(links, impl.M)) return r.Fail("upper link out of range");
      for (std::uint32_t j = 0; j < links[0]; ++j) {
        if (impl.Node(links[1 + j])->level < l) return r.Fail("upper link to a node below its level");
      }
    }
  }
  s = r.Close();
  if (!s.ok()) return s;

  if (impl.space) {
    s = r.Open(kCode, "CODE");
    if (!s.ok()) return s;
    if (r.left() != std::uint64_t{n} * impl.code_row) return r.Fail("CODE size does not match");
    const std::int64_t max_sum = 127 * static_cast<std::int64_t>(dim);
    for (std::uint32_t id = 0; id < n; ++id) {
      s = r.Chunk(impl.space->codes->Row(id), impl.code_row);
      if (!s.ok()) return s;
      // The search kernels trust these: a sum out of range would overflow int32 arithmetic.
      const auto* meta = impl.space->codes->RowAs<StoredMeta>(id);
      const auto* codes = reinterpret_cast<const std::int8_t*>(impl.space->codes->Row(id) + sizeof(StoredMeta));
      std::int64_t sum = 0;
      for (std::size_t d = 0; d < dim; ++d) sum += codes[d];
      if (meta->sum != sum || sum > max_sum || sum < -max_sum || !std::isfinite(meta->alpha) ||
          !(meta->alpha > 0) || !std::isfinite(meta->norm2) || meta->norm2 < 0) {
        return r.Fail("code metadata out of range");
      }
    }
    s = r.Close();
    if (!s.ok()) return s;
    if (impl.space->bits) {
      const std::size_t row = BinaryWords(dim) * 8;
      s = r.Open(kBits, "BITS");
      if (!s.ok()) return s;
      if (r.left() != std::uint64_t{n} * row) return r.Fail("BITS size does not match");
      for (std::uint32_t id = 0; id < n; ++id) {
        s = r.Chunk(impl.space->bits->Row(id), row);
        if (!s.ok()) return s;
      }
      s = r.Close();
      if (!s.ok()) return s;
    }
  }
  s = r.Open(kOrig, "ORIG");
  if (!s.ok()) return s;
  if (r.left() != std::uint64_t{n} * dim * 4) return r.Fail("ORIG size does not match");
  for (std::uint32_t id = 0; id < n; ++id) {
    s = r.Chunk(impl.floats.Row(id), dim * 4);
    if (!s.ok()) return s;
    if (!AllFinite(impl.Float(id), dim)) return r.Fail("an original vector is not finite");
  }
  s = r.Close();
  if (!s.ok()) return s;
  s = r.Open(kEnd, "END");
  if (s.ok()) s = r.Close();
  if (!s.ok()) return s;

  if (n > 0 && impl.space && so.entry == kNone) return r.Fail("a graph without an entry point");
  if (impl.space && n > 0 && impl.Node(so.entry)->level != so.max_level) return r.Fail("entry point level mismatch");
  impl.entry.store(impl.space ? so.entry : kNone);
  impl.max_level.store(impl.space ? so.max_level : -1);
  impl.live_at_calibration = so.live_at_calibration;

  if (o.background_maintenance) {
    HnswIndex* self = index.get();
    index->state_->maintenance =
        std::make_unique<Maintenance>([self](bool re, bool c) { self->Maintain(re, c); });
  }
  return index;
}

}  // namespace semcached::vector
