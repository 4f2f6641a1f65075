#include "sms_inbox.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>

#include "identity.h"
#include "sms_text.h"

namespace ijazat::appliance {
namespace {

constexpr const char* kNoLongerBound =
    "Ijazat: this number is no longer registered to the CNIC it was enrolled for, so it cannot "
    "send commands. Enrol again from a number in your name.";

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
    case InboundOutcome::kChangeRefused:
      return "change_refused";
    case InboundOutcome::kIgnored:
      return "ignored";
  }
  return "unknown";
}

SmsInbox::SmsInbox(ConsentStore& store, CitizenCrypto& crypto, Enrolments& enrolments,
                   const Clock& clock, SmsInboxOptions options, std::function<void()> notify)
    : store_(store),
      crypto_(crypto),
      enrolments_(enrolments),
      clock_(clock),
      options_(std::move(options)),
      notify_(std::move(notify)) {}

Result<InboundOutcome> SmsInbox::Handle(const policy::PolicySet& policy, const std::string& sender,
                                        const std::string& short_code, const std::string& text) {
  IJAZAT_ASSIGN_OR_RETURN(
      const InboundSms sms,
      ParseInboundSms(sender, short_code, options_.short_code, text, options_.numbers));
  const bool command =
      !sms.cnic && (sms.verb == "HISTORY" || sms.verb == "REVOKE" || sms.verb == "BLOCK" ||
                    sms.verb == "UNBLOCK" || sms.verb == "LOCK" || sms.verb == "UNLOCK");
  if (!sms.cnic && !command) {
    IJAZAT_RETURN_IF_ERROR(Queue(OutboxKind::kHelp, sms.from, std::nullopt, nullptr));
    return InboundOutcome::kHelp;
  }
  if (sms.cnic && !enrolments_.open()) {
    // Only a number an authority binds to the CNIC may enrol: anything else is refused before
    // it can change an enrolment, hold verification or notify anyone.
    IJAZAT_ASSIGN_OR_RETURN(const bool bound, enrolments_.Binds(*sms.cnic, sms.from));
    if (!bound) {
      IJAZAT_RETURN_IF_ERROR(
          Reply(sms.from,
                "Ijazat: this number is not registered to that CNIC with your mobile operator, "
                "so it cannot be enrolled. Enrol from a number in your name."));
      return InboundOutcome::kNotSubscriber;
    }
  }
  // Each attempt reads the enrolments afresh and saves on the condition that they did not
  // change meanwhile: a LOCK racing an UNLOCK or a number change is never lost.
  for (int attempt = 0; attempt < kEnrolmentSaveTries; ++attempt) {
    auto outcome = sms.cnic ? Enrol(policy, sms.from, *sms.cnic)
                            : Command(policy, sms.from, sms.verb, sms.argument);
    if (outcome.ok() || outcome.error().reason() != "enrolment_changed") return outcome;
  }
  return Error(ErrorCode::kUnavailable, "the enrolment kept changing; try again",
               "store_unavailable");
}

