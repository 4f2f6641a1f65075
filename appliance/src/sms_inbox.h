// Inbound SMS at the short code: enrolment by CNIC, the citizen's commands, help for the rest.
//
// Commands (case and spacing do not matter), each applied to every CNIC the sending number is
// enrolled for, and answered in one SMS that never shows a CNIC:
//   HELP; HISTORY (the last verifications); REVOKE <ref>; BLOCK <provider> / UNBLOCK <provider>
//   (by id or display name); LOCK / UNLOCK (no verification at all while locked).
//
// A text holding a CNIC enrols the sender's number for it and confirms by SMS. When the CNIC
// already had another number, the change is recorded, the old number is told, and
// verification for the CNIC is held for the cooling-off period (SIM-swap defence).
// Thread safe.
#pragma once

#include <functional>
#include <string>

#include "citizen_crypto.h"
#include "clock.h"
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
  kNotSubscriber,  // enrolment refused: the subscriber registry has not this number for the CNIC
  kIgnored,
};
std::string_view InboundOutcomeName(InboundOutcome outcome);

struct SmsInboxOptions {
  std::string short_code = "8009";
  NumberPlan numbers;  // senders outside these ranges are refused ("invalid_msisdn")
  // When set, a number is enrolled for a CNIC only if this registry lists it for the CNIC.
  IdentityRegistry* subscribers = nullptr;
};

class SmsInbox {
 public:
  SmsInbox(ConsentStore& store, CitizenCrypto& crypto, const Clock& clock, SmsInboxOptions options,
           std::function<void()> notify);
  SmsInbox(ConsentStore& store, CitizenCrypto& crypto, const Clock& clock, std::string short_code,
           std::function<void()> notify);

  // `sender` as the gateway gives it (any common written form), `short_code` the number it was
  // sent to, `text` the body. Errors: kInvalidArgument ("invalid_msisdn", "wrong_short_code",
  // "sms_too_long") for input the gateway should not have sent; nothing is stored then.
  Result<InboundOutcome> Handle(const policy::PolicySet& policy, const std::string& sender,
                                const std::string& short_code, const std::string& text);

 private:
  Status Queue(OutboxKind kind, const std::string& to_e164, const std::optional<BlindIndex>& cnic,
               const Sealed* sealed, const std::string& params = "{}");
  Result<InboundOutcome> Command(const policy::PolicySet& policy, const std::string& from,
                                 const std::string& verb, const std::string& argument);
  Status Reply(const std::string& to_e164, const std::string& text);

  ConsentStore& store_;
  CitizenCrypto& crypto_;
  const Clock& clock_;
  SmsInboxOptions options_;
  std::function<void()> notify_;
};

}  // namespace ijazat::appliance
