// The appliance's uses of the HSM keys for citizens' data: blind indexes, sealed numbers and
// CNICs, pairwise subject ids and one-time codes. Every secret operation runs in the HSM.
//
// Thread safe (the HSM layer is). Errors are the HSM layer's ("hsm_unavailable", ...).
#pragma once

#include <string>

#include "ijazat/hsm/hsm.h"
#include "model.h"

namespace ijazat::appliance {

class CitizenCrypto {
 public:
  explicit CitizenCrypto(hsm::Hsm& hsm) : hsm_(hsm) {}

  // HMAC under the active `index` key, with a domain prefix per kind of value.
  Result<BlindIndex> PhoneIndex(const std::string& e164);
  // The CNIC's index under every usable version of the `index` key, active first: rows
  // written before a rotation are still found. Always the same number of HSM operations for a
  // given key set, whether or not anything is found later.
  Result<std::vector<BlindIndex>> CnicIndexes(const std::string& cnic);
  Result<std::vector<BlindIndex>> PhoneIndexes(const std::string& e164);

  // The phone number sealed for an enrolment (aad binds it to the CNIC's index), and opened.
  Result<Sealed> SealPhone(const std::string& e164, const BlindIndex& cnic);
  Result<std::string> OpenPhone(const Sealed& sealed, const BlindIndex& cnic);
  // The CNIC sealed into its enrolment (aad binds it to the enrolment's CNIC index), and
  // opened: the number's binding to the CNIC can then be checked again.
  Result<Sealed> SealEnrolmentCnic(const std::string& cnic, const BlindIndex& index);
  Result<std::string> OpenEnrolmentCnic(const Sealed& sealed, const BlindIndex& index);
  // The CNIC sealed into a consent (aad binds it to the consent id), and opened.
  Result<Sealed> SealCnic(const std::string& cnic, const std::string& consent_id);
  Result<std::string> OpenCnic(const Sealed& sealed, const std::string& consent_id);

  // The pairwise subject id a provider sees: HMAC of provider and CNIC index, so two
  // providers cannot link their citizens and none learns the CNIC.
  Result<std::string> PairwiseSubject(const std::string& provider_id, const BlindIndex& cnic);

  // The consent's one-time code: `digits` decimal digits truncated (RFC 4226) from
  // HMAC-SHA256 under otp/v<otp_key_version> of the canonical transaction context (id, CNIC
  // index, provider, purpose, scopes, expiry). Bound to that provider and purpose; never
  // stored.
  Result<SecretString> DeriveOtp(const Consent& consent);

  // `count` random bytes from the HSM, base64url: consent ids and the like.
  Result<std::string> RandomId(std::size_t count);
  // A citizen-facing reference: 8 characters of Crockford base32, shown as "K7Q2-M9XD".
  Result<std::string> RandomReference();

  hsm::Hsm& hsm() { return hsm_; }

 private:
  Result<BlindIndex> Index(std::string_view domain, const std::string& value);
  Result<std::vector<BlindIndex>> Indexes(std::string_view domain, const std::string& value);
  Result<Sealed> Seal(const std::string& plaintext, const std::string& aad);
  Result<std::string> Unseal(const Sealed& sealed, const std::string& aad);

  hsm::Hsm& hsm_;
};

// The canonical context the OTP is derived from (exposed for tests).
std::string OtpContext(const Consent& consent);

}  // namespace ijazat::appliance
