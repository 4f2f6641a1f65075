// Anchors the audit chain: signs its head (the last event's seq and hash) as a checkpoint, a C2SP
// signed note whose key name and origin is "<issuer host>/audit", with the HSM's active `log`
// key (Ed25519), and keeps it in the store. A copy of the database is then checked against heads
// signed earlier by `ijazat-audit verify`: a truncated tail, an edited row and a re-chained copy
// all disagree with some checkpoint (docs/operations.md, "The audit trail").
//
// Thread safe as far as the store and the HSM are; the appliance calls it from one thread.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "clock.h"
#include "ijazat/common/result.h"
#include "ijazat/hsm/hsm.h"
#include "store.h"

namespace ijazat::appliance {

// "<host of issuer>/audit", e.g. "ijazat.example.pk/audit" for https://ijazat.example.pk.
std::string AuditOrigin(const std::string& issuer);

// The last head of the audit chain the HSM signed, as the token remembers it (a record out of
// reach of whoever writes the database); nullopt before the first checkpoint.
Result<std::optional<ConsentStore::AuditCheckpoint>> LastSignedAuditHead(hsm::Hsm& hsm);

class AuditAnchor {
 public:
  AuditAnchor(ConsentStore& store, hsm::Hsm& hsm, const Clock& clock, std::string origin);

  // Signs and keeps a checkpoint of the chain's head when it has grown since the last one;
  // nullopt when there is nothing new. Never signs a chain that disagrees with the last head
  // signed, as the token remembers it (a record in the HSM, out of reach of whoever writes the
  // database) or as the last checkpoint kept says: kDataLoss ("audit_chain_inconsistent") when
  // the chain is shorter or its hash at that seq differs (truncated or rewritten).
  // Other errors: the HSM's and the store's.
  Result<std::optional<ConsentStore::AuditCheckpoint>> Checkpoint();

  // The checks of Checkpoint() alone, signing and writing nothing (ijazatd --check-config, which
  // may run beside a serving appliance).
  Status Verify();

  // After an operator restored an older backup on purpose (and checked it with ijazat-audit):
  // the token forgets the later head it signed, so that the restored chain is accepted.
  Status AcceptRestoredChain();

  // The verifier key of the active log key ("<origin>+<key id>+<key>"), for ijazat-audit.
  Result<std::string> VerifierKey();

  const std::string& origin() const { return origin_; }

 private:
  // The seq of the last head signed, once the chain is checked against it (mutex_ held).
  Result<std::int64_t> SignedSeq(const ConsentStore::AuditCheckpoint& head);
  Status CheckAgainst(const ConsentStore::AuditCheckpoint& signed_head, std::int64_t chain_seq,
                      const std::string& what);

  ConsentStore& store_;
  hsm::Hsm& hsm_;
  const Clock& clock_;
  std::string origin_;
  std::mutex mutex_;  // one checkpoint at a time
};

}  // namespace ijazat::appliance
