#include "citizen_crypto.h"

#include "ijazat/hsm/otp.h"

namespace ijazat::appliance {
namespace {

using hsm::KeyKind;
using hsm::KeyRef;

std::string Join(const std::vector<std::string>& values, char separator) {
  std::string out;
  for (const auto& value : values) {
    if (!out.empty()) out.push_back(separator);
    out += value;
  }
  return out;
}

}  // namespace

std::string OtpContext(const Consent& consent) {
  // One field per line, each free of line breaks (ids and slugs are validated), so the
  // encoding is unambiguous.
  return "ijazat-otp/1\n" + consent.id + "\n" + HexEncode(consent.cnic.value) + "\n" +
         consent.provider_id + "\n" + consent.purpose + "\n" + Join(consent.scopes, ',') + "\n" +
         std::to_string(consent.expires_at) + "\n" + std::to_string(consent.otp_digits);
}

Result<BlindIndex> CitizenCrypto::Index(std::string_view domain, const std::string& value) {
  IJAZAT_ASSIGN_OR_RETURN(const KeyRef key, hsm_.ActiveKey(KeyKind::kIndex));
  const std::string message = std::string(domain) + ":" + value;
  IJAZAT_ASSIGN_OR_RETURN(Bytes mac, hsm_.Hmac(key, AsBytes(message), hsm::HmacHash::kSha256));
  return BlindIndex{std::move(mac), key.version};
}

Result<std::vector<BlindIndex>> CitizenCrypto::Indexes(std::string_view domain,
                                                       const std::string& value) {
  IJAZAT_ASSIGN_OR_RETURN(const KeyRef active, hsm_.ActiveKey(KeyKind::kIndex));
  std::vector<BlindIndex> indexes;
  const std::string message = std::string(domain) + ":" + value;
  for (std::uint32_t version = active.version; version >= 1; --version) {
    auto mac =
        hsm_.Hmac(KeyRef{KeyKind::kIndex, version}, AsBytes(message), hsm::HmacHash::kSha256);
    if (mac.ok()) {
      indexes.push_back(BlindIndex{std::move(mac).value(), version});
    } else if (mac.error().reason() != "key_retired" && mac.error().reason() != "unknown_key") {
      return mac.error();
    }
  }
  return indexes;
}

Result<std::vector<BlindIndex>> CitizenCrypto::CnicIndexes(const std::string& cnic) {
  return Indexes("cnic", cnic);
}

Result<std::vector<BlindIndex>> CitizenCrypto::PhoneIndexes(const std::string& e164) {
  return Indexes("msisdn", e164);
}

Result<BlindIndex> CitizenCrypto::PhoneIndex(const std::string& e164) {
  return Index("msisdn", e164);
}

Result<Sealed> CitizenCrypto::Seal(const std::string& plaintext, const std::string& aad) {
  IJAZAT_ASSIGN_OR_RETURN(const KeyRef key, hsm_.ActiveKey(KeyKind::kData));
  IJAZAT_ASSIGN_OR_RETURN(Bytes box, hsm_.Seal(key, AsBytes(plaintext), AsBytes(aad)));
  return Sealed{std::move(box), key.version};
}

Result<std::string> CitizenCrypto::Unseal(const Sealed& sealed, const std::string& aad) {
  IJAZAT_ASSIGN_OR_RETURN(const Bytes plain, hsm_.Open(KeyRef{KeyKind::kData, sealed.key_version},
                                                       sealed.box, AsBytes(aad)));
  return std::string(plain.begin(), plain.end());
}

Result<Sealed> CitizenCrypto::SealPhone(const std::string& e164, const BlindIndex& cnic) {
  return Seal(e164, "phone:" + HexEncode(cnic.value));
}

Result<std::string> CitizenCrypto::OpenPhone(const Sealed& sealed, const BlindIndex& cnic) {
  return Unseal(sealed, "phone:" + HexEncode(cnic.value));
}

Result<Sealed> CitizenCrypto::SealEnrolmentCnic(const std::string& cnic, const BlindIndex& index) {
  return Seal(cnic, "enrolment:" + HexEncode(index.value));
}

Result<std::string> CitizenCrypto::OpenEnrolmentCnic(const Sealed& sealed,
                                                     const BlindIndex& index) {
  return Unseal(sealed, "enrolment:" + HexEncode(index.value));
}

Result<Sealed> CitizenCrypto::SealCnic(const std::string& cnic, const std::string& consent_id) {
  return Seal(cnic, "cnic:" + consent_id);
}

Result<std::string> CitizenCrypto::OpenCnic(const Sealed& sealed, const std::string& consent_id) {
  return Unseal(sealed, "cnic:" + consent_id);
}

Result<std::string> CitizenCrypto::PairwiseSubject(const std::string& provider_id,
                                                   const BlindIndex& cnic) {
  IJAZAT_ASSIGN_OR_RETURN(const KeyRef key, hsm_.ActiveKey(KeyKind::kIndex));
  // The subject must not change when the index key rotates, so it uses the version that made
  // the CNIC index, like the index itself.
  const KeyRef stable{KeyKind::kIndex, cnic.key_version != 0 ? cnic.key_version : key.version};
  const std::string message = "sub:" + provider_id + ":" + HexEncode(cnic.value);
  IJAZAT_ASSIGN_OR_RETURN(const Bytes mac,
                          hsm_.Hmac(stable, AsBytes(message), hsm::HmacHash::kSha256));
  return Base64UrlEncode(mac);
}

Result<SecretString> CitizenCrypto::DeriveOtp(const Consent& consent) {
  const std::string context = OtpContext(consent);
  IJAZAT_ASSIGN_OR_RETURN(Bytes mac, hsm_.Hmac(KeyRef{KeyKind::kOtp, consent.otp_key_version},
                                               AsBytes(context), hsm::HmacHash::kSha256));
  SecretString code(hsm::TruncateToDigits(mac, consent.otp_digits));
  SecureWipe(mac.data(), mac.size());
  return code;
}

Result<std::string> CitizenCrypto::RandomId(std::size_t count) {
  IJAZAT_ASSIGN_OR_RETURN(const Bytes bytes, hsm_.Random(count));
  return Base64UrlEncode(bytes);
}

Result<std::string> CitizenCrypto::RandomReference() {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford
  IJAZAT_ASSIGN_OR_RETURN(const Bytes bytes, hsm_.Random(8));
  std::string reference;
  for (std::size_t i = 0; i < 8; ++i) {
    if (i == 4) reference.push_back('-');
    reference.push_back(kAlphabet[bytes[i] & 31]);
  }
  return reference;
}

}  // namespace ijazat::appliance
