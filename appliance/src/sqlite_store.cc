// ConsentStore on an SQLite file (POCO Data's SQLite connector).
//
// Every writer runs in BEGIN IMMEDIATE, so it holds SQLite's single write lock from its first
// read: a read-decide-update sequence inside one writer cannot interleave with another writer,
// whether in this process (also serialised by `writer_`) or another one (busy_timeout). The
// decisive updates are conditional all the same (`WHERE state = 'pending' AND expires_at > ?`)
// and report what they changed (RETURNING), so a rule that the read missed cannot be broken.
// Concurrent writers share one such transaction and its COMMIT (sqlite::GroupCommitter), each
// in its own savepoint, one after the other: the reasoning above holds for each of them.
#include <Poco/Data/Statement.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <ctime>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sqlite_audit.h"
#include "sqlite_db.h"
#include "sqlite_schema.h"
#include "store.h"

namespace ijazat::appliance {
namespace {

using Poco::Int64;
using Poco::Data::BLOB;
using Session = sqlite::Connection;
using Poco::Data::Keywords::bind;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using sqlite::FromBlob;
using sqlite::Query;
using sqlite::ReadRow;
using sqlite::ReadRows;
using sqlite::ToBlob;
using sqlite::Transaction;

constexpr Int64 kFailureWindowSeconds = kCnicFailureWindowSeconds;
// Number changes are counted in windows of at most a year (sms.number_changes.window).
constexpr Int64 kNumberChangeHorizonSeconds = Int64{366} * 24 * 60 * 60;
constexpr std::size_t kMaxErrorText = 1000;
constexpr int kMaxRows = 10000;

// --- Conversions ------------------------------------------------------------------------------

Error Corrupt(std::string_view what) {
  return Error(ErrorCode::kDataLoss, "stored " + std::string(what) + " is malformed",
               "store_corrupt");
}

Error Invalid(std::string_view what) {
  return Error(ErrorCode::kInvalidArgument, std::string(what), "invalid_argument");
}

// Reads stored integers into narrower types, remembering whether any was out of range.
class Narrow {
 public:
  std::uint32_t U32(Int64 v) {
    if (v < 0 || v > std::numeric_limits<std::uint32_t>::max()) {
      ok_ = false;
      return 0;
    }
    return static_cast<std::uint32_t>(v);
  }
  int Int(Int64 v) {
    if (v < INT_MIN || v > INT_MAX) {
      ok_ = false;
      return 0;
    }
    return static_cast<int>(v);
  }
  bool ok() const { return ok_; }

