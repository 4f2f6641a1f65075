// The default identity registry: a `citizens` table in an SQLite file of its own, read-only for
// the appliance and filled from CSV by `ijazat-registry import`.
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "identity.h"
#include "registry.h"
#include "sqlite_db.h"

namespace ijazat::appliance {
namespace {

using Poco::Int64;
using Poco::Data::Session;
using Poco::Data::Keywords::bind;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

constexpr std::size_t kAttributeCount = std::size(kIdentityAttributes);
constexpr std::uintmax_t kMaxCsvBytes = std::uintmax_t{64} * 1024 * 1024;
// 1: citizens and subscribers. 2: the number recorded at registration (citizens.msisdn) and
// the log of changed bindings (binding_changes). The appliance reads either version.
constexpr int kRegistrySchemaVersion = 2;

// kIdentityAttributes as an SQL column list; the names are constants, never input.
std::string AttributeColumns() {
  std::string columns;
  for (const char* attribute : kIdentityAttributes) {
    if (!columns.empty()) columns += ", ";
    columns += attribute;
  }
  return columns;
}

bool IsThirteenDigits(std::string_view cnic) {
  if (cnic.size() != 13) return false;
  for (const char c : cnic) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// "35202-1234567-1", "35202 1234567 1" and "3520212345671" all become "3520212345671".
std::optional<std::string> NormaliseCnic(std::string_view text) {
  std::string digits;
  for (const char c : text) {
    if (c == '-' || c == ' ' || c == '\t') continue;
    digits += c;
  }
  if (!IsThirteenDigits(digits)) return std::nullopt;
  return digits;
}

// A value quoted for an error message: printable ASCII only, at most 40 characters.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7f && c != '"') ? static_cast<char>(c) : '?';
  }
  if (text.size() > 40) out += "...";
  return out + "\"";
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
    text.remove_suffix(1);
  }
  return text;
}

// --- CSV (RFC 4180: comma separated, CRLF or LF, "quoted" fields with "" escapes) -------------

struct CsvRecord {
  int line = 0;  // where the record starts
  std::vector<std::string> fields;
};

class CsvParser {
 public:
  CsvParser(std::string_view text, std::string name) : text_(text), name_(std::move(name)) {
    if (text_.starts_with("\xEF\xBB\xBF")) text_.remove_prefix(3);  // UTF-8 byte order mark
  }

  Result<std::vector<CsvRecord>> Parse() {
    std::vector<CsvRecord> records;
    while (pos_ < text_.size()) {
      CsvRecord record;
      record.line = line_;
      bool blank = true;
      for (;;) {
        const int field_line = line_;
        std::string field;
        bool quoted = false;
        if (Peek() == '"') {
          quoted = true;
          ++pos_;
          for (;;) {
            if (pos_ >= text_.size()) return Fail(field_line, "unterminated quoted field");
            const char c = text_[pos_++];
            if (c == '"') {
              if (Peek() != '"') break;
              ++pos_;
            } else if (c == '\n') {
              ++line_;
            }
            field += c;
          }
          if (!AtFieldEnd()) return Fail(line_, "unexpected character after a closing quote");
        } else {
          while (!AtFieldEnd()) {
            const char c = text_[pos_++];
            if (c == '"') return Fail(line_, "quote inside an unquoted field");
            field += c;
          }
        }
        if (field.find('\0') != std::string::npos) return Fail(field_line, "NUL byte in a field");
        if (quoted || !field.empty()) blank = false;
        record.fields.push_back(std::move(field));
        if (Peek() == ',') {
          ++pos_;
          blank = false;
          continue;
        }
        ConsumeNewline();
        break;
      }
      if (!blank) records.push_back(std::move(record));
    }
    return records;
  }

