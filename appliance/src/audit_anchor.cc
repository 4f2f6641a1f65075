#include "audit_anchor.h"

#include <Poco/Exception.h>
#include <Poco/URI.h>

#include "ijazat/tlog/checkpoint.h"
#include "ijazat/tlog/note.h"

namespace ijazat::appliance {

std::string AuditOrigin(const std::string& issuer) {
  std::string host;
  try {
    host = Poco::URI(issuer).getHost();
  } catch (const Poco::Exception&) {
  }
  return (host.empty() ? std::string("ijazat.local") : host) + "/audit";
}

AuditAnchor::AuditAnchor(ConsentStore& store, hsm::Hsm& hsm, const Clock& clock, std::string origin)
    : store_(store), hsm_(hsm), clock_(clock), origin_(std::move(origin)) {}

Result<std::string> AuditAnchor::VerifierKey() {
  IJAZAT_ASSIGN_OR_RETURN(const hsm::KeyRef key, hsm_.ActiveKey(hsm::KeyKind::kLog));
  IJAZAT_ASSIGN_OR_RETURN(const hsm::PublicKey public_key, hsm_.ExportPublicKey(key));
  return tlog::Ed25519VerifierKey(origin_, public_key.point);
}

Result<std::optional<ConsentStore::AuditCheckpoint>> AuditAnchor::Checkpoint() {
  std::lock_guard<std::mutex> lock(mutex_);
  IJAZAT_ASSIGN_OR_RETURN(ConsentStore::AuditCheckpoint head, store_.AuditChainHead());
  IJAZAT_ASSIGN_OR_RETURN(const auto last, store_.LastAuditCheckpoint());
  if (last) {
    IJAZAT_ASSIGN_OR_RETURN(const auto hash, store_.AuditHashAt(last->seq));
    if (!hash || *hash != last->hash) {
      return Error(ErrorCode::kDataLoss,
                   "the audit chain disagrees with its checkpoint for seq " +
                       std::to_string(last->seq) +
                       (hash ? ": the chain up to it was rewritten"
                             : ": the chain ends at seq " + std::to_string(head.seq)) +
                       "; nothing is signed until an operator has checked the database with "
                       "ijazat-audit verify",
                   "audit_chain_inconsistent");
    }
  }
  if (head.seq == 0 || (last && last->seq >= head.seq)) {
    return std::optional<ConsentStore::AuditCheckpoint>();
  }

  IJAZAT_ASSIGN_OR_RETURN(const hsm::KeyRef key, hsm_.ActiveKey(hsm::KeyKind::kLog));
  IJAZAT_ASSIGN_OR_RETURN(const hsm::PublicKey public_key, hsm_.ExportPublicKey(key));
  tlog::Checkpoint checkpoint;
  checkpoint.origin = origin_;
  checkpoint.size = static_cast<std::uint64_t>(head.seq);
  checkpoint.hash = head.hash;
  IJAZAT_ASSIGN_OR_RETURN(const std::string text, tlog::FormatCheckpoint(checkpoint));
  IJAZAT_ASSIGN_OR_RETURN(
      head.note, tlog::SignNote(text, origin_, public_key.point,
                                [&](ByteView message) { return hsm_.SignEd25519(key, message); }));
  head.at = clock_.Now();
  IJAZAT_RETURN_IF_ERROR(store_.RecordAuditCheckpoint(head));
  return std::optional<ConsentStore::AuditCheckpoint>(std::move(head));
}

}  // namespace ijazat::appliance