 private:
  bool ok_ = true;
};

std::string ScopesToJson(const std::vector<std::string>& scopes) {
  return nlohmann::json(scopes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<std::vector<std::string>> ScopesFromJson(const std::string& text) {
  const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array()) return std::nullopt;
  std::vector<std::string> scopes;
  for (const auto& item : parsed) {
    if (!item.is_string()) return std::nullopt;
    scopes.push_back(item.get<std::string>());
  }
  return scopes;
}

std::string ClampText(const std::string& text, std::size_t max) {
  return text.size() <= max ? text : text.substr(0, max);
}

Status CheckIndex(const BlindIndex& index, std::string_view what) {
  if (index.value.empty()) return Invalid(std::string(what) + " is empty");
  return OkStatus();
}

Status CheckSealed(const Sealed& sealed, std::string_view what) {
  if (sealed.box.empty()) return Invalid(std::string(what) + " is empty");
  return OkStatus();
}

Status CheckLimit(int limit) {
  if (limit < 0) return Invalid("limit is negative");
  return OkStatus();
}

// --- Rows -------------------------------------------------------------------------------------

constexpr const char* kConsentColumns =
    "id, provider_id, purpose, scopes, cnic_index, cnic_key_version, cnic_sealed, "
    "cnic_sealed_key_version, deliverable, state, created_at, expires_at, attempts, max_attempts, "
    "otp_key_version, otp_digits, policy_version, policy_hash, COALESCE(reference, ''), "
    "granted_at, max_uses, uses, receipt_key_version, receipt, updated_at";
using ConsentRow =
    std::tuple<std::string, std::string, std::string, std::string, BLOB, Int64, BLOB, Int64, Int64,
               std::string, Int64, Int64, Int64, Int64, Int64, Int64, std::string, std::string,
               std::string, Int64, Int64, Int64, Int64, std::string, Int64>;

Result<Consent> ToConsent(const ConsentRow& row) {
  Narrow n;
  Consent c;
  c.id = std::get<0>(row);
  c.provider_id = std::get<1>(row);
  c.purpose = std::get<2>(row);
  auto scopes = ScopesFromJson(std::get<3>(row));
  if (!scopes) return Corrupt("consent scopes");
  c.scopes = std::move(*scopes);
  c.cnic = {FromBlob(std::get<4>(row)), n.U32(std::get<5>(row))};
  c.cnic_sealed = {FromBlob(std::get<6>(row)), n.U32(std::get<7>(row))};
  c.deliverable = std::get<8>(row) != 0;
  const auto state = ParseConsentState(std::get<9>(row));
  if (!state) return Corrupt("consent state");
  c.state = *state;
  c.created_at = std::get<10>(row);
  c.expires_at = std::get<11>(row);
  c.attempts = n.Int(std::get<12>(row));
  c.max_attempts = n.Int(std::get<13>(row));
  c.otp_key_version = n.U32(std::get<14>(row));
  c.otp_digits = n.Int(std::get<15>(row));
  c.policy_version = std::get<16>(row);
  c.policy_hash = std::get<17>(row);
  c.reference = std::get<18>(row);
  c.granted_at = std::get<19>(row);
  c.max_uses = n.Int(std::get<20>(row));
  c.uses = n.Int(std::get<21>(row));
  c.receipt_key_version = n.U32(std::get<22>(row));
  c.receipt = std::get<23>(row);
  c.updated_at = std::get<24>(row);
  if (!n.ok()) return Corrupt("consent counter");
  return c;
}

constexpr const char* kEnrolmentColumns =
    "cnic_index, cnic_key_version, phone_index, phone_key_version, phone_sealed, "
    "phone_sealed_key_version, enrolled_at, updated_at, hold_until, locked, "
    "COALESCE(cnic_sealed, x''), cnic_sealed_key_version, COALESCE(previous_phone_index, x''), "
    "previous_phone_key_version, COALESCE(previous_phone_sealed, x''), "
    "previous_phone_sealed_key_version, suspended, revision";
using EnrolmentRow = std::tuple<BLOB, Int64, BLOB, Int64, BLOB, Int64, Int64, Int64, Int64, Int64,
                                BLOB, Int64, BLOB, Int64, BLOB, Int64, Int64, Int64>;

Result<Enrolment> ToEnrolment(const EnrolmentRow& row) {
  Narrow n;
  Enrolment e;
  e.cnic = {FromBlob(std::get<0>(row)), n.U32(std::get<1>(row))};
  e.phone = {FromBlob(std::get<2>(row)), n.U32(std::get<3>(row))};
  e.phone_sealed = {FromBlob(std::get<4>(row)), n.U32(std::get<5>(row))};
  e.enrolled_at = std::get<6>(row);
  e.updated_at = std::get<7>(row);
  e.hold_until = std::get<8>(row);
  e.locked = std::get<9>(row) != 0;
  e.cnic_sealed = {FromBlob(std::get<10>(row)), n.U32(std::get<11>(row))};
  e.previous_phone = {FromBlob(std::get<12>(row)), n.U32(std::get<13>(row))};
  e.previous_phone_sealed = {FromBlob(std::get<14>(row)), n.U32(std::get<15>(row))};
  e.suspended = std::get<16>(row) != 0;
  e.revision = std::get<17>(row);
  if (!n.ok()) return Corrupt("enrolment key version");
  return e;
}

Error EnrolmentChanged() {
  return Error(ErrorCode::kFailedPrecondition,
               "the enrolment changed since it was read; read it again", "enrolment_changed");
}

constexpr const char* kMessageColumns =
    "id, kind, COALESCE(consent_id, ''), cnic_index IS NOT NULL, COALESCE(cnic_index, x''), "
    "cnic_key_version, recipient, recipient_key_version, params, status, attempts, created_at, "
    "next_attempt_at, not_after, COALESCE(gateway_id, ''), last_error, "
    "COALESCE(phone_index, x''), phone_key_version, COALESCE(provider_id, '')";
using MessageRow = std::tuple<Int64, std::string, std::string, Int64, BLOB, Int64, BLOB, Int64,
                              std::string, std::string, Int64, Int64, Int64, Int64, std::string,
                              std::string, BLOB, Int64, std::string>;

Result<OutboxMessage> ToMessage(const MessageRow& row) {
  Narrow n;
  OutboxMessage m;
  m.id = std::get<0>(row);
  const auto kind = ParseOutboxKind(std::get<1>(row));
  if (!kind) return Corrupt("message kind");
  m.kind = *kind;
  m.consent_id = std::get<2>(row);
  if (std::get<3>(row) != 0) {
    m.cnic = BlindIndex{FromBlob(std::get<4>(row)), n.U32(std::get<5>(row))};
  }
  m.recipient = {FromBlob(std::get<6>(row)), n.U32(std::get<7>(row))};
  m.params = std::get<8>(row);
  const auto status = ParseOutboxStatus(std::get<9>(row));
  if (!status) return Corrupt("message status");
  m.status = *status;
  m.attempts = n.Int(std::get<10>(row));
  m.created_at = std::get<11>(row);
  m.next_attempt_at = std::get<12>(row);
  m.not_after = std::get<13>(row);
  m.gateway_id = std::get<14>(row);
  m.last_error = std::get<15>(row);
  if (Bytes phone = FromBlob(std::get<16>(row)); !phone.empty()) {
    m.phone = BlindIndex{std::move(phone), n.U32(std::get<17>(row))};
  }
  m.provider_id = std::get<18>(row);
  if (!n.ok()) return Corrupt("message counter");
  return m;
}

// --- Statements used inside transactions (they throw what POCO throws) -------------------------

// Rows changed by an UPDATE ... RETURNING (or selected), stepping to the end.
int CountRows(Query& query) {
  int rows = 0;
  while (query.Step()) ++rows;
  return rows;
}

Result<std::optional<Consent>> LoadConsent(Session& session, const std::string& id) {
  static const std::string sql =
      std::string("SELECT ") + kConsentColumns + " FROM consents WHERE id = ?";
  Query query = session.Prepare(sql);
  query.Bind(id);
  if (!query.Step()) return std::optional<Consent>();
  IJAZAT_ASSIGN_OR_RETURN(Consent consent, ToConsent(ReadRow<ConsentRow>(query)));
  return std::optional<Consent>(std::move(consent));
}

Result<Consent> LoadExistingConsent(Session& session, const std::string& id) {
  IJAZAT_ASSIGN_OR_RETURN(auto consent, LoadConsent(session, id));
  if (!consent) return Error(ErrorCode::kNotFound, "no such consent", "consent_not_found");
  return std::move(*consent);
}

Status CheckMessage(const OutboxMessage& m) {
  if (m.cnic) IJAZAT_RETURN_IF_ERROR(CheckIndex(*m.cnic, "message cnic index"));
  if (m.phone) IJAZAT_RETURN_IF_ERROR(CheckIndex(*m.phone, "message phone index"));
  // A queued code has no recipient yet: the dispatcher decides it (ClaimCode).
  if (m.kind == OutboxKind::kOtp && m.recipient.box.empty()) {
    if (m.consent_id.empty() || !m.cnic) return Invalid("a code needs its consent and CNIC");
    return OkStatus();
  }
  return CheckSealed(m.recipient, "message recipient");
}

Status InsertMessages(Session& session, const std::vector<OutboxMessage>& messages) {
  for (const OutboxMessage& m : messages) IJAZAT_RETURN_IF_ERROR(CheckMessage(m));
  for (const OutboxMessage& m : messages) {
    const Bytes none;
    session
        .Prepare(
            "INSERT INTO outbox (kind, consent_id, cnic_index, cnic_key_version, recipient, "
            "recipient_key_version, params, status, attempts, created_at, next_attempt_at, "
            "not_after, gateway_id, last_error, phone_index, phone_key_version, provider_id) "
            "VALUES (?, NULLIF(?, ''), NULLIF(?, x''), ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), "
            "?, NULLIF(?, x''), ?, NULLIF(?, ''))")
        .Bind(OutboxKindName(m.kind))
        .Bind(m.consent_id)
        .Bind(m.cnic ? m.cnic->value : none)
        .Bind(std::int64_t{m.cnic ? m.cnic->key_version : 0})
        .Bind(m.recipient.box)
        .Bind(std::int64_t{m.recipient.key_version})
        .Bind(m.params.empty() ? std::string_view("{}") : std::string_view(m.params))
        .Bind(OutboxStatusName(m.status))
        .Bind(std::int64_t{m.attempts})
        .Bind(m.created_at)
        .Bind(m.next_attempt_at)
        .Bind(m.not_after)
        .Bind(m.gateway_id)
        .Bind(ClampText(m.last_error, kMaxErrorText))
        .Bind(m.phone ? m.phone->value : none)
        .Bind(std::int64_t{m.phone ? m.phone->key_version : 0})
        .Bind(m.provider_id)
        .Run();
  }
  return OkStatus();
}

// The messages that count against SMS caps: every one that went out or is about to (queued
// notices and replies), but not a code still waiting for the dispatcher's decision, nor one
// that was dropped.
constexpr const char* kCountedMessage =
    "status <> 'dropped' AND NOT (kind = 'otp' AND status = 'queued')";

// Counts for caps at `at`: binds are filled by the caller in the order of the placeholders.
SmsCounts ReadCounts(Session& s, const BlindIndex& cnic, const std::string& provider_id,
                     const std::vector<BlindIndex>& phones, Timestamp at) {
  constexpr Int64 kHour = 3600;
  constexpr Int64 kDay = 24 * kHour;
  SmsCounts counts;
  {
    static const std::string sql =
        std::string(
            "SELECT COALESCE(SUM(created_at > ? AND provider_id = ?), 0), "
            "COALESCE(SUM(created_at > ? AND provider_id = ?), 0), "
            "COALESCE(SUM(created_at > ?), 0), COUNT(*) FROM outbox "
            "WHERE cnic_index = ? AND created_at > ? AND ") +
        kCountedMessage;
    Query query = s.Prepare(sql);
    query.Bind(at - kHour)
        .Bind(provider_id)
        .Bind(at - kDay)
        .Bind(provider_id)
        .Bind(at - kHour)
        .Bind(cnic.value)
        .Bind(at - kDay);
    if (query.Step()) {
      counts.cnic_provider_hour = static_cast<int>(query.Int(0));
      counts.cnic_provider_day = static_cast<int>(query.Int(1));
      counts.cnic_hour = static_cast<int>(query.Int(2));
      counts.cnic_day = static_cast<int>(query.Int(3));
    }
  }
  for (const BlindIndex& phone : phones) {
    static const std::string sql =
        std::string(
            "SELECT COALESCE(SUM(created_at > ? AND provider_id = ?), 0), "
            "COALESCE(SUM(provider_id = ?), 0), COALESCE(SUM(created_at > ?), 0), COUNT(*), "
            "COALESCE(SUM(created_at > ? AND kind IN ('help', 'reply', 'enrolled')), 0), "
            "COALESCE(SUM(kind IN ('help', 'reply', 'enrolled')), 0) FROM outbox "
            "WHERE phone_index = ? AND phone_key_version = ? AND created_at > ? AND ") +
        kCountedMessage;
    Query query = s.Prepare(sql);
    query.Bind(at - kHour)
        .Bind(provider_id)
        .Bind(provider_id)
        .Bind(at - kHour)
        .Bind(at - kHour)
        .Bind(phone.value)
        .Bind(std::int64_t{phone.key_version})
        .Bind(at - kDay);
    if (query.Step()) {
      counts.number_provider_hour += static_cast<int>(query.Int(0));
      counts.number_provider_day += static_cast<int>(query.Int(1));
      counts.number_hour += static_cast<int>(query.Int(2));
      counts.number_day += static_cast<int>(query.Int(3));
      counts.number_replies_hour += static_cast<int>(query.Int(4));
      counts.number_replies_day += static_cast<int>(query.Int(5));
    }
  }
  return counts;
}

// The event as recorded: naming the citizen it concerns when the caller did not.
AuditEvent About(const AuditEvent& audit, const BlindIndex& subject) {
  AuditEvent event = audit;
  if (event.subject.value.empty()) event.subject = subject;
  return event;
}

// A pending or granted consent whose time has passed becomes expired, with its own audit link.
Status MarkExpired(Session& session, const Consent& consent, Timestamp at) {
  session << "UPDATE consents SET state = 'expired', updated_at = ? "
             "WHERE id = ? AND state IN ('pending', 'granted')",
      bind(static_cast<Int64>(at)), bind(consent.id), now;
  AuditEvent event;
  event.at = at;
  event.event = "consent.expired";
  event.provider_id = consent.provider_id;
  event.consent_id = consent.id;
  event.detail = R"({"from":")" + std::string(ConsentStateName(consent.state)) + "\"}";
  event.subject = consent.cnic;
  return sqlite::AppendAudit(session, event);
}

// One send attempt's outcome. A send attempt (sent, failed, or queued again to retry) counts;
// a delivery report or a drop does not. A settled message (delivered, failed, dropped) keeps its
// status and error: a delivery report can overtake the dispatcher's record of the hand-over.
Status ApplyMessageUpdate(Session& session, const MessageUpdate& u) {
  const bool attempt = u.status == OutboxStatus::kSent || u.status == OutboxStatus::kFailed ||
                       u.status == OutboxStatus::kQueued;
  Query update = session.Prepare(
      "UPDATE outbox SET "
      "next_attempt_at = CASE WHEN status IN ('queued', 'sent') THEN ? ELSE next_attempt_at END, "
      "last_error = CASE WHEN status IN ('queued', 'sent') "
      "THEN COALESCE(NULLIF(?, ''), last_error) ELSE last_error END, "
      "status = CASE WHEN status IN ('queued', 'sent') THEN ? ELSE status END, "
      "attempts = attempts + ?, gateway_id = COALESCE(NULLIF(?, ''), gateway_id) "
      "WHERE id = ? RETURNING id");
  update.Bind(u.next_attempt_at)
      .Bind(ClampText(u.error, kMaxErrorText))
      .Bind(OutboxStatusName(u.status))
      .Bind(std::int64_t{attempt ? 1 : 0})
      .Bind(u.gateway_id)
      .Bind(u.id);
  if (CountRows(update) == 0) {
    return Error(ErrorCode::kNotFound, "no such message", "message_not_found");
  }
  return OkStatus();
}

// This provider's failures for the CNIC in the sliding window, the CNIC's failures in a row
// and this provider's; binds: cnic, provider, window start, cnic, cnic, provider.
std::string FailureCountersSql() {
  return "SELECT (SELECT COUNT(*) FROM code_failures WHERE cnic_index = ? AND provider_id = ? "
         "AND at > ?), "
         "COALESCE((SELECT consecutive FROM cnic_failures WHERE cnic_index = ?), 0), "
         "COALESCE((SELECT consecutive FROM provider_failures WHERE cnic_index = ? AND "
         "provider_id = ?), 0)";
}

Error NotPending() {
  return Error(ErrorCode::kFailedPrecondition, "the consent is not pending", "consent_not_pending");
}

// --- The store --------------------------------------------------------------------------------

class SqliteStore final : public ConsentStore {
 private:
  template <typename Body>
  auto Write(std::string_view operation, Body&& body) {
    return committer_.Write(operation, std::forward<Body>(body));
  }
  template <typename Body>
  auto Read(std::string_view operation, Body&& body) {
    return sqlite::RunRead(pool_, operation, std::forward<Body>(body));
  }
  // A read that is a single statement: no BEGIN and COMMIT around it.
  template <typename Body>
  auto ReadOne(std::string_view operation, Body&& body) {
    return sqlite::RunRead(pool_, operation, std::forward<Body>(body),
                           sqlite::ReadScope::kOneStatement);
  }

