// Maintenance of an HnswIndex: the first calibration of int8 codes once enough vectors are
// buffered, recalibration when the data drifts past the learned ranges or outgrows the sample,
// relinking of nodes that were linked with badly clipped codes, and compaction (a fresh graph
// built from the live vectors while writes go on, swapped in at the end). Work runs on a
// background thread per index (Maintenance) or inline when the index has none.
// Must not: block searches for longer than the short exclusive steps (code swap, graph swap).
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "vector/hnsw_graph.h"

namespace semcached::vector {

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

// First calibration: learn params from the buffer, code every vector, build the graph.
Status CalibrateBuffered(Impl& impl);
// New params from a sample of the live vectors; every code rewritten, then swapped in.
Status RecalibrateImpl(Impl& impl);

}  // namespace semcached::vector
