// Citizens' enrolments as the services use them: one record per CNIC whatever the index key's
// version, and the trust behind it: the number must stay bound to the CNIC by an authority (the
// mobile operators' subscriber records or the number recorded at registration).
//
// The binding is checked when a number enrols, before every code is handed to the gateway,
// before every grant, and for every CNIC whose records an import changed (SweepChangedBindings).
// An enrolment whose number is no longer bound is suspended: no code, no grant, no command,
// until the citizen enrols a bound number again; the number is told once.
//
// Thread safe. Errors: the store's and the HSM layer's; "subscribers_missing" when the
// registry holds no binding records.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "citizen_crypto.h"
#include "clock.h"
#include "registry.h"
#include "store.h"

namespace ijazat::appliance {

class Enrolments {
 public:
  // `authority` null: open enrolment, for development only (no binding is ever checked).
  Enrolments(ConsentStore& store, CitizenCrypto& crypto, IdentityRegistry* authority,
             const Clock& clock);

  bool open() const { return authority_ == nullptr; }

  struct Found {
    std::optional<Enrolment> enrolment;
    // The index the citizen's records use: the enrolment's own (whatever version made it), or
    // the active version's when there is none.
    BlindIndex index;
  };
  // The CNIC's enrolment, looked up under every usable version of the index key.
  Result<Found> FindByCnic(const std::string& cnic);

  // Whether `number` matches `stored`, an index made under any version of the index key;
  // `number` holds the number's index under every usable version (CitizenCrypto::PhoneIndexes).
  static bool SameNumber(const BlindIndex& stored, const std::vector<BlindIndex>& number);

  // Whether the authority binds `e164` to `cnic` (true when open).
  Result<bool> Binds(const std::string& cnic, const std::string& e164);

  // Whether the enrolment's number is still bound to `cnic`; when it is not, the enrolment is
  // suspended (audited with `why`, the number told) and the answer is false. True when open.
  Result<bool> StillBound(const Enrolment& enrolment, const std::string& cnic,
                          std::string_view why);

  // Whether the code of `consent` may go to `to` (its enrolled number, opened): the authority
  // still binds it to the consent's CNIC. When not, the enrolment is suspended. True when open.
  Result<bool> CodeMayGo(const Consent& consent, const std::string& to);

  // Whether a command other than LOCK from `from` may act on `enrolment`: the authority must
  // still bind the number to the CNIC (checked now; an unbound one is suspended). kUnchecked:
  // the record predates the sealed CNIC, so the citizen must text the CNIC again first.
  enum class CommandCheck { kBound, kSuspended, kUnchecked };
  Result<CommandCheck> CommandMayRun(const Enrolment& enrolment, const std::string& from);

  // Checks again every enrolment of a CNIC that the registry's log of changed bindings names
  // after the stored cursor, up to `max` entries, and moves the cursor on. An entry that cannot
  // be checked for a reason of its own is counted in `failed` and passed; when the HSM or a
  // database is unavailable the sweep stops there (kUnavailable) and resumes next time.
  struct SweepResult {
    int checked = 0;    // enrolled CNICs checked
    int suspended = 0;  // enrolments suspended by this sweep
    int failed = 0;     // entries that could not be checked (skipped; see first_failure)
    std::string first_failure;
    bool more = false;  // entries remain beyond `max`
  };
  Result<SweepResult> SweepChangedBindings(int max);

 private:
  // Suspends the enrolment (re-reading it if it changed meanwhile); false if it was gone or
  // already suspended.
  Result<bool> Suspend(const BlindIndex& cnic, std::string_view why);

  ConsentStore& store_;
  CitizenCrypto& crypto_;
  IdentityRegistry* authority_;
  const Clock& clock_;
};

// How often a changed enrolment is read again and saved before the change is given up
// ("enrolment_changed" stands for a citizen's commands racing each other).
inline constexpr int kEnrolmentSaveTries = 5;

}  // namespace ijazat::appliance
