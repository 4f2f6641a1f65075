#include "audit_verify.h"

#include <sqlite3.h>

#include <map>
#include <memory>
#include <sstream>

#include "ijazat/tlog/checkpoint.h"
#include "model.h"
#include "sqlite_audit.h"

namespace ijazat::appliance {
namespace {

using Database = std::unique_ptr<sqlite3, decltype(&sqlite3_close)>;
using Statement = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

Result<Database> OpenReadOnly(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  Database db(raw, sqlite3_close);
  if (rc != SQLITE_OK) {
    return Error(ErrorCode::kUnavailable,
                 "cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory"),
                 "store_unavailable");
  }
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

Result<Statement> Prepare(sqlite3* db, const std::string& path, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return Error(ErrorCode::kInvalidArgument,
                 path + " is not a readable Ijazat consent store: " + sqlite3_errmsg(db),
                 "store_invalid");
  }
  return Statement(raw, sqlite3_finalize);
}

bool HasColumn(sqlite3* db, const char* table, const char* column) {
  sqlite3_stmt* raw = nullptr;
  const std::string sql =
      std::string("SELECT 1 FROM pragma_table_info('") + table + "') WHERE name = '" + column + "'";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return false;
  Statement statement(raw, sqlite3_finalize);
  return sqlite3_step(raw) == SQLITE_ROW;
}

bool HasTable(sqlite3* db, const char* table) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1,
                         &raw, nullptr) != SQLITE_OK) {
    return false;
  }
  Statement statement(raw, sqlite3_finalize);
  sqlite3_bind_text(raw, 1, table, -1, SQLITE_STATIC);
  return sqlite3_step(raw) == SQLITE_ROW;
}

std::string Text(sqlite3_stmt* statement, int column) {
  const auto* text = sqlite3_column_text(statement, column);
  return text == nullptr
             ? ""
             : std::string(reinterpret_cast<const char*>(text),
                           static_cast<std::size_t>(sqlite3_column_bytes(statement, column)));
}

Bytes Blob(sqlite3_stmt* statement, int column) {
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(statement, column));
  const int size = sqlite3_column_bytes(statement, column);
  return data == nullptr ? Bytes{} : Bytes(data, data + size);
}

}  // namespace

std::vector<std::string> SplitNotes(const std::string& text) {
  // A note is text lines, one blank line, then signature lines. Anything else around notes
  // (a log's own lines, comments, blank lines) is skipped.
  static constexpr std::string_view kDash = "\xE2\x80\x94 ";
  std::vector<std::string> notes;
  std::istringstream in(text);
  std::string line;
  std::string body;
  std::string signatures;
  bool after_blank = false;
  auto flush = [&] {
    if (!body.empty() && !signatures.empty()) notes.push_back(body + "\n" + signatures);
    body.clear();
    signatures.clear();
  };
  while (std::getline(in, line)) {
    if (line.rfind(kDash, 0) == 0) {
      if (!body.empty() && (after_blank || !signatures.empty())) signatures += line + "\n";
      after_blank = false;
    } else if (line.empty()) {
      if (!signatures.empty()) {
        flush();
      } else if (!body.empty()) {
        after_blank = true;
      }
    } else {
      if (!signatures.empty()) flush();
      if (after_blank) body.clear();
      after_blank = false;
      body += line + "\n";
    }
  }
  flush();
  return notes;
}

Result<std::vector<std::string>> ReadCheckpointNotes(const std::string& path) {
  IJAZAT_ASSIGN_OR_RETURN(Database db, OpenReadOnly(path));
  std::vector<std::string> notes;
  if (!HasTable(db.get(), "audit_checkpoints")) return notes;
  IJAZAT_ASSIGN_OR_RETURN(
      Statement select, Prepare(db.get(), path, "SELECT note FROM audit_checkpoints ORDER BY seq"));
  while (sqlite3_step(select.get()) == SQLITE_ROW) notes.push_back(Text(select.get(), 0));
  return notes;
}

