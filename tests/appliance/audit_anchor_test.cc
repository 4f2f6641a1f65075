// The anchored audit chain: every citizen event names its subject by blind index, the appliance
// signs the chain's head with the HSM's log key, and ijazat-audit checks a database or a copy of
// it against those checkpoints, reporting a truncated, an edited and a re-chained copy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <fstream>
#include <memory>
#include <set>

#include "appliance_fixture.h"
#include "audit_verify.h"
#include "citizen_crypto.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "ijazat/tlog/checkpoint.h"
#include "ijazat/tlog/note.h"
#include "sqlite_audit.h"
#include "store.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::testing {
namespace {

using ijazat::testing::CommandResult;
using ijazat::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs one SQL script on a database file.
void Sql(const std::filesystem::path& db, const std::string& script) {
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(handle, script.c_str(), nullptr, nullptr, &error);
  const std::string message = error == nullptr ? "" : error;
  sqlite3_free(error);
  sqlite3_close(handle);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

// Renumbers every row and recomputes its link and hash, as whoever rewrites a copy would: the
// copy's own chain then verifies.
void Rechain(const std::filesystem::path& db) {
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  sqlite3_stmt* select = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(handle,
                               "SELECT seq, at, event, provider_id, consent_id, detail, "
                               "hash_version, COALESCE(subject, x''), subject_key_version, "
                               "prev_hash FROM audit ORDER BY seq",
                               -1, &select, nullptr),
            SQLITE_OK);
  std::vector<AuditEvent> events;
  while (sqlite3_step(select) == SQLITE_ROW) {
    AuditEvent e;
    e.seq = sqlite3_column_int64(select, 0);
    e.at = sqlite3_column_int64(select, 1);
    e.event = reinterpret_cast<const char*>(sqlite3_column_text(select, 2));
    e.provider_id = reinterpret_cast<const char*>(sqlite3_column_text(select, 3));
    e.consent_id = reinterpret_cast<const char*>(sqlite3_column_text(select, 4));
    e.detail = reinterpret_cast<const char*>(sqlite3_column_text(select, 5));
    e.hash_version = sqlite3_column_int(select, 6);
    const auto* subject = static_cast<const std::uint8_t*>(sqlite3_column_blob(select, 7));
    e.subject.value.assign(subject, subject + sqlite3_column_bytes(select, 7));
    e.subject.key_version = static_cast<std::uint32_t>(sqlite3_column_int64(select, 8));
    events.push_back(std::move(e));
  }
  sqlite3_finalize(select);
  ASSERT_EQ(sqlite3_exec(handle, "BEGIN; DELETE FROM audit;", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(handle,
                               "INSERT INTO audit (seq, at, event, provider_id, consent_id, "
                               "detail, prev_hash, hash, hash_version, subject, "
                               "subject_key_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                               "NULLIF(?, x''), ?)",
                               -1, &insert, nullptr),
            SQLITE_OK);
  Bytes previous(32, 0);
  std::int64_t seq = 0;
  for (AuditEvent& e : events) {
    e.seq = ++seq;
    e.hash = sqlite::AuditHash(previous, e);
    sqlite3_reset(insert);
    sqlite3_bind_int64(insert, 1, e.seq);
    sqlite3_bind_int64(insert, 2, e.at);
    sqlite3_bind_text(insert, 3, e.event.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 4, e.provider_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 5, e.consent_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 6, e.detail.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert, 7, previous.data(), static_cast<int>(previous.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert, 8, e.hash.data(), static_cast<int>(e.hash.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(insert, 9, e.hash_version);
    sqlite3_bind_blob(insert, 10, e.subject.value.data(), static_cast<int>(e.subject.value.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 11, e.subject.key_version);
    ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE) << sqlite3_errmsg(handle);
    previous = e.hash;
  }
  sqlite3_finalize(insert);
  ASSERT_EQ(sqlite3_exec(handle, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(handle);
}

class AuditAnchorTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    if (HasFatalFailure()) return;
    RestartWithRoomForReplies();
    // A citizen's whole story: enrolment, a consent granted, a lock and an unlock.
    ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
    const std::string id = RequestConsentId();
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(Grant(id).contains("consent_token"));
    ASSERT_EQ(InboundSms(kPhone, "LOCK").status, 200);
    ASSERT_EQ(InboundSms(kPhone, "UNLOCK").status, 200);
    auto key = appliance_->AuditVerifierKey();
    ASSERT_TRUE(key.ok()) << key.error().message();
    key_ = *key;
  }

  ConsentStore::AuditCheckpoint SignHead() {
    auto checkpoint = appliance_->CheckpointAudit();
    EXPECT_TRUE(checkpoint.ok()) << checkpoint.error().message();
    EXPECT_TRUE(checkpoint.ok() && checkpoint->has_value()) << "nothing was signed";
    return checkpoint.ok() && checkpoint->has_value() ? **checkpoint
                                                      : ConsentStore::AuditCheckpoint{};
  }

  // A consistent copy of the live store (SQLite's online backup), as an operator's backup.
  std::filesystem::path Backup(const std::string& name) {
    const auto path = dir_ / name;
    sqlite3* from = nullptr;
    sqlite3* to = nullptr;
    EXPECT_EQ(sqlite3_open_v2(config_.store_path.c_str(), &from, SQLITE_OPEN_READONLY, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_open(path.c_str(), &to), SQLITE_OK);
    sqlite3_backup* backup = sqlite3_backup_init(to, "main", from, "main");
    EXPECT_NE(backup, nullptr);
    EXPECT_EQ(sqlite3_backup_step(backup, -1), SQLITE_DONE);
    sqlite3_backup_finish(backup);
    sqlite3_close(to);
    sqlite3_close(from);
    return path;
  }

  // An appliance on the fixture's files, as a restart of the service would start it.
  Result<std::unique_ptr<Appliance>> Restart(bool accept_restored = false) {
    ApplianceOptions options;
    options.clock = &clock_;
    options.start_dispatcher = false;
    options.accept_restored_audit_chain = accept_restored;
    return Appliance::Start(config_, options);
  }

  CommandResult Audit(const std::string& arguments) {
    return RunCommand(ijazat::testing::BinaryPath("ijazat-audit") + " " + arguments);
  }
  CommandResult Verify(const std::filesystem::path& db, const std::string& more = "") {
    return Audit("verify --db " + db.string() + " --key '" + key_ + "' " + more);
  }

  std::string key_;
};

TEST_F(AuditAnchorTest, EveryCitizenEvent_NamesItsSubjectByBlindIndex_NeverTheCnic) {
  CitizenCrypto crypto(appliance_->hsm());
  const auto index = crypto.CnicIndexes(kCnic);
  ASSERT_TRUE(index.ok());
  const auto tail = appliance_->store().AuditTail(1000);
  ASSERT_TRUE(tail.ok());
  std::set<std::string> seen;
  for (const AuditEvent& event : *tail) {
    const bool citizens = event.event.rfind("enrolment.", 0) == 0 ||
                          event.event.rfind("citizen.", 0) == 0 ||
                          event.event.rfind("consent.", 0) == 0;
    if (!citizens) continue;
    seen.insert(event.event);
    EXPECT_EQ(event.subject, index->front()) << event.event << " does not name its citizen";
    EXPECT_EQ(event.hash_version, 2) << event.event;
    const std::string bytes(event.subject.value.begin(), event.subject.value.end());
    EXPECT_THAT(bytes, Not(HasSubstr("1234567"))) << "a blind index, not the CNIC";
  }
  for (const char* event : {"enrolment.enrolled", "consent.requested", "consent.granted",
                            "citizen.lock", "citizen.unlock"}) {
    EXPECT_TRUE(seen.contains(event)) << event << " is missing from the audit trail";
  }
}

TEST_F(AuditAnchorTest, CheckpointSignsTheHead_AndTheVerifierAgrees) {
  const auto head = appliance_->store().AuditChainHead();
  ASSERT_TRUE(head.ok());
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  EXPECT_EQ(checkpoint.seq, head->seq);
  EXPECT_EQ(checkpoint.hash, head->hash);
  // Nothing new: nothing signed again.
  const auto again = appliance_->CheckpointAudit();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());

  // The note is a C2SP checkpoint that opens with the published key.
  const auto verifier = tlog::ParseVerifierKey(key_);
  ASSERT_TRUE(verifier.ok()) << verifier.error().message();
  EXPECT_EQ(verifier->name, "ijazat.test/audit");
  const auto text = tlog::OpenNote(checkpoint.note, {*verifier});
  ASSERT_TRUE(text.ok()) << text.error().message();
  const auto parsed = tlog::ParseCheckpoint(*text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->origin, "ijazat.test/audit");
  EXPECT_EQ(static_cast<std::int64_t>(parsed->size), head->seq);
  EXPECT_EQ(parsed->hash, head->hash);

  const auto live = Verify(config_.store_path);
  EXPECT_EQ(live.exit_code, 0) << live.output;
  EXPECT_THAT(live.output, HasSubstr("ok: " + std::to_string(head->seq) + " events"));
  EXPECT_THAT(live.output, HasSubstr("anchored up to seq " + std::to_string(head->seq)));

  // The key from the key ceremony's tool is the same one.
  const auto provisioned =
      RunCommand(token_.Environment() + ijazat::testing::BinaryPath("ijazat-provision") +
                 " --token " + token_.label() + " --pin-file " + token_.user_pin_file().string() +
                 " audit-key --origin ijazat.test/audit");
  ASSERT_EQ(provisioned.exit_code, 0) << provisioned.output;
  EXPECT_EQ(provisioned.output, key_ + "\n");
}

TEST_F(AuditAnchorTest, TruncatedBackup_IsReported_AgainstCheckpointsKeptElsewhere) {
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  // The operator's archive of checkpoints (or the log's audit.checkpoint lines).
  const auto archive = dir_ / "checkpoints.txt";
  const auto exported = Audit("checkpoints --db " + config_.store_path);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  std::ofstream(archive) << "from the log:\n\n" << exported.output;

  const auto copy = Backup("truncated.db");
  // The last three events cut off, and the checkpoints that name them with them.
  Sql(copy, "DELETE FROM audit WHERE seq > " + std::to_string(checkpoint.seq - 3) +
                "; DELETE FROM audit_checkpoints;");
  const auto alone = Verify(copy);
  EXPECT_EQ(alone.exit_code, 1) << alone.output;
  EXPECT_THAT(alone.output, HasSubstr("unanchored"));

  const auto against_archive = Verify(copy, "--checkpoints " + archive.string());
  EXPECT_EQ(against_archive.exit_code, 1) << against_archive.output;
  EXPECT_THAT(against_archive.output,
              HasSubstr("truncated at seq " + std::to_string(checkpoint.seq)));
  EXPECT_THAT(against_archive.output,
              HasSubstr("the chain ends at seq " + std::to_string(checkpoint.seq - 3)));
}

TEST_F(AuditAnchorTest, EditedRow_IsReportedWithItsSeq) {
  SignHead();
  const auto copy = Backup("edited.db");
  Sql(copy, R"(UPDATE audit SET detail = '{"by":"nobody"}' WHERE seq = 2;)");
  const auto result = Verify(copy);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("edited at seq 2"));
  // A subject moved to another citizen is an edit too.
  const auto moved = Backup("moved.db");
  Sql(moved, "UPDATE audit SET subject = x'00112233' WHERE seq = 3;");
  EXPECT_THAT(Verify(moved).output, HasSubstr("edited at seq 3"));
}

TEST_F(AuditAnchorTest, RechainedBackup_VerifiesOnItsOwn_ButNotAgainstItsCheckpoints) {
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  // Event 2 removed and every later row renumbered and re-hashed: the copy's own chain is
  // consistent, which is all the unkeyed chain could tell.
  const auto removed = Backup("removed.db");
  Sql(removed, "DELETE FROM audit WHERE seq = 2;");
  Rechain(removed);
  {
    auto store = OpenSqliteStore({removed.string()});
    ASSERT_TRUE(store.ok()) << store.error().message();
    EXPECT_TRUE((*store)->VerifyAuditChain().ok()) << "the re-chained copy is self-consistent";
  }
  const auto result = Verify(removed);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("truncated at seq " + std::to_string(checkpoint.seq)));

  // Event 2 changed and the chain recomputed, its length kept.
  const auto changed = Backup("changed.db");
  Sql(changed, R"(UPDATE audit SET detail = '{"changed":true}' WHERE seq = 2;)");
  Rechain(changed);
  const auto rewritten = Verify(changed);
  EXPECT_EQ(rewritten.exit_code, 1) << rewritten.output;
  EXPECT_THAT(rewritten.output, HasSubstr("rewritten at seq " + std::to_string(checkpoint.seq)));
  EXPECT_THAT(rewritten.output, Not(HasSubstr("edited")));
}

TEST_F(AuditAnchorTest, ForgedCheckpoints_AreReported) {
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  const auto copy = Backup("forged.db");
  // A checkpoint row pointed at another seq than its note signs.
  Sql(copy, "UPDATE audit_checkpoints SET seq = seq - 1;");
  const auto moved = Verify(copy);
  EXPECT_EQ(moved.exit_code, 1) << moved.output;
  EXPECT_THAT(moved.output, HasSubstr("forged"));

  // A note whose text was changed (the signature no longer verifies).
  const auto edited = dir_ / "edited-note.txt";
  std::string note = checkpoint.note;
  const std::string size = "\n" + std::to_string(checkpoint.seq) + "\n";
  note.replace(note.find(size), size.size(), "\n" + std::to_string(checkpoint.seq + 5) + "\n");
  std::ofstream(edited) << note;
  const auto result = Verify(config_.store_path, "--checkpoints " + edited.string());
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("does not verify"));
  EXPECT_THAT(result.output, Not(HasSubstr("truncated"))) << "a forged note proves nothing";
}

// Cut while the appliance was stopped: it must neither sign the shorter chain (which would
// vouch for the cut) nor start appending to it.
TEST_F(AuditAnchorTest, ChainCutWhileStopped_IsNeverSigned_AndTheApplianceDoesNotStart) {
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  StopAppliance();
  const std::filesystem::path live = config_.store_path;
  Sql(live, "DELETE FROM audit WHERE seq > " + std::to_string(checkpoint.seq - 2) + ";");
  auto started = Restart();
  ASSERT_FALSE(started.ok()) << "started on a truncated audit chain";
  EXPECT_EQ(started.error().reason(), "audit_chain_inconsistent");
  EXPECT_THAT(started.error().message(), HasSubstr("ijazat-audit verify"));
  const auto kept = Audit("checkpoints --db " + live.string());
  ASSERT_EQ(kept.exit_code, 0);
  EXPECT_EQ(ijazat::appliance::SplitNotes(kept.output).size(), 1U) << "nothing new was signed";

  // Rewritten instead of cut (same length, another hash at the signed seq): the same.
  Sql(live, "DELETE FROM audit;");
  auto restarted = Restart();
  ASSERT_FALSE(restarted.ok());
  EXPECT_EQ(restarted.error().reason(), "audit_chain_inconsistent");
}

// The same cut with the checkpoints past it deleted as well: the token still remembers the
// last head it signed. An operator who restores an older backup on purpose says so, and the
// restore is recorded in the chain.
TEST_F(AuditAnchorTest, ChainCutWithItsCheckpoints_IsStillRefused_UnlessARestoreIsAccepted) {
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  StopAppliance();
  const std::filesystem::path live = config_.store_path;
  const std::int64_t kept_seq = checkpoint.seq - 2;
  Sql(live, "DELETE FROM audit WHERE seq > " + std::to_string(kept_seq) +
                "; DELETE FROM audit_checkpoints;");
  auto started = Restart();
  ASSERT_FALSE(started.ok()) << "started on a truncated audit chain";
  EXPECT_EQ(started.error().reason(), "audit_chain_inconsistent");
  EXPECT_THAT(started.error().message(), HasSubstr("the head the HSM last signed"));

  auto restored = Restart(/*accept_restored=*/true);
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  const auto tail = (*restored)->store().AuditTail(1);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 1U);
  EXPECT_EQ(tail->front().event, "audit.restore_accepted");
  EXPECT_EQ(tail->front().seq, kept_seq + 1);
  restored->reset();
  // And the next ordinary start goes on from the restored chain.
  auto again = Restart();
  EXPECT_TRUE(again.ok()) << again.error().message();
}

