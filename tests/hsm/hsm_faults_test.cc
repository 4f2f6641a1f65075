// The HSM layer under faults: injected PKCS#11 errors, sessions and the module broken from
// outside, slow calls. It must recover without a restart, and report "hsm_unavailable" when it
// cannot, never anything weaker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "hsm_fixture.h"
#include "ijazat/hsm/jwk.h"
#include "raw_pkcs11.h"

namespace ijazat::hsm {
namespace {

using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::SizeIs;

const KeyRef kOtp1{KeyKind::kOtp, 1};
const KeyRef kReceipt1{KeyKind::kReceipt, 1};

class HsmFaultsTest : public HsmTest {
 protected:
  void SetUp() override {
    faults_ = std::make_shared<FaultInjector>();
    HsmOptions options = Options();
    options.faults = faults_;
    hsm_ = Provisioned(options);
    ASSERT_NE(hsm_, nullptr);
    auto mac = hsm_->Hmac(kOtp1, ToBytes("probe"), HmacHash::kSha256);
    ASSERT_THAT(mac, IsOk());
    reference_ = *mac;
  }

  Result<Bytes> Probe() { return hsm_->Hmac(kOtp1, ToBytes("probe"), HmacHash::kSha256); }

  std::shared_ptr<FaultInjector> faults_;
  std::unique_ptr<Pkcs11Hsm> hsm_;
  Bytes reference_;
};

TEST_F(HsmFaultsTest, SessionHandleInvalid_IsRecoveredWithinTheCall) {
  faults_->FailCall("C_Sign", rv::kSessionHandleInvalid);
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
  EXPECT_EQ(faults_->InjectedFailures(), 1);
  EXPECT_EQ(faults_->Calls("C_Initialize"), 0)
      << "a lost session needs no module re-initialisation";
  EXPECT_THAT(faults_->Calls("C_Login"), Ge(1));
}

// Finding 3 of the trust-anchor review: after a session loss, a PIN the HSM rejected was
// tried again on every request, up to every 200 ms (15 logins in 3 s), which locks a real HSM.
TEST_F(HsmFaultsTest, PinRejectedAfterAnOutage_IsNeverTriedAgain_AndIsNamed) {
  const int logins_before = faults_->Calls("C_Login");
  faults_->FailCall("C_Sign", rv::kSessionHandleInvalid);  // the session is lost
  faults_->FailCall("C_Login", rv::kPinIncorrect, 1, /*count=*/0);
  EXPECT_THAT(Probe(), HasReason("hsm_unavailable"));
  EXPECT_EQ(faults_->Calls("C_Login"), logins_before + 1);
  for (int i = 0; i < 20; ++i) {
    EXPECT_THAT(Probe(), HasReason("hsm_unavailable"));
    EXPECT_THAT(hsm_->CheckHealth(), HasReason("pin_incorrect"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(faults_->Calls("C_Login"), logins_before + 1) << "one refused login, never another";
  ASSERT_TRUE(hsm_->LoginRefused().has_value());
  EXPECT_EQ(hsm_->LoginRefused()->reason(), "pin_incorrect");
  EXPECT_THAT(hsm_->LoginRefused()->message(), HasSubstr("restart with the right PIN"));
  faults_->Clear();
  EXPECT_THAT(Probe(), HasReason("hsm_unavailable")) << "even when the HSM would accept it now";
}

TEST_F(HsmFaultsTest, FailedReconnections_BackOff) {
  const int logins_before = faults_->Calls("C_Login");
  faults_->FailCall("C_Sign", rv::kSessionHandleInvalid);
  faults_->FailCall("C_Login", rv::kDeviceError, 1, /*count=*/0);  // the HSM is down
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) {
    (void)Probe();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Spaced 200, 400, 800 ms...: a handful of attempts in 2 s, not one per request (about 150).
  EXPECT_LE(faults_->Calls("C_Login") - logins_before, 6);
  EXPECT_GE(faults_->Calls("C_Login") - logins_before, 2) << "but it does keep trying";
  faults_->Clear();
}

TEST_F(HsmFaultsTest, DeviceError_ReinitialisesTheModuleAndSucceeds) {
  faults_->FailCall("C_SignInit", rv::kDeviceError);
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
  EXPECT_EQ(faults_->Calls("C_Initialize"), 1);
}

TEST_F(HsmFaultsTest, TokenNotPresentAndNotInitialized_AreRecovered) {
  faults_->FailCall("C_Sign", rv::kTokenNotPresent);
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
  faults_->FailCall("C_SignInit", rv::kCryptokiNotInitialized);
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
  EXPECT_EQ(faults_->InjectedFailures(), 2);
}

TEST_F(HsmFaultsTest, PersistentDeviceError_ReportsUnavailable_ThenRecoversWhenCleared) {
  faults_->FailCall("C_Sign", rv::kDeviceError, 1, /*count=*/0);
  const auto failed = Probe();
  EXPECT_THAT(failed, HasReason("hsm_unavailable"));
  EXPECT_THAT(failed, StatusIs(ErrorCode::kUnavailable));
  EXPECT_THAT(hsm_->SignEs256(kReceipt1, ToBytes("x")), HasReason("hsm_unavailable"));
  faults_->Clear();
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
}

TEST_F(HsmFaultsTest, LoginFailingDuringRecovery_ReportsUnavailable_ThenRecovers) {
  faults_->FailCall("C_Sign", rv::kDeviceError);
  faults_->FailCall("C_Login", rv::kDeviceError, 1, /*count=*/0);
  EXPECT_THAT(Probe(), HasReason("hsm_unavailable"));
  EXPECT_THAT(hsm_->CheckHealth(), HasReason("hsm_unavailable"));
  faults_->Clear();
  // Reconnects are spaced out while the HSM is away; within a second it is back.
  Result<Bytes> mac = Probe();
  for (int i = 0; i < 20 && !mac.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    mac = Probe();
  }
  EXPECT_THAT(mac, IsOkAndHolds(reference_));
  EXPECT_THAT(hsm_->CheckHealth(), IsOk());
}

TEST_F(HsmFaultsTest, NonRetryableError_IsReportedAsIs_WithoutRecovery) {
  faults_->FailCall("C_Sign", 0x06 /* CKR_FUNCTION_FAILED */);
  EXPECT_THAT(Probe(), HasReason("hsm_error"));
  EXPECT_EQ(faults_->Calls("C_Initialize"), 0);
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
}

TEST_F(HsmFaultsTest, SlowCalls_StillGiveCorrectResults) {
  faults_->Delay("C_Sign", std::chrono::milliseconds(20));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        const auto mac = Probe();
        if (!mac.ok() || *mac != reference_) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(HsmFaultsTest, InjectedFaultsDuringConcurrentLoad_AreAllRecovered) {
  const auto public_key = hsm_->ExportPublicKey(kReceipt1);
  ASSERT_THAT(public_key, IsOk());
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        const Bytes message = ToBytes("load");
        const auto signature = hsm_->SignEs256(kReceipt1, message);
        const auto mac = Probe();
        // Every answer is either right or a clean "unavailable"; never wrong, never unsigned.
        if (signature.ok() && !VerifyEs256(public_key->point, message, *signature)) ++wrong;
        if (!signature.ok() && signature.error().reason() != "hsm_unavailable") ++wrong;
        if (mac.ok() && *mac != reference_) ++wrong;
        if (!mac.ok() && mac.error().reason() != "hsm_unavailable") ++wrong;
        ++done;
      }
    });
  }
  const unsigned long faults[] = {rv::kSessionHandleInvalid, rv::kDeviceError, rv::kTokenNotPresent,
                                  rv::kSessionClosed};
  for (int round = 0; round < 12; ++round) {
    faults_->FailCall(round % 2 == 0 ? "C_Sign" : "C_SignInit", faults[round % 4], 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  faults_->Clear();
  stop = true;
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(faults_->InjectedFailures(), 0);
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
}

TEST_F(HsmFaultsTest, SessionsClosedFromOutside_AreReopenedAndLoggedIn) {
  testing::RawPkcs11 raw(testing::kSoftHsmModule);
  raw.CloseAllSessions(token_.label());  // SoftHSM logs the token out too
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
  EXPECT_THAT(hsm_->CheckHealth(), IsOk());
}

// Sessions are closed between bursts, not during a call: SoftHSM itself crashes when one
// thread closes a session that another thread is using, which no real HSM failure does.
TEST_F(HsmFaultsTest, SessionsClosedFromOutside_ConcurrentCallersAllRecover) {
  testing::RawPkcs11 raw(testing::kSoftHsmModule);
  std::atomic<int> failed{0};
  for (int round = 0; round < 10; ++round) {
    raw.CloseAllSessions(token_.label());
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 10; ++i) {
          const auto mac = Probe();
          if (!mac.ok() || *mac != reference_) ++failed;
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  EXPECT_EQ(failed.load(), 0);
}

TEST_F(HsmFaultsTest, ModuleFinalizedFromOutside_IsReinitialised) {
  testing::RawPkcs11 raw(testing::kSoftHsmModule);
  ASSERT_EQ(raw.Finalize(), CKR_OK);
  EXPECT_THAT(Probe(), IsOkAndHolds(reference_));
  EXPECT_THAT(hsm_->SignEs256(kReceipt1, ToBytes("after")), IsOkAndHolds(SizeIs(64)));
}

TEST_F(HsmFaultsTest, Open_FailsClosed_WhenTheSelfTestCannotSign) {
  auto faults = std::make_shared<FaultInjector>();
  faults->FailCall("C_Sign", 0x06 /* CKR_FUNCTION_FAILED */, 1, /*count=*/0);
  HsmOptions options = Options();
  options.faults = faults;
  EXPECT_THAT(Pkcs11Hsm::Open(options), StatusIs(ErrorCode::kInternal));
}

}  // namespace
}  // namespace ijazat::hsm