  Error Fail(int line, std::string_view what) const {
    return Error(ErrorCode::kInvalidArgument,
                 name_ + ":" + std::to_string(line) + ": " + std::string(what),
                 "registry_csv_invalid");
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool AtFieldEnd() const {
    if (pos_ >= text_.size()) return true;
    const char c = text_[pos_];
    return c == ',' || c == '\n' ||
           (c == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n');
  }
  void ConsumeNewline() {
    if (Peek() == '\r') ++pos_;
    if (Peek() == '\n') {
      ++pos_;
      ++line_;
    }
  }

  std::string_view text_;
  std::string name_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

struct Citizen {
  std::string cnic;
  std::array<std::string, kAttributeCount> attributes;  // empty = absent
  std::string msisdn;  // the number recorded at registration, E.164; empty = none
};

std::optional<std::string> NormaliseSubscriberNumber(std::string_view text);

Error CsvError(const std::string& name, int line, std::string_view what) {
  return Error(ErrorCode::kInvalidArgument,
               name + ":" + std::to_string(line) + ": " + std::string(what),
               "registry_csv_invalid");
}

constexpr int kMsisdnSlot = -3;  // the number recorded at registration

Result<std::vector<Citizen>> ParseRegistryCsv(std::string_view text, const std::string& name,
                                              bool* has_msisdn) {
  CsvParser parser(text, name);
  IJAZAT_ASSIGN_OR_RETURN(std::vector<CsvRecord> records, parser.Parse());
  if (records.empty()) return CsvError(name, 1, "empty file; expected a header row");

  // Header: which attribute (or the cnic, -1) each column holds.
  const CsvRecord& header = records.front();
  std::vector<int> slots;
  std::optional<std::size_t> cnic_column;
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    const std::string_view column = Trim(header.fields[i]);
    int slot = -2;
    if (column == "cnic") {
      slot = -1;
    } else if (column == "msisdn") {
      slot = kMsisdnSlot;
    } else {
      for (std::size_t a = 0; a < kAttributeCount; ++a) {
        if (column == kIdentityAttributes[a]) slot = static_cast<int>(a);
      }
    }
    if (slot == -2) return CsvError(name, header.line, "unknown column " + Quote(column));
    for (std::size_t j = 0; j < i; ++j) {
      if (slots[j] == slot) return CsvError(name, header.line, "duplicate column " + Quote(column));
    }
    if (slot == -1) cnic_column = i;
    if (slot == kMsisdnSlot) *has_msisdn = true;
    slots.push_back(slot);
  }
  if (!cnic_column) return CsvError(name, header.line, "no \"cnic\" column");

  std::vector<Citizen> citizens;
  std::unordered_map<std::string, int> first_line;
  for (std::size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    if (record.fields.size() != slots.size()) {
      return CsvError(name, record.line,
                      "expected " + std::to_string(slots.size()) + " fields, found " +
                          std::to_string(record.fields.size()));
    }
    Citizen citizen;
    const auto cnic = NormaliseCnic(record.fields[*cnic_column]);
    if (!cnic) {
      return CsvError(name, record.line,
                      "cnic " + Quote(record.fields[*cnic_column]) + " is not 13 digits");
    }
    citizen.cnic = *cnic;
    const auto [it, inserted] = first_line.emplace(citizen.cnic, record.line);
    if (!inserted) {
      return CsvError(name, record.line,
                      "cnic duplicates the one on line " + std::to_string(it->second));
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] >= 0) citizen.attributes[static_cast<std::size_t>(slots[i])] = record.fields[i];
      if (slots[i] == kMsisdnSlot && !Trim(record.fields[i]).empty()) {
        const auto msisdn = NormaliseSubscriberNumber(record.fields[i]);
        if (!msisdn) {
          return CsvError(name, record.line,
                          "the msisdn " + Quote(record.fields[i]) +
                              " is not a number in E.164 (+ and 8 to 15 digits) or a Pakistani "
                              "mobile number");
        }
        citizen.msisdn = *msisdn;
      }
    }
    citizens.push_back(std::move(citizen));
  }
  return citizens;
}

struct SubscriberRow {
  std::string cnic;
  std::string msisdn;
};

