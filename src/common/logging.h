// Process-wide logging on spdlog: text lines for people, JSON lines for log pipelines.
//
// Call ConfigureLogging once at start-up; afterwards use spdlog's free functions
// (spdlog::info, ...). Logs go to stderr so stdout stays free for command output.
#pragma once

#include <string>

#include "common/status.h"

namespace semcached {

// level: trace|debug|info|warn|error|critical|off; format: text|json.
Status ConfigureLogging(const std::string& level, const std::string& format);

}  // namespace semcached
