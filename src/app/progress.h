// The progress bar of the commands that work through many items (reembed, tune), on stderr.
#pragma once

#include <cstddef>
#include <functional>

namespace semcached::app {

// Draws "[#####     ]  50% 500/1000 <unit>, 120/s" over the previous one; a newline when final.
void ShowProgress(const char* unit, std::size_t done, std::size_t total, double seconds,
                  bool final);

// A callback for (done, total) that redraws at most every 100 ms, and at the end; empty when
// not enabled.
std::function<void(std::size_t done, std::size_t total)> ProgressBar(bool enabled,
                                                                     const char* unit);

}  // namespace semcached::app
