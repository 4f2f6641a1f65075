#include "ijazat/hsm/jwk.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include <memory>

namespace ijazat::hsm {
namespace {

constexpr std::size_t kP256PointSize = 65;
constexpr std::size_t kEd25519KeySize = 32;

Error BadKey(const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, what, "public_key_invalid");
}

std::string Sha256Base64Url(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return Base64UrlEncode(ByteView(digest, sizeof digest));
}

Status CheckPoint(ByteView point) {
  if (point.size() != kP256PointSize || point[0] != 0x04) {
    return BadKey("a P-256 public key must be an uncompressed point of 65 bytes");
  }
  return OkStatus();
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

PkeyPtr P256FromPoint(ByteView point) {
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  if (builder == nullptr) return nullptr;
  OSSL_PARAM_BLD_push_utf8_string(builder, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(builder, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(builder);
  OSSL_PARAM_BLD_free(builder);
  if (params == nullptr) return nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return PkeyPtr(key);
}

bool VerifyWith(EVP_PKEY* key, const EVP_MD* digest, ByteView message, ByteView signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return false;
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, digest, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, signature.data(), signature.size(), message.data(),
                             message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

}  // namespace

Result<std::string> Es256Thumbprint(ByteView point) {
  IJAZAT_RETURN_IF_ERROR(CheckPoint(point));
  // RFC 7638 §3.2: the required members in lexicographic order, no white space.
  const std::string canonical = R"({"crv":"P-256","kty":"EC","x":")" +
                                Base64UrlEncode(point.subspan(1, 32)) + R"(","y":")" +
                                Base64UrlEncode(point.subspan(33, 32)) + R"("})";
  return Sha256Base64Url(canonical);
}

Result<std::string> Ed25519Thumbprint(ByteView key) {
  if (key.size() != kEd25519KeySize) return BadKey("an Ed25519 public key must be 32 bytes");
  const std::string canonical =
      R"({"crv":"Ed25519","kty":"OKP","x":")" + Base64UrlEncode(key) + R"("})";
  return Sha256Base64Url(canonical);
}

Result<std::string> Es256Jwk(ByteView point) {
  IJAZAT_ASSIGN_OR_RETURN(const std::string kid, Es256Thumbprint(point));
  return R"({"kty":"EC","crv":"P-256","x":")" + Base64UrlEncode(point.subspan(1, 32)) +
         R"(","y":")" + Base64UrlEncode(point.subspan(33, 32)) + R"(","kid":")" + kid +
         R"(","alg":"ES256","use":"sig"})";
}

Result<std::string> Ed25519Jwk(ByteView key) {
  IJAZAT_ASSIGN_OR_RETURN(const std::string kid, Ed25519Thumbprint(key));
  return R"({"kty":"OKP","crv":"Ed25519","x":")" + Base64UrlEncode(key) + R"(","kid":")" + kid +
         R"(","alg":"EdDSA","use":"sig"})";
}

std::string JwksDocument(const std::vector<std::string>& jwks) {
  std::string out = R"({"keys":[)";
  for (std::size_t i = 0; i < jwks.size(); ++i) {
    if (i > 0) out += ',';
    out += jwks[i];
  }
  out += "]}";
  return out;
}

bool VerifyEs256(ByteView point, ByteView message, ByteView signature) {
  if (!CheckPoint(point).ok() || signature.size() != 64) return false;
  PkeyPtr key = P256FromPoint(point);
  if (!key) return false;
  // JWS carries r||s; OpenSSL verifies DER.
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(signature.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(signature.data() + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return false;
  }
  unsigned char* der = nullptr;
  const int der_length = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (der_length <= 0) return false;
  const bool ok = VerifyWith(key.get(), EVP_sha256(), message,
                             ByteView(der, static_cast<std::size_t>(der_length)));
  OPENSSL_free(der);
  return ok;
}

bool VerifyEd25519(ByteView key, ByteView message, ByteView signature) {
  if (key.size() != kEd25519KeySize || signature.size() != 64) return false;
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()));
  if (!pkey) return false;
  return VerifyWith(pkey.get(), nullptr, message, signature);
}

}  // namespace ijazat::hsm
