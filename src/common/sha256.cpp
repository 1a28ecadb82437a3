#include "common/sha256.h"

#include "common/hash.h"

#include <openssl/evp.h>

namespace semcached {

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest digest{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr);
  return digest;
}

std::string Sha256Hex(std::string_view data) {
  const Sha256Digest digest = Sha256(data);
  return LowerHex(digest.data(), digest.size());
}

}  // namespace semcached
