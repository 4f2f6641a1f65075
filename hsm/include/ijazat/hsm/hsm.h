// The HSM as the appliance sees it: cryptographic operations in domain terms.
//
// Implementations are thread safe: any number of threads may call any method at once.
// Keys never leave the HSM; nothing here falls back to keys in software. Errors:
//   kUnavailable (reason "hsm_unavailable") when the HSM cannot be reached even after
//     recovery: callers answer 503 and try again later;
//   kNotFound (reason "unknown_key") when the key or version does not exist;
//   kFailedPrecondition (reason "key_retired") when the version is retired, or
//     ("key_not_active") when signing or encrypting with a version that is not the active one
//     (older versions still compute HMACs and decrypt, so earlier work can be checked);
//   kInvalidArgument for malformed input (e.g. a sealed box that does not authenticate:
//     reason "ciphertext_invalid").
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"
#include "ijazat/hsm/key_model.h"

namespace ijazat::hsm {

enum class HmacHash { kSha1, kSha256, kSha512 };

// A public key as exported from the HSM.
struct PublicKey {
  KeyRef ref;
  Bytes point;      // P-256: uncompressed 0x04||X||Y (65 bytes); Ed25519: 32 bytes
  std::string jwk;  // JSON object with kty, crv, x[, y], kid, alg, use
  std::string kid;  // RFC 7638 thumbprint (base64url of SHA-256)
};

class Hsm {
 public:
  virtual ~Hsm() = default;

  // HMAC of `data` under a generic-secret key (HMAC-SHA256 for the appliance's keys). No
  // default argument: a default on a virtual is bound by the static type, and an override
  // that declared another would silently disagree.
  virtual Result<Bytes> Hmac(const KeyRef& key, ByteView data, HmacHash hash) = 0;

  // ES256: SHA-256 of `message` computed here, ECDSA in the HSM; returns raw r||s (64 bytes),
  // as a JWS signature.
  virtual Result<Bytes> SignEs256(const KeyRef& key, ByteView message) = 0;

  // Ed25519 (pure EdDSA) signature of `message`: 64 bytes.
  virtual Result<Bytes> SignEd25519(const KeyRef& key, ByteView message) = 0;

  // AES-256-GCM with a fresh 96-bit IV from the HSM; returns iv||ciphertext||tag.
  virtual Result<Bytes> Seal(const KeyRef& key, ByteView plaintext, ByteView aad) = 0;
  // Opens what Seal returned; the same `aad` must be given.
  virtual Result<Bytes> Open(const KeyRef& key, ByteView sealed, ByteView aad) = 0;

  // Random bytes from the HSM's generator.
  virtual Result<Bytes> Random(std::size_t count) = 0;

  virtual Result<PublicKey> ExportPublicKey(const KeyRef& key) = 0;

  // The version of `kind` that signs, derives or encrypts now.
  virtual Result<KeyRef> ActiveKey(KeyKind kind) = 0;

  // True when the HSM answers and the session is logged in; tries to recover if not.
  virtual Status CheckHealth() = 0;

  // Key versions found on the token but refused because their attributes deviate from their
  // templates (a key planted by hand): never used nor published. Names such as
  // "otp/v2 (secret key): CKA_SENSITIVE is false, expected true"; empty when none.
  virtual std::vector<std::string> RejectedKeys() { return {}; }

  // A small record kept in the token itself (a private data object of Ijazat's, readable and
  // writable only when logged in), for state that whoever can write the database must not be
  // able to roll back: the audit chain's last signed head. Every value found: none when there
  // is no record, two after a write that failed half-way (it writes the new value first).
  virtual Result<std::vector<Bytes>> ReadRecord(const std::string& name) = 0;
  virtual Status WriteRecord(const std::string& name, ByteView value) = 0;
};

}  // namespace ijazat::hsm
