#include "ijazat/verifier/jwks.h"

#include <openssl/err.h>

#include <utility>

#include "es256.h"
#include "jwks_impl.h"
#include "strict_json.h"

namespace ijazat::verifier {
namespace {

using nlohmann::json;

Error Invalid(const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, "JWKS: " + message, "jwks_invalid");
}

// The member `name` of a key as a string, or nullptr when absent or not a string.
const std::string* StringMember(const json& key, const char* name) {
  const auto it = key.find(name);
  if (it == key.end() || !it->is_string()) return nullptr;
  return &it->get_ref<const std::string&>();
}

Status AddKey(const json& key, std::size_t index, Jwks::Impl* impl) {
  const std::string where = "key " + std::to_string(index) + ": ";
  if (!key.is_object()) return Invalid(where + "is not an object");
  // A published private key is an operator error that must stop everyone, not be skipped.
  for (const char* private_member : {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}) {
    if (key.contains(private_member)) {
      return Invalid(where + "has a private member \"" + private_member + "\"");
    }
  }
  const std::string* kty = StringMember(key, "kty");
  if (kty == nullptr || *kty != "EC") return Invalid(where + "kty must be \"EC\"");
  const std::string* crv = StringMember(key, "crv");
  if (crv == nullptr || *crv != "P-256") return Invalid(where + "crv must be \"P-256\"");
  if (key.contains("use")) {
    const std::string* use = StringMember(key, "use");
    if (use == nullptr || *use != "sig") return Invalid(where + "use must be \"sig\"");
  }
  if (key.contains("alg")) {
    const std::string* alg = StringMember(key, "alg");
    if (alg == nullptr || *alg != "ES256") return Invalid(where + "alg must be \"ES256\"");
  }
  const std::string* x = StringMember(key, "x");
  const std::string* y = StringMember(key, "y");
  if (x == nullptr || y == nullptr) return Invalid(where + "x and y must be strings");
  const auto x_bytes = Base64UrlDecode(*x);
  const auto y_bytes = Base64UrlDecode(*y);
  if (!x_bytes || !y_bytes || x_bytes->size() != internal::kCoordinateSize ||
      y_bytes->size() != internal::kCoordinateSize) {
    return Invalid(where + "x and y must be base64url of 32 bytes each");
  }
  auto pkey = internal::P256PublicKey(*x_bytes, *y_bytes);
  if (!pkey.ok()) {
    ERR_clear_error();
    return Invalid(where + pkey.error().message());
  }
  const std::string* kid = StringMember(key, "kid");
  if (kid == nullptr) return Invalid(where + "kid is missing");
  if (*kid != internal::Es256Thumbprint(*x, *y)) {
    return Invalid(where + "kid is not the key's RFC 7638 thumbprint");
  }
  if (!impl->keys.emplace(*kid, std::move(pkey).value()).second) {
    return Invalid(where + "kid " + *kid + " appears twice");
  }
  return OkStatus();
}

}  // namespace

Jwks::Jwks() : impl_(std::make_shared<const Impl>()) {}
Jwks::Jwks(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Result<Jwks> Jwks::Parse(std::string_view text) {
  if (text.size() > kMaxJwksSize) {
    return Invalid("larger than " + std::to_string(kMaxJwksSize) + " bytes");
  }
  auto document = internal::ParseStrictObject(text, "the document");
  if (!document.ok()) return Invalid(document.error().message());
  const auto keys = document->find("keys");
  if (keys == document->end() || !keys->is_array()) return Invalid("\"keys\" must be an array");
  if (keys->size() > kMaxJwksKeys) {
    return Invalid("more than " + std::to_string(kMaxJwksKeys) + " keys");
  }
  auto impl = std::make_shared<Impl>();
  for (std::size_t i = 0; i < keys->size(); ++i) {
    IJAZAT_RETURN_IF_ERROR(AddKey((*keys)[i], i, impl.get()));
  }
  return Jwks(std::move(impl));
}

bool Jwks::Contains(std::string_view kid) const {
  return impl_->keys.find(kid) != impl_->keys.end();
}

std::vector<std::string> Jwks::Kids() const {
  std::vector<std::string> kids;
  kids.reserve(impl_->keys.size());
  for (const auto& [kid, key] : impl_->keys) kids.push_back(kid);
  return kids;
}

std::size_t Jwks::size() const { return impl_->keys.size(); }

}  // namespace ijazat::verifier
