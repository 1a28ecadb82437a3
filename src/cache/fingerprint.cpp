#include "cache/fingerprint.h"

#include "common/sha256.h"

namespace semcached::cache {
namespace {

void Field(std::string& out, std::string_view s) {
  out += std::to_string(s.size());
  out += ':';
  out.append(s);
}

}  // namespace

namespace {

std::string Canonical(std::string_view cache_id, std::string_view normalized_prompt,
                      const std::map<std::string, std::string>& attributes,
                      std::string_view extra_scope) {
  std::string canon = "semcached-exact-v1;";
  Field(canon, cache_id);
  Field(canon, normalized_prompt);
  canon += std::to_string(attributes.size());
  canon += ';';
  for (const auto& [k, v] : attributes) {
    Field(canon, k);
    Field(canon, v);
  }
  Field(canon, extra_scope);
  return canon;
}

}  // namespace

std::string ExactKey(std::string_view cache_id, std::string_view normalized_prompt,
                     const std::map<std::string, std::string>& attributes,
                     std::string_view extra_scope) {
  return Sha256Hex(Canonical(cache_id, normalized_prompt, attributes, extra_scope));
}

ExactDigest ExactKey128(std::string_view cache_id, std::string_view normalized_prompt,
                        const std::map<std::string, std::string>& attributes,
                        std::string_view extra_scope) {
  const Sha256Digest digest =
      Sha256(Canonical(cache_id, normalized_prompt, attributes, extra_scope));
  ExactDigest out;
  for (int i = 0; i < 8; ++i) {
    out.key = (out.key << 8) | digest[i];
    out.check = (out.check << 8) | digest[8 + i];
  }
  return out;
}

}  // namespace semcached::cache
