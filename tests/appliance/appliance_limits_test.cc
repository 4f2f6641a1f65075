// Limits and controls under pressure: parallel guesses and requests against the per-CNIC
// limits, key rotation, an outbox message that cannot be sent, and policy changes after a
// consent was granted.
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "appliance_fixture.h"
#include "consent_service.h"
#include "ijazat/hsm/pkcs11_hsm.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::SizeIs;

nlohmann::json Body(const std::string& cnic) {
  return {{"cnic", cnic}, {"purpose", "account-opening"}, {"scopes", {"name"}}};
}

TEST_F(ApplianceTest, CnicFailureLimit_HoldsUnderParallelGuesses) {
  const std::string cnic = "4210112345673";
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(Post("/v1/consents", Body(cnic)).json["consent_id"]);
  std::atomic<int> compared{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 30; ++t) {
    threads.emplace_back([&, t] {
      const auto result = Post("/v1/consents/" + ids[static_cast<std::size_t>(t % 10)] + "/confirm",
                               {{"otp", "000001"}});
      if (result.status == 429) {
        ++refused;
      } else if (result.status == 403 || result.status == 409) {
        ++compared;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(compared.load(), 10) << "the policy allows 10 wrong codes per CNIC per day";
  EXPECT_EQ(refused.load(), 20);
}

// After 100 wrong codes in a row no code is accepted for the CNIC, even the right one, until
// the holder of the enrolled number texts the CNIC again (nobody else can lift it).
// Wrong codes from one provider, `per_day` a day (the policy's daily limit is 10), until the
// provider has made `target` in a row or is refused. Returns how many were counted.
int GuessWrong(ManualClock& clock, const std::string& key, const std::string& purpose, int target,
               const std::function<HttpResult(const std::string&, const nlohmann::json&,
                                              const std::string&)>& post) {
  int wrong = 0;
  for (int day = 0; day < 12 && wrong < target; ++day) {
    for (int consent = 0; consent < 4 && wrong < target; ++consent) {
      const auto created =
          post("/v1/consents", {{"cnic", kCnic}, {"purpose", purpose}, {"scopes", {"name"}}}, key);
      if (!created.json.is_object() || !created.json.contains("consent_id")) return wrong;
      const std::string id = created.json["consent_id"];
      for (int guess = 0; guess < 3 && wrong < target; ++guess) {
        const auto result = post("/v1/consents/" + id + "/confirm", {{"otp", "000001"}}, key);
        if (result.status == 403 || result.status == 409) ++wrong;
      }
      clock.Advance(3 * 3600);
    }
    clock.Advance(24 * 3600);
  }
  return wrong;
}

TEST_F(ApplianceTest, HundredWrongCodesInARow_LockCodes_UntilTheNumberReconfirms) {
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  auto post = [this](const std::string& path, const nlohmann::json& body, const std::string& key) {
    return Post(path, body, key);
  };
  // No provider alone reaches the CNIC-wide ceiling: two providers make 50 each.
  ASSERT_EQ(GuessWrong(clock_, kBankKey, "account-opening", 1000, post),
            kMaxConsecutiveFailuresPerProvider)
      << "one provider stops at its own count in a row";
  ASSERT_EQ(GuessWrong(clock_, kTelcoKey, "sim-issuance", 1000, post),
            kMaxConsecutiveFailures - kMaxConsecutiveFailuresPerProvider);
  SentMessages();
  clock_.Advance(2 * 24 * 3600);  // past every daily window: only the counts in a row remain

  const std::string id = Post("/v1/consents", Body(kCnic)).json["consent_id"];
  const auto code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());
  const auto locked = Post("/v1/consents/" + id + "/confirm", {{"otp", *code}});
  EXPECT_EQ(locked.status, 429) << "the right code is refused while the CNIC is locked";
  // No time lifts a lock by wrong codes in a row: a day, the same whoever's codes hold it.
  EXPECT_EQ(locked.header("retry-after"), std::to_string(kLockedOutInARowRetrySeconds));
  const auto telco =
      Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "sim-issuance"}, {"scopes", {"name"}}},
           kTelcoKey);
  const auto telco_locked = Post("/v1/consents/" + telco.json.value("consent_id", "") + "/confirm",
                                 {{"otp", "000001"}}, kTelcoKey);
  EXPECT_EQ(telco_locked.status, 429);
  EXPECT_EQ(telco_locked.header("retry-after"), locked.header("retry-after"));
  // Someone else's number texting the CNIC does not lift it (it is a number change instead).
  // The enrolled number does:
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  EXPECT_EQ(Post("/v1/consents/" + id + "/confirm", {{"otp", *code}}).status, 200);
}

