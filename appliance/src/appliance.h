// The whole appliance in one object: the HSM, the store, the registry, the policy, the services,
// the SMS dispatcher and the HTTPS server, wired from a Config. ijazatd is a thin main around
// it; tests start it in-process on port 0 with an injected clock.
#pragma once

#include <memory>
#include <optional>
#include <string>

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

class Appliance {
 public:
  // Opens everything and starts serving. Errors say which part failed and why (a missing key
  // names the provisioning command to run).
  static Result<std::unique_ptr<Appliance>> Start(const Config& config,
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
