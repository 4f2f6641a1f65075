// Enrolment an attacker cannot take over: the number must be bound to the CNIC by an authority
// (subscriber records or the number recorded at registration), the binding is checked again
// before every code and grant, a change of number is guarded (notice, hold, the old number's
// LOCK wins, rate limit), confirmation re-checks the citizen's side before anything is signed,
// and none of it depends on the index or data key's version.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <string>
#include <vector>

#include "appliance_fixture.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "registry.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kAttacker[] = "+923459998887";  // bound to no demo CNIC
constexpr char kSwapped[] = "+923331234567";   // a second SIM registered to kCnic

class EnrolmentTrustTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    if (HasFatalFailure()) return;
    RestartWithRoomForReplies();
  }
  HttpResult AskBank(const std::string& api_key = kBankKey) {
    return Post("/v1/consents",
                {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}}, api_key);
  }
  int CodesTo(const std::string& phone) {
    int codes = 0;
    for (const SentSms& sms : SentMessages()) {
      if (sms.to == phone && sms.text.rfind("Ijazat code", 0) == 0) ++codes;
    }
    return codes;
  }
  // Sends `text` from `from` and returns the one reply it gets.
  std::string Command(const std::string& text, const std::string& from) {
    const auto before = SentMessages().size();
    EXPECT_EQ(InboundSms(from, text).status, 200);
    const auto sent = SentMessages();
    if (sent.size() <= before) {
      ADD_FAILURE() << "no reply to " << text;
      return "";
    }
    EXPECT_EQ(sent.back().to, from);
    return sent.back().text;
  }
  // A SIM swap: the operator registered a second number to kCnic.
  void BindSwappedNumber() {
    ImportSubscribers(std::string("cnic,msisdn\n") + kCnic + "," + kPhone + "\n" + kCnic + "," +
                      kSwapped + "\n");
  }
  std::string ConfirmWith(const std::string& id, const std::string& code, int expected) {
    const auto confirmed = Post("/v1/consents/" + id + "/confirm", {{"otp", code}});
    EXPECT_EQ(confirmed.status, expected) << confirmed.body;
    return confirmed.json.is_object() && confirmed.json.contains("title")
               ? confirmed.json["title"].get<std::string>()
               : "";
  }
  // Rows in a table of the consent store.
  int Rows(const std::string& table) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(config_.store_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
              SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    const std::string sql = "SELECT COUNT(*) FROM " + table;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
    int rows = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) rows = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
  }
  void Restart() {
    StopAppliance();
    StartAppliance();
  }
};

// Finding 1: anyone texting a never-enrolled victim's CNIC was enrolled at once.
TEST_F(EnrolmentTrustTest, ByDefault_ANumberNotBoundToTheCnic_CannotEnrolIt) {
  EXPECT_THAT(Command(kCnic, kAttacker), HasSubstr("not registered to that CNIC"));
  const auto created = AskBank();
  EXPECT_EQ(created.status, 202) << "the provider's answer does not change";
  EXPECT_EQ(CodesTo(kAttacker), 0) << "no code reaches the attacker";
  EXPECT_EQ(Rows("enrolments"), 0);
  // With no code there is no token, so no identity data can be released.
  EXPECT_EQ(ConfirmWith(created.json["consent_id"], "000000", 403), "otp_incorrect");
  const auto ready = Get("/readyz", "");
  EXPECT_EQ(ready.json["enrolment"], "authority");
}