Result<InboundOutcome> SmsInbox::Enrol(const policy::PolicySet& policy, const std::string& from,
                                       const std::string& cnic) {
  const Timestamp now = clock_.Now();
  // Under every usable index version: an enrolment made before the index key rotated is the
  // same citizen's record, updated in place, and the same number is never a change.
  IJAZAT_ASSIGN_OR_RETURN(const Enrolments::Found found, enrolments_.FindByCnic(cnic));
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<BlindIndex> number, crypto_.PhoneIndexes(from));
  if (number.empty()) {
    return Error(ErrorCode::kUnavailable, "no usable index key", "hsm_unavailable");
  }
  const std::optional<Enrolment>& existing = found.enrolment;
  const BlindIndex& cnic_index = found.index;

  std::vector<OutboxMessage> messages;
  auto message = [&](OutboxKind kind, const Sealed& to, const BlindIndex& phone) {
    OutboxMessage m;
    m.kind = kind;
    m.cnic = cnic_index;
    m.phone = phone;
    m.recipient = to;
    m.params = "{}";
    m.created_at = now;
    m.next_attempt_at = now;
    messages.push_back(std::move(m));
  };
  AuditEvent audit;
  audit.at = now;
  audit.detail = "{}";

  Enrolment enrolment;
  InboundOutcome outcome = InboundOutcome::kEnrolled;
  bool number_change = false;
  if (existing && Enrolments::SameNumber(existing->phone, number)) {
    // The same number again: confirm, keep the enrolment's state; a suspended enrolment whose
    // number is bound again (checked above) is active again.
    enrolment = *existing;
    enrolment.suspended = false;
    outcome = InboundOutcome::kReconfirmed;
  } else if (existing) {
    IJAZAT_ASSIGN_OR_RETURN(
        const int changes,
        store_.CountNumberChanges(cnic_index, now - options_.number_change_window));
    if (changes >= options_.max_number_changes) {
      AuditEvent refused = audit;
      refused.event = "enrolment.change_refused";
      refused.subject = cnic_index;
      IJAZAT_RETURN_IF_ERROR(Reply(from,
                                   "Ijazat: the number for this CNIC was changed too often "
                                   "recently, so it cannot be changed now. Try again later.",
                                   refused));
      return InboundOutcome::kChangeRefused;
    }
    // Is the number being replaced still the citizen's? A suspended one may be someone else's
    // now: it is told of the change, and may LOCK, only if the records bind it again.
    bool replaced_is_citizens = !existing->suspended;
    if (existing->suspended && !enrolments_.open()) {
      IJAZAT_ASSIGN_OR_RETURN(const std::string replaced,
                              crypto_.OpenPhone(existing->phone_sealed, cnic_index));
      IJAZAT_ASSIGN_OR_RETURN(replaced_is_citizens, enrolments_.Binds(cnic, replaced));
    }
    enrolment = *existing;
    enrolment.enrolled_at = now;
    enrolment.hold_until = now + policy.defaults().cnic.number_change_cooling_off.count();
    enrolment.suspended = false;
    // The number told, and whose LOCK wins, is the last one not in dispute: a further change
    // during a hold keeps the number from before the first (and tells it again), unless the
    // change goes back to that very number, which makes the number it replaces the one in
    // dispute. Going back and forth counts against the limit like any change.
    const bool back =
        existing->HasPrevious(now) && Enrolments::SameNumber(existing->previous_phone, number);
    if (existing->HasPrevious(now) && !back) {
      message(OutboxKind::kNumberChanged, existing->previous_phone_sealed,
              existing->previous_phone);
    } else {
      enrolment.previous_phone = replaced_is_citizens ? existing->phone : BlindIndex{};
      enrolment.previous_phone_sealed = replaced_is_citizens ? existing->phone_sealed : Sealed{};
    }
    if (replaced_is_citizens) {
      message(OutboxKind::kNumberChanged, existing->phone_sealed, existing->phone);
    }
    outcome = InboundOutcome::kNumberChanged;
    number_change = true;
  } else {
    enrolment.cnic = cnic_index;
    enrolment.enrolled_at = now;
  }
  if (outcome != InboundOutcome::kReconfirmed || enrolment.phone.value.empty()) {
    enrolment.phone = number.front();
    IJAZAT_ASSIGN_OR_RETURN(enrolment.phone_sealed, crypto_.SealPhone(from, cnic_index));
  }
  if (enrolment.cnic_sealed.box.empty()) {
    IJAZAT_ASSIGN_OR_RETURN(enrolment.cnic_sealed, crypto_.SealEnrolmentCnic(cnic, cnic_index));
  }
  enrolment.updated_at = now;
  // The confirmation answers the sender's text: like a reply, it is not sent to a number
  // past its reply share (the enrolment is saved all the same). Number-change notices always go.
  IJAZAT_ASSIGN_OR_RETURN(const bool confirm, NumberMayGetReply(number, now));
  if (confirm) message(OutboxKind::kEnrolled, enrolment.phone_sealed, number.front());

  audit.event = "enrolment." + std::string(InboundOutcomeName(outcome));
  IJAZAT_RETURN_IF_ERROR(store_.SaveEnrolment(enrolment, audit, messages, number_change));
  if (outcome == InboundOutcome::kReconfirmed) {
    AuditEvent lifted;
    lifted.at = now;
    lifted.event = "cnic.failures_reset";
    lifted.detail = R"({"by":"citizen"})";
    IJAZAT_RETURN_IF_ERROR(store_.ResetConsecutiveFailures(cnic_index, lifted));
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
  IJAZAT_ASSIGN_OR_RETURN(const bool allowed, NumberMayGetReply(to_e164, m));
  if (!allowed) return OkStatus();
  IJAZAT_RETURN_IF_ERROR(store_.EnqueueMessages({m}));
  if (notify_) notify_();
  return OkStatus();
}

Result<bool> SmsInbox::NumberMayGetReply(const std::string& to_e164, OutboxMessage& message) {
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<BlindIndex> phones, crypto_.PhoneIndexes(to_e164));
  if (phones.empty()) {
    return Error(ErrorCode::kUnavailable, "no usable index key", "hsm_unavailable");
  }
  message.phone = phones.front();
  return NumberMayGetReply(phones, message.created_at);
}

