#include "vector/hnsw_index.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "common/enum_names.h"
#include "vector/hnsw_graph.h"
#include "vector/hnsw_maintenance.h"

namespace semcached::vector {

const char* MetricName(Metric m) {
  static constexpr EnumName<Metric> kNames[] = {
      {Metric::kCosine, "cosine"}, {Metric::kInnerProduct, "ip"}, {Metric::kL2, "l2"}};
  return NameOf(kNames, m);
}

float HnswIndex::Similarity(Metric metric, float distance) {
  switch (metric) {
    case Metric::kCosine: return 1.f - distance;
    case Metric::kInnerProduct: return -distance;
    case Metric::kL2: return -distance;
  }
  return -distance;
}

std::unique_ptr<Impl> NewImpl(const HnswOptions& o, std::uint64_t generation) {
  HnswOptions copy = o;
  if (!copy.originals_path.empty()) {
    std::string suffix = std::to_string(generation);
    copy.originals_path.append(".").append(suffix);
  }
  return std::make_unique<Impl>(copy);
}

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

}  // namespace

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
    out.calibrate_now =
        impl.opt.calibrate &&
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
      if (it == impl.label_to_id.end())
        return NotFound("no vector with label " + std::to_string(label));
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
  if (it == impl.label_to_id.end())
    return NotFound("no vector with label " + std::to_string(label));
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
  const std::size_t wanted =
      std::max<std::size_t>(p.k * std::max<std::size_t>(p.oversample, 1), p.k);
  if (space == nullptr || p.precision == Precision::kExact) {
    found = impl.ExactScan(qv.data(), qnorm2, p.k, accept);
  } else if (p.precision == Precision::kCascade) {
    if (!space->bits)
      return InvalidArgument("cascade search needs an index built with binary_codes");
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
      const float kth = found.empty() ? 0 : found[std::min(found.size(), p.k) - 1].first;
      const float upto = std::min(p.rescore_max_distance, kth + p.rescore_band);
      for (auto& f : found) {
        if (f.first <= upto) {
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

IndexStats HnswIndex::Stats() const {
  std::shared_lock<std::shared_mutex> swap(state_->swap_mu);
  const Impl& impl = *state_->impl;
  std::shared_lock<std::shared_mutex> state(impl.state_mu);
  IndexStats s;
  {
    std::shared_lock<std::shared_mutex> lock(impl.label_mu);
    s.live = impl.label_to_id.size();
    s.graph_bytes +=
        impl.label_to_id.bucket_count() * (sizeof(decltype(impl.label_to_id)::value_type) + 1);
  }
  s.nodes = impl.count.load();
  s.tombstones = impl.tombstones.load();
  s.calibrated = impl.space != nullptr;
  if (impl.space) {
    s.params_version = impl.space->params.version;
    s.scheme = impl.space->params.scheme;
    s.code_bytes =
        s.nodes * impl.code_row + (impl.space->bits ? s.nodes * BinaryWords(impl.dim) * 8 : 0);
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
