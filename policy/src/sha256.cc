#include "sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace ijazat::policy::internal {

Bytes Sha256(ByteView data) {
  Bytes digest(32);
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    std::abort();
  }
  return digest;
}

}  // namespace ijazat::policy::internal