// "+" and 8 to 15 digits, or a Pakistani number in any common form.
std::optional<std::string> NormaliseSubscriberNumber(std::string_view text) {
  text = Trim(text);
  if (auto pakistani = NormalizeMsisdn(text); pakistani.ok()) return std::move(pakistani).value();
  if (text.size() < 9 || text.size() > 16 || text[0] != '+') return std::nullopt;
  for (const char c : text.substr(1)) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::string(text);
}

Result<std::vector<SubscriberRow>> ParseSubscribersCsv(std::string_view text,
                                                       const std::string& name) {
  CsvParser parser(text, name);
  IJAZAT_ASSIGN_OR_RETURN(std::vector<CsvRecord> records, parser.Parse());
  if (records.empty()) return CsvError(name, 1, "empty file; expected the header cnic,msisdn");
  const CsvRecord& header = records.front();
  if (header.fields.size() != 2 || Trim(header.fields[0]) != "cnic" ||
      Trim(header.fields[1]) != "msisdn") {
    return CsvError(name, header.line, "the header must be exactly: cnic,msisdn");
  }
  std::vector<SubscriberRow> rows;
  std::set<std::pair<std::string, std::string>> seen;
  std::map<std::string, int> owners;  // msisdn -> line
  for (std::size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    if (record.fields.size() != 2) {
      return CsvError(name, record.line,
                      "expected 2 fields, found " + std::to_string(record.fields.size()));
    }
    const auto cnic = NormaliseCnic(record.fields[0]);
    if (!cnic) return CsvError(name, record.line, "the cnic is not 13 digits");
    const auto msisdn = NormaliseSubscriberNumber(record.fields[1]);
    if (!msisdn) {
      return CsvError(name, record.line,
                      "the msisdn is not a number in E.164 (+ and 8 to 15 digits) or a "
                      "Pakistani mobile number");
    }
    if (!seen.emplace(*cnic, *msisdn).second) {
      return CsvError(name, record.line, "this cnic and msisdn appear on an earlier line");
    }
    // A SIM is registered to one CNIC: the same number under two CNICs is a mistake.
    const auto [owner, first] = owners.emplace(*msisdn, record.line);
    if (!first) {
      return CsvError(name, record.line,
                      "the msisdn is registered to another cnic on line " +
                          std::to_string(owner->second) + "; a SIM has one owner");
    }
    rows.push_back({*cnic, *msisdn});
  }
  return rows;
}

Result<std::string> ReadCsvFile(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return Error(ErrorCode::kNotFound, path + ": cannot read the file", "registry_csv_missing");
  }
  if (size > kMaxCsvBytes) {
    return Error(ErrorCode::kInvalidArgument, path + ": larger than 64 MiB",
                 "registry_csv_too_large");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(ErrorCode::kNotFound, path + ": cannot read the file", "registry_csv_missing");
  }
  std::string text;
  text.reserve(static_cast<std::size_t>(size));
  text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (text.size() > kMaxCsvBytes) {
    return Error(ErrorCode::kInvalidArgument, path + ": larger than 64 MiB",
                 "registry_csv_too_large");
  }
  return text;
}

// --- The registry -----------------------------------------------------------------------------

class SqliteRegistry final : public IdentityRegistry {
 public:
  explicit SqliteRegistry(sqlite::ConnectionPool::Options options) : pool_(std::move(options)) {}

  Status Check() {
    return sqlite::RunRead(pool_, "opening the registry", [](sqlite::Connection& s) -> Status {
      Int64 tables = 0;
      Int64 version = 0;
      s << "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'citizens'",
          into(tables), now;
      s << "PRAGMA user_version", into(version), now;
      if (tables != 1 || version < 1 || version > kRegistrySchemaVersion) {
        return Error(ErrorCode::kFailedPrecondition,
                     "the file is not an Ijazat registry of schema version 1 to " +
                         std::to_string(kRegistrySchemaVersion),
                     "registry_invalid");
      }
      return OkStatus();
    });
  }

