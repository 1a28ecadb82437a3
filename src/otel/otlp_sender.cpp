#include "otel/otlp_sender.h"

#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>

namespace semcached::otel {

OtlpSender::OtlpSender(std::string signal, SenderOptions options, prometheus::Registry& registry)
    : signal_(std::move(signal)), options_(std::move(options)) {
  auto& exports = prometheus::BuildCounter()
                      .Name("semcached_otel_exports_total")
                      .Help(
                          "OTLP export attempts, by signal (metrics, traces) and result (ok, "
                          "failed).")
                      .Register(registry);
  ok_ = &exports.Add({{"signal", signal_}, {"result", "ok"}});
  failed_ = &exports.Add({{"signal", signal_}, {"result", "failed"}});
  dropped_ = &prometheus::BuildCounter()
                  .Name("semcached_otel_dropped_total")
                  .Help(
                      "OTLP batches lost: the queue was full, the collector refused them, or "
                      "every attempt failed.")
                  .Register(registry)
                  .Add({{"signal", signal_}});
  queued_ = &prometheus::BuildGauge()
                 .Name("semcached_otel_queue")
                 .Help("OTLP batches waiting to be sent.")
                 .Register(registry)
                 .Add({{"signal", signal_}});
  thread_ = std::thread([this] { Run(); });
}

OtlpSender::~OtlpSender() { Stop(0); }

void OtlpSender::Enqueue(std::string body) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (queue_.size() >= std::max<std::size_t>(1, options_.max_queue)) {
      queue_.pop_front();
      dropped_->Increment();
    }
    queue_.push_back(std::move(body));
    queued_->Set(static_cast<double>(queue_.size()));
  }
  wake_.notify_one();
}

void OtlpSender::Stop(int flush_ms) {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    flush_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(flush_ms);
  }
  wake_.notify_all();
  thread_.join();
}

bool OtlpSender::Send(const std::string& body, int timeout_ms, bool* retryable) {
  HttpRequest req;
  req.method = "POST";
  req.url = options_.url;
  req.headers = options_.headers;
  req.headers.push_back("Content-Type: application/x-protobuf");
  req.headers.push_back("Expect:");  // no 100-continue round trip before a large batch
  req.body = body;
  req.timeout_ms = std::max(1, timeout_ms);
  req.connect_timeout_ms = std::min(req.timeout_ms, 5'000);
  auto r = http_.Perform(req);
  if (!r.ok()) {
    *retryable = true;
    failed_->Increment();
    spdlog::debug("otlp {}: {}", signal_, r.status().message());
    return false;
  }
  if (r->status >= 200 && r->status < 300) {
    ok_->Increment();
    return true;
  }
  failed_->Increment();
  *retryable = r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504;
  spdlog::debug("otlp {}: the collector answered {}", signal_, r->status);
  return false;
}

void OtlpSender::Run() {
  std::mt19937_64 rng(std::random_device{}());
  std::unique_lock lock(mu_);
  bool warned = false;
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    std::string body = std::move(queue_.front());
    queue_.pop_front();
    queued_->Set(static_cast<double>(queue_.size()));
    int backoff_ms = options_.initial_backoff_ms;
    for (int attempt = 1;; ++attempt) {
      int timeout_ms = options_.timeout_ms;
      if (stopping_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              flush_deadline_ - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) {
          dropped_->Increment();
          break;
        }
        timeout_ms = std::min<int>(timeout_ms, static_cast<int>(left));
      }
      lock.unlock();
      bool retryable = false;
      const bool sent = Send(body, timeout_ms, &retryable);
      lock.lock();
      if (sent) {
        if (warned) spdlog::info("otlp {}: exporting again to {}", signal_, options_.url);
        warned = false;
        break;
      }
      if (!warned) {
        spdlog::warn("otlp {}: export to {} failed; retrying with backoff", signal_, options_.url);
        warned = true;
      }
      if (!retryable || stopping_ || attempt >= options_.max_attempts) {
        dropped_->Increment();
        break;
      }
      // Full jitter: anywhere up to the current backoff, so instances do not retry in step.
      const int wait_ms = std::uniform_int_distribution<int>(backoff_ms / 2, backoff_ms)(rng);
      wake_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stopping_; });
      backoff_ms = std::min(backoff_ms * 2, options_.max_backoff_ms);
    }
  }
}

}  // namespace semcached::otel
