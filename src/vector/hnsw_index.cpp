#include "vector/hnsw_index.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <queue>

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
    const std::uint32_t n = count.load();
    for (std::uint32_t i = 0; i < n; ++i) delete[] Node(i)->upper;
  }

  // ---- storage access ----
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
    std::int32_t kd = k.dot_u8i8(q.code.biased.data(), codes, dim);
    float dot = q.code.offset_dot +
                meta->alpha * q.code.w_scale * static_cast<float>(kd - 128 * meta->sum);
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
      k.dot_u8i8_many(q.code.biased.data(), ptrs, m, dim, dots);
      for (std::size_t i = 0; i < m; ++i) {
        const auto* meta = reinterpret_cast<const StoredMeta*>(s.codes->Row(ids[base + i]));
        float dot = q.code.offset_dot +
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
    std::lock_guard<std::mutex> lock(Lock(id));
    const std::uint32_t* l = Links(id, level);
    std::size_t n = l[0];
    std::copy(l + 1, l + 1 + n, out);
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
        if (!visited.TestAndSet(buf[i])) fresh[m++] = buf[i];
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
  std::vector<std::uint32_t> SelectNeighbors(const CodeSpace& s, std::vector<DistId> cands,
                                             std::size_t m) const {
    std::sort(cands.begin(), cands.end());
    std::vector<std::uint32_t> kept;
    if (cands.size() <= m) {
      for (auto& c : cands) kept.push_back(c.second);
      return kept;
    }
    thread_local std::vector<float> decoded;
    decoded.resize(dim);
    Query cq;
    for (const auto& [dist, id] : cands) {
      if (kept.size() >= m) break;
      const std::uint8_t* row = s.codes->Row(id);
      const auto* meta = reinterpret_cast<const StoredMeta*>(row);
      CodeMeta cm;
      cm.alpha = meta->alpha;
      Decode(s.params, reinterpret_cast<const std::int8_t*>(row + sizeof(StoredMeta)), cm,
             decoded.data());
      PrepareQuery(&s, decoded.data(), &cq);
      bool good = true;
      for (std::uint32_t kid : kept) {
        if (CodeDistance(s, cq, kid) < dist) {
          good = false;
          break;
        }
      }
      if (good) kept.push_back(id);
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
      l[1 + n] = id;
      l[0] = static_cast<std::uint32_t>(n + 1);
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
    auto kept = SelectNeighbors(s, std::move(cands), cap);
    l[0] = static_cast<std::uint32_t>(kept.size());
    std::copy(kept.begin(), kept.end(), l + 1);
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
      auto kept = SelectNeighbors(s, std::move(cands), M);
      {
        std::lock_guard<std::mutex> lock(Lock(id));
        std::uint32_t* own = Links(id, l);
        own[0] = static_cast<std::uint32_t>(kept.size());
        std::copy(kept.begin(), kept.end(), own + 1);
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
    const std::uint32_t n = count.load(std::memory_order_acquire);
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
  std::unordered_map<std::uint64_t, std::uint32_t> label_to_id;
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
  const std::uint32_t n = impl.count.load();
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
  const std::uint32_t n = impl.count.load();
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
    const std::uint32_t n0 = impl.count.load();
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
  const std::uint32_t n1 = impl.count.load();
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
    const std::uint32_t n = impl.count.load(std::memory_order_acquire);
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
    MaxHeap heap = impl.SearchLevel(*space, q, ep, ep_dist, ef, 0, accept);
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
      for (auto& f : found) f.first = impl.FloatDistance(qv.data(), qnorm2, f.second);
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
    s.graph_bytes += impl.label_to_id.bucket_count() * sizeof(void*) +
                     impl.label_to_id.size() * (sizeof(std::uint64_t) + sizeof(std::uint32_t) + 2 * sizeof(void*));
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
  for (std::uint32_t id = 0; id < s.nodes; ++id) {
    int level = impl.Node(id)->level;
    if (level > 0) s.graph_bytes += static_cast<std::size_t>(level) * (1 + impl.M) * 4;
  }
  s.original_bytes = s.nodes * impl.dim * sizeof(float);
  s.originals_on_disk = impl.floats.file_backed();
  s.max_level = impl.max_level.load();
  return s;
}

}  // namespace semcached::vector
