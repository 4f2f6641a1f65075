#include "verifier_test_util.h"

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>

#include "ijazat/common/result.h"

namespace ijazat::verifier::testing {

std::string SoftwareSigner::Kid() const {
  const std::string canonical =
      R"({"crv":"P-256","kty":"EC","x":")" + X() + R"(","y":")" + Y() + R"("})";
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), digest.data());
  return Base64UrlEncode(ByteView(digest.data(), digest.size()));
}

Bytes SoftwareSigner::Sign(std::string_view message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t length = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_.get());
  EVP_DigestSign(ctx, nullptr, &length, AsBytes(message).data(), message.size());
  Bytes der(length);
  EVP_DigestSign(ctx, der.data(), &length, AsBytes(message).data(), message.size());
  EVP_MD_CTX_free(ctx);
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(length));
  Bytes rs(64);
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs.data(), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs.data() + 32, 32);
  ECDSA_SIG_free(sig);
  return rs;
}

std::string SignedConsentToken(const SoftwareSigner& signer, const ConsentTokenClaims& claims) {
  const auto input = ConsentTokenSigningInput(claims, signer.Kid());
  if (!input.ok()) return "signing input failed: " + input.error().message();
  const auto token = AssembleJws(*input, signer.Sign(*input));
  return token.ok() ? *token : "assembly failed";
}

std::string SignedReceipt(const SoftwareSigner& signer, const ReceiptClaims& claims) {
  const auto input = ReceiptSigningInput(claims, signer.Kid());
  if (!input.ok()) return "signing input failed: " + input.error().message();
  const auto token = AssembleJws(*input, signer.Sign(*input));
  return token.ok() ? *token : "assembly failed";
}

std::string Hs256Token(std::string_view header_json, std::string_view payload_json,
                       ByteView secret) {
  const std::string input =
      Base64UrlEncode(AsBytes(header_json)) + "." + Base64UrlEncode(AsBytes(payload_json));
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), AsBytes(input).data(),
       input.size(), mac.data(), &mac_length);
  return input + "." + Base64UrlEncode(ByteView(mac.data(), mac_length));
}

::ijazat::testing::CommandResult RunPython(const ::ijazat::testing::TempDir& dir,
                                           const std::string& script, const std::string& args) {
  const auto file = dir.WriteFile("script.py", script);
  return ::ijazat::testing::RunCommand("/usr/bin/python3 " + file.string() + " " + args);
}

}  // namespace ijazat::verifier::testing