// Finding 1, second and third part: a SIM registered to the victim's CNIC (a swap) takes over a
// locked victim: it could read HISTORY, UNLOCK, REVOKE and BLOCK, and the victim's LOCK was
// refused. Now the new number may only LOCK during the hold, and the old number's LOCK wins.
TEST_F(EnrolmentTrustTest, NumberChange_DuringTheHold_NewNumberCannotReadOrUndo_OldLockWins) {
  BindSwappedNumber();
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const std::string reference = Grant(id)["reference"];
  ASSERT_THAT(Command("LOCK", kPhone), HasSubstr("locked"));

  ASSERT_EQ(InboundSms(kSwapped, kCnic).status, 200);
  const auto sent = SentMessages();
  ASSERT_GE(sent.size(), 2u);
  EXPECT_EQ(sent[sent.size() - 2].to, kPhone) << "the old number is told";
  EXPECT_THAT(sent[sent.size() - 2].text, HasSubstr("new number"));
  for (const std::string& command : std::vector<std::string>{
           "HISTORY", "UNLOCK", "REVOKE " + reference, "BLOCK test-bank", "UNBLOCK test-bank"}) {
    EXPECT_THAT(Command(command, kSwapped), HasSubstr("can only send LOCK")) << command;
  }
  EXPECT_EQ(Get("/v1/consents/" + id).json["state"], "granted") << "REVOKE was refused";

  // The old number's LOCK cancels the change and keeps the CNIC locked, under a new hold.
  const auto before = SentMessages().size();
  EXPECT_THAT(Command("LOCK", kPhone), HasSubstr("change of number was stopped"));
  const auto after = SentMessages();
  ASSERT_EQ(after.size(), before + 2);
  EXPECT_EQ(after[before].to, kSwapped) << "the number that made the change is told";
  EXPECT_THAT(after[before].text, HasSubstr("stopped the change"));
  EXPECT_THAT(Command("UNLOCK", kSwapped), HasSubstr("no longer enrolled"));
  EXPECT_THAT(Command("UNLOCK", kPhone), HasSubstr("can only send LOCK"))
      << "nobody unlocks at once after a dispute";
  AskBank();
  EXPECT_EQ(CodesTo(kSwapped), 0);
  EXPECT_EQ(CodesTo(kPhone), 1);
  clock_.Advance(86400 + 1);
  EXPECT_THAT(Command("UNLOCK", kPhone), HasSubstr("unlocked")) << "the citizen has control";
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 2);
  EXPECT_EQ(CodesTo(kSwapped), 0);
}

// Review finding: the number enrolled first could take the CNIC back at will (no hold, not
// counted), and so keep control for good and use up the citizen's changes. Going back is a
// change like any other.
TEST_F(EnrolmentTrustTest, GoingBackAndForth_IsCountedAndHeld_AndEndsAtTheLimit) {
  BindSwappedNumber();
  EXPECT_THAT(Command(kCnic, kSwapped), HasSubstr("now enrolled"));  // say, a fraudulent SIM
  EXPECT_THAT(Command(kCnic, kPhone), HasSubstr("now enrolled"));    // the citizen: change 1
  EXPECT_THAT(Command(kCnic, kSwapped), HasSubstr("now enrolled"));  // back: change 2, held
  EXPECT_THAT(Command("UNLOCK", kSwapped), HasSubstr("can only send LOCK"));
  EXPECT_THAT(Command("LOCK", kPhone), HasSubstr("change of number was stopped"));  // 3
  // The limit is reached: neither side can move the number again, and the CNIC stays locked.
  EXPECT_THAT(Command(kCnic, kSwapped), HasSubstr("changed too often"));
  EXPECT_THAT(Command("LOCK", kSwapped), HasSubstr("locked"));
  clock_.Advance(86400 + 1);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone) + CodesTo(kSwapped), 0) << "locked";
  EXPECT_THAT(Command("UNLOCK", kPhone), HasSubstr("unlocked"));
}

// Review finding: a number re-assigned to another citizen stayed bound to its old owner when
// the old owner was not in the import, and a number recorded at registration bound for ever.
TEST_F(EnrolmentTrustTest, RecycledNumber_LeavesItsOldOwner_AtTheNextImport) {
  ImportSubscribers(std::string("cnic,msisdn\n") + kCnic + ",+923005550001\n");
  EXPECT_THAT(Command(kCnic, "+923005550001"), HasSubstr("now enrolled"));
  // The operator gives the SIM to someone else; the import names only the new owner.
  ImportSubscribers("cnic,msisdn\n6110112345677,+923005550001\n");
  EXPECT_THAT(Command("HISTORY", "+923005550001"), HasSubstr("no longer registered"))
      << "commands check the binding when they arrive, before any sweep";
  AskBank();
  EXPECT_EQ(CodesTo("+923005550001"), 0);
  // kPhone is kCnic's number recorded at registration (the demo registry) until an
  // operator's records give it to someone else.
  EXPECT_THAT(Command(kCnic, kPhone), HasSubstr("now enrolled"));
  ImportSubscribers("cnic,msisdn\n6110112345677,+923001234567\n");
  auto swept = appliance_->SweepBindings();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 1);
  EXPECT_THAT(SentMessages().back().text, HasSubstr("no longer registered"));
}

