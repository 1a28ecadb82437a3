// Drift: has the traffic a cache sees changed under it?
//
// A threshold chosen (or learnt) on last week's questions holds only while the questions look
// like last week's. Lookups are cut into windows of `window` lookups; when one closes, its
// best similarities (what each lookup's nearest entry scored, exact hits at 1) are compared
// with the previous `reference_windows` windows pooled, by a two-sample Kolmogorov-Smirnov
// test, and its hit rate by a two-proportion z-test. A shift is significant when the test's
// p-value is under `alpha` and the effect is at least `min_effect` (the KS statistic D, or the
// difference of hit rates): with thousands of lookups a test alone flags differences too small
// to matter. The verdict stands until the next window closes.
// Must not: act on a shift (callers log it, set gauges, reset statistics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

namespace semcached::cache {

struct DriftOptions {
  std::size_t window = 1000;
  std::size_t reference_windows = 5;
  double alpha = 0.001;
  double min_similarity_effect = 0.10;  // KS statistic D
  double min_hit_rate_effect = 0.05;    // absolute difference of hit rates
};

struct DriftTest {
  double statistic = 0;  // KS D, or the difference of hit rates (window minus reference)
  double p_value = 1;
  bool shifted = false;
};

struct DriftReport {
  std::uint64_t windows = 0;  // closed so far
  bool compared = false;      // the last window had a reference to compare with
  DriftTest similarity, hit_rate;
  double window_hit_rate = 0, reference_hit_rate = 0;
};

// The two-sample Kolmogorov-Smirnov statistic D of two samples, sorted in place, and its
// asymptotic p-value (the Kolmogorov distribution, with Stephens' small-sample correction).
DriftTest KolmogorovSmirnov(std::vector<float>& a, std::vector<float>& b);
// A two-sided two-proportion z-test of hits_a/n_a against hits_b/n_b (pooled variance).
DriftTest TwoProportions(std::size_t hits_a, std::size_t n_a, std::size_t hits_b, std::size_t n_b);

class DriftMonitor {
 public:
  explicit DriftMonitor(DriftOptions options = {}) : options_(options) {}
  // One lookup: its best similarity (negative: nothing was found), and whether it hit. True
  // when it closed a window whose comparison shows a shift (the caller may log it).
  bool Record(float best_similarity, bool hit);
  DriftReport Report() const;
  void Reset();

 private:
  struct Window {
    std::vector<float> similarities;  // of the lookups that found something
    std::size_t lookups = 0, hits = 0;
  };
  bool Close();  // mu_ held

  DriftOptions options_;
  mutable std::mutex mu_;
  Window open_;
  std::deque<Window> closed_;  // the reference, newest last
  DriftReport report_;
};

}  // namespace semcached::cache