// Values retyped (the bytes the hash covers unchanged, but no longer found by the queries
// auditors run), and versions Ijazat never writes, are edits.
TEST_F(AuditAnchorTest, RetypedValuesAndUnknownHashVersions_AreEdits) {
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  const auto retyped = Backup("retyped.db");
  Sql(retyped,
      "UPDATE audit SET event = CAST(event AS BLOB), subject = CAST(subject AS TEXT) "
      "WHERE event = 'citizen.lock';");
  const auto result = Verify(retyped);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("a column holds a value of another type"));

  // An unknown hash_version with an empty hash (whose "hash" is then empty as well).
  const auto unknown = Backup("unknown-version.db");
  Sql(unknown, "UPDATE audit SET hash_version = 0, hash = x'', detail = '{}' WHERE seq = " +
                   std::to_string(checkpoint.seq) + ";");
  const auto unknown_result = Verify(unknown);
  EXPECT_EQ(unknown_result.exit_code, 1) << unknown_result.output;
  EXPECT_THAT(unknown_result.output, HasSubstr("edited at seq " + std::to_string(checkpoint.seq)));
  auto store = OpenSqliteStore({unknown.string()});
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE((*store)->VerifyAuditChain().ok()) << "the store's own walk agrees";
}

// Events that stay unsigned while later ones follow: an HSM that could not sign, or a copy
// rewritten past its last checkpoint.
TEST_F(AuditAnchorTest, EventsLeftUnsignedForMinutes_AreReported) {
  SignHead();
  ASSERT_EQ(InboundSms(kPhone, "LOCK").status, 200);
  clock_.Advance(300);
  ASSERT_EQ(InboundSms(kPhone, "UNLOCK").status, 200);
  const auto result = Verify(config_.store_path);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("unsigned at seq"));
  EXPECT_EQ(Verify(config_.store_path, "--max-unsigned 600").exit_code, 0);
  SignHead();
  EXPECT_EQ(Verify(config_.store_path).exit_code, 0) << "signed now";
}

