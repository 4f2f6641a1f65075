// The audit chain as the SQLite store keeps it: each row carries the hash of the row before it.
//
//   hash = SHA-256(prev_hash || field(seq) || field(at) || field(event) || field(provider_id)
//                  || field(consent_id) || field(detail)
//                  [|| field(hash_version) || field(subject) || field(subject_key_version)])
//   field(x) = 4-byte big-endian length of x || x; integers as 8-byte big-endian two's complement
//
// with prev_hash = 32 zero bytes for seq 1. Length prefixes make the encoding unambiguous. The
// bracketed fields are hashed for hash_version 2 (every row written since schema version 3);
// rows of version 1, written before, hash without them. A row cannot be turned from one version
// into the other without changing its hash.
//
// Checkpoints: the chain's head (seq and hash) signed by the HSM's `log` key as a C2SP signed
// note (ijazat/tlog), kept in audit_checkpoints and logged, so that a copy of the database can be
// checked against heads signed earlier (ijazat-audit verify).
#pragma once

#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"
#include "model.h"

namespace ijazat::appliance::sqlite {

class Connection;

inline constexpr std::size_t kAuditHashSize = 32;

// SHA-256(prev_hash || canonical(event)) over event.seq, at, event, provider_id, consent_id,
// detail, and for hash_version 2 the version and the subject (event.prev_hash and event.hash are
// ignored). Empty for an unknown hash_version.
Bytes AuditHash(ByteView prev_hash, const AuditEvent& event);

// Appends `event` after the last row, inside the caller's write transaction. Throws what POCO
// throws; kDataLoss when the last row's hash is malformed.
Status AppendAudit(Connection& session, const AuditEvent& event);

// Walks the whole chain; kDataLoss ("audit_broken") naming the first row whose seq, prev_hash or
// hash is wrong. Inside the caller's read transaction.
Status VerifyAudit(Connection& session);

// The last `limit` events, oldest first.
std::vector<AuditEvent> ReadAuditTail(Connection& session, int limit);

// The last row's seq and hash (0 and empty for an empty chain).
struct AuditHead {
  std::int64_t seq = 0;
  Bytes hash;
};
AuditHead ReadAuditHead(Connection& session);

}  // namespace ijazat::appliance::sqlite