  Result<std::optional<std::map<std::string, std::string>>> Lookup(
      const std::string& cnic, const std::vector<std::string>& scopes) override {
    using Out = std::optional<std::map<std::string, std::string>>;
    if (!IsThirteenDigits(cnic)) {
      return Error(ErrorCode::kInvalidArgument, "the CNIC is not 13 digits", "cnic_invalid");
    }
    return sqlite::RunRead(
        pool_, "looking up a citizen",
        [&](sqlite::Connection& s) -> Result<Out> {
          static const std::string sql =
              "SELECT " + AttributeColumns() + " FROM citizens WHERE cnic = ?";
          sqlite::Query query = s.Prepare(sql);
          query.Bind(cnic);
          if (!query.Step()) return Out();
          std::array<std::string, kAttributeCount> values;
          for (std::size_t a = 0; a < kAttributeCount; ++a) {
            values[a] = query.Text(static_cast<int>(a));
          }
          std::map<std::string, std::string> attributes;
          for (const std::string& scope : scopes) {
            for (std::size_t a = 0; a < kAttributeCount; ++a) {
              if (scope == kIdentityAttributes[a] && !values[a].empty()) {
                attributes[scope] = values[a];
              }
            }
          }
          return Out(std::move(attributes));
        },
        sqlite::ReadScope::kOneStatement);
  }

  Status CheckBindingSource() override {
    return sqlite::RunRead(pool_, "checking the binding records", [this](sqlite::Connection& s) {
      return HasBindingRecords(s) ? OkStatus()
                                  : Error(ErrorCode::kFailedPrecondition,
                                          "the registry holds no subscriber records and no "
                                          "numbers recorded at registration; import them with "
                                          "ijazat-registry import-subscribers (or import "
                                          "citizens with an msisdn column)",
                                          "subscribers_missing");
    });
  }

  Result<Binding> CheckBinding(const std::string& cnic, const std::string& e164) override {
    if (!IsThirteenDigits(cnic)) {
      return Error(ErrorCode::kInvalidArgument, "the CNIC is not 13 digits", "cnic_invalid");
    }
    return sqlite::RunRead(
        pool_, "checking a number's binding", [&](sqlite::Connection& s) -> Result<Binding> {
          if (!HasBindingRecords(s)) {
            return Error(ErrorCode::kFailedPrecondition,
                         "the registry holds no subscriber records and no numbers recorded at "
                         "registration; import them with ijazat-registry import-subscribers",
                         "subscribers_missing");
          }
          const bool subscribers = HasTable(s, "subscribers");
          if (subscribers) {
            sqlite::Query query =
                s.Prepare("SELECT 1 FROM subscribers WHERE cnic = ? AND msisdn = ?");
            if (query.Bind(cnic).Bind(e164).Step()) return Binding::kBound;
          }
          if (Version(s) >= 2) {
            // The number recorded at registration binds unless an operator's records give the
            // number to someone: the SIM's current owner outranks an old registration.
            sqlite::Query query = s.Prepare(
                subscribers ? "SELECT 1 FROM citizens WHERE cnic = ? AND msisdn = ? AND NOT "
                              "EXISTS (SELECT 1 FROM subscribers WHERE msisdn = citizens.msisdn)"
                            : "SELECT 1 FROM citizens WHERE cnic = ? AND msisdn = ?");
            if (query.Bind(cnic).Bind(e164).Step()) return Binding::kBound;
          }
          return Binding::kNotBound;
        });
  }

