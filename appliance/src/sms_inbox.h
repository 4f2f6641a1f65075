// Inbound SMS at the short code: enrolment by CNIC, the citizen's commands, help for the rest.
//
// Commands (case and spacing do not matter), each applied to every CNIC the sending number is
// enrolled for, and answered in one SMS that never shows a CNIC:
//   HELP; HISTORY (the last verifications); REVOKE <ref>; BLOCK <provider> / UNBLOCK <provider>
//   (by id or display name); LOCK / UNLOCK (no verification at all while locked).
//
// A text holding a CNIC enrols the sender's number for it, but only where an authority binds
// that number to that CNIC (Enrolments), and confirms by SMS. When the CNIC already had another
// number, the change is rate limited and recorded, the old number is told, and verification is
// held for the cooling-off period (SIM-swap defence). During the hold the new number may only
// LOCK; the old number may LOCK too, which cancels the change and locks the CNIC. Suspended
// enrolments (number no longer bound) answer no command.
// Thread safe.
#pragma once

#include <functional>
#include <string>

#include "citizen_crypto.h"
#include "clock.h"
#include "enrolments.h"
#include "identity.h"
#include "ijazat/policy/policy_set.h"
#include "registry.h"
#include "store.h"

namespace ijazat::appliance {

enum class InboundOutcome {
  kEnrolled,
  kReconfirmed,
  kNumberChanged,
  kHelp,
  kCommand,        // HISTORY, REVOKE, BLOCK, UNBLOCK, LOCK, UNLOCK: answered by SMS
  kNotEnrolled,    // a command from a number that is enrolled for no CNIC
  kNotSubscriber,  // enrolment refused: no authority binds this number to the CNIC
  kChangeRefused,  // a change of number refused: too many changes for the CNIC recently
  kIgnored,
};
std::string_view InboundOutcomeName(InboundOutcome outcome);

struct SmsInboxOptions {
  std::string short_code = "8009";
  NumberPlan numbers;  // senders outside these ranges are refused ("invalid_msisdn")
  // At most `max_number_changes` changes of number per CNIC in any `number_change_window`.
  int max_number_changes = 3;
  Timestamp number_change_window = 30 * 86400;
  SmsCaps caps;  // replies count against the per-number caps; past them, no reply
};

class SmsInbox {
 public:
  SmsInbox(ConsentStore& store, CitizenCrypto& crypto, Enrolments& enrolments, const Clock& clock,
           SmsInboxOptions options, std::function<void()> notify);

  // `sender` as the gateway gives it (any common written form), `short_code` the number it was
  // sent to, `text` the body. Errors: kInvalidArgument ("invalid_msisdn", "wrong_short_code",
  // "sms_too_long") for input the gateway should not have sent; nothing is stored then.
  Result<InboundOutcome> Handle(const policy::PolicySet& policy, const std::string& sender,
                                const std::string& short_code, const std::string& text);

 private:
  Status Queue(OutboxKind kind, const std::string& to_e164, const std::optional<BlindIndex>& cnic,
               const Sealed* sealed, const std::string& params = "{}");
  Result<InboundOutcome> Enrol(const policy::PolicySet& policy, const std::string& from,
                               const std::string& cnic);
  Result<InboundOutcome> Command(const policy::PolicySet& policy, const std::string& from,
                                 const std::string& verb, const std::string& argument);
  Status Reply(const std::string& to_e164, const std::string& text);
  // Sets the message's number index; false when the number is past its SMS caps or the
  // share of them that replies may use.
  Result<bool> NumberMayGetReply(const std::string& to_e164, OutboxMessage& message);
  // The same for the number under each of its index versions.
  Result<bool> NumberMayGetReply(const std::vector<BlindIndex>& phones, Timestamp now);
  Status Reply(const std::string& to_e164, const std::string& text, const AuditEvent& audit);

  ConsentStore& store_;
  CitizenCrypto& crypto_;
  Enrolments& enrolments_;
  const Clock& clock_;
  SmsInboxOptions options_;
  std::function<void()> notify_;
};

}  // namespace ijazat::appliance