// A note signed by another log's key (staging's, say) that names this log vouches for nothing,
// even when the verifier is given both keys.
TEST_F(AuditAnchorTest, CheckpointSignedByAnotherLogsKey_IsForged) {
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  EVP_PKEY* raw = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  ASSERT_EQ(EVP_PKEY_keygen_init(ctx), 1);
  ASSERT_EQ(EVP_PKEY_keygen(ctx, &raw), 1);
  EVP_PKEY_CTX_free(ctx);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> other(raw, EVP_PKEY_free);
  Bytes public_key(32);
  std::size_t length = public_key.size();
  ASSERT_EQ(EVP_PKEY_get_raw_public_key(other.get(), public_key.data(), &length), 1);
  const auto text = tlog::FormatCheckpoint(
      {"ijazat.test/audit", static_cast<std::uint64_t>(checkpoint.seq + 10), Bytes(32, 1), {}});
  ASSERT_TRUE(text.ok());
  const auto note = tlog::SignNote(
      *text, "staging.example/audit", public_key, [&](ByteView message) -> Result<Bytes> {
        Bytes signature(64);
        std::size_t size = signature.size();
        EVP_MD_CTX* md = EVP_MD_CTX_new();
        EVP_DigestSignInit(md, nullptr, nullptr, nullptr, other.get());
        EVP_DigestSign(md, signature.data(), &size, message.data(), message.size());
        EVP_MD_CTX_free(md);
        return signature;
      });
  ASSERT_TRUE(note.ok()) << note.error().message();
  const auto staging_key = tlog::Ed25519VerifierKey("staging.example/audit", public_key);
  ASSERT_TRUE(staging_key.ok());
  const auto file = dir_ / "staging.txt";
  std::ofstream(file) << *note;
  const auto result =
      Verify(config_.store_path, "--key '" + *staging_key + "' --checkpoints " + file.string());
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("is not signed by that log's key"));
  EXPECT_THAT(result.output, Not(HasSubstr("truncated")));
}