Result<AuditVerification> VerifyAuditDatabase(const std::string& path,
                                              const std::vector<tlog::NoteVerifier>& keys,
                                              const std::vector<std::string>& extra_notes) {
  IJAZAT_ASSIGN_OR_RETURN(Database db, OpenReadOnly(path));
  if (!HasTable(db.get(), "audit")) {
    return Error(ErrorCode::kInvalidArgument, path + " has no audit table: not a consent store",
                 "store_invalid");
  }
  const bool versioned = HasColumn(db.get(), "audit", "hash_version");
  IJAZAT_ASSIGN_OR_RETURN(
      Statement rows,
      Prepare(db.get(), path,
              versioned ? "SELECT seq, at, event, provider_id, consent_id, detail, prev_hash, "
                          "hash, hash_version, COALESCE(subject, x''), subject_key_version "
                          "FROM audit ORDER BY seq"
                        : "SELECT seq, at, event, provider_id, consent_id, detail, prev_hash, "
                          "hash, 1, x'', 0 FROM audit ORDER BY seq"));
  AuditVerification result;
  auto find = [&](std::string kind, std::int64_t seq, std::string detail) {
    result.findings.push_back({std::move(kind), seq, std::move(detail)});
  };
  std::map<std::int64_t, Bytes> hashes;
  Bytes previous(sqlite::kAuditHashSize, 0);
  std::int64_t expected = 1;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(rows.get())) == SQLITE_ROW) {
    sqlite3_stmt* r = rows.get();
    AuditEvent event;
    event.seq = sqlite3_column_int64(r, 0);
    event.at = sqlite3_column_int64(r, 1);
    event.event = Text(r, 2);
    event.provider_id = Text(r, 3);
    event.consent_id = Text(r, 4);
    event.detail = Text(r, 5);
    event.prev_hash = Blob(r, 6);
    event.hash = Blob(r, 7);
    event.hash_version = static_cast<int>(sqlite3_column_int64(r, 8));
    event.subject.value = Blob(r, 9);
    event.subject.key_version = static_cast<std::uint32_t>(sqlite3_column_int64(r, 10));
    ++result.events;
    if (event.seq != expected) {
      find("gap", expected,
           event.seq == expected + 1 ? "seq " + std::to_string(expected) + " is missing"
                                     : "seq " + std::to_string(expected) + " to " +
                                           std::to_string(event.seq - 1) + " are missing");
    }
    if (event.prev_hash != previous) {
      find("unlinked", event.seq,
           "its prev_hash is not the hash of the row before it (seq " +
               std::to_string(event.seq - 1) + ")");
    }
    if (event.hash != sqlite::AuditHash(event.prev_hash, event)) {
      find("edited", event.seq, "its contents (" + event.event + ") do not give its stored hash");
    }
    hashes[event.seq] = event.hash;
    previous = event.hash;
    expected = event.seq + 1;
    result.last_seq = event.seq;
  }
  if (rc != SQLITE_DONE) {
    return Error(ErrorCode::kUnavailable,
                 "reading the audit chain of " + path + ": " + sqlite3_errmsg(db.get()),
                 "store_unavailable");
  }

  // The checkpoints: the table's (each row's seq and hash must be the ones its note signs), then
  // the ones given.
  struct Candidate {
    std::string note;
    std::string where;
    std::int64_t row_seq = -1;  // for table rows
    Bytes row_hash;
  };
  std::vector<Candidate> candidates;
  if (HasTable(db.get(), "audit_checkpoints")) {
    IJAZAT_ASSIGN_OR_RETURN(
        Statement select,
        Prepare(db.get(), path, "SELECT seq, hash, note FROM audit_checkpoints ORDER BY seq"));
    while (sqlite3_step(select.get()) == SQLITE_ROW) {
      const std::int64_t seq = sqlite3_column_int64(select.get(), 0);
      candidates.push_back({Text(select.get(), 2),
                            "the checkpoint stored for seq " + std::to_string(seq), seq,
                            Blob(select.get(), 1)});
    }
  }
  for (std::size_t i = 0; i < extra_notes.size(); ++i) {
    candidates.push_back({extra_notes[i], "given checkpoint " + std::to_string(i + 1), -1, {}});
  }
  for (const Candidate& candidate : candidates) {
    const auto text = tlog::OpenNote(candidate.note, keys);
    if (!text.ok()) {
      find("forged", candidate.row_seq > 0 ? candidate.row_seq : 0,
           candidate.where + " does not verify: " + text.error().message());
      continue;
    }
    const auto checkpoint = tlog::ParseCheckpoint(*text);
    if (!checkpoint.ok()) {
      find("forged", 0, candidate.where + ": " + checkpoint.error().message());
      continue;
    }
    bool origin_known = false;
    for (const auto& key : keys) origin_known = origin_known || key.name == checkpoint->origin;
    if (!origin_known) {
      find("forged", 0, candidate.where + " is for another log (" + checkpoint->origin + ")");
      continue;
    }
    const auto seq = static_cast<std::int64_t>(checkpoint->size);
    if (candidate.row_seq >= 0 &&
        (candidate.row_seq != seq || candidate.row_hash != checkpoint->hash)) {
      find("forged", candidate.row_seq,
           candidate.where + ": the row's seq or hash is not what its note signs (seq " +
               std::to_string(seq) + ")");
      continue;
    }
    ++result.checkpoints_verified;
    if (seq > result.last_seq) {
      find("truncated", seq,
           "a checkpoint signs seq " + std::to_string(seq) + ", but the chain ends at seq " +
               std::to_string(result.last_seq) + ": events were removed from its end");
      continue;
    }
    const auto at = hashes.find(seq);
    if (at == hashes.end()) {
      find("gap", seq, "seq " + std::to_string(seq) + ", which a checkpoint signs, is missing");
    } else if (at->second != checkpoint->hash) {
      find("rewritten", seq,
           "the chain's hash at seq " + std::to_string(seq) +
               " is not the one its checkpoint signs: the chain up to it was rewritten");
    } else {
      result.last_anchored_seq = std::max(result.last_anchored_seq, seq);
    }
  }
  if (result.events > 0 && result.checkpoints_verified == 0) {
    find("unanchored", 0,
         "no checkpoint verifies with the given keys: nothing vouches for this chain");
  }
  return result;
}

}  // namespace ijazat::appliance
