#include "sms_inbox.h"

#include "identity.h"

namespace ijazat::appliance {

std::string_view InboundOutcomeName(InboundOutcome outcome) {
  switch (outcome) {
    case InboundOutcome::kEnrolled:
      return "enrolled";
    case InboundOutcome::kReconfirmed:
      return "reconfirmed";
    case InboundOutcome::kNumberChanged:
      return "number_changed";
    case InboundOutcome::kHelp:
      return "help";
    case InboundOutcome::kIgnored:
      return "ignored";
  }
  return "unknown";
}

SmsInbox::SmsInbox(ConsentStore& store, CitizenCrypto& crypto, const Clock& clock,
                   std::string short_code, std::function<void()> notify)
    : store_(store),
      crypto_(crypto),
      clock_(clock),
      short_code_(std::move(short_code)),
      notify_(std::move(notify)) {}

Result<InboundOutcome> SmsInbox::Handle(const policy::PolicySet& policy, const std::string& sender,
                                        const std::string& short_code, const std::string& text) {
  IJAZAT_ASSIGN_OR_RETURN(const std::string from, NormalizeMsisdn(sender));
  if (short_code != short_code_) {
    return Error(ErrorCode::kInvalidArgument,
                 "messages must be sent to the short code " + short_code_, "wrong_short_code");
  }
  if (text.size() > kMaxInboundSmsLength) {
    return Error(ErrorCode::kInvalidArgument, "the message is longer than 640 characters",
                 "sms_too_long");
  }
  const Timestamp now = clock_.Now();
  const std::optional<std::string> cnic = FindCnicInSms(text);
  if (!cnic) {
    IJAZAT_RETURN_IF_ERROR(Queue(OutboxKind::kHelp, from, std::nullopt, nullptr));
    return InboundOutcome::kHelp;
  }

  // Look under every usable index version: an enrolment made before the index key rotated
  // must still be found, or a number change would pass without a hold or a notice.
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<BlindIndex> indexes, crypto_.CnicIndexes(*cnic));
  if (indexes.empty()) {
    return Error(ErrorCode::kUnavailable, "no usable index key", "hsm_unavailable");
  }
  const BlindIndex& cnic_index = indexes.front();
  std::optional<Enrolment> existing;
  for (const BlindIndex& index : indexes) {
    IJAZAT_ASSIGN_OR_RETURN(auto found, store_.FindEnrolment(index));
    if (found && !existing) existing = std::move(found);
  }
  IJAZAT_ASSIGN_OR_RETURN(const BlindIndex phone_index, crypto_.PhoneIndex(from));

  Enrolment enrolment;
  enrolment.cnic = cnic_index;
  enrolment.phone = phone_index;
  IJAZAT_ASSIGN_OR_RETURN(enrolment.phone_sealed, crypto_.SealPhone(from, cnic_index));
  enrolment.enrolled_at = now;
  enrolment.updated_at = now;

  InboundOutcome outcome = InboundOutcome::kEnrolled;
  std::vector<OutboxMessage> messages;
  auto message = [&](OutboxKind kind, const Sealed& to) {
    OutboxMessage m;
    m.kind = kind;
    m.cnic = cnic_index;
    m.recipient = to;
    m.params = "{}";
    m.created_at = now;
    m.next_attempt_at = now;
    messages.push_back(std::move(m));
  };
  if (existing && existing->phone.value == phone_index.value) {
    // The same number again: confirm, keep the enrolment's history and state.
    enrolment.enrolled_at = existing->enrolled_at;
    enrolment.hold_until = existing->hold_until;
    enrolment.locked = existing->locked;
    outcome = InboundOutcome::kReconfirmed;
  } else if (existing) {
    enrolment.hold_until = now + policy.defaults().cnic.number_change_cooling_off.count();
    enrolment.locked = existing->locked;
    outcome = InboundOutcome::kNumberChanged;
    message(OutboxKind::kNumberChanged, existing->phone_sealed);
  }
  message(OutboxKind::kEnrolled, enrolment.phone_sealed);

  AuditEvent audit;
  audit.at = now;
  audit.event = "enrolment." + std::string(InboundOutcomeName(outcome));
  audit.detail = "{}";
  IJAZAT_RETURN_IF_ERROR(store_.SaveEnrolment(enrolment, audit, messages));
  if (notify_) notify_();
  return outcome;
}

Status SmsInbox::Queue(OutboxKind kind, const std::string& to_e164,
                       const std::optional<BlindIndex>& cnic, const Sealed* sealed) {
  OutboxMessage m;
  m.kind = kind;
  m.cnic = cnic;
  if (sealed != nullptr) {
    m.recipient = *sealed;
  } else {
    IJAZAT_ASSIGN_OR_RETURN(m.recipient, crypto_.SealPhone(to_e164, cnic.value_or(BlindIndex{})));
  }
  m.params = "{}";
  m.created_at = clock_.Now();
  m.next_attempt_at = m.created_at;
  IJAZAT_RETURN_IF_ERROR(store_.EnqueueMessages({m}));
  if (notify_) notify_();
  return OkStatus();
}

}  // namespace ijazat::appliance
