#include "enrolments.h"

namespace ijazat::appliance {

Enrolments::Enrolments(ConsentStore& store, CitizenCrypto& crypto, IdentityRegistry* authority,
                       const Clock& clock)
    : store_(store), crypto_(crypto), authority_(authority), clock_(clock) {}

Result<Enrolments::Found> Enrolments::FindByCnic(const std::string& cnic) {
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<BlindIndex> indexes, crypto_.CnicIndexes(cnic));
  if (indexes.empty()) {
    return Error(ErrorCode::kUnavailable, "no usable index key", "hsm_unavailable");
  }
  Found found;
  // Every version is looked up, found or not, so that the work does not depend on the answer.
  for (const BlindIndex& index : indexes) {
    IJAZAT_ASSIGN_OR_RETURN(auto enrolment, store_.FindEnrolment(index));
    if (enrolment && !found.enrolment) found.enrolment = std::move(enrolment);
  }
  found.index = found.enrolment ? found.enrolment->cnic : indexes.front();
  return found;
}

bool Enrolments::SameNumber(const BlindIndex& stored, const std::vector<BlindIndex>& number) {
  for (const BlindIndex& index : number) {
    if (index.key_version == stored.key_version) {
      return ConstantTimeEquals(index.value, stored.value);
    }
  }
  return false;
}

Result<bool> Enrolments::Binds(const std::string& cnic, const std::string& e164) {
  if (authority_ == nullptr) return true;
  IJAZAT_ASSIGN_OR_RETURN(const auto binding, authority_->CheckBinding(cnic, e164));
  return binding == IdentityRegistry::Binding::kBound;
}

Result<bool> Enrolments::StillBound(const Enrolment& enrolment, const std::string& cnic,
                                    std::string_view why) {
  if (authority_ == nullptr) return true;
  if (enrolment.suspended) return false;
  IJAZAT_ASSIGN_OR_RETURN(const std::string number,
                          crypto_.OpenPhone(enrolment.phone_sealed, enrolment.cnic));
  IJAZAT_ASSIGN_OR_RETURN(const bool bound, Binds(cnic, number));
  if (bound) return true;
  IJAZAT_ASSIGN_OR_RETURN(const bool suspended, Suspend(enrolment.cnic, why));
  (void)suspended;  // suspended now, or by someone else meanwhile: unbound either way
  return false;
}

Result<bool> Enrolments::CodeMayGo(const Consent& consent, const std::string& to) {
  if (authority_ == nullptr) return true;
  IJAZAT_ASSIGN_OR_RETURN(const std::string cnic,
                          crypto_.OpenCnic(consent.cnic_sealed, consent.id));
  IJAZAT_ASSIGN_OR_RETURN(const bool bound, Binds(cnic, to));
  if (bound) return true;
  // Suspend only if `to` is still the enrolled number: a code that waited for a retry while
  // the citizen moved to another number must not suspend (nor warn) the new one.
  IJAZAT_ASSIGN_OR_RETURN(const std::optional<Enrolment> enrolment,
                          store_.FindEnrolment(consent.cnic));
  if (enrolment && !enrolment->suspended) {
    IJAZAT_ASSIGN_OR_RETURN(const std::vector<BlindIndex> number, crypto_.PhoneIndexes(to));
    if (SameNumber(enrolment->phone, number)) {
      IJAZAT_ASSIGN_OR_RETURN(const bool suspended, Suspend(consent.cnic, "code"));
      (void)suspended;
    }
  }
  return false;
}

Result<Enrolments::CommandCheck> Enrolments::CommandMayRun(const Enrolment& enrolment,
                                                           const std::string& from) {
  if (authority_ == nullptr) return CommandCheck::kBound;
  if (enrolment.suspended) return CommandCheck::kSuspended;
  // A record made before the CNIC was sealed into it cannot be checked: the citizen confirms
  // the number by texting the CNIC again, which seals it.
  if (enrolment.cnic_sealed.box.empty()) return CommandCheck::kUnchecked;
  IJAZAT_ASSIGN_OR_RETURN(const std::string cnic,
                          crypto_.OpenEnrolmentCnic(enrolment.cnic_sealed, enrolment.cnic));
  IJAZAT_ASSIGN_OR_RETURN(const bool bound, Binds(cnic, from));
  if (bound) return CommandCheck::kBound;
  IJAZAT_ASSIGN_OR_RETURN(const bool suspended, Suspend(enrolment.cnic, "command"));
  (void)suspended;
  return CommandCheck::kSuspended;
}