// Review finding: a code that waited for a retry while the citizen moved to another number
// suspended the new number's enrolment and warned it.
TEST_F(EnrolmentTrustTest, LateCodeToAnUnboundOldNumber_DoesNotSuspendTheNewOne) {
  BindSwappedNumber();
  InboundSms(kPhone, kCnic);
  SentMessages();
  AskBank();  // its code is queued for kPhone, not sent yet
  ASSERT_EQ(InboundSms(kSwapped, kCnic).status, 200);
  ImportSubscribers(std::string("cnic,msisdn\n6110112345677,") + kPhone + "\n");
  const auto sent = SentMessages();
  EXPECT_EQ(CodesTo(kPhone), 0) << "dropped: no longer bound";
  for (const SentSms& sms : sent) {
    EXPECT_THAT(sms.text, Not(HasSubstr("no longer registered"))) << sms.to;
  }
  clock_.Advance(86400 + 1);
  EXPECT_THAT(Command("HISTORY", kSwapped), HasSubstr("no one has verified"))
      << "the new number's enrolment is not suspended";
}

// Finding 1: six number changes in a row were all accepted.
TEST_F(EnrolmentTrustTest, NumberChanges_AreRateLimitedPerCnic_InASlidingWindow) {
  BindSwappedNumber();
  InboundSms(kPhone, kCnic);
  clock_.Advance(3600);
  // Three changes (the default) in 30 days; the fourth is refused and changes nothing.
  for (int i = 0; i < 3; ++i) {
    const std::string to = i % 2 == 0 ? kSwapped : kPhone;
    clock_.Advance(2 * 86400);  // past each hold, so each is a change, not a cancellation
    EXPECT_THAT(Command(kCnic, to), HasSubstr("now enrolled")) << i;
  }
  clock_.Advance(2 * 86400);
  EXPECT_THAT(Command(kCnic, kPhone), HasSubstr("changed too often"));
  EXPECT_THAT(Command("HISTORY", kSwapped), HasSubstr("no one has verified"))
      << "the number enrolled last is still the one";
  // 30 days after the first change, it has left the window.
  clock_.Advance(24 * 86400 + 1);
  EXPECT_THAT(Command(kCnic, kPhone), HasSubstr("now enrolled"));
}

// Finding 1: turning the authority check on did not re-check enrolments made before.
TEST_F(EnrolmentTrustTest, EnrolmentsMadeOpen_AreCheckedBeforeTheirNextCode) {
  StopAppliance();
  config_.sms.enrolment = SmsConfig::Enrolment::kOpen;
  StartAppliance();
  EXPECT_EQ(Get("/readyz", "").json["enrolment"], "open-for-development");
  EXPECT_THAT(Command(kCnic, kAttacker), HasSubstr("now enrolled")) << "open: anyone";
  StopAppliance();
  config_.sms.enrolment = SmsConfig::Enrolment::kAuthority;
  StartAppliance();
  AskBank();
  EXPECT_EQ(CodesTo(kAttacker), 0) << "the code is dropped: the number is not bound";
  const auto sent = SentMessages();
  EXPECT_THAT(sent.back().text, HasSubstr("no longer registered")) << "the number is told";
  EXPECT_THAT(Command("HISTORY", kAttacker), HasSubstr("no longer registered"))
      << "a suspended enrolment answers no command";
  // The citizen enrols the bound number: a change, held, then codes come to it.
  EXPECT_THAT(Command(kCnic, kPhone), HasSubstr("now enrolled"));
  clock_.Advance(86400 + 1);
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 1);
}

// "Re-checked when it matters": a re-assigned number stops getting codes and grants at once.
TEST_F(EnrolmentTrustTest, BindingLost_StopsTheNextCodeAndTheGrant_AndSuspends) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const auto code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());
  // The operator re-assigns kPhone to another citizen.
  ImportSubscribers("cnic,msisdn\n6110112345677,+923001234567\n");
  EXPECT_EQ(ConfirmWith(id, *code, 403), "citizen_unavailable") << "no token for that code";
  EXPECT_EQ(Get("/v1/consents/" + id).json["state"], "pending");
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 1) << "no further code";
  EXPECT_THAT(SentMessages().back().text, HasSubstr("no longer registered"));
}

