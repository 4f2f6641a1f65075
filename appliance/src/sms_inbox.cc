#include "sms_inbox.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

#include "identity.h"

namespace ijazat::appliance {
namespace {

constexpr std::size_t kMaxReply = 160;

const policy::Provider* FindProviderByName(const policy::PolicySet& policy,
                                           const std::string& name) {
  const std::string wanted = AsciiUpper(name);
  for (const policy::Provider& provider : policy.providers()) {
    if (AsciiUpper(provider.id) == wanted || AsciiUpper(provider.display_name) == wanted)
      return &provider;
  }
  return nullptr;
}

std::string Day(Timestamp at) {
  const std::time_t seconds = static_cast<std::time_t>(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%d %b", &utc);
  return buffer;
}

// Keeps an SMS reply to one message: cut at a word boundary with an ellipsis.
std::string FitOneSms(std::string text) {
  if (text.size() <= kMaxReply) return text;
  text.resize(kMaxReply - 3);
  if (const auto space = text.find_last_of(' '); space != std::string::npos && space > 100) {
    text.resize(space);
  }
  return text + "...";
}

}  // namespace

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
    case InboundOutcome::kCommand:
      return "command";
    case InboundOutcome::kNotEnrolled:
      return "not_enrolled";
    case InboundOutcome::kNotSubscriber:
      return "not_subscriber";
    case InboundOutcome::kIgnored:
      return "ignored";
  }
  return "unknown";
}

SmsInbox::SmsInbox(ConsentStore& store, CitizenCrypto& crypto, const Clock& clock,
                   SmsInboxOptions options, std::function<void()> notify)
    : store_(store),
      crypto_(crypto),
      clock_(clock),
      options_(std::move(options)),
      notify_(std::move(notify)) {}

SmsInbox::SmsInbox(ConsentStore& store, CitizenCrypto& crypto, const Clock& clock,
                   std::string short_code, std::function<void()> notify)
    : SmsInbox(store, crypto, clock, SmsInboxOptions{std::move(short_code), {}, nullptr},
               std::move(notify)) {}

Result<InboundOutcome> SmsInbox::Handle(const policy::PolicySet& policy, const std::string& sender,
                                        const std::string& short_code, const std::string& text) {
  IJAZAT_ASSIGN_OR_RETURN(
      const InboundSms sms,
      ParseInboundSms(sender, short_code, options_.short_code, text, options_.numbers));
  const std::string& from = sms.from;
  const Timestamp now = clock_.Now();
  const std::optional<std::string>& cnic = sms.cnic;
  if (!cnic) {
    const std::string& verb = sms.verb;
    if (verb == "HISTORY" || verb == "REVOKE" || verb == "BLOCK" || verb == "UNBLOCK" ||
        verb == "LOCK" || verb == "UNLOCK") {
      return Command(policy, from, verb, sms.argument);
    }
    IJAZAT_RETURN_IF_ERROR(Queue(OutboxKind::kHelp, from, std::nullopt, nullptr));
    return InboundOutcome::kHelp;
  }

  if (options_.subscribers != nullptr) {
    // Operator data says which numbers are registered to the CNIC: anything else is refused
    // before it can change an enrolment, hold verification or notify anyone.
    IJAZAT_ASSIGN_OR_RETURN(const auto subscriber,
                            options_.subscribers->CheckSubscriber(*cnic, from));
    if (subscriber != IdentityRegistry::Subscriber::kMatch) {
      IJAZAT_RETURN_IF_ERROR(
          Reply(from,
                "Ijazat: this number is not registered to that CNIC with your mobile operator, "
                "so it cannot be enrolled. Enrol from a number in your name."));
      return InboundOutcome::kNotSubscriber;
    }
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
  if (outcome == InboundOutcome::kReconfirmed) {
    AuditEvent lifted;
    lifted.at = now;
    lifted.event = "cnic.failures_reset";
    lifted.detail = R"({"by":"citizen"})";
    IJAZAT_RETURN_IF_ERROR(store_.ResetConsecutiveFailures(cnic_index, lifted));
    if (existing->cnic.value != cnic_index.value) {
      IJAZAT_RETURN_IF_ERROR(store_.ResetConsecutiveFailures(existing->cnic, lifted));
    }
  }
  if (notify_) notify_();
  return outcome;
}

Status SmsInbox::Queue(OutboxKind kind, const std::string& to_e164,
                       const std::optional<BlindIndex>& cnic, const Sealed* sealed,
                       const std::string& params) {
  OutboxMessage m;
  m.kind = kind;
  m.cnic = cnic;
  if (sealed != nullptr) {
    m.recipient = *sealed;
  } else {
    IJAZAT_ASSIGN_OR_RETURN(m.recipient, crypto_.SealPhone(to_e164, cnic.value_or(BlindIndex{})));
  }
  m.params = params;
  m.created_at = clock_.Now();
  m.next_attempt_at = m.created_at;
  IJAZAT_RETURN_IF_ERROR(store_.EnqueueMessages({m}));
  if (notify_) notify_();
  return OkStatus();
}

}  // namespace ijazat::appliance