Result<bool> Enrolments::Suspend(const BlindIndex& cnic, std::string_view why) {
  for (int attempt = 0; attempt < kEnrolmentSaveTries; ++attempt) {
    IJAZAT_ASSIGN_OR_RETURN(std::optional<Enrolment> enrolment, store_.FindEnrolment(cnic));
    if (!enrolment || enrolment->suspended) return false;
    const Timestamp now = clock_.Now();
    Enrolment suspended = *enrolment;
    suspended.suspended = true;
    suspended.updated_at = now;
    AuditEvent audit;
    audit.at = now;
    audit.event = "enrolment.suspended";
    audit.detail = "{\"why\":\"" + std::string(why) + "\"}";
    OutboxMessage notice;
    notice.kind = OutboxKind::kSuspended;
    notice.cnic = cnic;
    notice.phone = enrolment->phone;
    notice.recipient = enrolment->phone_sealed;
    notice.params = "{}";
    notice.created_at = now;
    notice.next_attempt_at = now;
    const Status saved = store_.SaveEnrolment(suspended, audit, {notice});
    if (saved.ok()) return true;
    if (saved.error().reason() != "enrolment_changed") return saved.error();
  }
  return Error(ErrorCode::kUnavailable, "the enrolment kept changing while being suspended",
               "store_unavailable");
}

Result<Enrolments::SweepResult> Enrolments::SweepChangedBindings(int max) {
  SweepResult result;
  if (authority_ == nullptr) return result;
  IJAZAT_ASSIGN_OR_RETURN(ConsentStore::SweepCursor cursor, store_.RegistrySweepCursor());
  IJAZAT_ASSIGN_OR_RETURN(IdentityRegistry::BindingChanges log, authority_->ChangedBindings(0, 0));
  if (log.generation != cursor.generation || cursor.seq > log.last) {
    // Another registry file (or the first sweep): its log is read from the start.
    cursor = {log.generation, 0};
  }
  IJAZAT_ASSIGN_OR_RETURN(log, authority_->ChangedBindings(cursor.seq, max));
  Status stopped = OkStatus();
  for (const IdentityRegistry::BindingChange& change : log.changes) {
    const Status checked = [&]() -> Status {
      IJAZAT_ASSIGN_OR_RETURN(const Found found, FindByCnic(change.cnic));
      if (!found.enrolment || found.enrolment->suspended) return OkStatus();
      ++result.checked;
      IJAZAT_ASSIGN_OR_RETURN(const std::string number,
                              crypto_.OpenPhone(found.enrolment->phone_sealed, found.index));
      IJAZAT_ASSIGN_OR_RETURN(const bool bound, Binds(change.cnic, number));
      if (bound) return OkStatus();
      IJAZAT_ASSIGN_OR_RETURN(const bool suspended, Suspend(found.index, "registry_changed"));
      if (suspended) ++result.suspended;
      return OkStatus();
    }();
    if (!checked.ok()) {
      if (checked.error().code() == ErrorCode::kUnavailable) {
        // The HSM or a database is down: stop here and take this entry up again next time.
        stopped = checked;
        break;
      }
      // This entry's own problem (say, its number sealed under a retired key): it cannot be
      // checked, which must not hold up the entries behind it.
      ++result.failed;
      result.first_failure = checked.error().message();
    }
    cursor.seq = change.seq;
  }
  if (cursor.seq != 0 || !log.changes.empty()) {
    IJAZAT_RETURN_IF_ERROR(store_.SetRegistrySweepCursor(cursor));
  }
  if (!stopped.ok()) return stopped.error();
  result.more = cursor.seq < log.last;
  return result;
}

}  // namespace ijazat::appliance
