// The appliance's key model: named keys with versions, all inside the HSM.
//
// A key is named by its kind and version ("receipt/v2"); that name is the PKCS#11 label (and
// CKA_ID) of its objects. The highest version of a kind is active (it signs, derives, encrypts);
// older versions are verify-only until retired. Retirement is recorded in the HSM itself as a
// data object, so the appliance and the provisioning tool read one truth.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ijazat::hsm {

enum class KeyKind {
  kOtp,      // generic secret, HMAC-SHA256: derives and checks one-time codes
  kReceipt,  // EC P-256, ECDSA: signs consent tokens and receipts (ES256)
  kIndex,    // generic secret, HMAC-SHA256: blind index of CNICs, pairwise subject ids
  kData,     // AES-256, AES-GCM: encrypts stored phone numbers
  kLog,      // Ed25519, EdDSA: signs transparency-log checkpoints
};

inline constexpr KeyKind kAllKeyKinds[] = {KeyKind::kOtp, KeyKind::kReceipt, KeyKind::kIndex,
                                           KeyKind::kData, KeyKind::kLog};

std::string_view KeyKindName(KeyKind kind);
std::optional<KeyKind> ParseKeyKind(std::string_view name);
// The PKCS#11 mechanism the key is restricted to, e.g. "CKM_SHA256_HMAC".
std::string_view KeyKindMechanism(KeyKind kind);

struct KeyRef {
  KeyKind kind = KeyKind::kOtp;
  std::uint32_t version = 0;

  // "otp/v1": the label and id of the key's objects.
  std::string Label() const;
  friend bool operator==(const KeyRef&, const KeyRef&) = default;
};

// Parses "otp/v1"; nullopt for anything else (including "otp/v0" and "otp/v01").
std::optional<KeyRef> ParseKeyLabel(std::string_view label);

// kDestroyed: retired, then its key objects destroyed (ijazat-provision destroy); only its
// record remains, with the kid the version had, so that old receipts can still be mapped to it.
enum class KeyState { kActive, kVerifyOnly, kRetired, kDestroyed };
std::string_view KeyStateName(KeyState state);

// A PKCS#11 attribute as read back from the HSM, in printable form ("true", "false",
// "CKM_ECDSA", "absent" when the token does not report it).
struct AttributeValue {
  std::string name;   // "CKA_SENSITIVE"
  std::string value;  // "true"
};

struct KeyObjectInfo {
  std::string object_class;  // "secret key", "private key", "public key"
  std::vector<AttributeValue> attributes;
};

struct KeyInfo {
  KeyRef ref;
  KeyState state = KeyState::kActive;
  std::string mechanism;  // the one mechanism the key is allowed
  std::string kid;        // RFC 7638 thumbprint; asymmetric keys only
  std::vector<KeyObjectInfo> objects;
};

// One way a key differs from the template it must follow.
struct Deviation {
  std::string key;        // "receipt/v1 (private key)"
  std::string attribute;  // "CKA_EXTRACTABLE"
  std::string expected;   // "false"
  std::string found;      // "true"
};

}  // namespace ijazat::hsm
