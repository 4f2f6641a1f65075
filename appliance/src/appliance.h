// The whole appliance in one object: the HSM, the store, the registry, the policy, the services,
// the SMS dispatcher and the HTTPS server, wired from a Config. ijazatd is a thin main around
// it; tests start it in-process on port 0 with an injected clock.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clock.h"
#include "config.h"
#include "ijazat/common/result.h"
#include "ijazat/hsm/fault_injection.h"
#include "store.h"

namespace ijazat::hsm {
class Pkcs11Hsm;
}

namespace ijazat::appliance {

class OutboxDispatcher;

struct ApplianceOptions {
  const Clock* clock = nullptr;  // null: the system clock
  bool start_dispatcher = true;  // tests may drive the outbox by hand
  // Start on an audit chain shorter than the head the HSM last signed (an older backup restored
  // on purpose): the restore is recorded in the chain (audit.restore_accepted) and signed.
  bool accept_restored_audit_chain = false;
  // Tests only: route the HSM's PKCS#11 calls through this injector.
  std::shared_ptr<hsm::FaultInjector> hsm_faults;
};

// ijazatd's exit status for an error of Start or Check, so that the service manager retries
// what may mend itself and nothing else:
//   2 a configuration or provisioning error: the configuration's values, a missing or invalid
//     file (TLS pair, policy, secret or PIN file), the PKCS#11 module, the token label, a key
//     missing or deviating from its template, a short or reused secret, sms.enrolment with no
//     binding records, an audit chain that disagrees with what the HSM signed;
//   3 the HSM refused the PIN (wrong or locked): retrying would use up its PIN attempts;
//   4 a refusal: a secret file or the TLS key within other users' reach, a PIN or secret file
//     of another owner;
//   1 anything else: the HSM or the store unavailable (a module that shows no token at all: a
//     network HSM out of reach), the port taken.
int ExitStatusFor(const Error& error);

class Appliance {
 public:
  // Opens everything and starts serving. Errors say which part failed and why (a missing key
  // names the provisioning command to run).
  static Result<std::unique_ptr<Appliance>> Start(const Config& config,
                                                  const ApplianceOptions& options = {});
  // ijazatd --check-config: everything Start does but binding the port and serving. The TLS
  // files (the key the certificate's, out of other users' reach), the policy, the PKCS#11
  // module, the token, the PIN and every key against its template, the secret files (present,
  // long enough, owned and mode as required), the store and the registry (opened as the start
  // opens them), the audit chain (verified against the head the HSM signed, nothing signed),
  // the SMS sender's settings. Fails with the error Start would fail with; on success returns
  // one line per part checked.
  static Result<std::vector<std::string>> Check(const Config& config,
                                                const ApplianceOptions& options = {});
  ~Appliance();
  Appliance(const Appliance&) = delete;
  Appliance& operator=(const Appliance&) = delete;

  int port() const;
  // SIGHUP: reloads the policy (an invalid file keeps the old one; the error is returned and
  // logged) and re-reads the HSM's key versions.
  Status Reload();
  // SIGTERM: stops accepting, drains requests in flight, stops the dispatcher.
  void Stop();
  // Marks expired consents, checks again the enrolments of every CNIC whose binding records
  // an import changed, re-reads the HSM's key versions (RefreshKeys) and signs a checkpoint of
  // the audit chain (run periodically, every minute).
  void Sweep();
  // Re-reads which key versions exist, are active or retired (a rotation or retirement made by
  // ijazat-provision), audits them, and logs the versions in use when they changed (hsm.keys).
  void RefreshKeys();
  // Signs and keeps a checkpoint of the audit chain's head if it grew since the last one, and
  // logs it (audit.checkpoint); also at start and at Stop(). nullopt when nothing was new.
  Result<std::optional<ConsentStore::AuditCheckpoint>> CheckpointAudit();
  // The verifier key of the audit checkpoints (ijazat-audit verify --key).
  Result<std::string> AuditVerifierKey();
  // The second half of Sweep(): returns how many enrolments it suspended.
  Result<int> SweepBindings();

  hsm::Pkcs11Hsm& hsm();
  ConsentStore& store();
  OutboxDispatcher& dispatcher();

  class Impl;

 private:
  explicit Appliance(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ijazat::appliance