Result<bool> SmsInbox::NumberMayGetReply(const std::vector<BlindIndex>& phones, Timestamp now) {
  // Replies count against the number's caps like every SMS, and a number past them gets no
  // reply at all: texting the short code must not make the appliance send a stream of SMS.
  // Replies alone may use at most half of each cap, so that texts to the short code (the
  // citizen's own, or someone's who forges the citizen's number as sender) always leave room
  // for the codes and notices the number is owed.
  IJAZAT_ASSIGN_OR_RETURN(const SmsCounts counts,
                          store_.CountMessages(std::nullopt, "", phones, now));
  const SmsCaps& caps = options_.caps;
  return counts.number_hour < caps.per_number_per_hour &&
         counts.number_day < caps.per_number_per_day &&
         counts.number_replies_hour < std::max(1, caps.per_number_per_hour / 2) &&
         counts.number_replies_day < std::max(1, caps.per_number_per_day / 2);
}

}  // namespace ijazat::appliance

namespace ijazat::appliance {

Status SmsInbox::Reply(const std::string& to_e164, const std::string& text) {
  return Queue(OutboxKind::kReply, to_e164, std::nullopt, nullptr, ReplyParams(text));
}

Status SmsInbox::Reply(const std::string& to_e164, const std::string& text,
                       const AuditEvent& audit) {
  OutboxMessage m;
  m.kind = OutboxKind::kReply;
  IJAZAT_ASSIGN_OR_RETURN(m.recipient, crypto_.SealPhone(to_e164, BlindIndex{}));
  m.params = ReplyParams(text);
  m.created_at = clock_.Now();
  m.next_attempt_at = m.created_at;
  IJAZAT_ASSIGN_OR_RETURN(const bool allowed, NumberMayGetReply(to_e164, m));
  std::vector<OutboxMessage> messages;
  if (allowed) messages.push_back(std::move(m));
  IJAZAT_RETURN_IF_ERROR(store_.RecordEvent(audit, messages));
  if (notify_) notify_();
  return OkStatus();
}

Result<InboundOutcome> SmsInbox::Command(const policy::PolicySet& policy, const std::string& from,
                                         const std::string& verb, const std::string& argument) {
  const Timestamp now = clock_.Now();
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<BlindIndex> phones, crypto_.PhoneIndexes(from));
  // The CNICs enrolled with this number, and those whose number was changed away from it and
  // are still on hold (this number may still LOCK them).
  std::vector<Enrolment> current;
  std::vector<Enrolment> previous;
  auto add = [](std::vector<Enrolment>& to, Enrolment enrolment) {
    // The same CNIC can turn up under two index versions: count it once.
    const bool fresh = std::none_of(to.begin(), to.end(), [&](const Enrolment& e) {
      return e.cnic.value == enrolment.cnic.value;
    });
    if (fresh) to.push_back(std::move(enrolment));
  };
  for (const BlindIndex& phone : phones) {
    IJAZAT_ASSIGN_OR_RETURN(auto found, store_.FindEnrolmentsByPhone(phone));
    for (auto& enrolment : found) add(current, std::move(enrolment));
    IJAZAT_ASSIGN_OR_RETURN(auto before, store_.FindEnrolmentsByPreviousPhone(phone, now));
    for (auto& enrolment : before) add(previous, std::move(enrolment));
  }
  if (current.empty() && previous.empty()) {
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

  if (verb == "LOCK") {
    // The number from before a change on hold: its LOCK wins. The CNIC is locked and, within
    // the limit on changes, the number comes back to it, under a new hold (so that neither
    // side can UNLOCK at once) with the number it replaces as the one in dispute; that number
    // is told.
    int restored = 0;
    int locked = 0;
    for (const Enrolment& held : previous) {
      if (!enrolments_.open()) {
        // A number that is no longer the citizen's (recycled) gets no say.
        if (held.cnic_sealed.box.empty()) continue;
        IJAZAT_ASSIGN_OR_RETURN(const std::string cnic,
                                crypto_.OpenEnrolmentCnic(held.cnic_sealed, held.cnic));
        IJAZAT_ASSIGN_OR_RETURN(const bool bound, enrolments_.Binds(cnic, from));
        if (!bound) continue;
      }
      IJAZAT_ASSIGN_OR_RETURN(
          const int changes,
          store_.CountNumberChanges(held.cnic, now - options_.number_change_window));
      Enrolment after = held;
      after.locked = true;
      after.updated_at = now;
      std::vector<OutboxMessage> notices;
      AuditEvent lock = audit;
      const bool back = changes < options_.max_number_changes;
      if (back) {
        after.phone = held.previous_phone;
        after.phone_sealed = held.previous_phone_sealed;
        after.previous_phone = held.phone;
        after.previous_phone_sealed = held.phone_sealed;
        after.hold_until = now + policy.defaults().cnic.number_change_cooling_off.count();
        after.suspended = false;  // the number it returns to was just found bound
        OutboxMessage notice;
        notice.kind = OutboxKind::kChangeCancelled;
        notice.cnic = held.cnic;
        notice.phone = held.phone;
        notice.recipient = held.phone_sealed;
        notice.params = "{}";
        notice.created_at = now;
        notice.next_attempt_at = now;
        notices.push_back(std::move(notice));
        lock.detail = R"({"by":"previous_number","change":"cancelled"})";
        ++restored;
      } else {
        lock.detail = R"({"by":"previous_number","change":"limit_reached"})";
      }
      IJAZAT_RETURN_IF_ERROR(store_.SaveEnrolment(after, lock, notices, back));
      ++locked;
    }
    for (Enrolment enrolment : current) {
      if (enrolment.suspended) continue;
      ++locked;
      if (enrolment.locked) continue;
      enrolment.locked = true;
      enrolment.updated_at = now;
      IJAZAT_RETURN_IF_ERROR(store_.SaveEnrolment(enrolment, audit, {}));
    }
    if (locked == 0) {
      IJAZAT_RETURN_IF_ERROR(Reply(from, kNoLongerBound));
      return InboundOutcome::kCommand;
    }
    IJAZAT_RETURN_IF_ERROR(Reply(
        from, restored > 0
                  ? "Ijazat: the change of number was stopped and your CNIC is locked. Send "
                    "UNLOCK from this number after a day."
                  : "Ijazat: your CNIC is locked. No one can verify it until you send UNLOCK."));
    if (notify_) notify_();
    return InboundOutcome::kCommand;
  }

  // Every other command needs a number that is enrolled, past any hold, and still bound to
  // the CNIC by the records (checked now: a re-assigned number must not read or undo the
  // citizen's controls until the next sweep notices).
  std::vector<Enrolment> enrolments;
  Timestamp held_until = 0;
  bool suspended = false;
  bool unchecked = false;
  for (Enrolment& enrolment : current) {
    if (enrolment.suspended) {
      suspended = true;
      continue;
    }
    if (enrolment.hold_until > now) {
      held_until = std::max(held_until, enrolment.hold_until);
      continue;
    }
    IJAZAT_ASSIGN_OR_RETURN(const Enrolments::CommandCheck check,
                            enrolments_.CommandMayRun(enrolment, from));
    if (check == Enrolments::CommandCheck::kBound) {
      enrolments.push_back(std::move(enrolment));
    } else if (check == Enrolments::CommandCheck::kSuspended) {
      suspended = true;
    } else {
      unchecked = true;
    }
  }
  if (enrolments.empty()) {
    if (held_until != 0) {
      IJAZAT_RETURN_IF_ERROR(Reply(from, "Ijazat: this number was enrolled recently. Until " +
                                             Day(held_until) +
                                             " it can only send LOCK; other commands after that."));
    } else if (suspended) {
      IJAZAT_RETURN_IF_ERROR(Reply(from, kNoLongerBound));
      if (notify_) notify_();
    } else if (unchecked) {
      IJAZAT_RETURN_IF_ERROR(Reply(from, "Ijazat: send your 13-digit CNIC to " +
                                             options_.short_code +
                                             " from this number once more to confirm it, then send "
                                             "the command again."));
    } else {
      IJAZAT_RETURN_IF_ERROR(Reply(from,
                                   "Ijazat: this number is no longer enrolled for your CNIC. "
                                   "Send LOCK to stop the change and lock your CNIC."));
    }
    return InboundOutcome::kCommand;
  }

  if (verb == "UNLOCK") {
    for (Enrolment enrolment : enrolments) {
      if (!enrolment.locked) continue;
      enrolment.locked = false;
      enrolment.updated_at = now;
      IJAZAT_RETURN_IF_ERROR(store_.SaveEnrolment(enrolment, audit, {}));
    }
    IJAZAT_RETURN_IF_ERROR(
        Reply(from, "Ijazat: your CNIC is unlocked. Providers may ask for your consent again."));
  } else if (verb == "BLOCK" || verb == "UNBLOCK") {
    const policy::Provider* provider = FindProviderByName(policy, argument);
    if (provider == nullptr) {
      // The sender's text is never echoed: it could relay spam, or carry a CNIC into the
      // outbox.
      IJAZAT_RETURN_IF_ERROR(
          Reply(from, "Ijazat: no provider has that name. Send " + verb +
                          " followed by the provider's name as it appears in the "
                          "code SMS."));
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
      std::string text = "Ijazat: consent " + consent->reference;
      text += " for ";
      text += name;
      text += result.ok() ? " is revoked. It can no longer be used."
                          : " is already used, expired or revoked.";
      IJAZAT_RETURN_IF_ERROR(Reply(from, text));
      break;
    }
    if (!revoked) {
      IJAZAT_RETURN_IF_ERROR(Reply(from,
                                   "Ijazat: no consent of yours has that reference. Send HISTORY "
                                   "to see your recent ones."));
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
