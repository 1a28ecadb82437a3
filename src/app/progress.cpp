#include "app/progress.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace semcached::app {

void ShowProgress(const char* unit, std::size_t done, std::size_t total, double seconds,
                  bool final) {
  const double share = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int filled = static_cast<int>(share * 30);
  std::fprintf(stderr, "\r  [%s%s] %3.0f%% %zu/%zu %s, %.0f/s",
               std::string(static_cast<std::size_t>(filled), '#').c_str(),
               std::string(static_cast<std::size_t>(30 - filled), ' ').c_str(), share * 100, done,
               total, unit, seconds > 0 ? static_cast<double>(done) / seconds : 0.0);
  if (final) std::fprintf(stderr, "\n");
}

std::function<void(std::size_t, std::size_t)> ProgressBar(bool enabled, const char* unit) {
  if (!enabled) return {};
  const auto start = std::chrono::steady_clock::now();
  auto last = std::make_shared<std::chrono::steady_clock::time_point>(start);
  return [start, last, unit](std::size_t done, std::size_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done != total && now - *last < std::chrono::milliseconds(100)) return;
    *last = now;
    ShowProgress(unit, done, total, std::chrono::duration<double>(now - start).count(),
                 done == total);
  };
}

}  // namespace semcached::app
