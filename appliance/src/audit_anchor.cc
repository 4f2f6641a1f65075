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

namespace {

constexpr char kHeadRecord[] = "audit-head";

// The record's value: seq (8 bytes, big-endian) || hash (32 bytes).
Bytes EncodeHead(std::int64_t seq, const Bytes& hash) {
  Bytes value;
  for (int shift = 56; shift >= 0; shift -= 8) {
    value.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(seq) >> shift));
  }
  value.insert(value.end(), hash.begin(), hash.end());
  return value;
}

Result<ConsentStore::AuditCheckpoint> DecodeHead(const Bytes& value) {
  if (value.size() != 40) {
    return Error(ErrorCode::kDataLoss, "the token's audit-head record is malformed",
                 "audit_chain_inconsistent");
  }
  ConsentStore::AuditCheckpoint head;
  std::uint64_t seq = 0;
  for (int i = 0; i < 8; ++i) seq = (seq << 8) | value[static_cast<std::size_t>(i)];
  head.seq = static_cast<std::int64_t>(seq);
  head.hash.assign(value.begin() + 8, value.end());
  return head;
}

}  // namespace

Status AuditAnchor::CheckAgainst(const ConsentStore::AuditCheckpoint& signed_head,
                                 std::int64_t chain_seq, const std::string& what) {
  IJAZAT_ASSIGN_OR_RETURN(const auto hash, store_.AuditHashAt(signed_head.seq));
  if (hash && *hash == signed_head.hash) return OkStatus();
  return Error(ErrorCode::kDataLoss,
               "the audit chain disagrees with " + what + " for seq " +
                   std::to_string(signed_head.seq) +
                   (hash ? ": the chain up to it was rewritten"
                         : ": the chain ends at seq " + std::to_string(chain_seq)) +
                   "; nothing is signed until an operator has checked the database with "
                   "ijazat-audit verify (a backup restored, or a new store, on purpose: start "
                   "once with --accept-restored-audit; docs/operations.md, \"The audit trail\")",
               "audit_chain_inconsistent");
}

Result<std::optional<ConsentStore::AuditCheckpoint>> LastSignedAuditHead(hsm::Hsm& hsm) {
  IJAZAT_ASSIGN_OR_RETURN(const auto records, hsm.ReadRecord(kHeadRecord));
  std::optional<ConsentStore::AuditCheckpoint> remembered;
  // Two records after a write cut half-way: the later counts. A record whose value is not a
  // head was cut while being created (SoftHSM writes an object's attributes one by one); only
  // the token's user could write one, so it is crash residue, passed over and replaced by the
  // next write.
  for (const Bytes& record : records) {
    auto decoded = DecodeHead(record);
    if (!decoded.ok()) continue;
    if (!remembered || decoded->seq > remembered->seq) remembered = std::move(decoded).value();
  }
  return remembered;
}

Result<std::int64_t> AuditAnchor::SignedSeq(const ConsentStore::AuditCheckpoint& head) {
  // The last head signed, as the token remembers it: whoever can write the database cannot
  // roll this back, so a chain cut or rewritten behind its checkpoints (their rows deleted
  // too) is still noticed.
  IJAZAT_ASSIGN_OR_RETURN(const auto remembered, LastSignedAuditHead(hsm_));
  std::int64_t signed_seq = 0;
  if (remembered) {
    IJAZAT_RETURN_IF_ERROR(CheckAgainst(*remembered, head.seq, "the head the HSM last signed"));
    signed_seq = remembered->seq;
  }
  IJAZAT_ASSIGN_OR_RETURN(const auto last, store_.LastAuditCheckpoint());
  if (last) {
    IJAZAT_RETURN_IF_ERROR(CheckAgainst(*last, head.seq, "its last checkpoint"));
    signed_seq = std::max(signed_seq, last->seq);
  }
  return signed_seq;
}

Status AuditAnchor::Verify() {
  std::lock_guard<std::mutex> lock(mutex_);
  IJAZAT_ASSIGN_OR_RETURN(const ConsentStore::AuditCheckpoint head, store_.AuditChainHead());
  IJAZAT_RETURN_IF_ERROR(SignedSeq(head));
  return OkStatus();
}

Result<std::optional<ConsentStore::AuditCheckpoint>> AuditAnchor::Checkpoint() {
  std::lock_guard<std::mutex> lock(mutex_);
  IJAZAT_ASSIGN_OR_RETURN(ConsentStore::AuditCheckpoint head, store_.AuditChainHead());
  IJAZAT_ASSIGN_OR_RETURN(const std::int64_t signed_seq, SignedSeq(head));
  if (head.seq == 0 || signed_seq >= head.seq) {
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
  IJAZAT_RETURN_IF_ERROR(hsm_.WriteRecord(kHeadRecord, EncodeHead(head.seq, head.hash)));
  return std::optional<ConsentStore::AuditCheckpoint>(std::move(head));
}

Status AuditAnchor::AcceptRestoredChain() {
  std::lock_guard<std::mutex> lock(mutex_);
  IJAZAT_ASSIGN_OR_RETURN(const ConsentStore::AuditCheckpoint head, store_.AuditChainHead());
  return hsm_.WriteRecord(kHeadRecord, EncodeHead(head.seq, head.hash));
}

}  // namespace ijazat::appliance
