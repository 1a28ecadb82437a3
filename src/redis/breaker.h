// Circuit breaker for a backend that can go away (a Redis server).
//
// Why: when Redis is down, every command would otherwise wait for its connect timeout and
// pile up; after `failure_threshold` consecutive failures the breaker opens and callers fail
// at once. After `open_ms` it half-opens: exactly one probe is let through; its success closes
// the breaker, its failure opens it again. Pure logic over a caller-supplied clock, so it is
// tested without sleeping. Not thread-safe: its owner serializes calls.
#pragma once

#include <chrono>
#include <cstdint>

namespace semcached::redis {

enum class BreakerState : std::uint8_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
const char* BreakerStateName(BreakerState s);

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  CircuitBreaker(int failure_threshold, int open_ms)
      : failure_threshold_(failure_threshold < 1 ? 1 : failure_threshold), open_ms_(open_ms) {}

  // The state at `now`; an open breaker whose wait has passed reads as half-open.
  BreakerState State(Clock::time_point now) const {
    if (state_ == BreakerState::kOpen && now >= opened_at_ + std::chrono::milliseconds(open_ms_)) {
      return BreakerState::kHalfOpen;
    }
    return state_;
  }

  // True when an ordinary command may go to the backend now.
  bool AllowsTraffic(Clock::time_point now) const { return State(now) == BreakerState::kClosed; }

  // True once per half-open period: the caller sends its probe.
  bool TakeProbe(Clock::time_point now) {
    if (State(now) != BreakerState::kHalfOpen || probing_) return false;
    state_ = BreakerState::kHalfOpen;
    probing_ = true;
    return true;
  }

  void RecordSuccess() {
    consecutive_failures_ = 0;
    probing_ = false;
    state_ = BreakerState::kClosed;
  }

  // Returns true when this failure opened the breaker.
  bool RecordFailure(Clock::time_point now) {
    ++consecutive_failures_;
    const bool was_probe = probing_;
    probing_ = false;
    if (was_probe ||
        (state_ == BreakerState::kClosed && consecutive_failures_ >= failure_threshold_)) {
      const bool opened = state_ == BreakerState::kClosed;
      state_ = BreakerState::kOpen;
      opened_at_ = now;
      ++times_opened_;
      return opened;
    }
    return false;
  }

  std::uint64_t times_opened() const { return times_opened_; }

 private:
  int failure_threshold_;
  int open_ms_;
  BreakerState state_ = BreakerState::kClosed;
  int consecutive_failures_ = 0;
  bool probing_ = false;
  Clock::time_point opened_at_{};
  std::uint64_t times_opened_ = 0;
};

}  // namespace semcached::redis
