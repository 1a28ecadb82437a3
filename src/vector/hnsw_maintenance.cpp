#include "vector/hnsw_maintenance.h"

#include <algorithm>
#include <cstdio>

namespace semcached::vector {
namespace {

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

}  // namespace

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

}  // namespace semcached::vector
