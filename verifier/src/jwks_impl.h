// The inside of a Jwks, shared by the verifier.
#pragma once

#include <map>
#include <string>

#include "es256.h"
#include "ijazat/verifier/jwks.h"

namespace ijazat::verifier {

class Jwks::Impl {
 public:
  std::map<std::string, internal::PkeyPtr, std::less<>> keys;
};

namespace internal {

struct JwksAccess {
  // The key with `kid`, or nullptr.
  static EVP_PKEY* Find(const Jwks& jwks, std::string_view kid) {
    const auto it = jwks.impl_->keys.find(kid);
    return it == jwks.impl_->keys.end() ? nullptr : it->second.get();
  }
};

}  // namespace internal
}  // namespace ijazat::verifier
