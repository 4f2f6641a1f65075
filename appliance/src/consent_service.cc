#include "consent_service.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "identity.h"

namespace ijazat::appliance {
namespace {

using policy::PolicySet;
using policy::Provider;

Error NotFound() {
  return Error(ErrorCode::kNotFound, "no consent with this id for this provider",
               "consent_not_found");
}

Error StateError(const Consent& consent, Timestamp now) {
  switch (consent.state) {
    case ConsentState::kPending:
      if (consent.expires_at <= now) {
        return Error(ErrorCode::kFailedPrecondition, "the code for this consent has expired",
                     "consent_expired");
      }
      return Error(ErrorCode::kFailedPrecondition, "the consent has not been granted yet",
                   "consent_not_granted");
    case ConsentState::kExpired:
      return Error(ErrorCode::kFailedPrecondition, "the consent has expired", "consent_expired");
    case ConsentState::kFailed:
      return Error(ErrorCode::kFailedPrecondition,
                   "the consent failed: too many wrong codes; ask the citizen again",
                   "consent_failed");
    case ConsentState::kUsed:
      return Error(ErrorCode::kFailedPrecondition, "the consent token has been used up",
                   "consent_used");
    case ConsentState::kRevoked:
      return Error(ErrorCode::kFailedPrecondition, "the consent was revoked", "consent_revoked");
    case ConsentState::kGranted:
      break;
  }
  return Error(ErrorCode::kFailedPrecondition, "the consent was granted already",
               "consent_not_pending");
}

bool AllDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The scopes asked for, deduplicated, in the catalogue's order as the policy sorted them.
std::vector<std::string> NormaliseScopes(const std::vector<std::string>& scopes) {
  std::set<std::string> unique(scopes.begin(), scopes.end());
  std::vector<std::string> ordered;
  for (const char* attribute : kIdentityAttributes) {
    if (unique.count(attribute) > 0) ordered.emplace_back(attribute);
  }
  return ordered;
}

// A consent asked for under an earlier policy is only honoured while the policy in force still
// allows it: a provider whose validity ended, or whose purpose or scopes were withdrawn by a
// reload, can neither confirm nor verify.
Status StillAllowed(const PolicySet& policy, const Provider& provider, const Consent& consent,
                    Timestamp now) {
  const policy::Decision decision =
      policy.Decide(provider.id, consent.purpose, consent.scopes, AsTimePoint(now));
  if (decision.allowed()) return OkStatus();
  return Error(ErrorCode::kPermissionDenied, decision.message(),
               policy::ToString(decision.reason()));
}

}  // namespace

ConsentService::ConsentService(ConsentStore& store, CitizenCrypto& crypto, Enrolments& enrolments,
                               TokenService& tokens, IdentityRegistry& registry, const Clock& clock,
                               OutboxNotifier notify)
    : store_(store),
      crypto_(crypto),
      enrolments_(enrolments),
      tokens_(tokens),
      registry_(registry),
      clock_(clock),
      notify_(std::move(notify)) {}

AuditEvent ConsentService::Audit(std::string event, const std::string& provider_id,
                                 const std::string& consent_id, std::string detail) const {
  AuditEvent audit;
  audit.at = clock_.Now();
  audit.event = std::move(event);
  audit.provider_id = provider_id;
  audit.consent_id = consent_id;
  audit.detail = detail.empty() ? "{}" : std::move(detail);
  return audit;
}

Result<bool> ConsentService::Reachable(const PolicySet& policy, const Provider& provider,
                                       const std::optional<Enrolment>& enrolment,
                                       const BlindIndex& cnic, Timestamp now) {
  // The same reads whether or not the citizen is enrolled, so that timing does not tell.
  IJAZAT_ASSIGN_OR_RETURN(const bool blocked, store_.IsBlocked(cnic, provider.id));
  if (!enrolment || enrolment->locked || enrolment->suspended || blocked) return false;
  return enrolment->hold_until <= HoldCutoff(policy, provider, now);
}

Timestamp ConsentService::HoldCutoff(const PolicySet& policy, const Provider& provider,
                                     Timestamp now) {
  // hold_until was set with the default cooling-off; a provider may have a longer one.
  const auto extra = provider.limits.cnic.number_change_cooling_off -
                     policy.defaults().cnic.number_change_cooling_off;
  return now - std::max<Timestamp>(0, extra.count());
}

std::mutex& ConsentService::CnicLock(const BlindIndex& cnic) {
  std::size_t slot = 0;
  for (std::size_t i = 0; i < cnic.value.size() && i < 8; ++i) slot = (slot << 8) | cnic.value[i];
  return cnic_locks_[slot % cnic_locks_.size()];
}

Result<ConsentCreated> ConsentService::RequestConsent(const PolicySet& policy,
                                                      const Provider& provider,
                                                      const std::string& cnic_text,
                                                      const std::string& purpose,
                                                      const std::vector<std::string>& scopes) {
  IJAZAT_ASSIGN_OR_RETURN(const std::string cnic, ParseCnic(cnic_text));
  const Timestamp now = clock_.Now();
  const policy::Decision decision = policy.Decide(provider.id, purpose, scopes, AsTimePoint(now));
  if (!decision.allowed()) {
    return Error(ErrorCode::kPermissionDenied, decision.message(),
                 policy::ToString(decision.reason()));
  }
  const policy::Purpose* purpose_entry = provider.FindPurpose(purpose);
  const policy::Limits& limits = provider.limits;

  // The same work for every CNIC: the enrolment is looked up (under every index version) but
  // nothing here depends on what is found. Whether the code goes out (enrolled, locked,
  // blocking, held, suspended, capped) is the dispatcher's decision, made apart from this
  // request, so that its timing tells the provider nothing.
  IJAZAT_ASSIGN_OR_RETURN(const Enrolments::Found found, enrolments_.FindByCnic(cnic));
  const BlindIndex& cnic_index = found.index;

  Consent consent;
  IJAZAT_ASSIGN_OR_RETURN(consent.id, crypto_.RandomId(16));
  IJAZAT_ASSIGN_OR_RETURN(const hsm::KeyRef otp_key, crypto_.hsm().ActiveKey(hsm::KeyKind::kOtp));
  consent.provider_id = provider.id;
  consent.purpose = purpose;
  consent.scopes = NormaliseScopes(scopes);
  consent.cnic = cnic_index;
  IJAZAT_ASSIGN_OR_RETURN(consent.cnic_sealed, crypto_.SealCnic(cnic, consent.id));
  consent.deliverable = false;  // until the dispatcher hands the code over
  consent.state = ConsentState::kPending;
  consent.created_at = now;
  consent.expires_at = now + limits.otp.ttl.count();
  consent.max_attempts = limits.otp.max_attempts;
  consent.otp_key_version = otp_key.version;
  consent.otp_digits = limits.otp.digits;
  consent.policy_version = policy.identity().version;
  consent.policy_hash = policy.identity().sha256_hex;
  consent.max_uses = limits.token.max_uses;
  consent.updated_at = now;

  OutboxMessage otp;
  otp.kind = OutboxKind::kOtp;
  otp.consent_id = consent.id;
  otp.cnic = cnic_index;
  otp.provider_id = provider.id;
  // Non-secret values for the dispatcher: the template's, and this provider's limits (a
  // longer cooling-off than the default the hold was set with; its hourly SMS cap).
  const auto extra =
      limits.cnic.number_change_cooling_off - policy.defaults().cnic.number_change_cooling_off;
  otp.params =
      nlohmann::json{{"provider", provider.display_name},
                     {"purpose", purpose_entry != nullptr ? purpose_entry->sms_text : purpose},
                     {"minutes", (limits.otp.ttl.count() + 59) / 60},
                     {"hold_extra", std::max<std::int64_t>(0, extra.count())},
                     {"cap_hour", limits.cnic.sms_per_hour}}
          .dump();
  otp.created_at = now;
  otp.next_attempt_at = now;
  otp.not_after = consent.expires_at;
  IJAZAT_RETURN_IF_ERROR(store_.InsertConsent(consent,
                                              Audit("consent.requested", provider.id, consent.id,
                                                    nlohmann::json{{"purpose", purpose}}.dump()),
                                              {otp}));
  if (notify_) notify_();

  ConsentCreated created{consent.id, consent.expires_at, std::nullopt};
  if (provider.reveal_enrolment_status) created.enrolled = found.enrolment.has_value();
  return created;
}

Result<Consent> ConsentService::FindOwned(const Provider& provider, const std::string& consent_id) {
  if (consent_id.empty() || consent_id.size() > 64) return NotFound();
  IJAZAT_ASSIGN_OR_RETURN(const std::optional<Consent> consent, store_.FindConsent(consent_id));
  // Another provider's consent is "not found": ids are not to be probed.
  if (!consent || consent->provider_id != provider.id) return NotFound();
  return *consent;
}

Result<ConfirmOutcome> ConsentService::Confirm(const PolicySet& policy, const Provider& provider,
                                               const std::string& consent_id,
                                               const SecretString& otp) {
  IJAZAT_ASSIGN_OR_RETURN(Consent consent, FindOwned(provider, consent_id));
  const Timestamp now = clock_.Now();
  IJAZAT_RETURN_IF_ERROR(StillAllowed(policy, provider, consent, now));
  // The failure limits are checked and counted under one lock per CNIC, so that parallel
  // guesses cannot all pass the check before any of them is counted.
  const std::lock_guard cnic_lock(CnicLock(consent.cnic));
  IJAZAT_ASSIGN_OR_RETURN(consent, FindOwned(provider, consent_id));
  if (consent.state != ConsentState::kPending || consent.expires_at <= now) {
    return StateError(consent, now);
  }
  if (!AllDigits(otp.UnsafeView()) || otp.size() != static_cast<std::size_t>(consent.otp_digits)) {
    return Error(ErrorCode::kInvalidArgument,
                 "the code must be exactly " + std::to_string(consent.otp_digits) + " digits",
                 "invalid_otp_format");
  }
  // Counted per (CNIC, provider): another provider's wrong codes never lock this one out, and
  // no provider alone can reach the CNIC-wide ceiling.
  IJAZAT_ASSIGN_OR_RETURN(const CnicFailures failures,
                          store_.GetCnicFailures(consent.cnic, provider.id, now));
  const int per_day = provider.limits.cnic.failures_per_day;
  ConfirmOutcome outcome;
  if (failures.in_window >= per_day) {
    // The provider's own daily limit: it lifts when enough of the provider's own wrong codes
    // have left the window, which the provider can work out itself. This takes precedence
    // over a count in a row that may hold as well, so that the value never tells the provider
    // whether other providers' wrong codes lock the citizen too.
    IJAZAT_ASSIGN_OR_RETURN(const Timestamp admits, store_.CnicFailureWindowAdmitsAt(
                                                        consent.cnic, provider.id, now, per_day));
    outcome.locked_out = true;
    outcome.retry_after_seconds = admits - now;
    return outcome;
  }
  if (failures.provider_consecutive >= kMaxConsecutiveFailuresPerProvider ||
      failures.consecutive >= kMaxConsecutiveFailures) {
    outcome.locked_out = true;
    outcome.retry_after_seconds = kLockedOutInARowRetrySeconds;
    return outcome;
  }

  // The code is derived even when none was sent, so both cases take the same work.
  IJAZAT_ASSIGN_OR_RETURN(const SecretString expected, crypto_.DeriveOtp(consent));
  const bool match =
      ConstantTimeEquals(AsBytes(expected.UnsafeView()), AsBytes(otp.UnsafeView())) &&
      consent.deliverable;

  if (!match) {
    IJAZAT_ASSIGN_OR_RETURN(const AttemptResult attempt,
                            store_.RecordFailedAttempt(
                                consent.id, now, Audit("otp.failed", provider.id, consent.id, "")));
    outcome.accepted = false;
    outcome.state = attempt.consent.state;
    outcome.attempts_remaining =
        std::max(0, attempt.consent.max_attempts - attempt.consent.attempts);
    return outcome;
  }

  // Everything the request checked is checked again before anything is signed: the citizen
  // may have locked, blocked the provider, changed number, or the number may no longer be
  // bound to the CNIC since the code was sent. The grant below checks the same in its
  // transaction, so that no token leaves for a citizen who said no.
  IJAZAT_ASSIGN_OR_RETURN(const std::optional<Enrolment> enrolment,
                          store_.FindEnrolment(consent.cnic));
  IJAZAT_ASSIGN_OR_RETURN(const bool reachable,
                          Reachable(policy, provider, enrolment, consent.cnic, now));
  bool bound = reachable;
  if (reachable && !enrolments_.open()) {
    IJAZAT_ASSIGN_OR_RETURN(const std::string cnic,
                            crypto_.OpenCnic(consent.cnic_sealed, consent.id));
    IJAZAT_ASSIGN_OR_RETURN(bound, enrolments_.StillBound(*enrolment, cnic, "grant"));
  }
  if (!bound) {
    return Error(ErrorCode::kPermissionDenied,
                 "the citizen does not allow verification now (locked, blocked, number recently "
                 "changed or no longer registered to the CNIC)",
                 "citizen_unavailable");
  }
  const ConsentStore::GrantGuard guard{enrolment->phone, HoldCutoff(policy, provider, now)};
  const policy::Purpose* purpose = provider.FindPurpose(consent.purpose);
  TokenContext context;
  IJAZAT_ASSIGN_OR_RETURN(context.subject, crypto_.PairwiseSubject(provider.id, consent.cnic));
  context.provider_name = provider.display_name;
  context.controller = provider.controller;
  context.purpose_text = purpose != nullptr ? purpose->sms_text : consent.purpose;
  context.token_expires_at = now + provider.limits.token.ttl.count();

  Consent granted = consent;
  IJAZAT_ASSIGN_OR_RETURN(granted.reference, crypto_.RandomReference());
  granted.granted_at = now;
  granted.expires_at = context.token_expires_at;
  granted.max_uses = provider.limits.token.max_uses;
  IJAZAT_ASSIGN_OR_RETURN(IssuedTokens tokens, tokens_.Issue(granted, context, now));
  granted.receipt = tokens.receipt;
  granted.receipt_key_version = tokens.key_version;

  std::vector<OutboxMessage> messages;
  {
    OutboxMessage notice;
    notice.kind = OutboxKind::kGranted;
    notice.consent_id = consent.id;
    notice.cnic = consent.cnic;
    notice.phone = enrolment->phone;
    notice.recipient = enrolment->phone_sealed;
    notice.params = nlohmann::json{{"provider", provider.display_name},
                                   {"purpose", context.purpose_text},
                                   {"reference", granted.reference}}
                        .dump();
    notice.created_at = now;
    notice.next_attempt_at = now;
    messages.push_back(std::move(notice));
  }
  IJAZAT_ASSIGN_OR_RETURN(
      const Consent stored,
      store_.GrantConsent(consent.id, granted, now,
                          Audit("consent.granted", provider.id, consent.id,
                                nlohmann::json{{"reference", granted.reference},
                                               {"policy", policy.identity().sha256_hex}}
                                    .dump()),
                          messages, &guard));
  if (!messages.empty() && notify_) notify_();
  outcome.accepted = true;
  outcome.state = stored.state;
  outcome.tokens = std::move(tokens);
  outcome.reference = stored.reference;
  outcome.token_expires_at = stored.expires_at;
  return outcome;
}

Result<Consent> ConsentService::Get(const Provider& provider, const std::string& consent_id) {
  IJAZAT_ASSIGN_OR_RETURN(Consent consent, FindOwned(provider, consent_id));
  const Timestamp now = clock_.Now();
  if ((consent.state == ConsentState::kPending || consent.state == ConsentState::kGranted) &&
      consent.expires_at <= now) {
    consent.state = ConsentState::kExpired;  // the store catches up on its next sweep
  }
  return consent;
}

Result<Consent> ConsentService::Revoke(const Provider& provider, const std::string& consent_id) {
  IJAZAT_ASSIGN_OR_RETURN(const Consent consent, FindOwned(provider, consent_id));
  if (consent.state != ConsentState::kGranted) {
    // pending -> granted | failed | expired: a pending consent simply expires.
    return Error(ErrorCode::kFailedPrecondition, "only a granted consent can be revoked",
                 "consent_not_revocable");
  }
  return store_.RevokeConsent(
      consent.id, clock_.Now(),
      Audit("consent.revoked", provider.id, consent.id, R"({"by":"provider"})"));
}

Result<VerificationResult> ConsentService::Verify(const PolicySet& policy, const Provider& provider,
                                                  const std::string& token) {
  const Timestamp now = clock_.Now();
  IJAZAT_ASSIGN_OR_RETURN(const TokenClaims claims, tokens_.Verify(token, provider.id, now));
  IJAZAT_ASSIGN_OR_RETURN(const Consent consent, FindOwned(provider, claims.consent_id));
  IJAZAT_RETURN_IF_ERROR(StillAllowed(policy, provider, consent, now));
  if (consent.state != ConsentState::kGranted || consent.expires_at <= now) {
    return StateError(consent, now);
  }
  IJAZAT_ASSIGN_OR_RETURN(const std::optional<Enrolment> enrolment,
                          store_.FindEnrolment(consent.cnic));
  IJAZAT_ASSIGN_OR_RETURN(const bool reachable,
                          Reachable(policy, provider, enrolment, consent.cnic, now));
  if (!reachable) {
    return Error(ErrorCode::kPermissionDenied,
                 "the citizen does not allow verification now (locked, blocked or number "
                 "recently changed)",
                 "citizen_unavailable");
  }
  // Everything that can fail runs before a use is counted: a failed verification costs none.
  IJAZAT_ASSIGN_OR_RETURN(const std::string cnic,
                          crypto_.OpenCnic(consent.cnic_sealed, consent.id));
  IJAZAT_ASSIGN_OR_RETURN(const auto attributes, registry_.Lookup(cnic, consent.scopes));
  if (!attributes) {
    return Error(ErrorCode::kNotFound, "the identity registry has no record for this citizen",
                 "identity_not_found");
  }
  IJAZAT_ASSIGN_OR_RETURN(const Consent used,
                          store_.UseConsent(consent.id, provider.id, now,
                                            Audit("consent.used", provider.id, consent.id, "")));
  VerificationResult result;
  result.consent_id = used.id;
  result.subject = claims.subject;
  result.attributes = *attributes;
  result.uses_remaining = std::max(0, used.max_uses - used.uses);
  return result;
}

}  // namespace ijazat::appliance
