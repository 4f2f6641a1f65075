// The appliance's records, as the services and the store exchange them.
//
// Nothing here holds a CNIC, a phone number or a one-time code in clear: CNICs and phone numbers
// appear as HSM-keyed blind indexes (HMAC under the `index` key) and as AES-GCM boxes sealed
// under the `data` key; codes are derived in the HSM when needed and never kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/common/bytes.h"

namespace ijazat::appliance {

// Unix time in seconds.
using Timestamp = std::int64_t;
// "2025-03-01T10:00:00Z": RFC 3339 in UTC, whole seconds.
std::string Iso8601(Timestamp t);

// Consent states: pending -> granted | failed | expired; granted -> used | revoked | expired.
enum class ConsentState { kPending, kGranted, kFailed, kExpired, kUsed, kRevoked };
std::string_view ConsentStateName(ConsentState state);
std::optional<ConsentState> ParseConsentState(std::string_view name);

// A sealed value: AES-GCM output (iv||ciphertext||tag) and the `data` key version that sealed it.
struct Sealed {
  Bytes box;
  std::uint32_t key_version = 0;
  friend bool operator==(const Sealed&, const Sealed&) = default;
};

// A blind index: HMAC-SHA256 under the `index` key, and that key's version.
struct BlindIndex {
  Bytes value;
  std::uint32_t key_version = 0;
  friend bool operator==(const BlindIndex&, const BlindIndex&) = default;
};

// A citizen's enrolled number for one CNIC.
//
// One record per citizen, whatever the `index` key's version: the record keeps the CNIC index
// it was first made under (and the sealed values keep their `data` key versions), so blocks,
// failure counters and consents made under that index stay the citizen's after a rotation.
struct Enrolment {
  BlindIndex cnic;
  BlindIndex phone;     // for commands sent from the number
  Sealed phone_sealed;  // E.164 number, sealed with aad "phone:" + hex(cnic.value)
  // The CNIC, sealed with aad "enrolment:" + hex(cnic.value), so that the number's binding to
  // it can be checked again (new subscriber records, a command). Empty in records made before
  // schema version 2.
  Sealed cnic_sealed;
  Timestamp enrolled_at = 0;
  Timestamp updated_at = 0;
  // After a number change, verification is held until then (SIM-swap defence); 0 when none.
  Timestamp hold_until = 0;
  bool locked = false;  // LOCK: no verification at all
  // The number before the change, while the hold lasts: it is told of the change, and its LOCK
  // cancels the change. Empty when there is none.
  BlindIndex previous_phone;
  Sealed previous_phone_sealed;
  // The authority no longer binds the number to the CNIC (a recycled or re-assigned number):
  // no code, no grant and no command until the citizen enrols a bound number again.
  bool suspended = false;
  // Bumped by every change; the store refuses a change made from an older read
  // (kFailedPrecondition, "enrolment_changed"), so concurrent commands cannot lose updates.
  std::int64_t revision = 0;

