// The audit chain as the SQLite store keeps it: each row carries the hash of the row before it.
//
//   hash = SHA-256(prev_hash || field(seq) || field(at) || field(event) || field(provider_id)
//                  || field(consent_id) || field(detail))
//   field(x) = 4-byte big-endian length of x || x; integers as 8-byte big-endian two's complement
//
// with prev_hash = 32 zero bytes for seq 1. Length prefixes make the encoding unambiguous.
#pragma once

#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"
#include "model.h"

namespace ijazat::appliance::sqlite {

class Connection;

inline constexpr std::size_t kAuditHashSize = 32;

// SHA-256(prev_hash || canonical(event)) over event.seq, at, event, provider_id, consent_id,
// detail (event.prev_hash and event.hash are ignored).
Bytes AuditHash(ByteView prev_hash, const AuditEvent& event);

// Appends `event` after the last row, inside the caller's write transaction. Throws what POCO
// throws; kDataLoss when the last row's hash is malformed.
Status AppendAudit(Connection& session, const AuditEvent& event);

// Walks the whole chain; kDataLoss ("audit_broken") naming the first row whose seq, prev_hash or
// hash is wrong. Inside the caller's read transaction.
Status VerifyAudit(Connection& session);

// The last `limit` events, oldest first.
std::vector<AuditEvent> ReadAuditTail(Connection& session, int limit);

}  // namespace ijazat::appliance::sqlite
