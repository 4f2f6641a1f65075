// JSON Web Keys for the appliance's public keys, and their RFC 7638 thumbprints.
#pragma once

#include <string>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"

namespace ijazat::hsm {

// RFC 7638 thumbprint of a P-256 key given as an uncompressed point (0x04||X||Y).
Result<std::string> Es256Thumbprint(ByteView point);
// RFC 7638 thumbprint of an Ed25519 key (32 bytes).
Result<std::string> Ed25519Thumbprint(ByteView key);

// The JWK JSON object of a P-256 signing key: kty, crv, x, y, kid, alg "ES256", use "sig".
Result<std::string> Es256Jwk(ByteView point);
// The JWK JSON object of an Ed25519 key: kty "OKP", crv, x, kid, alg "EdDSA", use "sig".
Result<std::string> Ed25519Jwk(ByteView key);

// {"keys":[...]} from JWK objects.
std::string JwksDocument(const std::vector<std::string>& jwks);

// Verifies a raw r||s ES256 signature of `message` with OpenSSL (outside the HSM).
bool VerifyEs256(ByteView point, ByteView message, ByteView signature);
// Verifies an Ed25519 signature of `message` with OpenSSL.
bool VerifyEd25519(ByteView key, ByteView message, ByteView signature);

}  // namespace ijazat::hsm
