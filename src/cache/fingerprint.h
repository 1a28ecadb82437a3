// Exact-tier keys: SHA-256 (common/sha256.h) over a canonical encoding of everything that
// must match exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace semcached::cache {

// The exact key of a normalized prompt within its scope: the cache, the attributes (in key
// order) and any extra scope the caller adds (a proxy adds model and context). Fields are
// length-prefixed, so no two different scopes can encode to the same bytes.
std::string ExactKey(std::string_view cache_id, std::string_view normalized_prompt,
                     const std::map<std::string, std::string>& attributes,
                     std::string_view extra_scope = {});

// The first 128 bits of ExactKey's digest, for in-memory maps: `key` indexes, `check`
// confirms. Two different scopes share both halves with probability 2^-128 per pair, so
// a match on both is taken as the same prompt without keeping the prompt's normalized text.
struct ExactDigest {
  std::uint64_t key = 0;
  std::uint64_t check = 0;
};
ExactDigest ExactKey128(std::string_view cache_id, std::string_view normalized_prompt,
                        const std::map<std::string, std::string>& attributes,
                        std::string_view extra_scope = {});

}  // namespace semcached::cache
