// The HSM layer over any PKCS#11 module (SoftHSMv2 in development, a network HSM in
// production).
//
// Pkcs11Hsm loads the module by path, initialises it with OS locking, selects the token by
// label, logs in once with the user PIN and keeps that session for the life of the object;
// worker sessions are pooled and key handles cached per (key, version), so no operation looks
// objects up. When a call fails in a way that a reconnect can mend (a lost session, a device
// error, a token that went away, a module that was finalised), the failing call is retried
// after recovery: bad sessions are dropped, the module re-initialised if needed, the login and
// the handle cache rebuilt. What still fails is reported as kUnavailable ("hsm_unavailable").
//
// Thread safety: all methods may be called from any number of threads at once.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ijazat/common/result.h"
#include "ijazat/hsm/fault_injection.h"
#include "ijazat/hsm/hsm.h"
#include "ijazat/hsm/key_model.h"
#include "ijazat/hsm/pin_source.h"

namespace ijazat::hsm {

inline constexpr char kDefaultModulePath[] = "/usr/lib/softhsm/libsofthsm2.so";

struct HsmOptions {
  std::string module_path = kDefaultModulePath;
  std::string token_label;
  PinSource pin = PinSource::Environment("IJAZAT_HSM_PIN");
  // Worker sessions kept open when idle; more are opened under load and closed after.
  std::size_t max_idle_sessions = 8;
  // Attempts per operation, recovery between them, before "hsm_unavailable".
  int max_attempts = 3;
  // Sign-and-verify and HMAC known-answer tests when opening.
  bool self_test = true;
  // Refuse to open ("key_template_mismatch") when any key on the token deviates from its
  // template, as a key planted with weaker attributes would. The provisioning tool turns this
  // off so that it can report the deviations.
  bool require_conforming_keys = true;
  // Tests only: route every PKCS#11 call through this injector.
  std::shared_ptr<FaultInjector> faults;
};

struct TokenInfo {
  std::string label;
  std::string manufacturer;
  std::string model;
  std::string serial;
  bool initialized = false;
};

// Errors of the functions below (besides those in hsm.h), by reason:
//   "module_load_failed"  the module cannot be loaded or has no C_GetFunctionList;
//   "token_not_found"     no token has the label (the message lists the labels there are);
//   "no_tokens"           the module shows no initialised token at all (kUnavailable: a
//                         network HSM out of reach looks like this);
//   "pin_incorrect", "pin_locked", "pin_source"  login problems;
//   "key_exists", "unknown_key", "key_active", "key_retired"  key management misuse.

// Tokens visible through the module (no login needed).
Result<std::vector<TokenInfo>> ListTokens(const std::string& module_path);

// Initialises a fresh token (SoftHSM development tokens): C_InitToken on a free slot with the
// SO PIN, then C_InitPIN for the user PIN. Refuses if a token already has the label.
Status InitToken(const std::string& module_path, const std::string& label,
                 const SecretString& so_pin, const SecretString& user_pin);

class Pkcs11Hsm final : public Hsm {
 public:
  static Result<std::unique_ptr<Pkcs11Hsm>> Open(const HsmOptions& options);
  ~Pkcs11Hsm() override;
  Pkcs11Hsm(const Pkcs11Hsm&) = delete;
  Pkcs11Hsm& operator=(const Pkcs11Hsm&) = delete;

  // Hsm:
  Result<Bytes> Hmac(const KeyRef& key, ByteView data, HmacHash hash) override;
  Result<Bytes> SignEs256(const KeyRef& key, ByteView message) override;
  Result<Bytes> SignEd25519(const KeyRef& key, ByteView message) override;
  Result<Bytes> Seal(const KeyRef& key, ByteView plaintext, ByteView aad) override;
  Result<Bytes> Open(const KeyRef& key, ByteView sealed, ByteView aad) override;
  Result<Bytes> Random(std::size_t count) override;
  Result<PublicKey> ExportPublicKey(const KeyRef& key) override;
  Result<KeyRef> ActiveKey(KeyKind kind) override;
  Result<std::vector<Bytes>> ReadRecord(const std::string& name) override;
  Status WriteRecord(const std::string& name, ByteView value) override;
  Status CheckHealth() override;
  std::vector<std::string> RejectedKeys() override;
  // Set ("pin_incorrect", "pin_locked") once the HSM refused the PIN when logging in again
  // after an outage: from then on nothing logs in again (each try would use up one of the
  // token's PIN attempts), every operation fails, CheckHealth names the reason; ijazatd exits.
  std::optional<Error> LoginRefused();

  // Key management, for the provisioning tool and the appliance's start-up.
  // Creates version 1 of `kind`; fails with "key_exists" if any version exists.
  Result<KeyInfo> GenerateKey(KeyKind kind);
  // Creates the next version of `kind` and makes it active; the previous stays verify-only.
  Result<KeyInfo> RotateKey(KeyKind kind);
  // Retires a verify-only version: it no longer verifies and leaves the JWKS. The active
  // version cannot be retired ("key_active"); rotate first.
  Status RetireKey(const KeyRef& key);
  // Destroys the key objects of a retired version for good (after a compromise, or when nothing
  // needs it any more), leaving a record `destroyed:NAME/vN`. "key_not_retired" otherwise.
  Status DestroyKey(const KeyRef& key);
  // Every key version on the token with its state and security attributes, sorted.
  Result<std::vector<KeyInfo>> ListKeys();
  // Each way a key's attributes differ from its template; empty when all conform.
  Result<std::vector<Deviation>> AuditKeys();
  // {"keys":[...]} with every non-retired receipt-signing version.
  Result<std::string> Jwks();
  // Re-reads which versions exist and are retired (after another process rotated).
  Status Refresh();
  // Runs the start-up self-test again: ES256 sign-and-verify with the active receipt key (if
  // one exists) and an HMAC-SHA256 known-answer test on a session key.
  Status SelfTest();

  class Impl;

 private:
  explicit Pkcs11Hsm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ijazat::hsm