  Result<BindingChanges> ChangedBindings(std::int64_t after, int limit) override {
    return sqlite::RunRead(
        pool_, "reading changed bindings", [&](sqlite::Connection& s) -> Result<BindingChanges> {
          BindingChanges out;
          if (Version(s) < 2 || !HasTable(s, "binding_changes")) return out;
          {
            sqlite::Query meta = s.Prepare("SELECT generation FROM registry_meta WHERE id = 1");
            if (meta.Step()) out.generation = meta.Text(0);
          }
          {
            sqlite::Query last = s.Prepare("SELECT COALESCE(MAX(seq), 0) FROM binding_changes");
            out.last = last.Step() ? last.Int(0) : 0;
          }
          sqlite::Query query =
              s.Prepare("SELECT seq, cnic FROM binding_changes WHERE seq > ? ORDER BY seq LIMIT ?");
          query.Bind(after).Bind(std::int64_t{limit});
          while (query.Step()) {
            out.changes.push_back({query.Int(0), query.Text(1)});
          }
          return out;
        });
  }

  Status CheckHealth() override {
    return sqlite::RunRead(pool_, "checking the registry", [](sqlite::Connection& s) -> Status {
      Int64 one = 0;
      s << "SELECT COUNT(*) FROM (SELECT 1 FROM citizens LIMIT 1)", into(one), now;
      return OkStatus();
    });
  }

 private:
  static bool HasTable(sqlite::Connection& s, const char* name) {
    sqlite::Query query =
        s.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    return query.Bind(std::string_view(name)).Step();
  }
  // Read on every call: an import may upgrade the file while the appliance runs.
  static std::int64_t Version(sqlite::Connection& s) {
    sqlite::Query query = s.Prepare("PRAGMA user_version");
    return query.Step() ? query.Int(0) : 0;
  }
  static bool HasBindingRecords(sqlite::Connection& s) {
    if (HasTable(s, "subscribers")) {
      sqlite::Query any = s.Prepare("SELECT 1 FROM subscribers LIMIT 1");
      if (any.Step()) return true;
    }
    if (Version(s) >= 2) {
      sqlite::Query any = s.Prepare("SELECT 1 FROM citizens WHERE msisdn IS NOT NULL LIMIT 1");
      if (any.Step()) return true;
    }
    return false;
  }

  sqlite::ConnectionPool pool_;
};

Error ImportFailed(const Poco::Exception& e) {
  const Error mapped = sqlite::MapException("importing the registry", e);
  switch (mapped.code()) {
    case ErrorCode::kUnavailable:
      return Error(mapped.code(), mapped.message(), "registry_unavailable");
    case ErrorCode::kDataLoss:
      return Error(mapped.code(), mapped.message(), "registry_corrupt");
    default:
      return Error(mapped.code(), mapped.message(), "registry_error");
  }
}

}  // namespace

Result<std::unique_ptr<IdentityRegistry>> OpenSqliteRegistry(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::is_regular_file(path, ec)) {
    return Error(ErrorCode::kNotFound, "the registry database does not exist", "registry_missing");
  }
  sqlite::ConnectionPool::Options options;
  options.uri = sqlite::FileUri(path, "mode=ro");
  options.read_only = true;
  options.max_connections = 4;
  options.unavailable_reason = "registry_unavailable";
  options.corrupt_reason = "registry_corrupt";
  auto registry = std::make_unique<SqliteRegistry>(std::move(options));
  IJAZAT_RETURN_IF_ERROR(registry->Check());
  return std::unique_ptr<IdentityRegistry>(std::move(registry));
}

