#include "audit_verify.h"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "ijazat/tlog/checkpoint.h"
#include "model.h"
#include "sqlite_audit.h"

namespace ijazat::appliance {
namespace {

constexpr std::size_t kMaxNoteSize = 64 * 1024;

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
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (notes.empty() && body.empty() && line.rfind("\xEF\xBB\xBF", 0) == 0) {
      line.erase(0, 3);  // a byte-order mark
    }
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
                                              const std::vector<std::string>& extra_notes,
                                              const AuditVerifyOptions& options) {
  IJAZAT_ASSIGN_OR_RETURN(Database db, OpenReadOnly(path));
  if (!HasTable(db.get(), "audit")) {
    return Error(ErrorCode::kInvalidArgument, path + " has no audit table: not a consent store",
                 "store_invalid");
  }
  AuditVerification result;
  auto find = [&](std::string kind, std::int64_t seq, std::string detail) {
    result.findings.push_back({std::move(kind), seq, std::move(detail)});
  };

  // 1. The checkpoints, first: the table's (each row's seq and hash must be the ones its note
  // signs), then the ones given. Only verified ones count; the chain's hashes are then kept at
  // their seqs only.
  struct Candidate {
    std::string note;
    std::string where;
    std::optional<std::int64_t> row_seq;  // for table rows
    Bytes row_hash;
  };
  std::vector<Candidate> candidates;
  if (HasTable(db.get(), "audit_checkpoints")) {
    IJAZAT_ASSIGN_OR_RETURN(
        Statement select,
        Prepare(db.get(), path,
                "SELECT seq, hash, note, typeof(note) FROM audit_checkpoints ORDER BY seq"));
    while (sqlite3_step(select.get()) == SQLITE_ROW) {
      const std::int64_t seq = sqlite3_column_int64(select.get(), 0);
      candidates.push_back({Text(select.get(), 3) == "text" ? Text(select.get(), 2) : "",
                            "the checkpoint stored for seq " + std::to_string(seq), seq,
                            Blob(select.get(), 1)});
    }
  }
  for (std::size_t i = 0; i < extra_notes.size(); ++i) {
    candidates.push_back({extra_notes[i], "given checkpoint " + std::to_string(i + 1), {}, {}});
  }
  struct Signed {
    std::int64_t seq;
    Bytes hash;
  };
  std::vector<Signed> verified;
  for (const Candidate& candidate : candidates) {
    const std::int64_t at_seq = candidate.row_seq.value_or(0);
    if (candidate.note.size() > kMaxNoteSize) {
      find("forged", at_seq, candidate.where + " is larger than any checkpoint");
      continue;
    }
    std::vector<std::string> signers;
    const auto text = tlog::OpenNote(candidate.note, keys, &signers);
    if (!text.ok()) {
      find("forged", at_seq, candidate.where + " does not verify: " + text.error().message());
      continue;
    }
    const auto checkpoint = tlog::ParseCheckpoint(*text);
    if (!checkpoint.ok()) {
      find("forged", at_seq, candidate.where + ": " + checkpoint.error().message());
      continue;
    }
    // The origin must be the name of a key that signed this very note: another log's key
    // (staging's, say) vouches for nothing here.
    if (std::find(signers.begin(), signers.end(), checkpoint->origin) == signers.end()) {
      find("forged", at_seq,
           candidate.where + " names the log " + checkpoint->origin +
               ", but is not signed by that log's key");
      continue;
    }
    if (checkpoint->size == 0 ||
        checkpoint->size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      find("forged", at_seq, candidate.where + " signs a size no chain can have");
      continue;
    }
    const auto seq = static_cast<std::int64_t>(checkpoint->size);
    if (candidate.row_seq &&
        (*candidate.row_seq != seq || candidate.row_hash != checkpoint->hash)) {
      find("forged", *candidate.row_seq,
           candidate.where + ": the row's seq or hash is not what its note signs (seq " +
               std::to_string(seq) + ")");
      continue;
    }
    ++result.checkpoints_verified;
    verified.push_back({seq, checkpoint->hash});
  }
  std::map<std::int64_t, Bytes> hashes;  // at the verified checkpoints' seqs only
  for (const Signed& each : verified) hashes.emplace(each.seq, Bytes{});

  // 2. The chain, row by row. Every column must hold the type the schema gives it: SQLite lets
  // a writer retype a value (TEXT as BLOB, a NULL where '' was) without changing the bytes the
  // hash covers, and a retyped value no longer matches the queries auditors run.
  const bool versioned = HasColumn(db.get(), "audit", "hash_version");
  IJAZAT_ASSIGN_OR_RETURN(
      Statement rows,
      Prepare(db.get(), path,
              versioned
                  ? "SELECT seq, at, event, provider_id, consent_id, detail, prev_hash, hash, "
                    "hash_version, COALESCE(subject, x''), subject_key_version, "
                    "typeof(at) = 'integer' AND typeof(event) = 'text' AND "
                    "typeof(provider_id) = 'text' AND typeof(consent_id) = 'text' AND "
                    "typeof(detail) = 'text' AND typeof(prev_hash) = 'blob' AND "
                    "typeof(hash) = 'blob' AND typeof(hash_version) = 'integer' AND "
                    "typeof(subject) IN ('blob', 'null') AND "
                    "typeof(subject_key_version) = 'integer' "
                    "FROM audit ORDER BY seq"
                  : "SELECT seq, at, event, provider_id, consent_id, detail, prev_hash, hash, 1, "
                    "x'', 0, "
                    "typeof(at) = 'integer' AND typeof(event) = 'text' AND "
                    "typeof(provider_id) = 'text' AND typeof(consent_id) = 'text' AND "
                    "typeof(detail) = 'text' AND typeof(prev_hash) = 'blob' AND "
                    "typeof(hash) = 'blob' "
                    "FROM audit ORDER BY seq"));
  Bytes previous(sqlite::kAuditHashSize, 0);
  std::int64_t expected = 1;
  std::int64_t newest_at = std::numeric_limits<std::int64_t>::min();
  std::vector<std::pair<std::int64_t, std::int64_t>> seq_at;  // for the unsigned tail
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
    const std::int64_t version = sqlite3_column_int64(r, 8);
    event.hash_version = version == 1 || version == 2 ? static_cast<int>(version) : 0;
    event.subject.value = Blob(r, 9);
    const std::int64_t key_version = sqlite3_column_int64(r, 10);
    event.subject.key_version =
        key_version >= 0 && key_version <= std::numeric_limits<std::uint32_t>::max()
            ? static_cast<std::uint32_t>(key_version)
            : 0;
    const bool typed = sqlite3_column_int(r, 11) == 1;
    ++result.events;
    if (event.seq < 1) {
      find("edited", event.seq, "a row has seq " + std::to_string(event.seq) + ", below 1");
      continue;
    }
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
    const Bytes computed = sqlite::AuditHash(event.prev_hash, event);
    if (!typed) {
      find("edited", event.seq, "a column holds a value of another type than the schema's");
    } else if (event.hash_version == 0 || key_version != event.subject.key_version) {
      find("edited", event.seq, "its hash_version or subject key version is not one Ijazat writes");
    } else if (event.hash.size() != sqlite::kAuditHashSize || event.hash != computed) {
      find("edited", event.seq, "its contents (" + event.event + ") do not give its stored hash");
    }
    if (const auto at = hashes.find(event.seq); at != hashes.end()) at->second = event.hash;
    previous = event.hash;
    result.last_seq = event.seq;
    expected = event.seq < std::numeric_limits<std::int64_t>::max() ? event.seq + 1 : event.seq;
    newest_at = std::max(newest_at, event.at);
    seq_at.emplace_back(event.seq, event.at);
  }
  if (rc != SQLITE_DONE) {
    return Error(ErrorCode::kUnavailable,
                 "reading the audit chain of " + path + ": " + sqlite3_errmsg(db.get()),
                 "store_unavailable");
  }