// New subscriber records are checked against the enrolments they concern, without waiting for
// the next code.
TEST_F(EnrolmentTrustTest, ImportedRecords_SuspendEnrolmentsNoLongerBound_CountAndTell) {
  ImportSubscribers(std::string("cnic,msisdn\n") + kCnic + ",+923005550001\n");
  InboundSms("+923005550001", kCnic);
  InboundSms(kPhone, "4210112345673");  // bound by the number recorded at registration
  SentMessages();
  auto swept = appliance_->SweepBindings();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 0) << "the imports so far changed nothing that is enrolled";
  ImportSubscribers(std::string("cnic,msisdn\n") + kCnic + ",+923005550002\n");
  swept = appliance_->SweepBindings();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 1) << "only kCnic's enrolment lost its binding";
  const auto sent = SentMessages();
  EXPECT_EQ(sent.back().to, "+923005550001");
  EXPECT_THAT(sent.back().text, HasSubstr("no longer registered"));
  EXPECT_THAT(Get("/metrics", "").body, HasSubstr("enrolment_suspended\"} 1"));
  swept = appliance_->SweepBindings();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 0) << "each change is read once";
  EXPECT_EQ(RequestConsentId("4210112345673").empty(), false);
  EXPECT_EQ(CodesTo(kPhone), 1) << "the other enrolment is untouched";
  EXPECT_EQ(CodesTo("+923005550001"), 0);
}

// Review finding: one entry that cannot be checked stopped the sweep for good.
TEST_F(EnrolmentTrustTest, Sweep_PassesAnEntryItCannotCheck_AndGoesOn) {
  ImportSubscribers(std::string("cnic,msisdn\n") + kCnic + ",+923005550001\n");
  InboundSms("+923005550001", kCnic);             // sealed under data/v1
  ASSERT_TRUE(appliance_->SweepBindings().ok());  // the imports so far
  ASSERT_TRUE(appliance_->hsm().RotateKey(hsm::KeyKind::kData).ok());
  ASSERT_TRUE(appliance_->hsm().RetireKey(hsm::KeyRef{hsm::KeyKind::kData, 1}).ok());
  (void)appliance_->Reload();
  ImportSubscribers("cnic,msisdn\n4210112345673,+923005550003\n");
  InboundSms("+923005550003", "4210112345673");  // sealed under data/v2
  ImportSubscribers(std::string("cnic,msisdn\n") + kCnic + ",+923005550002\n" +
                    "4210112345673,+923005550004\n");
  const auto swept = appliance_->SweepBindings();
  ASSERT_TRUE(swept.ok()) << swept.error().message();
  EXPECT_EQ(*swept, 1) << "the second CNIC is checked although the first cannot be";
  EXPECT_THAT(Get("/metrics", "").body, HasSubstr("enrolment_recheck_failed\"} 1"));
}

// The number recorded at CNIC registration binds like a subscriber record.
TEST_F(EnrolmentTrustTest, NumberRecordedAtRegistration_BindsTheNumber) {
  const auto registry = dir_ / "registration.csv";
  std::ofstream(registry) << "cnic,name,msisdn\n" << kCnic << ",Ayesha Khan,0300 5550001\n";
  ASSERT_TRUE(ImportRegistryCsv(config_.registry_path, registry.string()).ok());
  EXPECT_THAT(Command(kCnic, "+923005550001"), HasSubstr("now enrolled"));
  EXPECT_THAT(Command(kCnic, kAttacker), HasSubstr("not registered"));
}

// Finding 3: confirm did not re-check LOCK, BLOCK or the hold: a signed token for a citizen
// who had said no.
TEST_F(EnrolmentTrustTest, Confirm_AfterTheCitizenSaidNo_SignsNothing_AndAfterYesGrants) {
  BindSwappedNumber();
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const auto code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());

  Command("LOCK", kPhone);
  EXPECT_EQ(ConfirmWith(id, *code, 403), "citizen_unavailable");
  Command("UNLOCK", kPhone);
  Command("BLOCK Test Bank", kPhone);
  EXPECT_EQ(ConfirmWith(id, *code, 403), "citizen_unavailable");
  Command("UNBLOCK test-bank", kPhone);
  EXPECT_THAT(Get("/v1/consents/" + id).json["state"], "pending") << "nothing was counted";

  // A wrong code tells nothing about the citizen's state: the usual failure.
  Command("LOCK", kPhone);
  const auto wrong =
      Post("/v1/consents/" + id + "/confirm", {{"otp", *code == "000000" ? "111111" : "000000"}});
  EXPECT_EQ(wrong.status, 403);
  EXPECT_EQ(wrong.json["title"], "otp_incorrect") << "as for any citizen";
  Command("UNLOCK", kPhone);
  ConfirmWith(id, *code, 200);
  EXPECT_EQ(Get("/v1/consents/" + id).json["state"], "granted");

  // A change of number after the code went out: held, no grant with the old code.
  clock_.Advance(3601);  // past the hourly SMS cap
  const std::string second = RequestConsentId();
  const auto second_code = LastCodeFor(kPhone);
  ASSERT_TRUE(second_code.has_value());
  InboundSms(kSwapped, kCnic);
  EXPECT_EQ(ConfirmWith(second, *second_code, 403), "citizen_unavailable");
}

