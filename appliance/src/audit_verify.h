// Checks a consent store's audit chain, read-only, against signed checkpoints: the database of a
// running appliance or any copy of it (a backup). What it finds, each with the seq concerned:
//   gap        rows missing from the chain (seq numbers skipped)
//   unlinked   a row whose prev_hash is not the hash of the row before it
//   edited     a row whose contents do not give its stored hash
//   truncated  a checkpoint signs a seq past the chain's end
//   rewritten  the chain's hash at a checkpoint's seq is not the one signed (a copy re-chained
//              after a row was removed or changed, every hash recomputed)
//   forged     a checkpoint that no given key signed, or whose stored seq or hash is not the
//              one its note signs
//   unanchored no checkpoint verifies, so nothing vouches for the chain
//   unsigned   events after the last verified checkpoint that are older than the newest event by
//              more than max_unsigned_seconds (the appliance signs every minute)
// A row whose columns hold other types than the schema's, or an unknown hash_version, is
// "edited" too.
// Checkpoints come from the database's audit_checkpoints table and from text the caller collected
// elsewhere (the appliance's log, an archive): a copy's own table proves little, since whoever
// truncates a copy can drop its checkpoints too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ijazat/common/result.h"
#include "ijazat/tlog/note.h"

namespace ijazat::appliance {

struct AuditFinding {
  std::string kind;  // gap, unlinked, edited, truncated, rewritten, forged, unanchored, unsigned
  std::int64_t seq = 0;
  std::string detail;
};

struct AuditVerification {
  std::int64_t events = 0;
  std::int64_t last_seq = 0;
  int checkpoints_verified = 0;
  std::int64_t last_anchored_seq = 0;  // the highest seq a verified checkpoint signs
  std::vector<AuditFinding> findings;
  bool ok() const { return findings.empty(); }
};

// Every signed note in `text`: notes one after another, blank lines between them allowed.
std::vector<std::string> SplitNotes(const std::string& text);

struct AuditVerifyOptions {
  std::int64_t max_unsigned_seconds = 120;
};

// Reads the database at `path` read-only. Errors (kUnavailable "store_unavailable",
// kInvalidArgument "store_invalid") only when it cannot be read as a consent store at all;
// everything wrong with the chain is a finding.
Result<AuditVerification> VerifyAuditDatabase(const std::string& path,
                                              const std::vector<tlog::NoteVerifier>& keys,
                                              const std::vector<std::string>& extra_notes,
                                              const AuditVerifyOptions& options = {});

// The notes of the database's audit_checkpoints table, oldest first (to archive them).
Result<std::vector<std::string>> ReadCheckpointNotes(const std::string& path);

}  // namespace ijazat::appliance
