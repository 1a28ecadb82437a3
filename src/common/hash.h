// Small non-cryptographic hashes shared by the embedder, LSH and MinHash, and hex of bytes.
// Deterministic across runs and machines (they feed persisted data); not for anything adversarial.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace semcached {

// The 64-bit finalizer of MurmurHash3: spreads every input bit over the output.
inline std::uint64_t Mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDULL;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ULL;
  x ^= x >> 33;
  return x;
}

// FNV-1a over bytes, starting from `seed` mixed into the offset basis.
inline std::uint64_t Fnv1a64(std::string_view s, std::uint64_t seed = 0) {
  std::uint64_t h = 1469598103934665603ULL ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Lower-case hex of bytes (digests, trace and span ids).
inline std::string LowerHex(const std::uint8_t* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

}  // namespace semcached