// Finding 2, as a whole: every citizen command, the number change and its hold, takeover
// attempts and the consent flow, once on a fresh token and once with the index and data keys
// rotated mid-way (the rotation docs/operations.md calls routine).
class RotationTest : public EnrolmentTrustTest, public ::testing::WithParamInterface<bool> {
 protected:
  void MaybeRotate() {
    if (!GetParam()) return;
    ASSERT_TRUE(appliance_->hsm().RotateKey(hsm::KeyKind::kIndex).ok());
    ASSERT_TRUE(appliance_->hsm().RotateKey(hsm::KeyKind::kData).ok());
    (void)appliance_->Reload();
  }
};

TEST_P(RotationTest, CitizenSuite_BehavesTheSame_BeforeAndAfterIndexAndDataRotation) {
  BindSwappedNumber();
  EXPECT_THAT(Command(kCnic, kPhone), HasSubstr("now enrolled"));
  MaybeRotate();
  // The same number again is never a change: no hold, one record.
  EXPECT_THAT(Command("CNIC " + std::string(kCnic), kPhone), HasSubstr("now enrolled"));
  EXPECT_EQ(Rows("enrolments"), 1);
  const std::string id = RequestConsentId();
  const std::string reference = Grant(id)["reference"];
  ASSERT_EQ(
      Post("/v1/verifications", {{"consent_token", Grant(RequestConsentId())["consent_token"]}})
          .status,
      200);
  EXPECT_THAT(Command("HISTORY", kPhone), HasSubstr("Test Bank ref"));
  EXPECT_THAT(Command("REVOKE " + reference, kPhone), HasSubstr("is revoked"));
  EXPECT_THAT(Command("BLOCK test bank", kPhone), HasSubstr("can no longer ask"));
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 2);
  EXPECT_THAT(Command("UNBLOCK test-bank", kPhone), HasSubstr("may ask"));
  EXPECT_THAT(Command("LOCK", kPhone), HasSubstr("locked"));
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 2);
  EXPECT_THAT(Command("UNLOCK", kPhone), HasSubstr("unlocked"));

  // A takeover attempt from an unbound number, then a swap: the old number is told (its number
  // sealed before the rotation opens), the new number is held, the old number's LOCK wins.
  EXPECT_THAT(Command(kCnic, kAttacker), HasSubstr("not registered"));
  const auto before = SentMessages().size();
  ASSERT_EQ(InboundSms(kSwapped, kCnic).status, 200);
  auto sent = SentMessages();
  ASSERT_EQ(sent.size(), before + 2);
  EXPECT_EQ(sent[before].to, kPhone);
  EXPECT_THAT(sent[before].text, HasSubstr("new number"));
  EXPECT_EQ(Rows("enrolments"), 1) << "the change updates the one record";
  EXPECT_THAT(Command("HISTORY", kSwapped), HasSubstr("can only send LOCK"));
  AskBank();
  EXPECT_EQ(CodesTo(kSwapped), 0) << "held";
  EXPECT_THAT(Command("LOCK", kPhone), HasSubstr("change of number was stopped"));
  clock_.Advance(86400 + 1);  // the new hold after the dispute
  EXPECT_THAT(Command("UNLOCK", kPhone), HasSubstr("unlocked"));
  AskBank();
  EXPECT_EQ(CodesTo(kPhone), 3);
  EXPECT_EQ(Rows("enrolments"), 1);
}

INSTANTIATE_TEST_SUITE_P(KeyVersions, RotationTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "Rotated" : "Fresh";
                         });

}  // namespace
}  // namespace ijazat::appliance::testing
