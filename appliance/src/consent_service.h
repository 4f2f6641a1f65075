// The consent flow: a provider asks, the citizen's code is derived in the HSM and sent by SMS,
// the provider relays the code, the appliance grants and signs, the provider verifies.
//
// Handlers call these methods with the provider they authenticated and the policy snapshot of
// the request. Business rules (DESIGN.md "Flows") live here, not in the HTTP layer.
// Thread safe: any number of requests at once; all shared state is in the store and the HSM.
//
// Errors (code / reason) the HTTP layer maps to statuses:
//   kInvalidArgument: "invalid_cnic", "invalid_otp_format", "invalid_request"
//   kPermissionDenied: the policy's deny reasons ("scope_not_allowed", "unknown_purpose",
//     "provider_suspended", ...), "citizen_unavailable" (at confirmation with the right code,
//     or at verification: the citizen locked, blocked the provider, changed number recently,
//     or the number is no longer bound to the CNIC)
//   kNotFound: "consent_not_found" (also for another provider's consent)
//   kFailedPrecondition: "consent_not_pending", "consent_expired", "consent_used",
//     "consent_revoked", "consent_not_granted", "consent_not_revocable"
//   kUnavailable: "hsm_unavailable", "store_unavailable", "registry_unavailable" (or the
//     reasons of the parts, which the HTTP layer maps to these)
// Too many wrong codes for the citizen is no error but a ConfirmOutcome (`locked_out`), since
// it carries when the provider may try again.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "citizen_crypto.h"
#include "clock.h"
#include "enrolments.h"
#include "ijazat/policy/policy_set.h"
#include "registry.h"
#include "store.h"
#include "token_service.h"

namespace ijazat::appliance {

struct ConsentCreated {
  std::string consent_id;
  Timestamp expires_at = 0;
  std::optional<bool> enrolled;  // only for providers whose policy may know it
};

struct ConfirmOutcome {
  bool accepted = false;
  // Not accepted, and the code not even compared: too many wrong codes for the citizen. The
  // provider may try again in `retry_after_seconds` (see ConsentService::Confirm).
  bool locked_out = false;
  std::int64_t retry_after_seconds = 0;
  int attempts_remaining = 0;  // when not accepted
  ConsentState state = ConsentState::kPending;
  IssuedTokens tokens;  // when accepted
  std::string reference;
  Timestamp token_expires_at = 0;
};

struct ConsentStatus {
  Consent consent;
};

struct VerificationResult {
  std::string consent_id;
  std::string subject;
  std::map<std::string, std::string> attributes;
  int uses_remaining = 0;
};

// Receives a wake-up when messages were queued, so the dispatcher sends them at once.
using OutboxNotifier = std::function<void()>;

class ConsentService {
 public:
  ConsentService(ConsentStore& store, CitizenCrypto& crypto, Enrolments& enrolments,
                 TokenService& tokens, IdentityRegistry& registry, const Clock& clock,
                 OutboxNotifier notify);

  Result<ConsentCreated> RequestConsent(const policy::PolicySet& policy,
                                        const policy::Provider& provider, const std::string& cnic,
                                        const std::string& purpose,
                                        const std::vector<std::string>& scopes);
  // Wrong codes are limited per CNIC: past the provider's failures_per_day in the last 24 hours
  // (a sliding window), kMaxConsecutiveFailuresPerProvider in a row from the provider, or
  // kMaxConsecutiveFailures in a row from every provider, the outcome is `locked_out`. Its
  // `retry_after_seconds` is computed from the provider's own wrong codes alone, never from
  // another provider's: while the provider's daily limit holds, the seconds until its window
  // admits a code again; when only a count in a row holds, which no time lifts (the holder of
  // the enrolled number texting the CNIC again does), kLockedOutInARowRetrySeconds.
  Result<ConfirmOutcome> Confirm(const policy::PolicySet& policy, const policy::Provider& provider,
                                 const std::string& consent_id, const SecretString& otp);
  Result<Consent> Get(const policy::Provider& provider, const std::string& consent_id);
  Result<Consent> Revoke(const policy::Provider& provider, const std::string& consent_id);
  Result<VerificationResult> Verify(const policy::PolicySet& policy,
                                    const policy::Provider& provider, const std::string& token);

 private:
  Result<Consent> FindOwned(const policy::Provider& provider, const std::string& consent_id);
  // Locked, blocked, held or suspended citizens: whether this provider may reach them now.
  Result<bool> Reachable(const policy::PolicySet& policy, const policy::Provider& provider,
                         const std::optional<Enrolment>& enrolment, const BlindIndex& cnic,
                         Timestamp now);
  // The latest end of a number-change hold that lets this provider reach the citizen at `now`
  // (a provider may have a longer cooling-off than the default the hold was set with).
  static Timestamp HoldCutoff(const policy::PolicySet& policy, const policy::Provider& provider,
                              Timestamp now);
  AuditEvent Audit(std::string event, const std::string& provider_id, const std::string& consent_id,
                   std::string detail) const;
  // Serialises the check-then-act sequences of one CNIC (SMS cap, failure limits) in this
  // process, so that parallel requests cannot slip past a limit.
  std::mutex& CnicLock(const BlindIndex& cnic);
  ConsentStore& store_;
  CitizenCrypto& crypto_;
  Enrolments& enrolments_;
  TokenService& tokens_;
  IdentityRegistry& registry_;
  const Clock& clock_;
  OutboxNotifier notify_;
  std::array<std::mutex, 64> cnic_locks_;
};

// NIST SP 800-63B §5.2.2: never more than this many consecutive failed codes per CNIC.
inline constexpr int kMaxConsecutiveFailures = 100;
// One provider's failures in a row for a CNIC: below the CNIC-wide ceiling, so that no provider
// alone can reach it and lock the citizen out for every other provider.
inline constexpr int kMaxConsecutiveFailuresPerProvider = kMaxConsecutiveFailures / 2;
// Retry-After for a lock by failures in a row: it has no end in time, so the provider is told
// to wait the length of the daily window, the same value whoever's failures hold the lock.
inline constexpr std::int64_t kLockedOutInARowRetrySeconds = kCnicFailureWindowSeconds;

}  // namespace ijazat::appliance
