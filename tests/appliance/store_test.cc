// The SQLite consent store, on real files in a temporary directory.
#include "store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ijazat/common/bytes.h"
#include "model.h"
#include "sqlite_audit.h"
#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::appliance {
namespace {

MATCHER(IsNone, "is nullopt") { return !arg.has_value(); }

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr Timestamp kNow = 1'700'000'000;
constexpr Timestamp kDay = Timestamp{24} * 60 * 60;

// Stand-ins for the HSM: opaque bytes that are not the plaintext.
Bytes Scramble(std::string_view plain, std::uint8_t key) {
  Bytes out = ToBytes(plain);
  for (auto& b : out) b = static_cast<std::uint8_t>(b ^ key);
  return out;
}
BlindIndex Index(std::string_view plain) { return {Scramble(plain, 0x33), 1}; }
Sealed Seal(std::string_view plain) { return {Scramble(plain, 0x5a), 2}; }

AuditEvent Audit(std::string event, std::string consent_id = "", Timestamp at = kNow) {
  AuditEvent e;
  e.at = at;
  e.event = std::move(event);
  e.provider_id = "bank";
  e.consent_id = std::move(consent_id);
  e.detail = R"({"note":"test"})";
  return e;
}

constexpr char kProvider[] = "bank";

Consent MakeConsent(const std::string& id, std::string_view cnic = "3520212345671",
                    const std::string& provider = "bank", Timestamp expires_at = kNow + 300) {
  Consent c;
  c.id = id;
  c.provider_id = provider;
  c.purpose = "account_opening";
  c.scopes = {"name", "date_of_birth", "quote\"and\\slash"};
  c.cnic = Index(cnic);
  c.cnic_sealed = Seal(std::string("cnic:") + std::string(cnic));
  c.deliverable = true;
  c.state = ConsentState::kPending;
  c.created_at = kNow;
  c.expires_at = expires_at;
  c.max_attempts = 3;
  c.otp_key_version = 4;
  c.otp_digits = 6;
  c.policy_version = "2024-01";
  c.policy_hash = "abc123";
  c.updated_at = kNow;
  return c;
}

Consent Grant(const std::string& reference, Timestamp expires_at = kNow + 3600, int max_uses = 1) {
  Consent g;
  g.reference = reference;
  g.granted_at = kNow;
  g.expires_at = expires_at;
  g.max_uses = max_uses;
  g.receipt = "eyJhbGciOiJFUzI1NiJ9.receipt.sig";
  g.receipt_key_version = 7;
  return g;
}

OutboxMessage MakeMessage(OutboxKind kind, std::optional<std::string_view> cnic,
                          Timestamp created_at = kNow) {
  OutboxMessage m;
  m.kind = kind;
  if (cnic) m.cnic = Index(*cnic);
  m.recipient = Seal("+923001234567");
  m.params = R"({"provider":"bank"})";
  m.created_at = created_at;
  m.next_attempt_at = created_at;
  m.not_after = created_at + 300;
  return m;
}

Enrolment MakeEnrolment(std::string_view cnic, std::string_view phone) {
  Enrolment e;
  e.cnic = Index(cnic);
  e.phone = Index(phone);
  e.phone_sealed = Seal(phone);
  e.enrolled_at = kNow;
  e.updated_at = kNow;
  return e;
}

// Raw access to the file, as another program (or an attacker) would have.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  int Exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    if (error != nullptr) sqlite3_free(error);
    return rc;
  }
  std::int64_t Int(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::int64_t value = -1;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return value;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string value;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return value;
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = Open(); }

  std::string DbPath() const { return (dir_.path() / "store.db").string(); }

  std::unique_ptr<ConsentStore> Open(int busy_timeout_ms = 5000) {
    auto store = OpenSqliteStore({DbPath(), busy_timeout_ms});
    EXPECT_THAT(store, IsOk());
    return store.ok() ? std::move(store).value() : nullptr;
  }

  Consent Insert(const std::string& id, std::string_view cnic = "3520212345671",
                 Timestamp expires_at = kNow + 300) {
    Consent c = MakeConsent(id, cnic, "bank", expires_at);
    EXPECT_THAT(store_->InsertConsent(c, Audit("consent.requested", id), {}), IsOk());
    return c;
  }

  Consent FindConsentOrDie(const std::string& id) {
    auto found = store_->FindConsent(id);
    EXPECT_TRUE(found.ok() && found->has_value()) << id;
    return found.ok() && found->has_value() ? **found : Consent{};
  }

  ConsentState StateOf(const std::string& id) {
    auto found = store_->FindConsent(id);
    EXPECT_THAT(found, IsOk());
    return found.ok() && found->has_value() ? (*found)->state : ConsentState::kPending;
  }

  testing::TempDir dir_;
  std::unique_ptr<ConsentStore> store_;
};

// --- Opening and migrations ---------------------------------------------------------------------

