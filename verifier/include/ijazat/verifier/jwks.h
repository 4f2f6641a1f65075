// The appliance's published public keys (a JWKS), parsed and checked once, then used to verify.
//
// Only EC P-256 signing keys are accepted, and a document is refused as a whole (reason
// "jwks_invalid", code kInvalidArgument) when any key in it:
//   - is not {"kty":"EC","crv":"P-256"}, or has "use" other than "sig" or "alg" other than "ES256";
//   - has a private part "d";
//   - has x or y that is not the base64url of exactly 32 bytes, or a point not on the curve;
//   - has no "kid", a "kid" that is not the key's RFC 7638 thumbprint, or a repeated "kid".
// The document itself must be a JSON object {"keys":[...]} of at most kMaxJwksSize bytes and
// kMaxJwksKeys keys, without duplicate member names.
//
// Thread safety: a Jwks is immutable; copies share the parsed keys. Any number of threads may
// verify with one Jwks (or its copies) at once.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/common/result.h"

namespace ijazat::verifier {

inline constexpr std::size_t kMaxJwksSize = std::size_t{256} * 1024;
inline constexpr std::size_t kMaxJwksKeys = 64;

namespace internal {
struct JwksAccess;
}

class Jwks {
 public:
  static Result<Jwks> Parse(std::string_view json);

  // An empty set: every token fails with "unknown_kid".
  Jwks();

  bool Contains(std::string_view kid) const;
  // The key ids, sorted.
  std::vector<std::string> Kids() const;
  std::size_t size() const;

  class Impl;

 private:
  friend struct internal::JwksAccess;
  explicit Jwks(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace ijazat::verifier
