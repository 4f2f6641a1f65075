#include "es256.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace ijazat::verifier::internal {
namespace {

// The order n of the P-256 group, big-endian.
constexpr std::array<std::uint8_t, 32> kP256Order = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
// The field prime p of P-256, big-endian.
constexpr std::array<std::uint8_t, 32> kP256Prime = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

// 1 <= value <= bound - 1, for 32-byte big-endian numbers. Public values: no constant time.
bool InRange(ByteView value, const std::array<std::uint8_t, 32>& bound, bool allow_zero) {
  if (value.size() != bound.size()) return false;
  if (!allow_zero && std::all_of(value.begin(), value.end(), [](std::uint8_t b) { return b == 0; }))
    return false;
  return std::lexicographical_compare(value.begin(), value.end(), bound.begin(), bound.end());
}

struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};

Error KeyError(const char* message) { return Error(ErrorCode::kInvalidArgument, message); }

}  // namespace

Result<PkeyPtr> P256PublicKey(ByteView x, ByteView y) {
  if (x.size() != kCoordinateSize || y.size() != kCoordinateSize) {
    return KeyError("x and y must be 32 bytes each");
  }
  if (!InRange(x, kP256Prime, true) || !InRange(y, kP256Prime, true)) {
    return KeyError("a coordinate is not below the field prime");
  }
  std::array<std::uint8_t, 1 + 2 * kCoordinateSize> point{};
  point[0] = 0x04;
  std::copy(x.begin(), x.end(), point.begin() + 1);
  std::copy(y.begin(), y.end(), point.begin() + 1 + kCoordinateSize);

  std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter> builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return Error(ErrorCode::kInternal, "OpenSSL cannot build key parameters");
  }
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(builder.get()));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return Error(ErrorCode::kInternal, "OpenSSL cannot import EC keys");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 ||
      raw == nullptr) {
    return KeyError("the point is not on the P-256 curve");
  }
  PkeyPtr key(raw);
  // fromdata decodes the point; the public check also rejects infinity and wrong-order points.
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return KeyError("the point is not on the P-256 curve");
  }
  return key;
}

std::string Es256Thumbprint(std::string_view x_b64, std::string_view y_b64) {
  // RFC 7638 §3.2: the required members in lexicographic order, no white space.
  const std::string canonical = R"({"crv":"P-256","kty":"EC","x":")" + std::string(x_b64) +
                                R"(","y":")" + std::string(y_b64) + R"("})";
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), digest.data());
  return Base64UrlEncode(ByteView(digest.data(), digest.size()));
}

bool VerifyEs256(EVP_PKEY* key, ByteView message, ByteView signature) {
  if (key == nullptr || signature.size() != kEs256SignatureSize) return false;
  const ByteView r = signature.first(kCoordinateSize);
  const ByteView s = signature.last(kCoordinateSize);
  if (!InRange(r, kP256Order, false) || !InRange(s, kP256Order, false)) return false;

  // JWS carries r||s (RFC 7518 §3.4); OpenSSL verifies DER.
  std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(ECDSA_SIG_new());
  if (!sig) return false;
  BIGNUM* r_bn = BN_bin2bn(r.data(), static_cast<int>(r.size()), nullptr);
  BIGNUM* s_bn = BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr);
  if (r_bn == nullptr || s_bn == nullptr || ECDSA_SIG_set0(sig.get(), r_bn, s_bn) != 1) {
    BN_free(r_bn);
    BN_free(s_bn);
    return false;
  }
  unsigned char* der = nullptr;
  const int der_length = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_length <= 0) return false;

  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  const bool ok = ctx &&
                  EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
                  EVP_DigestVerify(ctx.get(), der, static_cast<std::size_t>(der_length),
                                   message.data(), message.size()) == 1;
  OPENSSL_free(der);
  return ok;
}

}  // namespace ijazat::verifier::internal
