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
  if (!bound) {
    IJAZAT_ASSIGN_OR_RETURN(const bool suspended, Suspend(consent.cnic, "code"));
    (void)suspended;
  }
  return bound;
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
  IJAZAT_ASSIGN_OR_RETURN(std::int64_t cursor, store_.RegistrySweepCursor());
  IJAZAT_ASSIGN_OR_RETURN(IdentityRegistry::BindingChanges log,
                          authority_->ChangedBindings(cursor, max));
  if (cursor > log.last) {
    // The registry file was replaced by one with a shorter log: read it from the start.
    cursor = 0;
    IJAZAT_ASSIGN_OR_RETURN(log, authority_->ChangedBindings(cursor, max));
  }
  for (const IdentityRegistry::BindingChange& change : log.changes) {
    IJAZAT_ASSIGN_OR_RETURN(const Found found, FindByCnic(change.cnic));
    if (found.enrolment && !found.enrolment->suspended) {
      ++result.checked;
      IJAZAT_ASSIGN_OR_RETURN(const std::string number,
                              crypto_.OpenPhone(found.enrolment->phone_sealed, found.index));
      IJAZAT_ASSIGN_OR_RETURN(const bool bound, Binds(change.cnic, number));
      if (!bound) {
        IJAZAT_ASSIGN_OR_RETURN(const bool suspended, Suspend(found.index, "registry_changed"));
        if (suspended) ++result.suspended;
      }
    }
    cursor = change.seq;
  }
  if (!log.changes.empty()) IJAZAT_RETURN_IF_ERROR(store_.SetRegistrySweepCursor(cursor));
  result.more = cursor < log.last;
  return result;
}

}  // namespace ijazat::appliance