  bool HasPrevious(Timestamp now) const {
    return !previous_phone.value.empty() && hold_until > now;
  }
};

struct Consent {
  std::string id;  // random, 22 base64url characters (128 bits)
  std::string provider_id;
  std::string purpose;
  std::vector<std::string> scopes;
  BlindIndex cnic;
  Sealed cnic_sealed;  // the CNIC, sealed with aad "cnic:" + id; opened only to verify
  // False when no code was sent (CNIC not enrolled, blocked, locked, held or capped); such a
  // consent looks the same to the provider and can never be confirmed.
  bool deliverable = false;
  ConsentState state = ConsentState::kPending;
  Timestamp created_at = 0;
  Timestamp expires_at = 0;  // of the code while pending; of the token once granted
  int attempts = 0;
  int max_attempts = 3;
  std::uint32_t otp_key_version = 0;
  int otp_digits = 6;
  std::string policy_version;
  std::string policy_hash;
  // Set when granted.
  std::string reference;  // short, citizen-facing ("K7Q2-M9XD"), unique
  Timestamp granted_at = 0;
  int max_uses = 1;
  int uses = 0;
  std::uint32_t receipt_key_version = 0;
  std::string receipt;  // the signed receipt (JWS)
  Timestamp updated_at = 0;
};

// One outgoing SMS, persisted before it is sent. The text is rendered when sent: a one-time
// code is derived again in the HSM at that moment, so the outbox never holds it.
enum class OutboxKind {
  kOtp,              // the code for consent_id
  kEnrolled,         // enrolment confirmation
  kNumberChanged,    // to the old number after a change
  kGranted,          // consent granted: provider, purpose, reference
  kHelp,             // reply to anything else, and HELP
  kReply,            // a reply to a citizen command, text in `params`
  kSuspended,        // the number is no longer bound to the CNIC: no more codes
  kChangeCancelled,  // to the number that made a change the number before it cancelled
};
std::string_view OutboxKindName(OutboxKind kind);
std::optional<OutboxKind> ParseOutboxKind(std::string_view name);

enum class OutboxStatus { kQueued, kSent, kFailed, kDropped, kDelivered };
std::string_view OutboxStatusName(OutboxStatus status);
std::optional<OutboxStatus> ParseOutboxStatus(std::string_view name);

struct OutboxMessage {
  std::int64_t id = 0;  // assigned by the store
  OutboxKind kind = OutboxKind::kHelp;
  std::string consent_id;           // kOtp, kGranted; empty otherwise
  std::optional<BlindIndex> cnic;   // whose CNIC it concerns, for per-CNIC SMS caps
  std::optional<BlindIndex> phone;  // the recipient's number index, for per-number SMS caps
  std::string provider_id;          // the provider it is for (codes), for per-provider caps
  // The E.164 number, sealed with aad "phone:" + hex(cnic index) (none: "phone:"). Empty for a
  // code while queued: its recipient is the enrolled number when the dispatcher decides.
  Sealed recipient;
  std::string params;  // JSON object of non-secret template values
  OutboxStatus status = OutboxStatus::kQueued;
  int attempts = 0;
  Timestamp created_at = 0;
  Timestamp next_attempt_at = 0;
  Timestamp not_after = 0;  // drop instead of sending after this (an expired code); 0 = never
  std::string gateway_id;   // the gateway's message id, for delivery reports
  std::string last_error;
};

// Caps on the SMS sent to a citizen and a number, against SMS pumping, decided when a code is
// about to go (never in a way a provider can time). Every SMS counts: codes, notices and, for
// numbers, replies. One provider may use at most half of each CNIC-wide and number-wide cap,
// and at most the policy's per-CNIC hourly cap, so that no provider alone can silence a
// citizen for another. When a cap is reached the code is not sent; the provider's answer
// was given already and does not depend on it.
struct SmsCaps {
  int per_number_per_hour = 10;
  int per_number_per_day = 30;
  int per_cnic_per_hour = 10;
  int per_cnic_per_day = 20;
};

// One link of the audit chain: hash = SHA-256(prev_hash || canonical(event fields)).
struct AuditEvent {
  std::int64_t seq = 0;
  Timestamp at = 0;
  std::string event;  // "consent.requested", "consent.granted", "otp.failed", ...
  std::string provider_id;
  std::string consent_id;
  std::string detail;  // JSON object, no secrets
  // The citizen the event concerns, by the blind index of the CNIC (never the CNIC); empty for
  // events that concern no citizen (a policy reload, say).
  BlindIndex subject;
  // How the row's hash was computed: 1 for rows written before subjects were recorded, 2 since
  // (sqlite_audit.h).
  int hash_version = 2;
  Bytes prev_hash;
  Bytes hash;
};

// A verification made with a token, for the citizen's HISTORY.
struct VerificationRecord {
  std::string consent_id;
  std::string provider_id;
  std::string purpose;
  std::string reference;
  Timestamp at = 0;
};

}  // namespace ijazat::appliance