namespace ijazat::appliance {

Status SmsInbox::Reply(const std::string& to_e164, const std::string& text) {
  return Queue(OutboxKind::kReply, to_e164, std::nullopt, nullptr,
               nlohmann::json{{"text", FitOneSms(text)}}.dump());
}

Result<InboundOutcome> SmsInbox::Command(const policy::PolicySet& policy, const std::string& from,
                                         const std::string& verb, const std::string& argument) {
  const Timestamp now = clock_.Now();
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<BlindIndex> phones, crypto_.PhoneIndexes(from));
  std::vector<Enrolment> enrolments;
  for (const BlindIndex& phone : phones) {
    IJAZAT_ASSIGN_OR_RETURN(auto found, store_.FindEnrolmentsByPhone(phone));
    for (auto& enrolment : found) {
      // The same CNIC can turn up under two index versions: count it once.
      const bool current = std::none_of(enrolments.begin(), enrolments.end(), [&](const auto& e) {
        return e.cnic.value == enrolment.cnic.value;
      });
      if (current) enrolments.push_back(std::move(enrolment));
    }
  }
  if (enrolments.empty()) {
    IJAZAT_RETURN_IF_ERROR(
        Reply(from, "Ijazat: this number is not enrolled. Send your 13-digit CNIC to " +
                        options_.short_code + " to enrol it."));
    return InboundOutcome::kNotEnrolled;
  }
  AuditEvent audit;
  audit.at = now;
  audit.event = "citizen." + AsciiUpper(verb);
  std::transform(audit.event.begin(), audit.event.end(), audit.event.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  audit.detail = "{}";

  if (verb == "LOCK" || verb == "UNLOCK") {
    const bool lock = verb == "LOCK";
    for (Enrolment enrolment : enrolments) {
      enrolment.locked = lock;
      enrolment.updated_at = now;
      IJAZAT_RETURN_IF_ERROR(store_.SaveEnrolment(enrolment, audit, {}));
    }
    IJAZAT_RETURN_IF_ERROR(Reply(
        from, lock ? "Ijazat: your CNIC is locked. No one can verify it until you send UNLOCK."
                   : "Ijazat: your CNIC is unlocked. Providers may ask for your consent again."));
  } else if (verb == "BLOCK" || verb == "UNBLOCK") {
    const policy::Provider* provider = FindProviderByName(policy, argument);
    if (provider == nullptr) {
      IJAZAT_RETURN_IF_ERROR(
          Reply(from, "Ijazat: no provider called \"" + argument.substr(0, 40) +
                          "\". Send BLOCK followed by the name in the code SMS."));
      return InboundOutcome::kCommand;
    }
    const bool block = verb == "BLOCK";
    audit.provider_id = provider->id;
    for (const Enrolment& enrolment : enrolments) {
      IJAZAT_RETURN_IF_ERROR(store_.SetBlocked(enrolment.cnic, provider->id, block, audit));
    }
    IJAZAT_RETURN_IF_ERROR(Reply(
        from, block ? "Ijazat: " + provider->display_name +
                          " can no longer ask to verify your CNIC. Send UNBLOCK " + provider->id +
                          " to allow it again."
                    : "Ijazat: " + provider->display_name + " may ask for your consent again."));
  } else if (verb == "REVOKE") {
    const std::string reference = AsciiUpper(argument);
    std::optional<Consent> revoked;
    for (const Enrolment& enrolment : enrolments) {
      IJAZAT_ASSIGN_OR_RETURN(auto consent,
                              store_.FindConsentByReference(enrolment.cnic, reference));
      if (!consent) continue;
      audit.provider_id = consent->provider_id;
      audit.consent_id = consent->id;
      audit.detail = R"({"by":"citizen"})";
      auto result = store_.RevokeConsent(consent->id, now, audit);
      if (!result.ok() && result.error().code() == ErrorCode::kUnavailable) return result.error();
      revoked = consent;
      const policy::Provider* provider = policy.FindProvider(consent->provider_id);
      const std::string name = provider != nullptr ? provider->display_name : consent->provider_id;
      std::string text = "Ijazat: consent " + reference;
      text += " for ";
      text += name;
      text += result.ok() ? " is revoked. It can no longer be used."
                          : " is already used, expired or revoked.";
      IJAZAT_RETURN_IF_ERROR(Reply(from, text));
      break;
    }
    if (!revoked) {
      IJAZAT_RETURN_IF_ERROR(Reply(from, "Ijazat: no consent with reference " +
                                             reference.substr(0, 20) +
                                             " for your CNIC. Send HISTORY to see them."));
    }
  } else {  // HISTORY
    std::vector<VerificationRecord> records;
    for (const Enrolment& enrolment : enrolments) {
      IJAZAT_ASSIGN_OR_RETURN(auto recent, store_.RecentVerifications(enrolment.cnic, 3));
      records.insert(records.end(), recent.begin(), recent.end());
    }
    std::sort(records.begin(), records.end(),
              [](const auto& a, const auto& b) { return a.at > b.at; });
    if (records.empty()) {
      IJAZAT_RETURN_IF_ERROR(Reply(from, "Ijazat: no one has verified your CNIC recently."));
    } else {
      std::string text = "Ijazat verifications:";
      for (std::size_t i = 0; i < records.size() && i < 3; ++i) {
        const policy::Provider* provider = policy.FindProvider(records[i].provider_id);
        text += " " + Day(records[i].at) + " " +
                (provider != nullptr ? provider->display_name : records[i].provider_id) + " ref " +
                records[i].reference + ";";
      }
      IJAZAT_RETURN_IF_ERROR(Reply(from, text));
    }
  }
  return InboundOutcome::kCommand;
}

}  // namespace ijazat::appliance