  sqlite::ConnectionPool pool_;
  std::mutex writer_;  // this process's writers, one transaction at a time
  sqlite::GroupCommitter committer_;

 public:
  SqliteStore(sqlite::ConnectionPool::Options options, sqlite::GroupCommitter::Options group)
      : pool_(std::move(options)), committer_(pool_, writer_, std::move(group)) {}

  Status Open() {
    return sqlite::Migrate(pool_, writer_, static_cast<Timestamp>(std::time(nullptr)));
  }

  // --- Enrolments -----------------------------------------------------------------------------

  Result<std::optional<Enrolment>> FindEnrolment(const BlindIndex& cnic) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    return ReadOne("finding an enrolment", [&](Session& s) -> Result<std::optional<Enrolment>> {
      static const std::string sql =
          std::string("SELECT ") + kEnrolmentColumns + " FROM enrolments WHERE cnic_index = ?";
      Query query = s.Prepare(sql);
      query.Bind(cnic.value);
      if (!query.Step()) return std::optional<Enrolment>();
      IJAZAT_ASSIGN_OR_RETURN(Enrolment e, ToEnrolment(ReadRow<EnrolmentRow>(query)));
      return std::optional<Enrolment>(std::move(e));
    });
  }

  Result<std::vector<Enrolment>> FindEnrolmentsByPhone(const BlindIndex& phone) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(phone, "phone index"));
    return ReadOne(
        "finding enrolments by phone", [&](Session& s) -> Result<std::vector<Enrolment>> {
          static const std::string sql =
              std::string("SELECT ") + kEnrolmentColumns +
              " FROM enrolments WHERE phone_index = ? ORDER BY enrolled_at, cnic_index LIMIT ?";
          Query query = s.Prepare(sql);
          query.Bind(phone.value).Bind(std::int64_t{kMaxRows});
          const auto rows = ReadRows<EnrolmentRow>(query);
          std::vector<Enrolment> out;
          for (const auto& row : rows) {
            IJAZAT_ASSIGN_OR_RETURN(Enrolment e, ToEnrolment(row));
            out.push_back(std::move(e));
          }
          return out;
        });
  }

  Result<std::vector<Enrolment>> FindEnrolmentsByPreviousPhone(const BlindIndex& phone,
                                                               Timestamp now) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(phone, "phone index"));
    return ReadOne("finding enrolments by previous phone",
                   [&](Session& s) -> Result<std::vector<Enrolment>> {
                     static const std::string sql =
                         std::string("SELECT ") + kEnrolmentColumns +
                         " FROM enrolments WHERE previous_phone_index = ? AND hold_until > ? "
                         "ORDER BY enrolled_at, cnic_index LIMIT ?";
                     Query query = s.Prepare(sql);
                     query.Bind(phone.value).Bind(now).Bind(std::int64_t{kMaxRows});
                     const auto rows = ReadRows<EnrolmentRow>(query);
                     std::vector<Enrolment> out;
                     for (const auto& row : rows) {
                       IJAZAT_ASSIGN_OR_RETURN(Enrolment e, ToEnrolment(row));
                       out.push_back(std::move(e));
                     }
                     return out;
                   });
  }

  Status SaveEnrolment(const Enrolment& e, const AuditEvent& audit,
                       const std::vector<OutboxMessage>& messages, bool number_change) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(e.cnic, "cnic index"));
    IJAZAT_RETURN_IF_ERROR(CheckIndex(e.phone, "phone index"));
    IJAZAT_RETURN_IF_ERROR(CheckSealed(e.phone_sealed, "sealed phone"));
    if (!e.previous_phone.value.empty()) {
      IJAZAT_RETURN_IF_ERROR(CheckIndex(e.previous_phone, "previous phone index"));
      IJAZAT_RETURN_IF_ERROR(CheckSealed(e.previous_phone_sealed, "sealed previous phone"));
    }
    if (e.revision < 0) return Invalid("revision is negative");
    return Write("saving an enrolment", [&](Session& s, Transaction&) -> Status {
      const Bytes none;
      if (e.revision == 0) {
        // A new record: refused if one was made since the caller looked.
        Query taken = s.Prepare("SELECT 1 FROM enrolments WHERE cnic_index = ?");
        if (taken.Bind(e.cnic.value).Step()) return EnrolmentChanged();
      }
      Query save = s.Prepare(
          "INSERT INTO enrolments (cnic_index, cnic_key_version, phone_index, phone_key_version, "
          "phone_sealed, phone_sealed_key_version, enrolled_at, updated_at, hold_until, locked, "
          "cnic_sealed, cnic_sealed_key_version, previous_phone_index, previous_phone_key_version, "
          "previous_phone_sealed, previous_phone_sealed_key_version, suspended, revision) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, x''), ?, NULLIF(?, x''), ?, "
          "NULLIF(?, x''), ?, ?, ? + 1) "
          "ON CONFLICT (cnic_index) DO UPDATE SET cnic_key_version = excluded.cnic_key_version, "
          "phone_index = excluded.phone_index, phone_key_version = excluded.phone_key_version, "
          "phone_sealed = excluded.phone_sealed, "
          "phone_sealed_key_version = excluded.phone_sealed_key_version, "
          "enrolled_at = excluded.enrolled_at, updated_at = excluded.updated_at, "
          "hold_until = excluded.hold_until, locked = excluded.locked, "
          "cnic_sealed = COALESCE(excluded.cnic_sealed, cnic_sealed), "
          "cnic_sealed_key_version = CASE WHEN excluded.cnic_sealed IS NULL "
          "THEN cnic_sealed_key_version ELSE excluded.cnic_sealed_key_version END, "
          "previous_phone_index = excluded.previous_phone_index, "
          "previous_phone_key_version = excluded.previous_phone_key_version, "
          "previous_phone_sealed = excluded.previous_phone_sealed, "
          "previous_phone_sealed_key_version = excluded.previous_phone_sealed_key_version, "
          "suspended = excluded.suspended, revision = excluded.revision "
          "WHERE enrolments.revision = excluded.revision - 1 "
          "RETURNING 1");
      save.Bind(e.cnic.value)
          .Bind(std::int64_t{e.cnic.key_version})
          .Bind(e.phone.value)
          .Bind(std::int64_t{e.phone.key_version})
          .Bind(e.phone_sealed.box)
          .Bind(std::int64_t{e.phone_sealed.key_version})
          .Bind(e.enrolled_at)
          .Bind(e.updated_at)
          .Bind(e.hold_until)
          .Bind(std::int64_t{e.locked ? 1 : 0})
          .Bind(e.cnic_sealed.box)
          .Bind(std::int64_t{e.cnic_sealed.key_version})
          .Bind(e.previous_phone.value)
          .Bind(std::int64_t{e.previous_phone.key_version})
          .Bind(e.previous_phone_sealed.box)
          .Bind(std::int64_t{e.previous_phone_sealed.key_version})
          .Bind(std::int64_t{e.suspended ? 1 : 0})
          .Bind(e.revision);
      if (CountRows(save) != 1) return EnrolmentChanged();
      if (number_change) {
        s.Prepare("INSERT INTO number_changes (cnic_index, at) VALUES (?, ?)")
            .Bind(e.cnic.value)
            .Bind(e.updated_at)
            .Run();
      }
      IJAZAT_RETURN_IF_ERROR(sqlite::AppendAudit(s, About(audit, e.cnic)));
      return InsertMessages(s, messages);
    });
  }

  Status RecordEvent(const AuditEvent& audit, const std::vector<OutboxMessage>& messages) override {
    return Write("recording an event", [&](Session& s, Transaction&) -> Status {
      IJAZAT_RETURN_IF_ERROR(sqlite::AppendAudit(s, audit));
      return InsertMessages(s, messages);
    });
  }

  Result<int> CountNumberChanges(const BlindIndex& cnic, Timestamp since) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    return ReadOne("counting number changes", [&](Session& s) -> Result<int> {
      Query query =
          s.Prepare("SELECT COUNT(*) FROM number_changes WHERE cnic_index = ? AND at > ?");
      query.Bind(cnic.value).Bind(since);
      const Int64 count = query.Step() ? query.Int(0) : 0;
      return static_cast<int>(std::min<Int64>(count, INT_MAX));
    });
  }

  Result<SweepCursor> RegistrySweepCursor() override {
    return ReadOne("reading the registry sweep cursor", [&](Session& s) -> Result<SweepCursor> {
      Query query = s.Prepare("SELECT generation, seq FROM registry_sweep WHERE id = 1");
      SweepCursor cursor;
      if (query.Step()) cursor = {query.Text(0), query.Int(1)};
      return cursor;
    });
  }

  Status SetRegistrySweepCursor(const SweepCursor& cursor) override {
    return Write("saving the registry sweep cursor", [&](Session& s, Transaction&) -> Status {
      s.Prepare(
           "INSERT INTO registry_sweep (id, generation, seq) VALUES (1, ?, ?) "
           "ON CONFLICT (id) DO UPDATE SET generation = excluded.generation, seq = excluded.seq")
          .Bind(cursor.generation)
          .Bind(cursor.seq)
          .Run();
      return OkStatus();
    });
  }

  Status ResetConsecutiveFailures(const BlindIndex& cnic, const AuditEvent& audit) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    return Write("resetting failures", [&](Session& s, Transaction&) -> Status {
      std::vector<Int64> reset;
      s << "UPDATE cnic_failures SET consecutive = 0 WHERE cnic_index = ? AND consecutive > 0 "
           "RETURNING 1",
          bind(ToBlob(cnic.value)), into(reset), now;
      s << "UPDATE provider_failures SET consecutive = 0 WHERE cnic_index = ?",
          bind(ToBlob(cnic.value)), now;
      if (reset.empty()) return OkStatus();  // nothing to lift: no audit entry either
      return sqlite::AppendAudit(s, About(audit, cnic));
    });
  }

  Status SetBlocked(const BlindIndex& cnic, const std::string& provider_id, bool blocked,
                    const AuditEvent& audit) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    if (provider_id.empty()) return Invalid("provider id is empty");
    return Write("setting a block", [&](Session& s, Transaction&) -> Status {
      if (blocked) {
        s << "INSERT OR IGNORE INTO blocks (cnic_index, provider_id, blocked_at) VALUES (?, ?, ?)",
            bind(ToBlob(cnic.value)), bind(provider_id), bind(static_cast<Int64>(audit.at)), now;
      } else {
        s << "DELETE FROM blocks WHERE cnic_index = ? AND provider_id = ?",
            bind(ToBlob(cnic.value)), bind(provider_id), now;
      }
      return sqlite::AppendAudit(s, About(audit, cnic));
    });
  }

  Result<bool> IsBlocked(const BlindIndex& cnic, const std::string& provider_id) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    return ReadOne("reading a block", [&](Session& s) -> Result<bool> {
      Query query = s.Prepare("SELECT 1 FROM blocks WHERE cnic_index = ? AND provider_id = ?");
      query.Bind(cnic.value).Bind(provider_id);
      return query.Step();
    });
  }

  // --- Consents -------------------------------------------------------------------------------

  Status InsertConsent(const Consent& c, const AuditEvent& audit,
                       const std::vector<OutboxMessage>& messages) override {
    if (c.id.empty()) return Invalid("consent id is empty");
    if (c.state != ConsentState::kPending) return Invalid("a new consent must be pending");
    IJAZAT_RETURN_IF_ERROR(CheckIndex(c.cnic, "cnic index"));
    IJAZAT_RETURN_IF_ERROR(CheckSealed(c.cnic_sealed, "sealed cnic"));
    return Write("inserting a consent", [&](Session& s, Transaction&) -> Status {
      {
        Query taken = s.Prepare("SELECT 1 FROM consents WHERE id = ?");
        if (taken.Bind(c.id).Step()) {
          return Error(ErrorCode::kAlreadyExists, "the consent id is taken", "consent_exists");
        }
      }
      s.Prepare(
           "INSERT INTO consents (id, provider_id, purpose, scopes, cnic_index, cnic_key_version, "
           "cnic_sealed, cnic_sealed_key_version, deliverable, state, created_at, expires_at, "
           "attempts, max_attempts, otp_key_version, otp_digits, policy_version, policy_hash, "
           "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)")
          .Bind(c.id)
          .Bind(c.provider_id)
          .Bind(c.purpose)
          .Bind(ScopesToJson(c.scopes))
          .Bind(c.cnic.value)
          .Bind(std::int64_t{c.cnic.key_version})
          .Bind(c.cnic_sealed.box)
          .Bind(std::int64_t{c.cnic_sealed.key_version})
          .Bind(std::int64_t{c.deliverable ? 1 : 0})
          .Bind(c.created_at)
          .Bind(c.expires_at)
          .Bind(std::int64_t{c.attempts})
          .Bind(std::int64_t{c.max_attempts})
          .Bind(std::int64_t{c.otp_key_version})
          .Bind(std::int64_t{c.otp_digits})
          .Bind(c.policy_version)
          .Bind(c.policy_hash)
          .Bind(c.updated_at != 0 ? c.updated_at : c.created_at)
          .Run();
      IJAZAT_RETURN_IF_ERROR(sqlite::AppendAudit(s, About(audit, c.cnic)));
      return InsertMessages(s, messages);
    });
  }

  Result<std::optional<Consent>> FindConsent(const std::string& id) override {
    return ReadOne("finding a consent", [&](Session& s) { return LoadConsent(s, id); });
  }

  Result<std::optional<Consent>> FindConsentByReference(const BlindIndex& cnic,
                                                        const std::string& reference) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    if (reference.empty()) return std::optional<Consent>();
    return Read("finding a consent by reference", [&](Session& s) {
      std::vector<std::string> ids;
      s << "SELECT id FROM consents WHERE reference = ? AND cnic_index = ?", bind(reference),
          bind(ToBlob(cnic.value)), into(ids), now;
      if (ids.empty()) return Result<std::optional<Consent>>(std::optional<Consent>());
      return LoadConsent(s, ids.front());
    });
  }

  Result<CnicFailures> GetCnicFailures(const BlindIndex& cnic, const std::string& provider_id,
                                       Timestamp at) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    return ReadOne("reading failure counters", [&](Session& s) -> Result<CnicFailures> {
      static const std::string sql = FailureCountersSql();
      Query query = s.Prepare(sql);
      query.Bind(cnic.value)
          .Bind(provider_id)
          .Bind(at - kFailureWindowSeconds)
          .Bind(cnic.value)
          .Bind(cnic.value)
          .Bind(provider_id);
      if (!query.Step()) return CnicFailures{};
      Narrow n;
      CnicFailures f{n.Int(query.Int(0)), n.Int(query.Int(1)), n.Int(query.Int(2))};
      if (!n.ok()) return Corrupt("failure counter");
      return f;
    });
  }

  Result<Timestamp> CnicFailureWindowAdmitsAt(const BlindIndex& cnic,
                                              const std::string& provider_id, Timestamp at,
                                              int limit) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    return ReadOne("reading failure times", [&](Session& s) -> Result<Timestamp> {
      Query query = s.Prepare(
          "SELECT at FROM code_failures WHERE cnic_index = ? AND provider_id = ? AND at > ? "
          "ORDER BY at DESC LIMIT 1 OFFSET ?");
      query.Bind(cnic.value)
          .Bind(provider_id)
          .Bind(at - kFailureWindowSeconds)
          .Bind(std::int64_t{std::max(limit, 1) - 1});
      if (!query.Step()) return at;
      return std::max<Timestamp>(at, query.Int(0) + kFailureWindowSeconds);
    });
  }

  Result<AttemptResult> RecordFailedAttempt(const std::string& consent_id, Timestamp at,
                                            const AuditEvent& audit) override {
    return Write(
        "recording a failed code", [&](Session& s, Transaction& txn) -> Result<AttemptResult> {
          IJAZAT_ASSIGN_OR_RETURN(Consent consent, LoadExistingConsent(s, consent_id));
          if (consent.state != ConsentState::kPending) return NotPending();
          if (consent.expires_at <= at) {
            IJAZAT_RETURN_IF_ERROR(MarkExpired(s, consent, at));
            txn.CommitDespiteError();
            return NotPending();
          }
          std::vector<Int64> changed;
          s << "UPDATE consents SET attempts = attempts + 1, "
               "state = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE state END, "
               "updated_at = ? WHERE id = ? AND state = 'pending' AND expires_at > ? "
               "RETURNING attempts",
              bind(static_cast<Int64>(at)), bind(consent_id), bind(static_cast<Int64>(at)),
              into(changed), now;
          if (changed.size() != 1) return NotPending();
          s.Prepare("INSERT INTO code_failures (cnic_index, provider_id, at) VALUES (?, ?, ?)")
              .Bind(consent.cnic.value)
              .Bind(consent.provider_id)
              .Bind(at)
              .Run();
          s.Prepare(
               "INSERT INTO cnic_failures (cnic_index, window_start, in_window, consecutive) "
               "VALUES (?, ?, 0, 1) ON CONFLICT (cnic_index) DO UPDATE SET "
               "consecutive = consecutive + 1")
              .Bind(consent.cnic.value)
              .Bind(at)
              .Run();
          s.Prepare(
               "INSERT INTO provider_failures (cnic_index, provider_id, consecutive) "
               "VALUES (?, ?, 1) ON CONFLICT (cnic_index, provider_id) DO UPDATE SET "
               "consecutive = consecutive + 1")
              .Bind(consent.cnic.value)
              .Bind(consent.provider_id)
              .Run();
          IJAZAT_RETURN_IF_ERROR(sqlite::AppendAudit(s, About(audit, consent.cnic)));
          AttemptResult result;
          IJAZAT_ASSIGN_OR_RETURN(result.consent, LoadExistingConsent(s, consent_id));
          static const std::string sql = FailureCountersSql();
          Query counters = s.Prepare(sql);
          counters.Bind(consent.cnic.value)
              .Bind(consent.provider_id)
              .Bind(at - kFailureWindowSeconds)
              .Bind(consent.cnic.value)
              .Bind(consent.cnic.value)
              .Bind(consent.provider_id);
          if (!counters.Step()) return Corrupt("failure counter");
          Narrow n;
          result.cnic = {n.Int(counters.Int(0)), n.Int(counters.Int(1)), n.Int(counters.Int(2))};
          if (!n.ok()) return Corrupt("failure counter");
          return result;
        });
  }

  Result<Consent> GrantConsent(const std::string& consent_id, const Consent& granted, Timestamp at,
                               const AuditEvent& audit, const std::vector<OutboxMessage>& messages,
                               const GrantGuard* guard) override {
    if (granted.reference.empty()) return Invalid("reference is empty");
    if (granted.max_uses < 1) return Invalid("max_uses must be at least 1");
    if (granted.expires_at <= at) return Invalid("the token's expiry is not in the future");
    return Write("granting a consent", [&](Session& s, Transaction& txn) -> Result<Consent> {
      IJAZAT_ASSIGN_OR_RETURN(Consent consent, LoadExistingConsent(s, consent_id));
      // An undeliverable consent never had a code sent: it can never be confirmed.
      if (consent.state != ConsentState::kPending || !consent.deliverable) return NotPending();
      if (consent.expires_at <= at) {
        IJAZAT_RETURN_IF_ERROR(MarkExpired(s, consent, at));
        txn.CommitDespiteError();
        return NotPending();
      }
      if (guard != nullptr) {
        Query reachable = s.Prepare(
            "SELECT 1 FROM enrolments WHERE cnic_index = ? AND phone_index = ? AND locked = 0 "
            "AND suspended = 0 AND hold_until <= ? AND NOT EXISTS (SELECT 1 FROM blocks "
            "WHERE blocks.cnic_index = enrolments.cnic_index AND blocks.provider_id = ?)");
        reachable.Bind(consent.cnic.value)
            .Bind(guard->phone.value)
            .Bind(guard->hold_cutoff)
            .Bind(consent.provider_id);
        if (!reachable.Step()) {
          return Error(ErrorCode::kPermissionDenied,
                       "the citizen does not allow verification now (locked, blocked, number "
                       "recently changed or no longer registered to the CNIC)",
                       "citizen_unavailable");
        }
      }
      {
        Query taken = s.Prepare("SELECT 1 FROM consents WHERE reference = ?");
        if (taken.Bind(granted.reference).Step()) {
          return Error(ErrorCode::kAlreadyExists, "the reference is taken", "reference_taken");
        }
      }
      Query grant = s.Prepare(
          "UPDATE consents SET state = 'granted', reference = ?, granted_at = ?, expires_at = ?, "
          "max_uses = ?, uses = 0, receipt = ?, receipt_key_version = ?, updated_at = ? "
          "WHERE id = ? AND state = 'pending' AND deliverable = 1 AND expires_at > ? "
          "RETURNING id");
      grant.Bind(granted.reference)
          .Bind(granted.granted_at != 0 ? granted.granted_at : at)
          .Bind(granted.expires_at)
          .Bind(std::int64_t{granted.max_uses})
          .Bind(granted.receipt)
          .Bind(std::int64_t{granted.receipt_key_version})
          .Bind(at)
          .Bind(consent_id)
          .Bind(at);
      if (CountRows(grant) != 1) return NotPending();
      s.Prepare("UPDATE cnic_failures SET consecutive = 0 WHERE cnic_index = ?")
          .Bind(consent.cnic.value)
          .Run();
      s.Prepare(
           "UPDATE provider_failures SET consecutive = 0 WHERE cnic_index = ? AND provider_id = ?")
          .Bind(consent.cnic.value)
          .Bind(consent.provider_id)
          .Run();
      IJAZAT_RETURN_IF_ERROR(sqlite::AppendAudit(s, About(audit, consent.cnic)));
      IJAZAT_RETURN_IF_ERROR(InsertMessages(s, messages));
      return LoadExistingConsent(s, consent_id);
    });
  }

  Result<Consent> UseConsent(const std::string& consent_id, const std::string& provider_id,
                             Timestamp at, const AuditEvent& audit) override {
    return Write("using a consent", [&](Session& s, Transaction& txn) -> Result<Consent> {
      IJAZAT_ASSIGN_OR_RETURN(Consent consent, LoadExistingConsent(s, consent_id));
      // Checked first: another provider learns nothing about the consent's state.
      if (consent.provider_id != provider_id) {
        return Error(ErrorCode::kPermissionDenied, "the consent belongs to another provider",
                     "wrong_provider");
      }
      switch (consent.state) {
        case ConsentState::kGranted:
          break;
        case ConsentState::kUsed:
          return Error(ErrorCode::kFailedPrecondition, "the consent is used up", "consent_used");
        case ConsentState::kExpired:
          return Error(ErrorCode::kFailedPrecondition, "the consent has expired",
                       "consent_expired");
        case ConsentState::kRevoked:
          return Error(ErrorCode::kFailedPrecondition, "the consent was revoked",
                       "consent_revoked");
        case ConsentState::kPending:
        case ConsentState::kFailed:
          return Error(ErrorCode::kFailedPrecondition, "the consent was not granted",
                       "consent_not_granted");
      }
      if (consent.expires_at <= at) {
        IJAZAT_RETURN_IF_ERROR(MarkExpired(s, consent, at));
        txn.CommitDespiteError();
        return Error(ErrorCode::kFailedPrecondition, "the consent has expired", "consent_expired");
      }
      Query use = s.Prepare(
          "UPDATE consents SET uses = uses + 1, "
          "state = CASE WHEN uses + 1 >= max_uses THEN 'used' ELSE state END, updated_at = ? "
          "WHERE id = ? AND provider_id = ? AND state = 'granted' AND uses < max_uses "
          "AND expires_at > ? RETURNING id");
      use.Bind(at).Bind(consent_id).Bind(provider_id).Bind(at);
      if (CountRows(use) != 1) {
        return Error(ErrorCode::kFailedPrecondition, "the consent is used up", "consent_used");
      }
      s.Prepare(
           "INSERT INTO verifications (consent_id, provider_id, purpose, reference, cnic_index, "
           "at) VALUES (?, ?, ?, ?, ?, ?)")
          .Bind(consent.id)
          .Bind(consent.provider_id)
          .Bind(consent.purpose)
          .Bind(consent.reference)
          .Bind(consent.cnic.value)
          .Bind(at)
          .Run();
      IJAZAT_RETURN_IF_ERROR(sqlite::AppendAudit(s, About(audit, consent.cnic)));
      return LoadExistingConsent(s, consent_id);
    });
  }

  Result<Consent> RevokeConsent(const std::string& consent_id, Timestamp at,
                                const AuditEvent& audit) override {
    return Write("revoking a consent", [&](Session& s, Transaction& txn) -> Result<Consent> {
      IJAZAT_ASSIGN_OR_RETURN(Consent consent, LoadExistingConsent(s, consent_id));
      const Error not_revocable(ErrorCode::kFailedPrecondition, "the consent cannot be revoked",
                                "consent_not_revocable");
      if (consent.state != ConsentState::kPending && consent.state != ConsentState::kGranted) {
        return not_revocable;
      }
      if (consent.expires_at <= at) {
        IJAZAT_RETURN_IF_ERROR(MarkExpired(s, consent, at));
        txn.CommitDespiteError();
        return not_revocable;
      }
      std::vector<std::string> changed;
      s << "UPDATE consents SET state = 'revoked', updated_at = ? "
           "WHERE id = ? AND state IN ('pending', 'granted') RETURNING id",
          bind(static_cast<Int64>(at)), bind(consent_id), into(changed), now;
      if (changed.size() != 1) return not_revocable;
      IJAZAT_RETURN_IF_ERROR(sqlite::AppendAudit(s, About(audit, consent.cnic)));
      return LoadExistingConsent(s, consent_id);
    });
  }

  Result<int> ExpireConsents(Timestamp at) override {
    return Write("expiring consents", [&](Session& s, Transaction&) -> Result<int> {
      std::vector<std::tuple<std::string, std::string, std::string>> due;
      s << "SELECT id, provider_id, state FROM consents "
           "WHERE state IN ('pending', 'granted') AND expires_at <= ? ORDER BY expires_at, id",
          bind(static_cast<Int64>(at)), into(due), now;
      for (const auto& [id, provider, state] : due) {
        Consent consent;
        consent.id = id;
        consent.provider_id = provider;
        consent.state = ParseConsentState(state).value_or(ConsentState::kPending);
        IJAZAT_RETURN_IF_ERROR(MarkExpired(s, consent, at));
      }
      // Events past every window they are counted in.
      s.Prepare("DELETE FROM code_failures WHERE at <= ?").Bind(at - kFailureWindowSeconds).Run();
      s.Prepare("DELETE FROM number_changes WHERE at <= ?")
          .Bind(at - kNumberChangeHorizonSeconds)
          .Run();
      return static_cast<int>(std::min<std::size_t>(due.size(), INT_MAX));
    });
  }

  Result<std::vector<VerificationRecord>> RecentVerifications(const BlindIndex& cnic,
                                                              int limit) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(cnic, "cnic index"));
    IJAZAT_RETURN_IF_ERROR(CheckLimit(limit));
    return Read(
        "reading verifications", [&](Session& s) -> Result<std::vector<VerificationRecord>> {
          std::vector<std::tuple<std::string, std::string, std::string, std::string, Int64>> rows;
          s << "SELECT consent_id, provider_id, purpose, reference, at FROM verifications "
               "WHERE cnic_index = ? ORDER BY at DESC, id DESC LIMIT ?",
              bind(ToBlob(cnic.value)), bind(static_cast<Int64>(std::min(limit, kMaxRows))),
              into(rows), now;
          std::vector<VerificationRecord> out;
          out.reserve(rows.size());
          for (auto& [consent_id, provider, purpose, reference, when] : rows) {
            out.push_back({consent_id, provider, purpose, reference, when});
          }
          return out;
        });
  }

  // --- Outbox ---------------------------------------------------------------------------------

  Status EnqueueMessages(const std::vector<OutboxMessage>& messages) override {
    if (messages.empty()) return OkStatus();
    return Write("queueing messages",
                 [&](Session& s, Transaction&) { return InsertMessages(s, messages); });
  }

  Result<std::vector<OutboxMessage>> DueMessages(Timestamp at, int limit) override {
    IJAZAT_RETURN_IF_ERROR(CheckLimit(limit));
    return ReadOne("reading due messages", [&](Session& s) -> Result<std::vector<OutboxMessage>> {
      static const std::string sql = std::string("SELECT ") + kMessageColumns +
                                     " FROM outbox WHERE status = 'queued' AND "
                                     "next_attempt_at <= ? ORDER BY created_at, id LIMIT ?";
      Query query = s.Prepare(sql);
      query.Bind(at).Bind(std::int64_t{std::min(limit, kMaxRows)});
      const auto rows = ReadRows<MessageRow>(query);
      std::vector<OutboxMessage> out;
      for (const auto& row : rows) {
        IJAZAT_ASSIGN_OR_RETURN(OutboxMessage m, ToMessage(row));
        out.push_back(std::move(m));
      }
      return out;
    });
  }

  Status UpdateMessage(std::int64_t id, OutboxStatus status, Timestamp next_attempt_at,
                       const std::string& gateway_id, const std::string& error) override {
    const MessageUpdate update{id, status, next_attempt_at, gateway_id, error};
    return Write("updating a message",
                 [&](Session& s, Transaction&) { return ApplyMessageUpdate(s, update); });
  }

  Status UpdateMessages(const std::vector<MessageUpdate>& updates) override {
    if (updates.empty()) return OkStatus();
    return Write("updating messages", [&](Session& s, Transaction&) -> Status {
      for (const MessageUpdate& u : updates) IJAZAT_RETURN_IF_ERROR(ApplyMessageUpdate(s, u));
      return OkStatus();
    });
  }

  Result<SmsCounts> CountMessages(const std::optional<BlindIndex>& cnic,
                                  const std::string& provider_id,
                                  const std::vector<BlindIndex>& phones, Timestamp at) override {
    if (cnic) IJAZAT_RETURN_IF_ERROR(CheckIndex(*cnic, "cnic index"));
    for (const BlindIndex& phone : phones) IJAZAT_RETURN_IF_ERROR(CheckIndex(phone, "phone index"));
    return Read("counting messages", [&](Session& s) -> Result<SmsCounts> {
      SmsCounts counts = ReadCounts(s, cnic.value_or(BlindIndex{}), provider_id, phones, at);
      if (!cnic) {
        counts.cnic_provider_hour = counts.cnic_provider_day = 0;
        counts.cnic_hour = counts.cnic_day = 0;
      }
      return counts;
    });
  }

  Result<std::string> ClaimCode(const CodeClaim& c) override {
    IJAZAT_RETURN_IF_ERROR(CheckIndex(c.cnic, "cnic index"));
    IJAZAT_RETURN_IF_ERROR(CheckIndex(c.phone, "phone index"));
    for (const BlindIndex& phone : c.phones)
      IJAZAT_RETURN_IF_ERROR(CheckIndex(phone, "phone index"));
    IJAZAT_RETURN_IF_ERROR(CheckSealed(c.recipient, "recipient"));
    return Write("claiming a code", [&](Session& s, Transaction&) -> Result<std::string> {
      {
        Query queued = s.Prepare("SELECT 1 FROM outbox WHERE id = ? AND status = 'queued'");
        if (!queued.Bind(c.message_id).Step()) {
          return Error(ErrorCode::kFailedPrecondition, "the code is no longer queued",
                       "message_not_queued");
        }
      }
      const SmsCounts n = ReadCounts(s, c.cnic, c.provider_id,
                                     c.phones.empty() ? std::vector{c.phone} : c.phones, c.now);
      const SmsCounts& l = c.limits;
      const std::pair<const char*, bool> limits[] = {
          {"cnic_provider_hour", n.cnic_provider_hour >= l.cnic_provider_hour},
          {"cnic_provider_day", n.cnic_provider_day >= l.cnic_provider_day},
          {"cnic_hour", n.cnic_hour >= l.cnic_hour},
          {"cnic_day", n.cnic_day >= l.cnic_day},
          {"number_provider_hour", n.number_provider_hour >= l.number_provider_hour},
          {"number_provider_day", n.number_provider_day >= l.number_provider_day},
          {"number_hour", n.number_hour >= l.number_hour},
          {"number_day", n.number_day >= l.number_day},
      };
      const char* reached = nullptr;
      for (const auto& [name, hit] : limits) {
        if (hit) {
          reached = name;
          break;
        }
      }
      if (reached != nullptr) {
        IJAZAT_RETURN_IF_ERROR(ApplyMessageUpdate(
            s, {c.message_id, OutboxStatus::kDropped, 0, "", std::string("cap ") + reached}));
        return std::string(reached);
      }
      Query claim = s.Prepare(
          "UPDATE outbox SET recipient = ?, recipient_key_version = ?, phone_index = ?, "
          "phone_key_version = ?, status = 'sent', gateway_id = 'claimed' "
          "WHERE id = ? AND status = 'queued' RETURNING id");
      claim.Bind(c.recipient.box)
          .Bind(std::int64_t{c.recipient.key_version})
          .Bind(c.phone.value)
          .Bind(std::int64_t{c.phone.key_version})
          .Bind(c.message_id);
      if (CountRows(claim) != 1) {
        return Error(ErrorCode::kFailedPrecondition, "the code is no longer queued",
                     "message_not_queued");
      }
      s.Prepare("UPDATE consents SET deliverable = 1 WHERE id = ? AND state = 'pending'")
          .Bind(c.consent_id)
          .Run();
      return std::string();
    });
  }

  Result<std::vector<std::pair<OutboxStatus, int>>> CountMessagesByStatus() override {
    return Read("counting messages by status",
                [&](Session& s) -> Result<std::vector<std::pair<OutboxStatus, int>>> {
                  std::vector<std::tuple<std::string, Int64>> rows;
                  s << "SELECT status, COUNT(*) FROM outbox GROUP BY status", into(rows), now;
                  std::vector<std::pair<OutboxStatus, int>> out;
                  for (const OutboxStatus status :
                       {OutboxStatus::kQueued, OutboxStatus::kSent, OutboxStatus::kFailed,
                        OutboxStatus::kDropped, OutboxStatus::kDelivered}) {
                    out.emplace_back(status, 0);
                  }
                  for (const auto& [name, count] : rows) {
                    const auto status = ParseOutboxStatus(name);
                    if (!status) return Corrupt("message status");
                    for (auto& [st, n] : out) {
                      if (st == *status) n = static_cast<int>(std::min<Int64>(count, INT_MAX));
                    }
                  }
                  return out;
                });
  }

  Result<std::optional<OutboxMessage>> FindMessageByGatewayId(const std::string& id) override {
    if (id.empty()) return std::optional<OutboxMessage>();
    return ReadOne("finding a message", [&](Session& s) -> Result<std::optional<OutboxMessage>> {
      std::vector<MessageRow> rows;
      s << std::string("SELECT ") + kMessageColumns +
               " FROM outbox WHERE gateway_id = ? ORDER BY id DESC LIMIT 1",
          bind(id), into(rows), now;
      if (rows.empty()) return std::optional<OutboxMessage>();
      IJAZAT_ASSIGN_OR_RETURN(OutboxMessage m, ToMessage(rows.front()));
      return std::optional<OutboxMessage>(std::move(m));
    });
  }

  Result<std::optional<OutboxMessage>> RecordDeliveryReport(std::int64_t id,
                                                            std::optional<OutboxStatus> outcome,
                                                            const std::string& note) override {
    if (outcome && *outcome != OutboxStatus::kDelivered && *outcome != OutboxStatus::kFailed) {
      return Error(ErrorCode::kInvalidArgument, "a delivery report settles as delivered or failed",
                   "invalid_request");
    }
    using Found = std::optional<OutboxMessage>;
    static const std::string select =
        std::string("SELECT ") + kMessageColumns + " FROM outbox WHERE id = ?";
    auto load = [&](Session& s) -> Result<Found> {
      Query query = s.Prepare(select);
      query.Bind(id);
      if (!query.Step()) return Found();
      IJAZAT_ASSIGN_OR_RETURN(OutboxMessage m, ToMessage(ReadRow<MessageRow>(query)));
      return Found(std::move(m));
    };
    // An intermediate report (buffered, submitted: most reports) changes nothing: a read.
    if (!outcome) return ReadOne("reading a message", load);
    return Write("recording a delivery report", [&](Session& s, Transaction&) -> Result<Found> {
      s.Prepare(
           "UPDATE outbox SET status = ?, last_error = COALESCE(NULLIF(?, ''), last_error) "
           "WHERE id = ? AND status IN ('queued', 'sent')")
          .Bind(OutboxStatusName(*outcome))
          .Bind(ClampText(note, kMaxErrorText))
          .Bind(id)
          .Run();
      return load(s);
    });
  }

  // --- Audit and health -----------------------------------------------------------------------

  Status VerifyAuditChain() override {
    return Read("verifying the audit chain", [](Session& s) { return sqlite::VerifyAudit(s); });
  }

  Result<std::vector<AuditEvent>> AuditTail(int limit) override {
    IJAZAT_RETURN_IF_ERROR(CheckLimit(limit));
    return Read("reading the audit tail", [&](Session& s) -> Result<std::vector<AuditEvent>> {
      return sqlite::ReadAuditTail(s, std::min(limit, kMaxRows));
    });
  }

  Result<AuditCheckpoint> AuditChainHead() override {
    return Read("reading the audit chain's head", [](Session& s) -> Result<AuditCheckpoint> {
      const sqlite::AuditHead head = sqlite::ReadAuditHead(s);
      AuditCheckpoint checkpoint;
      checkpoint.seq = head.seq;
      checkpoint.hash = head.hash;
      return checkpoint;
    });
  }

  Status RecordAuditCheckpoint(const AuditCheckpoint& checkpoint) override {
    if (checkpoint.seq < 1 || checkpoint.hash.size() != sqlite::kAuditHashSize ||
        checkpoint.note.empty()) {
      return Invalid("an audit checkpoint needs a seq, a 32-byte hash and a note");
    }
    return Write("recording an audit checkpoint", [&](Session& s, Transaction&) -> Status {
      Query row = s.Prepare("SELECT hash FROM audit WHERE seq = ?");
      if (!row.Bind(checkpoint.seq).Step() || row.Blob(0) != checkpoint.hash) {
        return Error(ErrorCode::kFailedPrecondition,
                     "the audit chain's hash at seq " + std::to_string(checkpoint.seq) +
                         " is not the one the checkpoint signs",
                     "audit_checkpoint_mismatch");
      }
      s.Prepare("INSERT OR IGNORE INTO audit_checkpoints (seq, hash, at, note) VALUES (?, ?, ?, ?)")
          .Bind(checkpoint.seq)
          .Bind(checkpoint.hash)
          .Bind(checkpoint.at)
          .Bind(checkpoint.note)
          .Run();
      return OkStatus();
    });
  }

  Result<std::optional<AuditCheckpoint>> LastAuditCheckpoint() override {
    return Read("reading the last audit checkpoint",
                [](Session& s) -> Result<std::optional<AuditCheckpoint>> {
                  Query last = s.Prepare(
                      "SELECT seq, hash, at, note FROM audit_checkpoints ORDER BY seq DESC "
                      "LIMIT 1");
                  if (!last.Step()) return std::optional<AuditCheckpoint>();
                  AuditCheckpoint checkpoint;
                  checkpoint.seq = last.Int(0);
                  checkpoint.hash = last.Blob(1);
                  checkpoint.at = last.Int(2);
                  checkpoint.note = last.Text(3);
                  return std::optional<AuditCheckpoint>(std::move(checkpoint));
                });
  }

  Result<std::optional<Bytes>> AuditHashAt(std::int64_t seq) override {
    return Read("reading the audit chain", [&](Session& s) -> Result<std::optional<Bytes>> {
      Query row = s.Prepare("SELECT hash FROM audit WHERE seq = ?");
      if (!row.Bind(seq).Step()) return std::optional<Bytes>();
      return std::optional<Bytes>(row.Blob(0));
    });
  }

  Status CheckHealth() override {
    return Read("checking the store", [](Session& s) -> Status {
      Int64 version = 0;
      s << "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", into(version), now;
      if (version < 1) return Corrupt("schema version");
      return OkStatus();
    });
  }

  Status CheckIntegrity() override {
    return Read("checking integrity", [](Session& s) -> Status {
      std::vector<std::string> problems;
      s << "PRAGMA integrity_check", into(problems), now;
      if (problems.size() != 1 || problems.front() != "ok") {
        return Error(ErrorCode::kDataLoss,
                     "integrity check failed (" + std::to_string(problems.size()) + " problems)",
                     "store_corrupt");
      }
      Int64 dangling = 0;
      s << "SELECT COUNT(*) FROM pragma_foreign_key_check", into(dangling), now;
      if (dangling != 0) {
        return Error(ErrorCode::kDataLoss,
                     "foreign key check failed (" + std::to_string(dangling) + " rows)",
                     "store_corrupt");
      }
      return OkStatus();
    });
  }
};

}  // namespace

Result<std::unique_ptr<ConsentStore>> OpenSqliteStore(const SqliteStoreOptions& options,
                                                      const GroupCommitOptions& group_options) {
  if (options.path.empty()) return Invalid("store path is empty");
  if (options.busy_timeout_ms < 0) return Invalid("busy timeout is negative");
  IJAZAT_RETURN_IF_ERROR(sqlite::CreatePrivateFile(options.path, "store_unavailable"));
  sqlite::ConnectionPool::Options pool;
  pool.uri = sqlite::FileUri(options.path, "mode=rw");
  pool.busy_timeout_ms = options.busy_timeout_ms;
  pool.max_connections = 4;
  sqlite::GroupCommitter::Options group;
  group.max_batch = std::max<std::size_t>(group_options.max_writers, 1);
  group.before_commit = group_options.before_commit_for_test;
  auto store = std::make_unique<SqliteStore>(std::move(pool), std::move(group));
  IJAZAT_RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<ConsentStore>(std::move(store));
}

}  // namespace ijazat::appliance
