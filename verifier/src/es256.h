// ES256 with OpenSSL: P-256 public keys from JWK coordinates, RFC 7638 thumbprints, and
// verification of raw r||s signatures.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"

namespace ijazat::verifier::internal {

inline constexpr std::size_t kCoordinateSize = 32;
inline constexpr std::size_t kEs256SignatureSize = 64;

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// A P-256 public key from 32-byte big-endian coordinates; fails (a message, no reason) when
// the point is not on the curve or a coordinate is not below p.
Result<PkeyPtr> P256PublicKey(ByteView x, ByteView y);

// RFC 7638 thumbprint of {"crv":"P-256","kty":"EC","x":x_b64,"y":y_b64}.
std::string Es256Thumbprint(std::string_view x_b64, std::string_view y_b64);

// True when `signature` is 64 bytes r||s with r and s in [1, n-1] and verifies `message`
// under SHA-256 with `key`.
bool VerifyEs256(EVP_PKEY* key, ByteView message, ByteView signature);

}  // namespace ijazat::verifier::internal
