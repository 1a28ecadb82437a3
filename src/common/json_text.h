// JSON string text written by hand on hot paths (log lines, the LangCache search response),
// where building a JSON document first would cost more than the response itself.
// Must not: validate UTF-8 (callers pass text already checked; bytes >= 0x80 pass through).
#pragma once

#include <string>
#include <string_view>

namespace semcached {

// Escapes text for a JSON string body (no surrounding quotes).
std::string JsonEscape(std::string_view text);
void AppendJsonEscaped(std::string& out, std::string_view text);

}  // namespace semcached