// Opens the registry database for writing (created if missing), and runs `fill` in one
// transaction after making sure of the schema; all or nothing.
Status WriteRegistry(const std::string& db_path, const std::function<void(Session&)>& fill) {
  IJAZAT_RETURN_IF_ERROR(sqlite::CreatePrivateFile(db_path, "registry_unavailable"));
  try {
    sqlite::RegisterConnector();
    Session session("SQLite", sqlite::FileUri(db_path, "mode=rw"));
    session << "PRAGMA busy_timeout = 5000", now;
    // A rollback journal, not WAL: the appliance opens the file read-only, which WAL complicates.
    session << "PRAGMA journal_mode = DELETE", now;
    session << "PRAGMA synchronous = FULL", now;
    session << "BEGIN IMMEDIATE", now;
    try {
      Int64 version = 0;
      session << "PRAGMA user_version", into(version), now;
      if (version > kRegistrySchemaVersion) {
        session << "ROLLBACK", now;
        return Error(ErrorCode::kFailedPrecondition,
                     "the registry database has a newer schema version", "registry_invalid");
      }
      std::string columns;
      for (const char* attribute : kIdentityAttributes) {
        columns += std::string(", ") + attribute + " TEXT";
      }
      session << "CREATE TABLE IF NOT EXISTS citizens (cnic TEXT PRIMARY KEY" + columns +
                     ", msisdn TEXT)",
          now;
      if (version == 1) session << "ALTER TABLE citizens ADD COLUMN msisdn TEXT", now;
      // Every import that may change which numbers a CNIC binds appends the CNIC here; the
      // appliance reads it in order and checks those citizens' enrolments again.
      session << "CREATE TABLE IF NOT EXISTS binding_changes (seq INTEGER PRIMARY KEY "
                 "AUTOINCREMENT, cnic TEXT NOT NULL)",
          now;
      // Which log this is: a registry file replaced by another starts a log of its own, and
      // the appliance then reads that one from its start.
      session << "CREATE TABLE IF NOT EXISTS registry_meta (id INTEGER PRIMARY KEY CHECK (id = "
                 "1), generation TEXT NOT NULL)",
          now;
      session << "INSERT OR IGNORE INTO registry_meta (id, generation) VALUES (1, "
                 "lower(hex(randomblob(16))))",
          now;
      session << "CREATE TABLE IF NOT EXISTS subscribers (cnic TEXT NOT NULL, msisdn TEXT NOT "
                 "NULL, PRIMARY KEY (cnic, msisdn))",
          now;
      session << "CREATE INDEX IF NOT EXISTS subscribers_by_msisdn ON subscribers (msisdn)", now;
      session << "CREATE INDEX IF NOT EXISTS citizens_by_msisdn ON citizens (msisdn)", now;
      session << "PRAGMA user_version = " + std::to_string(kRegistrySchemaVersion), now;
      fill(session);
      session << "COMMIT", now;
    } catch (...) {
      try {
        session << "ROLLBACK", now;
      } catch (...) {  // NOLINT(bugprone-empty-catch): the first error is the one to report
      }
      throw;
    }
  } catch (const Poco::Exception& e) {
    return ImportFailed(e);
  } catch (...) {
    return Error(ErrorCode::kInternal, "importing into the registry: unexpected error",
                 "registry_error");
  }
  return OkStatus();
}

Result<int> ImportRegistryCsv(const std::string& db_path, const std::string& csv_path) {
  // Everything is read and checked before the database is touched: all or nothing.
  IJAZAT_ASSIGN_OR_RETURN(const std::string text, ReadCsvFile(csv_path));
  bool has_msisdn = false;
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<Citizen> citizens,
                          ParseRegistryCsv(text, csv_path, &has_msisdn));
  IJAZAT_RETURN_IF_ERROR(WriteRegistry(db_path, [&](Session& session) {
    if (citizens.empty()) return;
    std::vector<std::string> cnics;
    std::vector<std::string> numbers;
    std::array<std::vector<std::string>, kAttributeCount> values;
    for (const Citizen& citizen : citizens) {
      cnics.push_back(citizen.cnic);
      numbers.push_back(citizen.msisdn);
      for (std::size_t a = 0; a < kAttributeCount; ++a) values[a].push_back(citizen.attributes[a]);
    }
    if (has_msisdn) {
      // The citizens whose recorded number changes are logged for the appliance to check.
      session << "CREATE TEMP TABLE incoming (cnic TEXT PRIMARY KEY, msisdn TEXT)", now;
      session << "INSERT INTO incoming (cnic, msisdn) VALUES (?, NULLIF(?, ''))", use(cnics),
          use(numbers), now;
      session << "INSERT INTO binding_changes (cnic) SELECT incoming.cnic FROM incoming LEFT "
                 "JOIN citizens ON citizens.cnic = incoming.cnic WHERE citizens.cnic IS NULL OR "
                 "citizens.msisdn IS NOT incoming.msisdn ORDER BY incoming.cnic",
          now;
      session << "DROP TABLE incoming", now;
    }
    static_assert(kAttributeCount == 7, "the statement binds every attribute");
    std::string update;
    for (const char* attribute : kIdentityAttributes) {
      update += std::string(update.empty() ? "" : ", ") + attribute + " = excluded." + attribute;
    }
    // Without an msisdn column, the numbers recorded before are kept, not erased.
    if (has_msisdn) update += ", msisdn = excluded.msisdn";
    session << "INSERT INTO citizens (cnic, " + AttributeColumns() +
                   ", msisdn) VALUES (?, NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), "
                   "NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, '')) "
                   "ON CONFLICT (cnic) DO UPDATE SET " +
                   update,
        use(cnics), use(values[0]), use(values[1]), use(values[2]), use(values[3]), use(values[4]),
        use(values[5]), use(values[6]), use(numbers), now;
  }));
  return static_cast<int>(citizens.size());
}

