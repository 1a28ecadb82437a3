#include "otel/metrics_exporter.h"

#include <algorithm>
#include <chrono>

namespace semcached::otel {

std::uint64_t UnixNanoNow() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

MetricsExporter::MetricsExporter(MetricsExporterOptions options, Collect collect,
                                 prometheus::Registry& registry)
    : options_(std::move(options)),
      collect_(std::move(collect)),
      sender_("metrics", options_.sender, registry) {
  thread_ = std::thread([this] { Run(); });
}

MetricsExporter::~MetricsExporter() { Stop(0); }

void MetricsExporter::Stop(int flush_ms) {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  ExportOnce();
  sender_.Stop(flush_ms);
}

void MetricsExporter::ExportOnce() {
  const auto request = ToOtlp(collect_(), options_.resource, options_.version,
                              options_.start_unix_nano, UnixNanoNow());
  sender_.Enqueue(request.SerializeAsString());
}

void MetricsExporter::Run() {
  const auto interval = std::chrono::milliseconds(std::max(1, options_.export_interval_ms));
  auto next = std::chrono::steady_clock::now() + interval;
  std::unique_lock lock(mu_);
  while (!wake_.wait_until(lock, next, [this] { return stopping_; })) {
    lock.unlock();
    ExportOnce();
    lock.lock();
    next += interval;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now + interval;  // a slow collect skips ticks, never bunches them
  }
}

}  // namespace semcached::otel