// Finding 2 of the provider-abuse review: ten wrong codes from one provider made another
// provider's right code answer 429 for 24 hours.
TEST_F(ApplianceTest, OneProvidersWrongCodes_DoNotLockTheCitizenOutForAnother) {
  ASSERT_EQ(InboundSms(kPhone, kCnic).status, 200);
  for (int consent = 0; consent < 4; ++consent) {
    const std::string id =
        Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "sim-issuance"}, {"scopes", {"name"}}},
             kTelcoKey)
            .json["consent_id"];
    for (int guess = 0; guess < 3; ++guess) {
      Post("/v1/consents/" + id + "/confirm", {{"otp", "000001"}}, kTelcoKey);
    }
  }
  clock_.Advance(3601);  // past the hourly SMS cap
  const std::string telco =
      Post("/v1/consents", {{"cnic", kCnic}, {"purpose", "sim-issuance"}, {"scopes", {"name"}}},
           kTelcoKey)
          .json["consent_id"];
  const auto stopped = Post("/v1/consents/" + telco + "/confirm", {{"otp", "000001"}}, kTelcoKey);
  EXPECT_EQ(stopped.status, 429) << "the guessing provider is stopped";
  // Until its first wrong codes, an hour and a second ago, leave its 24-hour window.
  EXPECT_EQ(stopped.header("retry-after"), std::to_string(24 * 3600 - 3601));
  EXPECT_THAT(Get("/metrics", "").body,
              HasSubstr("ijazat_provider_limit_hits_total{provider=\"test-telco\","
                        "limit=\"wrong_codes\"} 3"))
      << "past its 10 wrong codes, its last two guesses and this code were refused, and the "
         "operator sees it";
  const std::string id = RequestConsentId();
  EXPECT_EQ(Grant(id)["state"], "granted") << "the bank's right code is accepted";
}

TEST_F(ApplianceTest, SmsCap_HoldsUnderParallelRequests) {
  InboundSms(kPhone, kCnic);
  SentMessages();
  std::vector<std::thread> threads;
  for (int t = 0; t < 20; ++t) threads.emplace_back([&] { Post("/v1/consents", Body(kCnic)); });
  for (auto& thread : threads) thread.join();
  // The bank's share of the CNIC's hour is the policy's 5 codes, decided one code at a time.
  EXPECT_THAT(SentMessages(), SizeIs(1 + 5));
}

TEST_F(ApplianceTest, IndexKeyRotation_KeepsEnrolmentsAndTheNumberChangeHold) {
  ImportSubscribers("cnic,msisdn\n3520212345671,+923001234567\n3520212345671,+923339999999\n");
  InboundSms(kPhone, kCnic);
  SentMessages();
  ASSERT_TRUE(appliance_->hsm().RotateKey(hsm::KeyKind::kIndex).ok());
  (void)appliance_->Reload();
  // Before the number changes, the enrolment made under index/v1 still gets codes.
  const std::string id = RequestConsentId();
  EXPECT_EQ(Grant(id)["state"], "granted");
  SentMessages();
  // A new number for the same CNIC is a change: the old number is told.
  ASSERT_EQ(InboundSms("+923339999999", kCnic).status, 200);
  const auto sent = SentMessages();
  EXPECT_THAT(sent, Contains(Field(&SentSms::to, kPhone)));
  EXPECT_THAT(sent.back().to, "+923339999999");
  const auto before = sent.size();
  Post("/v1/consents", Body(kCnic));
  EXPECT_THAT(SentMessages(), SizeIs(before)) << "held: no code to the new number yet";
}

TEST_F(ApplianceTest, OutboxMessageThatCannotBeOpened_DoesNotBlockTheOthers) {
  InboundSms(kPhone, kCnic);
  SentMessages();
  ASSERT_TRUE(appliance_->hsm().RotateKey(hsm::KeyKind::kData).ok());
  ASSERT_TRUE(appliance_->hsm().RetireKey(hsm::KeyRef{hsm::KeyKind::kData, 1}).ok());
  (void)appliance_->Reload();
  Post("/v1/consents", Body(kCnic));  // its code goes to a number sealed under data/v1
  InboundSms("+923339999999", "hello");
  const auto sent = SentMessages();
  ASSERT_THAT(sent, SizeIs(2));
  EXPECT_EQ(sent[1].to, "+923339999999");
  EXPECT_THAT(sent[1].text, HasSubstr("13-digit CNIC"));
}

