// SHA-256 through OpenSSL: exact-tier keys, the proxy's request scope, hashed API keys.
// Must not: be used where a keyed MAC is needed (it is a plain digest).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace semcached {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);
// Lower-case hex of the digest.
std::string Sha256Hex(std::string_view data);

}  // namespace semcached