Result<int> ImportSubscribersCsv(const std::string& db_path, const std::string& csv_path) {
  IJAZAT_ASSIGN_OR_RETURN(const std::string text, ReadCsvFile(csv_path));
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<SubscriberRow> rows,
                          ParseSubscribersCsv(text, csv_path));
  IJAZAT_RETURN_IF_ERROR(WriteRegistry(db_path, [&](Session& session) {
    if (rows.empty()) return;
    std::map<std::string, std::set<std::string>> incoming;  // cnic -> its numbers in the file
    for (const SubscriberRow& row : rows) incoming[row.cnic].insert(row.msisdn);
    // Every CNIC whose bound numbers may change: those in the file whose numbers differ, the
    // previous owners of numbers that move to another CNIC (a recycled SIM), and those whose
    // number recorded at registration is now an operator's record for someone.
    std::set<std::string> changed;
    for (const auto& [cnic, numbers] : incoming) {
      std::vector<std::string> before;
      session << "SELECT msisdn FROM subscribers WHERE cnic = ?", bind(cnic), into(before), now;
      if (std::set<std::string>(before.begin(), before.end()) != numbers) changed.insert(cnic);
      session << "DELETE FROM subscribers WHERE cnic = ?", bind(cnic), now;
    }
    for (const SubscriberRow& row : rows) {
      std::vector<std::string> owners;
      std::vector<std::string> registered;
      session << "SELECT cnic FROM subscribers WHERE msisdn = ? AND cnic <> ?", bind(row.msisdn),
          bind(row.cnic), into(owners), now;
      session << "SELECT cnic FROM citizens WHERE msisdn = ? AND cnic <> ?", bind(row.msisdn),
          bind(row.cnic), into(registered), now;
      changed.insert(owners.begin(), owners.end());
      changed.insert(registered.begin(), registered.end());
      // A SIM has one owner: the number leaves whoever held it before.
      session << "DELETE FROM subscribers WHERE msisdn = ? AND cnic <> ?", bind(row.msisdn),
          bind(row.cnic), now;
    }
    std::vector<std::string> cnics;
    std::vector<std::string> numbers;
    for (const SubscriberRow& row : rows) {
      cnics.push_back(row.cnic);
      numbers.push_back(row.msisdn);
    }
    session << "INSERT INTO subscribers (cnic, msisdn) VALUES (?, ?)", use(cnics), use(numbers),
        now;
    if (!changed.empty()) {
      std::vector<std::string> logged(changed.begin(), changed.end());
      session << "INSERT INTO binding_changes (cnic) VALUES (?)", use(logged), now;
    }
  }));
  return static_cast<int>(rows.size());
}

}  // namespace ijazat::appliance