// Archives written on other systems: CRLF line ends and a byte-order mark.
TEST_F(AuditAnchorTest, CheckpointArchiveWithCrlfAndBom_IsRead) {
  const ConsentStore::AuditCheckpoint checkpoint = SignHead();
  std::string crlf = "\xEF\xBB\xBF";
  for (const char c : checkpoint.note) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  const auto file = dir_ / "crlf.txt";
  std::ofstream(file, std::ios::binary) << crlf;
  const auto copy = Backup("crlf.db");
  Sql(copy, "DELETE FROM audit_checkpoints;");
  const auto result = Verify(copy, "--checkpoints " + file.string());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("1 checkpoint(s) verified"));
}

TEST_F(AuditAnchorTest, BadArguments_GetUsageOrUnreadableStatus) {
  EXPECT_EQ(Audit("").exit_code, 2);
  EXPECT_EQ(Audit("verify --key '" + key_ + "'").exit_code, 2);
  const auto bad_key = Audit("verify --db " + config_.store_path + " --key nonsense");
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_THAT(bad_key.output, HasSubstr("--key: invalid note key"));
  EXPECT_EQ(Audit("verify --db " + config_.store_path).exit_code, 2) << "a key is required";
  const auto missing = Verify(dir_ / "no-such.db");
  EXPECT_EQ(missing.exit_code, 3) << missing.output;
  const auto not_a_store = dir_ / "not-a-store.db";
  Sql(not_a_store, "CREATE TABLE t (x INTEGER);");
  const auto wrong = Verify(not_a_store);
  EXPECT_EQ(wrong.exit_code, 3) << wrong.output;
  EXPECT_THAT(wrong.output, HasSubstr("no audit table"));
}

}  // namespace
}  // namespace ijazat::appliance::testing