TEST_F(ApplianceTest, PendingConsent_CannotBeRevoked_GrantedCan) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const auto pending = Post("/v1/consents/" + id + "/revoke", nlohmann::json::object());
  EXPECT_EQ(pending.status, 409);
  EXPECT_EQ(pending.json["title"], "consent_not_revocable");
  const std::string token = Grant(id)["consent_token"];
  const auto revoked = Post("/v1/consents/" + id + "/revoke", nlohmann::json::object());
  EXPECT_EQ(revoked.status, 200);
  EXPECT_EQ(revoked.json["state"], "revoked");
  const auto verify = Post("/v1/verifications", {{"consent_token", token}});
  EXPECT_EQ(verify.status, 409);
  EXPECT_EQ(verify.json["title"], "consent_revoked");
}

TEST_F(ApplianceTest, ScopeWithdrawnByAReload_StopsVerificationOfEarlierConsents) {
  InboundSms(kPhone, kCnic);
  const std::string id = RequestConsentId();
  const std::string token = Grant(id)["consent_token"];
  std::string narrower = TestPolicy();
  narrower.replace(narrower.find("scopes: [name, father_name, date_of_birth]"),
                   std::string("scopes: [name, father_name, date_of_birth]").size(),
                   "scopes: [name]");
  WritePolicy(narrower);
  ASSERT_TRUE(appliance_->Reload().ok());
  const auto verify = Post("/v1/verifications", {{"consent_token", token}});
  EXPECT_EQ(verify.status, 403) << verify.body;
  EXPECT_EQ(verify.json["title"], "scope_not_allowed");
  EXPECT_EQ(Get("/v1/consents/" + id).json["uses_remaining"], 2) << "no use was counted";
}

}  // namespace
}  // namespace ijazat::appliance::testing

namespace ijazat::appliance::testing {
namespace {

// POCO serves one connection per thread. With two threads and ten clients that keep their
// connections busy, the server must still hand the threads round: every client is served.
TEST_F(ApplianceTest, KeepAliveClients_CannotStarveTheOthers) {
  StopAppliance();
  config_.server.threads = 2;
  config_.server.max_keep_alive_requests = 1000000;  // no help from connection recycling
  StartAppliance();
  constexpr int kClients = 10;
  std::array<std::atomic<int>, kClients> served{};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      // One keep-alive connection per client, reused for every request (POCO reconnects if
      // the server closed it).
      Poco::Net::Context::Ptr context = new Poco::Net::Context(
          Poco::Net::Context::TLS_CLIENT_USE, "", "", config_.tls.certificate,
          Poco::Net::Context::VERIFY_RELAXED, 9, false);
      Poco::Net::HTTPSClientSession session("127.0.0.1",
                                            static_cast<Poco::UInt16>(appliance_->port()), context);
      session.setKeepAlive(true);
      session.setTimeout(Poco::Timespan(30, 0));
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!stop && std::chrono::steady_clock::now() < deadline) {
        try {
          Poco::Net::HTTPRequest request("GET", "/healthz", Poco::Net::HTTPMessage::HTTP_1_1);
          request.setKeepAlive(true);
          session.sendRequest(request);
          Poco::Net::HTTPResponse response;
          std::istream& body = session.receiveResponse(response);
          body.ignore(1 << 16);
          if (response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK) {
            ++served[static_cast<std::size_t>(c)];
          }
        } catch (const Poco::Exception&) {
          session.reset();
        }
        bool all = true;
        for (const auto& count : served) all = all && count.load() > 0;
        if (all && std::chrono::steady_clock::now() < deadline) stop = true;
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_TRUE(stop.load()) << "some clients waited until the others gave up";
  for (int c = 0; c < kClients; ++c) {
    EXPECT_GT(served[static_cast<std::size_t>(c)].load(), 0) << "client " << c << " starved";
  }
}

}  // namespace
}  // namespace ijazat::appliance::testing
