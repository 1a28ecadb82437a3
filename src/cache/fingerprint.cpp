#include "cache/fingerprint.h"

#include <openssl/evp.h>

namespace semcached::cache {
namespace {

void Field(std::string& out, std::string_view s) {
  out += std::to_string(s.size());
  out += ':';
  out.append(s);
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  return out;
}

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
  std::string canon = Canonical(cache_id, normalized_prompt, attributes, extra_scope);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(canon.data(), canon.size(), digest, &len, EVP_sha256(), nullptr);
  ExactDigest out;
  for (int i = 0; i < 8; ++i) {
    out.key = (out.key << 8) | digest[i];
    out.check = (out.check << 8) | digest[8 + i];
  }
  return out;
}

}  // namespace semcached::cache