TEST_F(SqliteStoreTest, Open_CreatesSchemaAndPrivateWalFile_WhenFileIsNew) {
  ASSERT_NE(store_, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(DbPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(store_->CheckHealth(), IsOk());
  EXPECT_THAT(store_->CheckIntegrity(), IsOk());
  RawDb raw(DbPath());
  EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Int("SELECT COUNT(*) FROM schema_migrations"), 3);
  EXPECT_EQ(raw.Int("SELECT MAX(version) FROM schema_migrations"), 3);
  for (const char* table :
       {"enrolments", "consents", "cnic_failures", "blocks", "verifications", "outbox", "audit",
        "number_changes", "registry_sweep", "audit_checkpoints"}) {
    EXPECT_EQ(
        raw.Int(std::string("SELECT COUNT(*) FROM sqlite_master WHERE name = '") + table + "'"), 1)
        << table;
  }
}

TEST_F(SqliteStoreTest, Open_KeepsDataAndAppliesNothingTwice_WhenReopened) {
  Insert("consent-1");
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  auto found = store_->FindConsent("consent-1");
  ASSERT_THAT(found, IsOk());
  EXPECT_TRUE(found->has_value());
  EXPECT_EQ(RawDb(DbPath()).Int("SELECT COUNT(*) FROM schema_migrations"), 3);
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
}

// Rows written before schema version 3 hash without a subject (hash_version 1); they still
// verify, new rows chain on them, and a row cannot be passed off as the other version.
TEST_F(SqliteStoreTest, AuditRowsFromBeforeSubjects_StillVerify_AndNewRowsChainOnThem) {
  AuditEvent old = Audit("consent.requested", "consent-0");
  old.seq = 1;
  old.hash_version = 1;
  const Bytes zero(32, 0);
  const Bytes hash = sqlite::AuditHash(zero, old);
  ASSERT_EQ(hash.size(), 32U);
  {
    RawDb raw(DbPath());
    ASSERT_EQ(
        raw.Exec("INSERT INTO audit (seq, at, event, provider_id, consent_id, detail, "
                 "prev_hash, hash, hash_version) VALUES (1, " +
                 std::to_string(old.at) + ", 'consent.requested', 'bank', 'consent-0', '" +
                 old.detail + "', x'" + HexEncode(zero) + "', x'" + HexEncode(hash) + "', 1)"),
        SQLITE_OK);
  }
  ASSERT_THAT(store_->RecordEvent(Audit("policy.reloaded"), {}), IsOk());
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
  const auto tail = store_->AuditTail(10);
  ASSERT_THAT(tail, IsOk());
  ASSERT_THAT(*tail, SizeIs(2));
  EXPECT_EQ((*tail)[0].hash_version, 1);
  EXPECT_EQ((*tail)[1].hash_version, 2);
  EXPECT_EQ((*tail)[1].prev_hash, hash);

  ASSERT_EQ(RawDb(DbPath()).Exec("UPDATE audit SET hash_version = 2 WHERE seq = 1"), SQLITE_OK);
  EXPECT_THAT(store_->VerifyAuditChain(), HasReason("audit_broken"));
}

TEST_F(SqliteStoreTest, AuditCheckpoint_IsKeptOnlyForTheChainsOwnHash) {
  ASSERT_THAT(store_->RecordEvent(Audit("policy.reloaded"), {}), IsOk());
  const auto head = store_->AuditChainHead();
  ASSERT_THAT(head, IsOk());
  EXPECT_EQ(head->seq, 1);
  EXPECT_THAT(store_->LastAuditCheckpoint(), IsOkAndHolds(IsNone()));
  ConsentStore::AuditCheckpoint wrong{1, Bytes(32, 7), kNow, "note"};
  EXPECT_THAT(store_->RecordAuditCheckpoint(wrong), HasReason("audit_checkpoint_mismatch"));
  ConsentStore::AuditCheckpoint past_end{2, head->hash, kNow, "note"};
  EXPECT_THAT(store_->RecordAuditCheckpoint(past_end), HasReason("audit_checkpoint_mismatch"));
  ConsentStore::AuditCheckpoint right{1, head->hash, kNow, "signed note"};
  ASSERT_THAT(store_->RecordAuditCheckpoint(right), IsOk());
  const auto last = store_->LastAuditCheckpoint();
  ASSERT_THAT(last, IsOk());
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ((*last)->seq, 1);
  EXPECT_EQ((*last)->note, "signed note");
}

TEST_F(SqliteStoreTest, Open_RefusesDatabase_FromNewerSchema) {
  store_.reset();
  ASSERT_EQ(RawDb(DbPath()).Exec("INSERT INTO schema_migrations VALUES (999, 0)"), SQLITE_OK);
  auto reopened = OpenSqliteStore({DbPath(), 1000});
  EXPECT_THAT(reopened, StatusIs(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(reopened, HasReason("store_schema_newer"));
  if (!reopened.ok()) {
    EXPECT_THAT(reopened.error().message(), HasSubstr("999"));
  }
}

// A directory that is not there will not appear by waiting: a configuration error (ijazatd
// exits 2, not retried), as is a link in the store's place.
TEST_F(SqliteStoreTest, Open_FailsAsAConfigurationError_WhenDirectoryIsMissingOrPathIsALink) {
  auto store = OpenSqliteStore({(dir_.path() / "missing" / "store.db").string(), 100});
  EXPECT_THAT(store, StatusIs(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(store, HasReason("database_path_invalid"));
  std::filesystem::create_symlink(dir_.path() / "elsewhere.db", dir_.path() / "link.db");
  auto linked = OpenSqliteStore({(dir_.path() / "link.db").string(), 100});
  EXPECT_THAT(linked, HasReason("database_path_invalid"));
  ASSERT_FALSE(linked.ok());
  EXPECT_THAT(linked.error().message(), ::testing::HasSubstr("a symbolic link"));
}

TEST_F(SqliteStoreTest, Open_FailsDataLoss_WhenFileIsNotADatabase) {
  const auto path = dir_.WriteFile("garbage.db", std::string(8192, 'x'));
  auto store = OpenSqliteStore({path.string(), 100});
  EXPECT_THAT(store, StatusIs(ErrorCode::kDataLoss));
  EXPECT_THAT(store, HasReason("store_corrupt"));
}

TEST_F(SqliteStoreTest, Open_Works_WhenPathHasUriSpecialCharacters) {
  const auto odd = dir_.path() / "a b?c#d%20e";
  std::filesystem::create_directories(odd);
  const std::string path = (odd / "store?.db").string();
  {
    auto store = OpenSqliteStore({path, 1000});
    ASSERT_THAT(store, IsOk());
    EXPECT_THAT((*store)->InsertConsent(MakeConsent("a"), Audit("consent.requested"), {}), IsOk());
  }
  EXPECT_TRUE(std::filesystem::exists(path));
  auto reopened = OpenSqliteStore({path, 1000});
  ASSERT_THAT(reopened, IsOk());
  auto found = (*reopened)->FindConsent("a");
  ASSERT_THAT(found, IsOk());
  EXPECT_TRUE(found->has_value());
}

TEST_F(SqliteStoreTest, Open_RejectsEmptyPath) {
  EXPECT_THAT(OpenSqliteStore({"", 100}), StatusIs(ErrorCode::kInvalidArgument));
}

TEST_F(SqliteStoreTest, CheckIntegrity_ReportsDataLoss_WhenPagesAreDamaged) {
  for (int i = 0; i < 300; ++i) Insert("consent-" + std::to_string(i));
  store_.reset();  // the last connection checkpoints the WAL into the file
  {
    std::fstream file(DbPath(), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(file);
    file.seekp(std::streamoff{4096} * 5);
    const std::string junk(std::size_t{4096} * 3, '\x55');
    file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto store = OpenSqliteStore({DbPath(), 100});
  if (store.ok()) {
    EXPECT_THAT((*store)->CheckIntegrity(), StatusIs(ErrorCode::kDataLoss));
  } else {
    EXPECT_THAT(store, StatusIs(ErrorCode::kDataLoss));
  }
}

// --- Enrolments and blocks ----------------------------------------------------------------------

TEST_F(SqliteStoreTest, SaveEnrolment_RoundTripsAndFindsByPhone_WhenPhoneHasSeveralCnics) {
  const Enrolment a = MakeEnrolment("3520212345671", "+923001234567");
  Enrolment b = MakeEnrolment("4210112345673", "+923001234567");
  b.enrolled_at = kNow + 1;
  b.hold_until = kNow + kDay;
  b.locked = true;
  const Enrolment other = MakeEnrolment("3740512345675", "+923339999999");
  for (const Enrolment& e : {a, b, other}) {
    EXPECT_THAT(store_->SaveEnrolment(e, Audit("enrolment.saved"),
                                      {MakeMessage(OutboxKind::kEnrolled, std::nullopt)}),
                IsOk());
  }

  auto found = store_->FindEnrolment(b.cnic);
  ASSERT_THAT(found, IsOk());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->cnic, b.cnic);
  EXPECT_EQ((*found)->phone, b.phone);
  EXPECT_EQ((*found)->phone_sealed, b.phone_sealed);
  EXPECT_EQ((*found)->enrolled_at, b.enrolled_at);
  EXPECT_EQ((*found)->hold_until, b.hold_until);
  EXPECT_TRUE((*found)->locked);

  auto by_phone = store_->FindEnrolmentsByPhone(a.phone);
  ASSERT_THAT(by_phone, IsOk());
  ASSERT_THAT(*by_phone, SizeIs(2));
  EXPECT_EQ((*by_phone)[0].cnic, a.cnic);
  EXPECT_EQ((*by_phone)[1].cnic, b.cnic);

  EXPECT_THAT(store_->FindEnrolment(Index("9999999999999")), IsOkAndHolds(IsNone()));
  EXPECT_THAT(store_->DueMessages(kNow, 10), IsOkAndHolds(SizeIs(3)));
  EXPECT_THAT(store_->AuditTail(10), IsOkAndHolds(SizeIs(3)));
}

TEST_F(SqliteStoreTest, SaveEnrolment_ReplacesNumber_WhenCnicIsEnrolledAgain) {
  ASSERT_THAT(store_->SaveEnrolment(MakeEnrolment("3520212345671", "+923001111111"),
                                    Audit("enrolment.saved"), {}),
              IsOk());
  Enrolment changed = MakeEnrolment("3520212345671", "+923002222222");
  changed.updated_at = kNow + 10;
  EXPECT_THAT(store_->SaveEnrolment(changed, Audit("enrolment.changed"), {}),
              HasReason("enrolment_changed"))
      << "a new record where one exists: the caller did not read it";
  auto read = store_->FindEnrolment(changed.cnic);
  ASSERT_THAT(read, IsOk());
  ASSERT_TRUE(read->has_value());
  changed.revision = (*read)->revision;
  ASSERT_THAT(store_->SaveEnrolment(changed, Audit("enrolment.changed"), {}, true), IsOk());
  auto found = store_->FindEnrolment(changed.cnic);
  ASSERT_THAT(found, IsOk());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->phone, changed.phone);
  EXPECT_EQ((*found)->updated_at, kNow + 10);
  EXPECT_EQ((*found)->revision, changed.revision + 1);
  EXPECT_THAT(store_->FindEnrolmentsByPhone(Index("+923001111111")), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->CountNumberChanges(changed.cnic, kNow), IsOkAndHolds(1));
  EXPECT_THAT(store_->CountNumberChanges(changed.cnic, kNow + 10), IsOkAndHolds(0))
      << "the window is (since, now]";
}

TEST_F(SqliteStoreTest, SaveEnrolment_FromAStaleRead_IsRefusedAndChangesNothing) {
  ASSERT_THAT(store_->SaveEnrolment(MakeEnrolment("3520212345671", "+923001111111"),
                                    Audit("enrolment.saved"), {}),
              IsOk());
  auto read = store_->FindEnrolment(Index("3520212345671"));
  ASSERT_THAT(read, IsOk());
  ASSERT_TRUE(read->has_value());
  Enrolment lock = **read;
  Enrolment unlock = **read;  // read at the same time as `lock`
  lock.locked = true;
  ASSERT_THAT(store_->SaveEnrolment(lock, Audit("citizen.lock"), {}), IsOk());
  unlock.locked = false;
  EXPECT_THAT(store_->SaveEnrolment(unlock, Audit("citizen.unlock"),
                                    {MakeMessage(OutboxKind::kReply, std::nullopt)}),
              HasReason("enrolment_changed"));
  auto after = store_->FindEnrolment(Index("3520212345671"));
  ASSERT_THAT(after, IsOk());
  EXPECT_TRUE((*after)->locked) << "the LOCK the citizen was told of stands";
  EXPECT_THAT(store_->DueMessages(kNow, 10), IsOkAndHolds(IsEmpty())) << "nothing queued";
  EXPECT_THAT(store_->AuditTail(10), IsOkAndHolds(SizeIs(2))) << "nothing audited";
}

TEST_F(SqliteStoreTest, SetBlocked_BlocksOneProvider_UntilUnblocked) {
  const BlindIndex cnic = Index("3520212345671");
  EXPECT_THAT(store_->IsBlocked(cnic, "bank"), IsOkAndHolds(false));
  EXPECT_THAT(store_->SetBlocked(cnic, "bank", true, Audit("block")), IsOk());
  EXPECT_THAT(store_->SetBlocked(cnic, "bank", true, Audit("block")), IsOk());  // idempotent
  EXPECT_THAT(store_->IsBlocked(cnic, "bank"), IsOkAndHolds(true));
  EXPECT_THAT(store_->IsBlocked(cnic, "telco"), IsOkAndHolds(false));
  EXPECT_THAT(store_->IsBlocked(Index("4210112345673"), "bank"), IsOkAndHolds(false));
  EXPECT_THAT(store_->SetBlocked(cnic, "bank", false, Audit("unblock")), IsOk());
  EXPECT_THAT(store_->IsBlocked(cnic, "bank"), IsOkAndHolds(false));
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
}

TEST_F(SqliteStoreTest, Methods_RejectEmptyIndexes) {
  EXPECT_THAT(store_->FindEnrolment(BlindIndex{}), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(store_->IsBlocked(BlindIndex{}, "bank"), StatusIs(ErrorCode::kInvalidArgument));
  EXPECT_THAT(store_->RecentVerifications(Index("x"), -1), StatusIs(ErrorCode::kInvalidArgument));
  Consent no_cnic = MakeConsent("c");
  no_cnic.cnic = {};
  EXPECT_THAT(store_->InsertConsent(no_cnic, Audit("x"), {}),
              StatusIs(ErrorCode::kInvalidArgument));
}

// --- Consents -----------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, InsertConsent_RoundTripsEveryField) {
  const Consent c = Insert("consent-1");
  auto found = store_->FindConsent("consent-1");
  ASSERT_THAT(found, IsOk());
  ASSERT_TRUE(found->has_value());
  const Consent& f = **found;
  EXPECT_EQ(f.id, c.id);
  EXPECT_EQ(f.provider_id, c.provider_id);
  EXPECT_EQ(f.purpose, c.purpose);
  EXPECT_EQ(f.scopes, c.scopes);
  EXPECT_EQ(f.cnic, c.cnic);
  EXPECT_EQ(f.cnic_sealed, c.cnic_sealed);
  EXPECT_TRUE(f.deliverable);
  EXPECT_EQ(f.state, ConsentState::kPending);
  EXPECT_EQ(f.created_at, c.created_at);
  EXPECT_EQ(f.expires_at, c.expires_at);
  EXPECT_EQ(f.attempts, 0);
  EXPECT_EQ(f.max_attempts, 3);
  EXPECT_EQ(f.otp_key_version, 4u);
  EXPECT_EQ(f.otp_digits, 6);
  EXPECT_EQ(f.policy_version, "2024-01");
  EXPECT_EQ(f.policy_hash, "abc123");
  EXPECT_EQ(f.reference, "");
  EXPECT_THAT(store_->FindConsent("nope"), IsOkAndHolds(IsNone()));
}

TEST_F(SqliteStoreTest, InsertConsent_FailsAlreadyExists_AndChangesNothing_WhenIdIsTaken) {
  Insert("consent-1");
  const Consent again = MakeConsent("consent-1");
  auto status = store_->InsertConsent(again, Audit("consent.requested", "consent-1"),
                                      {MakeMessage(OutboxKind::kOtp, "3520212345671")});
  EXPECT_THAT(status, StatusIs(ErrorCode::kAlreadyExists));
  EXPECT_THAT(store_->DueMessages(kNow, 10), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->AuditTail(10), IsOkAndHolds(SizeIs(1)));
}

TEST_F(SqliteStoreTest, InsertConsent_QueuesMessagesInTheSameTransaction) {
  Consent c = MakeConsent("consent-1");
  OutboxMessage otp = MakeMessage(OutboxKind::kOtp, "3520212345671");
  otp.consent_id = "consent-1";
  ASSERT_THAT(store_->InsertConsent(c, Audit("consent.requested", "consent-1"), {otp}), IsOk());
  auto due = store_->DueMessages(kNow, 10);
  ASSERT_THAT(due, IsOk());
  ASSERT_THAT(*due, SizeIs(1));
  EXPECT_EQ((*due)[0].kind, OutboxKind::kOtp);
  EXPECT_EQ((*due)[0].consent_id, "consent-1");
  EXPECT_EQ((*due)[0].recipient, otp.recipient);
  EXPECT_EQ((*due)[0].cnic, otp.cnic);
  EXPECT_EQ((*due)[0].not_after, otp.not_after);
  EXPECT_EQ((*due)[0].params, otp.params);
}

TEST_F(SqliteStoreTest, RecordFailedAttempt_CountsAndFailsConsent_AtMaxAttempts) {
  Insert("consent-1");
  for (int i = 1; i <= 3; ++i) {
    auto result = store_->RecordFailedAttempt("consent-1", kNow + i, Audit("otp.failed"));
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->consent.attempts, i);
    EXPECT_EQ(result->cnic.in_window, i);
    EXPECT_EQ(result->cnic.consecutive, i);
    EXPECT_EQ(result->consent.state, i < 3 ? ConsentState::kPending : ConsentState::kFailed);
  }
  auto fourth = store_->RecordFailedAttempt("consent-1", kNow + 4, Audit("otp.failed"));
  EXPECT_THAT(fourth, StatusIs(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(fourth, HasReason("consent_not_pending"));
  EXPECT_THAT(store_->GetCnicFailures(Index("3520212345671"), kProvider, kNow + 5),
              IsOkAndHolds(::testing::FieldsAre(3, 3, 3)));
  EXPECT_THAT(store_->RecordFailedAttempt("nope", kNow, Audit("otp.failed")),
              StatusIs(ErrorCode::kNotFound));
}

TEST_F(SqliteStoreTest, RecordFailedAttempt_WindowSlides_ConsecutiveDoesNot) {
  Insert("a", "3520212345671", kNow + 10 * kDay);
  Insert("b", "3520212345671", kNow + 10 * kDay);
  ASSERT_THAT(store_->RecordFailedAttempt("a", kNow, Audit("otp.failed")), IsOk());
  ASSERT_THAT(store_->RecordFailedAttempt("a", kNow + 100, Audit("otp.failed")), IsOk());
  const BlindIndex cnic = Index("3520212345671");
  EXPECT_THAT(store_->GetCnicFailures(cnic, kProvider, kNow + kDay - 1),
              IsOkAndHolds(::testing::FieldsAre(2, 2, 2)));
  // Each failure leaves the window 24 hours after it happened, not at a fixed boundary.
  EXPECT_THAT(store_->GetCnicFailures(cnic, kProvider, kNow + kDay),
              IsOkAndHolds(::testing::FieldsAre(1, 2, 2)));
  EXPECT_THAT(store_->GetCnicFailures(cnic, kProvider, kNow + kDay + 100),
              IsOkAndHolds(::testing::FieldsAre(0, 2, 2)));
  auto later = store_->RecordFailedAttempt("b", kNow + kDay + 5, Audit("otp.failed"));
  ASSERT_THAT(later, IsOk());
  EXPECT_EQ(later->cnic.in_window, 2);
  EXPECT_EQ(later->cnic.consecutive, 3);
  EXPECT_THAT(store_->GetCnicFailures(Index("4210112345673"), kProvider, kNow),
              IsOkAndHolds(::testing::FieldsAre(0, 0, 0)));
}

// Finding 7 of the provider-abuse review: 19 wrong guesses counted within two minutes around
// a fixed window's boundary. A sliding window never holds more than its limit.
TEST_F(SqliteStoreTest, RecordFailedAttempt_AtTheWindowsEdge_CannotBeDoubled) {
  const BlindIndex cnic = Index("3520212345671");
  for (int i = 0; i < 10; ++i) {
    const std::string id = "edge-" + std::to_string(i);
    Insert(id, "3520212345671", kNow + 10 * kDay);
    ASSERT_THAT(store_->RecordFailedAttempt(id, kNow + kDay - 60 + i, Audit("otp.failed")), IsOk());
  }
  // Two minutes later, just past where a fixed window starting at kNow would have restarted.
  EXPECT_THAT(store_->GetCnicFailures(cnic, kProvider, kNow + kDay + 60),
              IsOkAndHolds(::testing::FieldsAre(10, 10, 10)));
}

// Finding 2: one provider's wrong codes locked the citizen out for every provider.
TEST_F(SqliteStoreTest, Failures_AreCountedPerProvider_WithTheCnicWideCountInARow) {
  Insert("mine", "3520212345671", kNow + kDay);
  ASSERT_THAT(store_->InsertConsent(MakeConsent("theirs", "3520212345671", "other", kNow + kDay),
                                    Audit("consent.requested"), {}),
              IsOk());
  ASSERT_THAT(store_->RecordFailedAttempt("theirs", kNow, Audit("otp.failed")), IsOk());
  ASSERT_THAT(store_->RecordFailedAttempt("theirs", kNow + 1, Audit("otp.failed")), IsOk());
  ASSERT_THAT(store_->RecordFailedAttempt("mine", kNow + 2, Audit("otp.failed")), IsOk());
  const BlindIndex cnic = Index("3520212345671");
  EXPECT_THAT(store_->GetCnicFailures(cnic, "other", kNow + 3),
              IsOkAndHolds(::testing::FieldsAre(2, 3, 2)));
  EXPECT_THAT(store_->GetCnicFailures(cnic, kProvider, kNow + 3),
              IsOkAndHolds(::testing::FieldsAre(1, 3, 1)));
  // A grant resets the CNIC's count in a row and its own provider's, not another's.
  ASSERT_THAT(store_->GrantConsent("mine", Grant("REF-MINE"), kNow + 4, Audit("g"), {}), IsOk());
  EXPECT_THAT(store_->GetCnicFailures(cnic, "other", kNow + 5),
              IsOkAndHolds(::testing::FieldsAre(2, 0, 2)));
  EXPECT_THAT(store_->GetCnicFailures(cnic, kProvider, kNow + 5),
              IsOkAndHolds(::testing::FieldsAre(1, 0, 0)));
  // The citizen re-confirming the number resets every count in a row.
  ASSERT_THAT(store_->ResetConsecutiveFailures(cnic, Audit("cnic.failures_reset")), IsOk());
  EXPECT_THAT(store_->GetCnicFailures(cnic, "other", kNow + 5),
              IsOkAndHolds(::testing::FieldsAre(2, 0, 0)));
}

// When a provider's daily limit of wrong codes for a CNIC admits a code again: its own
// failures only, each leaving the window a day after it happened.
TEST_F(SqliteStoreTest, CnicFailureWindowAdmitsAt_IsWhenTheLimitThMostRecentOwnFailureLeaves) {
  Insert("mine", "3520212345671", kNow + 10 * kDay);
  ASSERT_THAT(
      store_->InsertConsent(MakeConsent("theirs", "3520212345671", "other", kNow + 10 * kDay),
                            Audit("consent.requested"), {}),
      IsOk());
  const BlindIndex cnic = Index("3520212345671");
  EXPECT_THAT(store_->CnicFailureWindowAdmitsAt(cnic, kProvider, kNow, 2), IsOkAndHolds(kNow))
      << "no failures: admitted now";
  ASSERT_THAT(store_->RecordFailedAttempt("mine", kNow, Audit("otp.failed")), IsOk());
  ASSERT_THAT(store_->RecordFailedAttempt("mine", kNow + 100, Audit("otp.failed")), IsOk());
  ASSERT_THAT(store_->RecordFailedAttempt("theirs", kNow + 200, Audit("otp.failed")), IsOk());
  EXPECT_THAT(store_->CnicFailureWindowAdmitsAt(cnic, kProvider, kNow + 300, 3),
              IsOkAndHolds(kNow + 300))
      << "below the limit; another provider's failure does not count";
  // Two in the window, limit 2: admitted once the older leaves; limit 1: once the newer does.
  EXPECT_THAT(store_->CnicFailureWindowAdmitsAt(cnic, kProvider, kNow + 300, 2),
              IsOkAndHolds(kNow + kDay));
  EXPECT_THAT(store_->CnicFailureWindowAdmitsAt(cnic, kProvider, kNow + 300, 1),
              IsOkAndHolds(kNow + 100 + kDay));
  EXPECT_THAT(store_->CnicFailureWindowAdmitsAt(cnic, "other", kNow + 300, 1),
              IsOkAndHolds(kNow + 200 + kDay));
  EXPECT_THAT(store_->CnicFailureWindowAdmitsAt(cnic, kProvider, kNow + kDay, 2),
              IsOkAndHolds(kNow + kDay))
      << "the older one has left";
}

TEST_F(SqliteStoreTest, RecordFailedAttempt_MarksExpired_WhenCodeHasExpired) {
  Insert("consent-1", "3520212345671", kNow + 300);
  auto result = store_->RecordFailedAttempt("consent-1", kNow + 300, Audit("otp.failed"));
  EXPECT_THAT(result, HasReason("consent_not_pending"));
  EXPECT_EQ(StateOf("consent-1"), ConsentState::kExpired);
  EXPECT_THAT(store_->GetCnicFailures(Index("3520212345671"), kProvider, kNow),
              IsOkAndHolds(::testing::FieldsAre(0, 0, 0)));
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
}

TEST_F(SqliteStoreTest, GrantConsent_GrantsOnce_AndResetsConsecutiveButNotWindow) {
  Insert("a");
  Insert("b");
  ASSERT_THAT(store_->RecordFailedAttempt("a", kNow, Audit("otp.failed")), IsOk());
  ASSERT_THAT(store_->RecordFailedAttempt("b", kNow, Audit("otp.failed")), IsOk());

  OutboxMessage note = MakeMessage(OutboxKind::kGranted, "3520212345671");
  auto granted = store_->GrantConsent("b", Grant("K7Q2-M9XD"), kNow + 1,
                                      Audit("consent.granted", "b"), {note});
  ASSERT_THAT(granted, IsOk());
  EXPECT_EQ(granted->state, ConsentState::kGranted);
  EXPECT_EQ(granted->reference, "K7Q2-M9XD");
  EXPECT_EQ(granted->expires_at, kNow + 3600);
  EXPECT_EQ(granted->max_uses, 1);
  EXPECT_EQ(granted->uses, 0);
  EXPECT_EQ(granted->receipt_key_version, 7u);
  EXPECT_EQ(granted->receipt, "eyJhbGciOiJFUzI1NiJ9.receipt.sig");
  EXPECT_EQ(granted->attempts, 1);
  EXPECT_THAT(store_->GetCnicFailures(Index("3520212345671"), kProvider, kNow + 2),
              IsOkAndHolds(::testing::FieldsAre(2, 0, 0)));
  EXPECT_THAT(store_->DueMessages(kNow + 1, 10), IsOkAndHolds(SizeIs(1)));

  auto again =
      store_->GrantConsent("b", Grant("OTHER-REF"), kNow + 2, Audit("consent.granted"), {});
  EXPECT_THAT(again, StatusIs(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(again, HasReason("consent_not_pending"));
  EXPECT_THAT(store_->GrantConsent("a", Grant("REF-2", kNow), kNow, Audit("g"), {}),
              StatusIs(ErrorCode::kInvalidArgument));

  auto by_ref = store_->FindConsentByReference(Index("3520212345671"), "K7Q2-M9XD");
  ASSERT_THAT(by_ref, IsOk());
  ASSERT_TRUE(by_ref->has_value());
  EXPECT_EQ((*by_ref)->id, "b");
  EXPECT_THAT(store_->FindConsentByReference(Index("4210112345673"), "K7Q2-M9XD"),
              IsOkAndHolds(IsNone()));
}

TEST_F(SqliteStoreTest, GrantConsent_FailsAndMarksExpired_WhenCodeHasExpired) {
  Insert("a", "3520212345671", kNow + 300);
  auto result = store_->GrantConsent("a", Grant("REF-1"), kNow + 301, Audit("consent.granted"), {});
  EXPECT_THAT(result, HasReason("consent_not_pending"));
  EXPECT_EQ(StateOf("a"), ConsentState::kExpired);
}

TEST_F(SqliteStoreTest, GrantConsent_FailsReferenceTaken_AndLeavesConsentPending) {
  Insert("a");
  Insert("b");
  ASSERT_THAT(store_->GrantConsent("a", Grant("REF-1"), kNow, Audit("consent.granted"), {}),
              IsOk());
  auto clash = store_->GrantConsent("b", Grant("REF-1"), kNow, Audit("consent.granted"), {});
  EXPECT_THAT(clash, StatusIs(ErrorCode::kAlreadyExists));
  EXPECT_THAT(clash, HasReason("reference_taken"));
  EXPECT_EQ(StateOf("b"), ConsentState::kPending);
}

TEST_F(SqliteStoreTest, GrantConsent_Refuses_WhenConsentWasNotDeliverable) {
  Consent c = MakeConsent("a");
  c.deliverable = false;
  ASSERT_THAT(store_->InsertConsent(c, Audit("consent.requested"), {}), IsOk());
  EXPECT_THAT(store_->GrantConsent("a", Grant("REF-1"), kNow, Audit("consent.granted"), {}),
              HasReason("consent_not_pending"));
}

TEST_F(SqliteStoreTest, UseConsent_CountsUsesUpToMax_ThenConsentUsed) {
  Insert("a");
  ASSERT_THAT(
      store_->GrantConsent("a", Grant("REF-1", kNow + 3600, 2), kNow, Audit("consent.granted"), {}),
      IsOk());
  auto first = store_->UseConsent("a", "bank", kNow + 10, Audit("consent.used"));
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->uses, 1);
  EXPECT_EQ(first->state, ConsentState::kGranted);
  auto second = store_->UseConsent("a", "bank", kNow + 20, Audit("consent.used"));
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->uses, 2);
  EXPECT_EQ(second->state, ConsentState::kUsed);
  auto third = store_->UseConsent("a", "bank", kNow + 30, Audit("consent.used"));
  EXPECT_THAT(third, StatusIs(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(third, HasReason("consent_used"));
}

TEST_F(SqliteStoreTest, UseConsent_RefusesWrongProviderRevokedExpiredAndPending) {
  Insert("granted");
  Insert("revoked");
  Insert("expiring");
  Insert("pending");
  ASSERT_THAT(store_->GrantConsent("granted", Grant("R1"), kNow, Audit("g"), {}), IsOk());
  ASSERT_THAT(store_->GrantConsent("revoked", Grant("R2"), kNow, Audit("g"), {}), IsOk());
  ASSERT_THAT(store_->GrantConsent("expiring", Grant("R3", kNow + 60), kNow, Audit("g"), {}),
              IsOk());
  ASSERT_THAT(store_->RevokeConsent("revoked", kNow + 1, Audit("consent.revoked")), IsOk());

  auto wrong = store_->UseConsent("granted", "telco", kNow + 2, Audit("u"));
  EXPECT_THAT(wrong, StatusIs(ErrorCode::kPermissionDenied));
  EXPECT_THAT(wrong, HasReason("wrong_provider"));
  EXPECT_THAT(store_->UseConsent("revoked", "bank", kNow + 2, Audit("u")),
              HasReason("consent_revoked"));
  EXPECT_THAT(store_->UseConsent("expiring", "bank", kNow + 60, Audit("u")),
              HasReason("consent_expired"));
  EXPECT_EQ(StateOf("expiring"), ConsentState::kExpired);
  EXPECT_THAT(store_->UseConsent("expiring", "bank", kNow + 61, Audit("u")),
              HasReason("consent_expired"));
  EXPECT_THAT(store_->UseConsent("pending", "bank", kNow + 2, Audit("u")),
              HasReason("consent_not_granted"));
  EXPECT_THAT(store_->UseConsent("nope", "bank", kNow + 2, Audit("u")),
              StatusIs(ErrorCode::kNotFound));
  // The granted one is still usable by its own provider.
  EXPECT_THAT(store_->UseConsent("granted", "bank", kNow + 3, Audit("u")), IsOk());
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
}

TEST_F(SqliteStoreTest, RevokeConsent_RevokesPendingAndGranted_ButNothingElse) {
  Insert("pending");
  Insert("granted");
  Insert("used");
  ASSERT_THAT(store_->GrantConsent("granted", Grant("R1"), kNow, Audit("g"), {}), IsOk());
  ASSERT_THAT(store_->GrantConsent("used", Grant("R2"), kNow, Audit("g"), {}), IsOk());
  ASSERT_THAT(store_->UseConsent("used", "bank", kNow, Audit("u")), IsOk());

  auto revoked = store_->RevokeConsent("pending", kNow + 1, Audit("consent.revoked"));
  ASSERT_THAT(revoked, IsOk());
  EXPECT_EQ(revoked->state, ConsentState::kRevoked);
  EXPECT_THAT(store_->RevokeConsent("granted", kNow + 1, Audit("consent.revoked")), IsOk());
  EXPECT_THAT(store_->RevokeConsent("granted", kNow + 2, Audit("consent.revoked")),
              HasReason("consent_not_revocable"));
  EXPECT_THAT(store_->RevokeConsent("used", kNow + 2, Audit("consent.revoked")),
              HasReason("consent_not_revocable"));
  EXPECT_THAT(store_->RevokeConsent("nope", kNow + 2, Audit("consent.revoked")),
              StatusIs(ErrorCode::kNotFound));
}

TEST_F(SqliteStoreTest, ExpireConsents_ExpiresPendingAndGranted_WhoseTimeHasCome) {
  Insert("pending-due", "3520212345671", kNow + 10);
  Insert("pending-later", "3520212345671", kNow + 1000);
  Insert("granted-due", "3520212345671", kNow + 500);
  Insert("failed", "3520212345671", kNow + 10);
  ASSERT_THAT(store_->GrantConsent("granted-due", Grant("R1", kNow + 20), kNow, Audit("g"), {}),
              IsOk());
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(store_->RecordFailedAttempt("failed", kNow, Audit("f")), IsOk());
  }
  EXPECT_THAT(store_->ExpireConsents(kNow + 20), IsOkAndHolds(2));
  EXPECT_EQ(StateOf("pending-due"), ConsentState::kExpired);
  EXPECT_EQ(StateOf("granted-due"), ConsentState::kExpired);
  EXPECT_EQ(StateOf("pending-later"), ConsentState::kPending);
  EXPECT_EQ(StateOf("failed"), ConsentState::kFailed);
  EXPECT_THAT(store_->ExpireConsents(kNow + 20), IsOkAndHolds(0));
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
  auto tail = store_->AuditTail(2);
  ASSERT_THAT(tail, IsOk());
  EXPECT_EQ((*tail)[0].event, "consent.expired");
}

TEST_F(SqliteStoreTest, RecentVerifications_ListsNewestFirst_UpToLimit) {
  Insert("a");
  Insert("b");
  Insert("other", "4210112345673");
  ASSERT_THAT(store_->GrantConsent("a", Grant("RA", kNow + 3600, 5), kNow, Audit("g"), {}), IsOk());
  ASSERT_THAT(store_->GrantConsent("b", Grant("RB"), kNow, Audit("g"), {}), IsOk());
  ASSERT_THAT(store_->GrantConsent("other", Grant("RO"), kNow, Audit("g"), {}), IsOk());
  ASSERT_THAT(store_->UseConsent("a", "bank", kNow + 1, Audit("u")), IsOk());
  ASSERT_THAT(store_->UseConsent("b", "bank", kNow + 2, Audit("u")), IsOk());
  ASSERT_THAT(store_->UseConsent("a", "bank", kNow + 3, Audit("u")), IsOk());
  ASSERT_THAT(store_->UseConsent("other", "bank", kNow + 4, Audit("u")), IsOk());

  auto recent = store_->RecentVerifications(Index("3520212345671"), 10);
  ASSERT_THAT(recent, IsOk());
  ASSERT_THAT(*recent, SizeIs(3));
  EXPECT_EQ((*recent)[0].at, kNow + 3);
  EXPECT_EQ((*recent)[0].reference, "RA");
  EXPECT_EQ((*recent)[1].consent_id, "b");
  EXPECT_EQ((*recent)[1].purpose, "account_opening");
  EXPECT_EQ((*recent)[2].at, kNow + 1);
  EXPECT_THAT(store_->RecentVerifications(Index("3520212345671"), 2), IsOkAndHolds(SizeIs(2)));
}

// --- Outbox -------------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, Outbox_QueuesSendsCountsAndFindsByGatewayId) {
  OutboxMessage later = MakeMessage(OutboxKind::kHelp, std::nullopt, kNow + 100);
  ASSERT_THAT(
      store_->EnqueueMessages({MakeMessage(OutboxKind::kOtp, "3520212345671", kNow),
                               MakeMessage(OutboxKind::kReply, "3520212345671", kNow + 1), later}),
      IsOk());
  auto due = store_->DueMessages(kNow + 50, 10);
  ASSERT_THAT(due, IsOk());
  ASSERT_THAT(*due, SizeIs(2));
  EXPECT_EQ((*due)[0].kind, OutboxKind::kOtp);
  EXPECT_EQ((*due)[1].kind, OutboxKind::kReply);
  EXPECT_TRUE((*due)[1].consent_id.empty());
  EXPECT_THAT(store_->DueMessages(kNow + 50, 1), IsOkAndHolds(SizeIs(1)));
  auto all_due = store_->DueMessages(kNow + 100, 10);
  ASSERT_THAT(all_due, IsOk());
  ASSERT_THAT(*all_due, SizeIs(3));
  EXPECT_EQ((*all_due)[2].kind, OutboxKind::kHelp);
  EXPECT_FALSE((*all_due)[2].cnic.has_value());
  EXPECT_EQ((*all_due)[0].cnic, Index("3520212345671"));

  const std::int64_t first = (*due)[0].id;
  const std::int64_t second = (*due)[1].id;
  ASSERT_THAT(store_->UpdateMessage(first, OutboxStatus::kSent, 0, "gw-1", ""), IsOk());
  ASSERT_THAT(store_->UpdateMessage(second, OutboxStatus::kQueued, kNow + 500, "", "timeout"),
              IsOk());
  EXPECT_THAT(store_->DueMessages(kNow + 50, 10), IsOkAndHolds(IsEmpty()));

  auto by_gateway = store_->FindMessageByGatewayId("gw-1");
  ASSERT_THAT(by_gateway, IsOk());
  ASSERT_TRUE(by_gateway->has_value());
  EXPECT_EQ((*by_gateway)->id, first);
  EXPECT_EQ((*by_gateway)->status, OutboxStatus::kSent);
  EXPECT_EQ((*by_gateway)->attempts, 1);
  EXPECT_THAT(store_->FindMessageByGatewayId("gw-unknown"), IsOkAndHolds(IsNone()));
  ASSERT_THAT(store_->UpdateMessage(first, OutboxStatus::kDelivered, 0, "", ""), IsOk());
  by_gateway = store_->FindMessageByGatewayId("gw-1");
  ASSERT_THAT(by_gateway, IsOk());
  ASSERT_TRUE(by_gateway->has_value());
  EXPECT_EQ((*by_gateway)->status, OutboxStatus::kDelivered);
  EXPECT_EQ((*by_gateway)->attempts, 1);

  auto retried = store_->DueMessages(kNow + 500, 10);
  ASSERT_THAT(retried, IsOk());
  ASSERT_THAT(*retried, SizeIs(2));
  EXPECT_EQ((*retried)[0].id, second);
  EXPECT_EQ((*retried)[0].last_error, "timeout");
  EXPECT_EQ((*retried)[0].attempts, 1);

  const BlindIndex cnic = Index("3520212345671");
  const auto in_hour = [&](const BlindIndex& index, Timestamp at) {
    const auto counts = store_->CountMessages(index, "", {}, at);
    return counts.ok() ? counts->cnic_hour : -1;
  };
  EXPECT_EQ(in_hour(cnic, kNow + 1), 2);
  EXPECT_EQ(in_hour(cnic, kNow + 3600), 1) << "an hour after the first, only the second counts";
  EXPECT_EQ(in_hour(Index("4210112345673"), kNow + 1), 0);
  ASSERT_THAT(store_->UpdateMessage(second, OutboxStatus::kDropped, 0, "", "expired"), IsOk());
  EXPECT_EQ(in_hour(cnic, kNow + 1), 1) << "a dropped message never went out";

  EXPECT_THAT(store_->CountMessagesByStatus(),
              IsOkAndHolds(ElementsAre(
                  std::pair(OutboxStatus::kQueued, 1), std::pair(OutboxStatus::kSent, 0),
                  std::pair(OutboxStatus::kFailed, 0), std::pair(OutboxStatus::kDropped, 1),
                  std::pair(OutboxStatus::kDelivered, 1))));
  EXPECT_THAT(store_->UpdateMessage(9999, OutboxStatus::kSent, 0, "", ""),
              StatusIs(ErrorCode::kNotFound));
}

TEST_F(SqliteStoreTest, DeliveryReport_SettlesAMessageBeforeItsHandOverIsRecorded_AndItStands) {
  ASSERT_THAT(store_->EnqueueMessages({MakeMessage(OutboxKind::kReply, "3520212345671", kNow),
                                       MakeMessage(OutboxKind::kReply, "3520212345671", kNow)}),
              IsOk());
  auto due = store_->DueMessages(kNow, 10);
  ASSERT_THAT(due, IsOk());
  ASSERT_THAT(*due, SizeIs(2));
  const std::int64_t overtaken = (*due)[0].id;
  const std::int64_t rejected = (*due)[1].id;

  // Kannel reports delivery while the dispatcher still holds the message as queued.
  auto reported = store_->RecordDeliveryReport(overtaken, OutboxStatus::kDelivered, "");
  ASSERT_THAT(reported, IsOk());
  ASSERT_TRUE(reported->has_value());
  EXPECT_EQ((*reported)->status, OutboxStatus::kDelivered);
  // The dispatcher's record of the hand-over comes after: the outcome stands, the gateway id and
  // the attempt are recorded.
  ASSERT_THAT(store_->UpdateMessages({{overtaken, OutboxStatus::kSent, 0, "gw-7", ""}}), IsOk());
  auto found = store_->FindMessageByGatewayId("gw-7");
  ASSERT_THAT(found, IsOk());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, overtaken);
  EXPECT_EQ((*found)->status, OutboxStatus::kDelivered);
  EXPECT_EQ((*found)->attempts, 1);
  // Nor does a retry or a later failure report undo it.
  ASSERT_THAT(store_->UpdateMessage(overtaken, OutboxStatus::kQueued, kNow + 60, "", "timeout"),
              IsOk());
  reported = store_->RecordDeliveryReport(overtaken, OutboxStatus::kFailed, "delivery report 2");
  ASSERT_THAT(reported, IsOk());
  EXPECT_EQ((*reported)->status, OutboxStatus::kDelivered);
  EXPECT_EQ((*reported)->last_error, "");
  EXPECT_THAT(store_->DueMessages(kNow + 60, 10), IsOkAndHolds(SizeIs(1)));

  // A rejection settles as failed, with the report as its error; an intermediate report (no
  // outcome) changes nothing.
  reported = store_->RecordDeliveryReport(rejected, std::nullopt, "");
  ASSERT_THAT(reported, IsOk());
  EXPECT_EQ((*reported)->status, OutboxStatus::kQueued);
  reported = store_->RecordDeliveryReport(rejected, OutboxStatus::kFailed, "delivery report 16");
  ASSERT_THAT(reported, IsOk());
  EXPECT_EQ((*reported)->status, OutboxStatus::kFailed);
  EXPECT_EQ((*reported)->last_error, "delivery report 16");
  ASSERT_THAT(store_->UpdateMessage(rejected, OutboxStatus::kSent, 0, "gw-8", ""), IsOk());
  EXPECT_THAT(store_->DueMessages(kNow + 60, 10), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->CountMessagesByStatus(),
              IsOkAndHolds(ElementsAre(
                  std::pair(OutboxStatus::kQueued, 0), std::pair(OutboxStatus::kSent, 0),
                  std::pair(OutboxStatus::kFailed, 1), std::pair(OutboxStatus::kDropped, 0),
                  std::pair(OutboxStatus::kDelivered, 1))));

  EXPECT_THAT(store_->RecordDeliveryReport(9999, OutboxStatus::kDelivered, ""),
              IsOkAndHolds(IsNone()));
  EXPECT_THAT(store_->RecordDeliveryReport(overtaken, OutboxStatus::kSent, ""),
              StatusIs(ErrorCode::kInvalidArgument));
}

// --- Audit --------------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, AuditChain_Verifies_AndTailLinksHashes) {
  for (int i = 0; i < 5; ++i) Insert("consent-" + std::to_string(i));
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
  auto tail = store_->AuditTail(3);
  ASSERT_THAT(tail, IsOk());
  ASSERT_THAT(*tail, SizeIs(3));
  EXPECT_EQ((*tail)[0].seq, 3);
  EXPECT_EQ((*tail)[2].seq, 5);
  EXPECT_EQ((*tail)[1].prev_hash, (*tail)[0].hash);
  EXPECT_EQ((*tail)[2].prev_hash, (*tail)[1].hash);
  EXPECT_THAT((*tail)[2].hash, SizeIs(32));
  EXPECT_EQ((*tail)[2].event, "consent.requested");
  EXPECT_EQ((*tail)[2].consent_id, "consent-4");
  EXPECT_EQ((*tail)[2].detail, R"({"note":"test"})");
  auto all = store_->AuditTail(100);
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ((*all)[0].prev_hash, Bytes(32, 0));
}

TEST_F(SqliteStoreTest, VerifyAuditChain_NamesFirstBrokenSeq_WhenARowIsTampered) {
  for (int i = 0; i < 5; ++i) Insert("consent-" + std::to_string(i));
  ASSERT_EQ(RawDb(DbPath()).Exec("UPDATE audit SET detail = '{\"note\":\"forged\"}' WHERE seq = 3"),
            SQLITE_OK);
  auto status = store_->VerifyAuditChain();
  EXPECT_THAT(status, StatusIs(ErrorCode::kDataLoss));
  EXPECT_THAT(status, HasReason("audit_broken"));
  if (!status.ok()) {
    EXPECT_THAT(status.error().message(), HasSubstr("seq 3"));
  }
}

TEST_F(SqliteStoreTest, VerifyAuditChain_NamesMissingSeq_WhenARowIsDeleted) {
  for (int i = 0; i < 5; ++i) Insert("consent-" + std::to_string(i));
  ASSERT_EQ(RawDb(DbPath()).Exec("DELETE FROM audit WHERE seq = 2"), SQLITE_OK);
  auto status = store_->VerifyAuditChain();
  EXPECT_THAT(status, HasReason("audit_broken"));
  if (!status.ok()) {
    EXPECT_THAT(status.error().message(), HasSubstr("seq 2"));
  }
}

TEST_F(SqliteStoreTest, VerifyAuditChain_Fails_WhenARecomputedRowIsSpliced) {
  // Rewriting a row and its own hash still breaks the next row's prev_hash.
  for (int i = 0; i < 3; ++i) Insert("consent-" + std::to_string(i));
  ASSERT_EQ(RawDb(DbPath()).Exec("UPDATE audit SET hash = zeroblob(32) WHERE seq = 2"), SQLITE_OK);
  auto status = store_->VerifyAuditChain();
  EXPECT_THAT(status, HasReason("audit_broken"));
  if (!status.ok()) {
    EXPECT_THAT(status.error().message(), HasSubstr("seq 2"));
  }
}

TEST_F(SqliteStoreTest, Changes_FailAndRollBack_WhenAuditAppendFails) {
  ASSERT_EQ(RawDb(DbPath()).Exec("CREATE TRIGGER no_audit BEFORE INSERT ON audit "
                                 "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"),
            SQLITE_OK);
  OutboxMessage otp = MakeMessage(OutboxKind::kOtp, "3520212345671");
  auto status = store_->InsertConsent(MakeConsent("a"), Audit("consent.requested"), {otp});
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(store_->FindConsent("a"), IsOkAndHolds(IsNone()));
  EXPECT_THAT(store_->DueMessages(kNow, 10), IsOkAndHolds(IsEmpty()));
}

// --- Concurrency --------------------------------------------------------------------------------

// The dispatcher's decision on a code: every cap is counted in the claim's own transaction,
// with the codes claimed before it, and one provider's share of each cap leaves room for others.
TEST_F(SqliteStoreTest, ClaimCode_CountsEveryCap_AndDropsPastOne) {
  const BlindIndex cnic = Index("3520212345671");
  const BlindIndex phone = Index("+923001234567");
  auto queue_code = [&](const std::string& id, const std::string& provider) {
    Consent consent = MakeConsent(id, "3520212345671", provider, kNow + 300);
    consent.deliverable = false;  // until its code is claimed
    EXPECT_THAT(store_->InsertConsent(consent, Audit("consent.requested", id), {}), IsOk());
    OutboxMessage code;
    code.kind = OutboxKind::kOtp;
    code.consent_id = id;
    code.cnic = cnic;
    code.provider_id = provider;
    code.created_at = kNow;
    code.next_attempt_at = kNow;
    EXPECT_THAT(store_->EnqueueMessages({code}), IsOk());
    auto due = store_->DueMessages(kNow, 100);
    return due.ok() && !due->empty() ? due->back().id : std::int64_t{-1};
  };
  auto claim = [&](std::int64_t message, const std::string& id, const std::string& provider) {
    CodeClaim c;
    c.message_id = message;
    c.consent_id = id;
    c.cnic = cnic;
    c.provider_id = provider;
    c.phone = phone;
    c.recipient = Seal("+923001234567");
    c.now = kNow;
    c.limits = {2, 5, 3, 20, 5, 15, 10, 30};  // provider: 2 an hour; CNIC: 3 an hour
    return store_->ClaimCode(c);
  };
  EXPECT_THAT(store_->CountMessages(cnic, "bank", {phone}, kNow),
              IsOkAndHolds(::testing::FieldsAre(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
      << "queued codes are not counted until claimed";
  EXPECT_THAT(claim(queue_code("b1", "bank"), "b1", "bank"), IsOkAndHolds(""));
  EXPECT_THAT(claim(queue_code("b2", "bank"), "b2", "bank"), IsOkAndHolds(""));
  const std::int64_t third = queue_code("b3", "bank");
  EXPECT_THAT(claim(third, "b3", "bank"), IsOkAndHolds("cnic_provider_hour"));
  EXPECT_THAT(claim(queue_code("t1", "telco"), "t1", "telco"), IsOkAndHolds(""))
      << "another provider still reaches the citizen";
  EXPECT_THAT(claim(queue_code("t2", "telco"), "t2", "telco"), IsOkAndHolds("cnic_hour"));
  EXPECT_TRUE(FindConsentOrDie("b1").deliverable);
  EXPECT_FALSE(FindConsentOrDie("b3").deliverable) << "a code never sent can never be confirmed";
  EXPECT_THAT(claim(third, "b3", "bank"), HasReason("message_not_queued"));
  EXPECT_THAT(store_->CountMessages(cnic, "bank", {phone}, kNow),
              IsOkAndHolds(::testing::FieldsAre(2, 2, 3, 3, 2, 2, 3, 3, 0, 0)));
}

TEST_F(SqliteStoreTest, RecordFailedAttempt_LandsEveryAttempt_FromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      Insert("c-" + std::to_string(t) + "-" + std::to_string(i), "3520212345671", kNow + kDay);
    }
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store_->RecordFailedAttempt("c-" + std::to_string(t) + "-" + std::to_string(i),
                                             kNow + 1, Audit("otp.failed"));
        if (!r.ok()) ++failures;
        // Readers run alongside the writers.
        if (!store_->GetCnicFailures(Index("3520212345671"), kProvider, kNow + 1).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(store_->GetCnicFailures(Index("3520212345671"), kProvider, kNow + 2),
              IsOkAndHolds(::testing::FieldsAre(200, 200, 200)));
  EXPECT_THAT(store_->VerifyAuditChain(), IsOk());
  EXPECT_EQ(RawDb(DbPath()).Int("SELECT COUNT(*) FROM audit"), 400);
}

TEST_F(SqliteStoreTest, SecondStoreOnSameFile_SeesCommits_AndGrantsStaySingleUse) {
  auto other = Open();
  ASSERT_NE(other, nullptr);
  Insert("seen");
  EXPECT_THAT(other->FindConsent("seen"), IsOkAndHolds(Optional(::testing::_)));

  constexpr int kConsents = 30;
  for (int i = 0; i < kConsents; ++i) Insert("race-" + std::to_string(i));
  std::atomic<int> grants{0};
  std::atomic<int> refusals{0};
  std::atomic<int> errors{0};
  auto race = [&](ConsentStore* store, const std::string& tag) {
    for (int i = 0; i < kConsents; ++i) {
      const std::string id = "race-" + std::to_string(i);
      auto r = store->GrantConsent(id, Grant(tag + std::to_string(i)), kNow, Audit("g", id), {});
      if (r.ok()) {
        ++grants;
      } else if (r.error().reason() == "consent_not_pending") {
        ++refusals;
      } else {
        ++errors;
      }
    }
  };
  std::thread a(race, store_.get(), "A-");
  std::thread b(race, other.get(), "B-");
  a.join();
  b.join();
  EXPECT_EQ(grants.load(), kConsents);
  EXPECT_EQ(refusals.load(), kConsents);
  EXPECT_EQ(errors.load(), 0);

  // Uses across the two "processes" stop at max_uses as well.
  std::atomic<int> uses{0};
  auto use = [&](ConsentStore* store) {
    for (int i = 0; i < kConsents; ++i) {
      if (store->UseConsent("race-" + std::to_string(i), "bank", kNow + 1, Audit("u")).ok()) {
        ++uses;
      }
    }
  };
  std::thread c(use, store_.get());
  std::thread d(use, other.get());
  c.join();
  d.join();
  EXPECT_EQ(uses.load(), kConsents);
  EXPECT_THAT(other->VerifyAuditChain(), IsOk());
}

TEST_F(SqliteStoreTest, Writes_FailUnavailable_WhenAnotherProcessHoldsTheLock) {
  store_.reset();
  store_ = Open(/*busy_timeout_ms=*/100);
  ASSERT_NE(store_, nullptr);
  RawDb raw(DbPath());
  ASSERT_EQ(raw.Exec("BEGIN IMMEDIATE"), SQLITE_OK);
  auto status = store_->InsertConsent(MakeConsent("a"), Audit("consent.requested"), {});
  EXPECT_THAT(status, StatusIs(ErrorCode::kUnavailable));
  EXPECT_THAT(status, HasReason("store_unavailable"));
  // Readers are not blocked by a writer under WAL.
  EXPECT_THAT(store_->FindConsent("a"), IsOkAndHolds(IsNone()));
  ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  EXPECT_THAT(store_->InsertConsent(MakeConsent("a"), Audit("consent.requested"), {}), IsOk());
}

// --- What the file holds ------------------------------------------------------------------------

TEST_F(SqliteStoreTest, File_HoldsNoPlaintextCnicOrPhone) {
  const std::string cnic = "3520212345671";
  const std::string phone = "+923001234567";
  ASSERT_THAT(store_->SaveEnrolment(MakeEnrolment(cnic, phone), Audit("enrolment.saved"),
                                    {MakeMessage(OutboxKind::kEnrolled, cnic)}),
              IsOk());
  Insert("consent-1", cnic);
  ASSERT_THAT(store_->GrantConsent("consent-1", Grant("REF-1"), kNow, Audit("g"), {}), IsOk());
  ASSERT_THAT(store_->UseConsent("consent-1", "bank", kNow, Audit("u")), IsOk());

  std::string bytes = testing::ReadFileOrDie(DbPath());
  if (std::filesystem::exists(DbPath() + "-wal"))
    bytes += testing::ReadFileOrDie(DbPath() + "-wal");
  ASSERT_FALSE(bytes.empty());
  // Positive control: the opaque stand-ins are there, so the search would find the plaintext.
  const Bytes sealed = Seal(phone).box;
  EXPECT_NE(bytes.find(std::string(sealed.begin(), sealed.end())), std::string::npos);
  for (const std::string& marker :
       {cnic, phone, std::string("35202-1234567-1"), std::string("923001234567")}) {
    EXPECT_EQ(bytes.find(marker), std::string::npos) << marker;
  }
}

// --- Model names --------------------------------------------------------------------------------

TEST(ModelNamesTest, Names_RoundTrip_AndUnknownNamesAreRejected) {
  for (const ConsentState s :
       {ConsentState::kPending, ConsentState::kGranted, ConsentState::kFailed,
        ConsentState::kExpired, ConsentState::kUsed, ConsentState::kRevoked}) {
    EXPECT_EQ(ParseConsentState(ConsentStateName(s)), s);
  }
  EXPECT_EQ(ConsentStateName(ConsentState::kPending), "pending");
  EXPECT_EQ(ConsentStateName(ConsentState::kRevoked), "revoked");
  for (const OutboxKind k : {OutboxKind::kOtp, OutboxKind::kEnrolled, OutboxKind::kNumberChanged,
                             OutboxKind::kGranted, OutboxKind::kHelp, OutboxKind::kReply}) {
    EXPECT_EQ(ParseOutboxKind(OutboxKindName(k)), k);
  }
  EXPECT_EQ(OutboxKindName(OutboxKind::kNumberChanged), "number_changed");
  for (const OutboxStatus s : {OutboxStatus::kQueued, OutboxStatus::kSent, OutboxStatus::kFailed,
                               OutboxStatus::kDropped, OutboxStatus::kDelivered}) {
    EXPECT_EQ(ParseOutboxStatus(OutboxStatusName(s)), s);
  }
  EXPECT_EQ(OutboxStatusName(OutboxStatus::kDelivered), "delivered");
  EXPECT_EQ(ParseConsentState("Pending"), std::nullopt);
  EXPECT_EQ(ParseOutboxKind(""), std::nullopt);
  EXPECT_EQ(ParseOutboxStatus("sending"), std::nullopt);
}

}  // namespace
}  // namespace ijazat::appliance