  // 3. Each verified checkpoint against the chain.
  for (const Signed& each : verified) {
    if (each.seq > result.last_seq) {
      find("truncated", each.seq,
           "a checkpoint signs seq " + std::to_string(each.seq) + ", but the chain ends at seq " +
               std::to_string(result.last_seq) + ": events were removed from its end");
      continue;
    }
    const Bytes& hash = hashes[each.seq];
    if (hash.empty()) {
      find("gap", each.seq,
           "seq " + std::to_string(each.seq) + ", which a checkpoint signs, is missing");
    } else if (hash != each.hash) {
      find("rewritten", each.seq,
           "the chain's hash at seq " + std::to_string(each.seq) +
               " is not the one its checkpoint signs: the chain up to it was rewritten");
    } else {
      result.last_anchored_seq = std::max(result.last_anchored_seq, each.seq);
    }
  }
  if (result.events > 0 && result.checkpoints_verified == 0) {
    find("unanchored", 0,
         "no checkpoint verifies with the given keys: nothing vouches for this chain");
  } else if (result.last_seq > result.last_anchored_seq &&
             newest_at != std::numeric_limits<std::int64_t>::min()) {
    // The appliance signs every minute: events older than that, with newer ones after them, and
    // still after the last checkpoint, were never signed (an HSM outage, or a rewritten copy).
    for (const auto& [seq, at] : seq_at) {
      if (seq <= result.last_anchored_seq) continue;
      if (newest_at - at > options.max_unsigned_seconds) {
        find("unsigned", seq,
             "events from seq " + std::to_string(seq) +
                 " on are signed by no checkpoint, yet "
                 "the chain goes on for " +
                 std::to_string(newest_at - at) +
                 " s after them (the appliance signs every minute)");
      }
      break;
    }
  }
  return result;
}

}  // namespace ijazat::appliance
