// The appliance behind a real Kannel: citizens' messages enter through Kannel's fakesmsc
// (standing in for the operator's SMSC), reach the HTTPS webhook through smsbox's get-url, and
// the appliance's replies and codes leave through smsbox's sendsms and arrive at fakesmsc.
// Delivery reports come back through the dlr-url to /v1/sms/dlr.
#include <charconv>
#include <fstream>
#include <regex>
#include <thread>

#include "appliance_fixture.h"
#include "kannel_harness.h"
#include "sms.h"
#include "store.h"

namespace ijazat::appliance::testing {
namespace {

using ijazat::testing::KannelHarness;
using ijazat::testing::KannelHarnessOptions;
using ijazat::testing::KannelMt;

constexpr char kCnicDashed[] = "35202-1234567-1";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::optional<std::string> CodeIn(const std::string& text) {
  static const std::regex code_re(R"(Ijazat code (\d{6}))");
  std::smatch match;
  if (std::regex_search(text, match, code_re)) return match[1].str();
  return std::nullopt;
}

int CodesTo(const std::vector<KannelMt>& received, const std::string& to) {
  int n = 0;
  for (const KannelMt& mt : received) n += (mt.to == to && CodeIn(mt.text)) ? 1 : 0;
  return n;
}

class KannelTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    if (HasFatalFailure()) return;
    // The webhook and dlr URLs need the appliance's port: keep the one it was given and
    // restart on it with the Kannel sender.
    const int port = appliance_->port();
    StopAppliance();
    const std::string base = "https://127.0.0.1:" + std::to_string(port);
    KannelHarnessOptions options;
    options.dir = dir_ / "kannel";
    options.get_url = base + "/v1/sms/inbound?secret=" + kGatewaySecret + "&from=%p&to=%P&text=%a";
    options.trusted_ca_file = (dir_ / "server.crt").string();
    if (sendsms_over_tls_) {
      // smsbox serves sendsms with the test appliance's own certificate (it names 127.0.0.1),
      // so that certificate is also the CA the appliance's sender verifies it against.
      options.sendsms_certificate_file = (dir_ / "server.crt").string();
      options.sendsms_key_file = (dir_ / "server.key").string();
      config_.sms.kannel_ca_file = (dir_ / "server.crt").string();
    }
    kannel_ = std::make_unique<KannelHarness>(options);

    const auto password_file = dir_ / "kannel.password";
    std::ofstream(password_file, std::ios::trunc) << kannel_->password();
    std::filesystem::permissions(
        password_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    config_.server.listen = "127.0.0.1:" + std::to_string(port);
    config_.sms.sender = "kannel";
    config_.sms.kannel_url = kannel_->sendsms_url();
    config_.sms.kannel_username = kannel_->username();
    config_.sms.kannel_password_file = password_file.string();
    config_.sms.kannel_dlr_url = base + "/v1/sms/dlr";
    EnableDeliveryReports();
    MakeRoomForReplies();
    StartAppliance();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(kannel_->Start());
  }

  void TearDown() override {
    if (HasFailure() && kannel_) {
      std::cerr << "Kannel logs:\n" << kannel_->Logs();
    }
    kannel_.reset();  // stops every Kannel process
    ApplianceTest::TearDown();
  }

  // One pass of the outbox dispatcher until it has nothing due.
  void Drain() {
    for (int i = 0; i < 10; ++i) {
      auto handled = appliance_->dispatcher().RunOnce();
      if (!handled.ok() || *handled == 0) break;
    }
  }

  std::optional<KannelMt> WaitForMt(const std::string& to, const std::string& part) {
    return kannel_->WaitFor(
        [&](const KannelMt& mt) { return mt.to == to && Contains(mt.text, part); },
        [&] { Drain(); });
  }

  // The citizen texts their CNIC to 8009 through Kannel and receives the confirmation.
  void EnrolThroughKannel() {
    ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, kCnicDashed));
    const auto confirmation = WaitForMt(kPhone, "now enrolled");
    ASSERT_TRUE(confirmation.has_value()) << "no enrolment confirmation reached the phone";
  }

  int CountWithStatus(OutboxStatus status) {
    auto counts = appliance_->store().CountMessagesByStatus();
    EXPECT_TRUE(counts.ok());
    if (!counts.ok()) return -1;
    for (const auto& [s, n] : *counts) {
      if (s == status) return n;
    }
    return 0;
  }

  // Lets Kannel deliver anything still in flight, driving the dispatcher meanwhile.
  void Settle(std::chrono::milliseconds duration = std::chrono::milliseconds(1500)) {
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      Drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  std::unique_ptr<KannelHarness> kannel_;
  bool sendsms_over_tls_ = false;  // set by a subclass's constructor
};

// The same appliance and Kannel, with smsbox's sendsms over TLS (sendsms-port-ssl), as across a
// network: the link docs/sms-gateway.md describes for Kannel on another machine.
class KannelTlsTest : public KannelTest {
 protected:
  KannelTlsTest() { sendsms_over_tls_ = true; }
};

TEST_F(KannelTest, EnrolmentByMoGetsConfirmationByMt) {
  ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, kCnicDashed));
  const auto confirmation = WaitForMt(kPhone, "now enrolled");
  ASSERT_TRUE(confirmation.has_value()) << "no enrolment confirmation reached the phone";
  EXPECT_EQ(confirmation->from, kShortCode);
  EXPECT_EQ(confirmation->type, "text");
}

TEST_F(KannelTest, ConsentCodeReachesThePhoneAndRelayedCodeYieldsToken) {
  EnrolThroughKannel();
  const std::string consent_id = RequestConsentId();
  ASSERT_FALSE(consent_id.empty());
  const auto sms = WaitForMt(kPhone, "Ijazat code");
  ASSERT_TRUE(sms.has_value()) << "no code reached the phone";
  EXPECT_TRUE(Contains(sms->text, "Test Bank")) << sms->text;
  EXPECT_TRUE(Contains(sms->text, "opening a bank account")) << sms->text;
  const auto code = CodeIn(sms->text);
  ASSERT_TRUE(code.has_value()) << sms->text;

  const auto confirmed = Post("/v1/consents/" + consent_id + "/confirm", {{"otp", *code}});
  ASSERT_EQ(confirmed.status, 200) << confirmed.body;
  EXPECT_EQ(confirmed.json["state"], "granted");
  EXPECT_FALSE(confirmed.json["consent_token"].get<std::string>().empty());
  // The citizen is told, through Kannel too.
  EXPECT_TRUE(WaitForMt(kPhone, "you allowed Test Bank").has_value());
  // Neither the code nor the sendsms password is in bearerbox's access log: the sender posts
  // (nothing in the URL) and the log's format leaves message text out.
  for (const char* name : {"access.log"}) {
    std::ifstream in(kannel_->dir() / name);
    const std::string log((std::istreambuf_iterator<char>(in)), {});
    EXPECT_FALSE(log.empty()) << name;
    EXPECT_FALSE(Contains(log, *code)) << name << ":\n" << log;
    EXPECT_FALSE(Contains(log, kannel_->password())) << name << ":\n" << log;
  }
}

TEST_F(KannelTlsTest, CodeAndNoticeReachThePhone_OverVerifiedHttpsToSmsbox) {
  ASSERT_EQ(kannel_->sendsms_url().rfind("https://", 0), 0U) << kannel_->sendsms_url();
  EnrolThroughKannel();
  const std::string consent_id = RequestConsentId();
  ASSERT_FALSE(consent_id.empty());
  const auto sms = WaitForMt(kPhone, "Ijazat code");
  ASSERT_TRUE(sms.has_value()) << "no code reached the phone over https";
  const auto code = CodeIn(sms->text);
  ASSERT_TRUE(code.has_value()) << sms->text;
  const auto confirmed = Post("/v1/consents/" + consent_id + "/confirm", {{"otp", *code}});
  ASSERT_EQ(confirmed.status, 200) << confirmed.body;
  EXPECT_TRUE(WaitForMt(kPhone, "you allowed Test Bank").has_value());
  // Delivery reports still come back, each with its own token.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (CountWithStatus(OutboxStatus::kDelivered) < 3 &&
         std::chrono::steady_clock::now() < deadline) {
    Drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // The enrolment confirmation, the code and the grant notice.
  EXPECT_EQ(CountWithStatus(OutboxStatus::kDelivered), 3)
      << "delivery reports did not settle the messages";
}

TEST_F(KannelTest, LockCommandThroughKannelStopsCodes) {
  EnrolThroughKannel();
  ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, "LOCK"));
  ASSERT_TRUE(WaitForMt(kPhone, "your CNIC is locked").has_value());

  const std::string consent_id = RequestConsentId();
  ASSERT_FALSE(consent_id.empty());  // the provider sees the usual answer
  Settle(std::chrono::milliseconds(2500));
  EXPECT_EQ(CodesTo(kannel_->Received(), kPhone), 0) << "a locked citizen received a code";

  // UNLOCK through Kannel, and codes flow again.
  ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, "UNLOCK"));
  ASSERT_TRUE(WaitForMt(kPhone, "your CNIC is unlocked").has_value());
  ASSERT_FALSE(RequestConsentId().empty());
  EXPECT_TRUE(WaitForMt(kPhone, "Ijazat code").has_value());
}

// HELP, HISTORY, REVOKE, BLOCK and UNBLOCK, each sent by the phone through Kannel and
// answered through Kannel, with its effect.
TEST_F(KannelTest, EveryCommandThroughKannel_IsAnsweredAndTakesEffect) {
  EnrolThroughKannel();
  ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, "help"));
  const auto help = WaitForMt(kPhone, "Commands:");
  ASSERT_TRUE(help.has_value());
  EXPECT_LE(help->text.size(), 160u);

  // A verification to list and revoke: the code travels through Kannel.
  const std::string consent_id = RequestConsentId();
  const auto sms = WaitForMt(kPhone, "Ijazat code");
  ASSERT_TRUE(sms.has_value());
  const auto confirmed =
      Post("/v1/consents/" + consent_id + "/confirm", {{"otp", CodeIn(sms->text).value_or("")}});
  ASSERT_EQ(confirmed.status, 200) << confirmed.body;
  const std::string reference = confirmed.json["reference"];
  const std::string token = confirmed.json["consent_token"];
  ASSERT_EQ(Post("/v1/verifications", {{"consent_token", token}}).status, 200);

  ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, " History "));
  const auto history = WaitForMt(kPhone, "Ijazat verifications:");
  ASSERT_TRUE(history.has_value());
  EXPECT_TRUE(Contains(history->text, "Test Bank")) << history->text;
  EXPECT_TRUE(Contains(history->text, reference)) << history->text;
  EXPECT_FALSE(Contains(history->text, "1234567")) << "never shows the CNIC";

  ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, "revoke " + reference));
  ASSERT_TRUE(WaitForMt(kPhone, "is revoked").has_value());
  EXPECT_EQ(Get("/v1/consents/" + consent_id).json["state"], "revoked");

  ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, "BLOCK test bank"));
  ASSERT_TRUE(WaitForMt(kPhone, "can no longer ask").has_value());
  const int codes_before = CodesTo(kannel_->Received(), kPhone);
  EXPECT_EQ(RequestConsentId().empty(), false) << "the provider sees the usual answer";
  Settle();
  EXPECT_EQ(CodesTo(kannel_->Received(), kPhone), codes_before) << "a blocked provider's code";

  ASSERT_TRUE(kannel_->SendMo(kPhone, kShortCode, "unblock test-bank"));
  ASSERT_TRUE(WaitForMt(kPhone, "may ask for your consent again").has_value());
  RequestConsentId();
  Settle();
  EXPECT_EQ(CodesTo(kannel_->Received(), kPhone), codes_before + 1);
}

// A new number for the CNIC: the old number is told through Kannel, the new one confirmed, and
// the cooling-off hold stops codes for now.
TEST_F(KannelTest, NumberChangeThroughKannel_TellsTheOldNumberAndHoldsCodes) {
  ImportSubscribers("cnic,msisdn\n3520212345671,+923001234567\n3520212345671,+923019876543\n");
  EnrolThroughKannel();
  const std::string new_phone = "+923019876543";
  ASSERT_TRUE(kannel_->SendMo(new_phone, kShortCode, std::string("CNIC ") + kCnicDashed));
  ASSERT_TRUE(WaitForMt(new_phone, "now enrolled").has_value());
  const auto notice = WaitForMt(kPhone, "enrolled with a new number");
  ASSERT_TRUE(notice.has_value()) << "the old number was not told";
  EXPECT_FALSE(Contains(notice->text, "1234567")) << "never shows the CNIC";
  RequestConsentId();
  Settle();
  EXPECT_EQ(CodesTo(kannel_->Received(), new_phone), 0) << "a code during the hold";
  EXPECT_EQ(CodesTo(kannel_->Received(), kPhone), 0) << "a code to the old number";
}

// The per-CNIC daily cap, with codes going through Kannel: past it no code reaches the phone,
// the provider's answer is unchanged, and the hit is counted.
TEST_F(KannelTest, SmsCapThroughKannel_StopsCodesAndIsCounted) {
  StopAppliance();
  config_.sms.caps.per_cnic_per_day = 2;  // a provider's share: one code
  StartAppliance();
  ASSERT_FALSE(HasFatalFailure());
  EnrolThroughKannel();
  RequestConsentId();
  ASSERT_TRUE(WaitForMt(kPhone, "Ijazat code").has_value());
  const auto capped = Post(
      "/v1/consents",
      {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name", "date_of_birth"}}});
  EXPECT_EQ(capped.status, 202);
  EXPECT_TRUE(capped.json.contains("consent_id"));
  Settle();
  EXPECT_EQ(CodesTo(kannel_->Received(), kPhone), 1) << "a code past the cap reached the phone";
  EXPECT_TRUE(Contains(
      Get("/metrics", "").body,
      "ijazat_provider_limit_hits_total{provider=\"test-bank\",limit=\"cnic_provider_day\"} 1"));
}

TEST_F(KannelTest, CodeQueuedWhileKannelIsDownIsDeliveredOnceWhenItReturns) {
  EnrolThroughKannel();
  kannel_->Stop();
  const std::string consent_id = RequestConsentId();
  ASSERT_FALSE(consent_id.empty());
  // Kannel refuses connections: the code stays queued with a retry time.
  auto handled = appliance_->dispatcher().RunOnce();
  ASSERT_TRUE(handled.ok());
  EXPECT_EQ(*handled, 1);
  EXPECT_EQ(CountWithStatus(OutboxStatus::kQueued), 1);
  EXPECT_EQ(appliance_->dispatcher().metrics().retried.load(), 1u);
  // Not yet due again: nothing is attempted.
  handled = appliance_->dispatcher().RunOnce();
  ASSERT_TRUE(handled.ok());
  EXPECT_EQ(*handled, 0);

  clock_.Advance(3);  // past the first backoff (2 s), well within the 5 min lifetime
  ASSERT_TRUE(kannel_->Start());
  const auto sms = WaitForMt(kPhone, "Ijazat code");
  ASSERT_TRUE(sms.has_value()) << "the queued code was not delivered after Kannel returned";
  // Later passes, even after more time, never send it again.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(10);
    Settle(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(CodesTo(kannel_->Received(), kPhone), 1);
  EXPECT_EQ(CountWithStatus(OutboxStatus::kQueued), 0);

  const auto confirmed =
      Post("/v1/consents/" + consent_id + "/confirm", {{"otp", *CodeIn(sms->text)}});
  EXPECT_EQ(confirmed.status, 200) << confirmed.body;
}

TEST_F(KannelTest, CodeQueuedWhileKannelIsDownPastItsLifetimeIsNeverDelivered) {
  EnrolThroughKannel();
  kannel_->Stop();
  ASSERT_FALSE(RequestConsentId().empty());
  auto handled = appliance_->dispatcher().RunOnce();
  ASSERT_TRUE(handled.ok());
  EXPECT_EQ(CountWithStatus(OutboxStatus::kQueued), 1);

  clock_.Advance(6 * 60);  // the policy's codes live 5 minutes
  ASSERT_TRUE(kannel_->Start());
  Settle(std::chrono::milliseconds(2500));
  EXPECT_EQ(CodesTo(kannel_->Received(), kPhone), 0) << "an expired code was delivered late";
  EXPECT_EQ(CountWithStatus(OutboxStatus::kQueued), 0);
  EXPECT_EQ(CountWithStatus(OutboxStatus::kDropped), 1);
}

TEST_F(KannelTest, SenderReusesOneConnectionForSuccessiveMessages) {
  KannelOptions options;
  options.url = kannel_->sendsms_url();
  options.username = kannel_->username();
  options.password = SecretString(std::string(kannel_->password()));
  options.from = kShortCode;
  auto created = KannelSmsSender::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.error().message();
  KannelSmsSender& sender = **created;
  for (int i = 0; i < 3; ++i) {
    auto sent = sender.Send(1000 + i, kPhone, "reuse test " + std::to_string(i));
    ASSERT_TRUE(sent.ok()) << sent.error().message();
  }
  EXPECT_EQ(sender.connections_opened(), 1U) << "a new connection per message";
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitForMt(kPhone, "reuse test " + std::to_string(i)).has_value()) << i;
  }
}

TEST_F(KannelTest, DeliveryReportFromKannelMarksTheMessageDelivered) {
  EnrolThroughKannel();
  // fakesmsc acknowledges every message; Kannel reports 8 (submitted) then 1 (delivered), often
  // before the dispatcher has recorded the hand-over. The enrolment confirmation is the only
  // message so far; its gateway id is its outbox id, recorded once the hand-over is.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::optional<OutboxMessage> message;
  while (std::chrono::steady_clock::now() < deadline) {
    for (int id = 1; id <= 5; ++id) {
      auto found = appliance_->store().FindMessageByGatewayId(std::to_string(id));
      ASSERT_TRUE(found.ok());
      if (*found && (*found)->kind == OutboxKind::kEnrolled) message = **found;
    }
    if (message && message->status == OutboxStatus::kDelivered) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(message.has_value()) << "the hand-over was never recorded";
  EXPECT_EQ(message->status, OutboxStatus::kDelivered);
  EXPECT_EQ(message->attempts, 1);
}

// The delivery-report endpoint as Kannel calls it, without Kannel (the file sink's gateway id
// is the outbox id as well).
class DeliveryReportTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    if (HasFatalFailure()) return;
    StopAppliance();
    EnableDeliveryReports();
    StartAppliance();
  }
  // The token Kannel's report URL carries for outbox message `id`.
  static std::string Auth(const std::string& id) {
    std::int64_t number = 0;
    std::from_chars(id.data(), id.data() + id.size(), number);
    return "token=" + DeliveryReportToken(kDlrSecret, number);
  }
  OutboxMessage SentEnrolment() {
    EXPECT_EQ(InboundSms(kPhone, kCnic).status, 200);
    EXPECT_FALSE(SentMessages().empty());
    for (int id = 1; id <= 5; ++id) {
      auto found = appliance_->store().FindMessageByGatewayId(std::to_string(id));
      if (found.ok() && *found && (*found)->kind == OutboxKind::kEnrolled) return **found;
    }
    ADD_FAILURE() << "no sent enrolment message";
    return {};
  }
  OutboxStatus StatusOf(const OutboxMessage& message) {
    auto found = appliance_->store().FindMessageByGatewayId(message.gateway_id);
    EXPECT_TRUE(found.ok() && found->has_value());
    return found.ok() && *found ? (*found)->status : OutboxStatus::kQueued;
  }
  HttpResult Dlr(const std::string& query) { return Get("/v1/sms/dlr?" + query, ""); }
};

TEST_F(DeliveryReportTest, DeliveredFailedAndIntermediateReports) {
  const OutboxMessage message = SentEnrolment();
  ASSERT_EQ(message.status, OutboxStatus::kSent);
  const std::string id = message.gateway_id;

  // Buffered (4) and submitted (8) leave it sent; the answer is an empty 200.
  for (const char* status : {"4", "8"}) {
    const auto reply = Dlr(Auth(id) + "&id=" + id + "&status=" + status);
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_TRUE(reply.body.empty());
    EXPECT_EQ(StatusOf(message), OutboxStatus::kSent);
  }
  EXPECT_EQ(Dlr(Auth(id) + "&id=" + id + "&status=1").status, 200);
  EXPECT_EQ(StatusOf(message), OutboxStatus::kDelivered);
  // A later failure report does not undo a final outcome.
  EXPECT_EQ(Dlr(Auth(id) + "&id=" + id + "&status=2").status, 200);
  EXPECT_EQ(StatusOf(message), OutboxStatus::kDelivered);
}

TEST_F(DeliveryReportTest, FailedAndRejectedReportsMarkTheMessageFailed) {
  const OutboxMessage message = SentEnrolment();
  EXPECT_EQ(Dlr(Auth(message.gateway_id) + "&id=" + message.gateway_id + "&status=16").status, 200);
  EXPECT_EQ(StatusOf(message), OutboxStatus::kFailed);
  EXPECT_EQ(Dlr(Auth(message.gateway_id) + "&id=" + message.gateway_id + "&status=1").status, 200);
  EXPECT_EQ(StatusOf(message), OutboxStatus::kFailed);

  // Status 2 on another sent message.
  ASSERT_FALSE(RequestConsentId().empty());
  SentMessages();
  std::optional<OutboxMessage> otp;
  for (int id = 1; id <= 5; ++id) {
    auto found = appliance_->store().FindMessageByGatewayId(std::to_string(id));
    if (found.ok() && *found && (*found)->kind == OutboxKind::kOtp) otp = **found;
  }
  ASSERT_TRUE(otp.has_value());
  EXPECT_EQ(Dlr(Auth(otp->gateway_id) + "&id=" + otp->gateway_id + "&status=2").status, 200);
  EXPECT_EQ(StatusOf(*otp), OutboxStatus::kFailed);
}

TEST_F(DeliveryReportTest, RefusesWrongTokensUnknownIdsAndBadStatus) {
  const OutboxMessage message = SentEnrolment();
  // The gateway secret, which authenticates citizens' SMS, opens nothing here; nor does the
  // token of another message, or the delivery-report secret itself.
  EXPECT_EQ(Dlr(std::string("secret=") + kGatewaySecret + "&id=" + message.gateway_id + "&status=1")
                .status,
            401);
  EXPECT_EQ(Dlr(Auth("999") + "&id=" + message.gateway_id + "&status=1").status, 401);
  EXPECT_EQ(
      Dlr(std::string("token=") + kDlrSecret + "&id=" + message.gateway_id + "&status=1").status,
      401);
  EXPECT_EQ(Dlr("id=" + message.gateway_id + "&status=1").status, 401);
  EXPECT_EQ(Dlr("secret=wrong&id=" + message.gateway_id + "&status=1").status, 401);
  const auto unknown = Dlr(Auth("999999") + "&id=999999&status=1");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(Dlr(Auth(message.gateway_id) + "&id=" + message.gateway_id + "&status=3").status, 400);
  EXPECT_EQ(Dlr(Auth("abc") + "&id=abc&status=1").status, 400);
  EXPECT_EQ(Dlr(Auth("-1") + "&id=-1&status=1").status, 400);
  // Past the largest outbox id a store can hold: refused, not thrown.
  EXPECT_EQ(Dlr(Auth("9223372036854775808") + "&id=9223372036854775808&status=1").status, 400);
  EXPECT_EQ(Dlr(Auth("99999999999999999999") + "&id=99999999999999999999&status=1").status, 400);
  EXPECT_EQ(Dlr(Auth("9223372036854775807") + "&id=9223372036854775807&status=1").status, 404);
  EXPECT_EQ(Dlr(Auth("1") + "&status=1").status, 400);
  const auto post = Request(
      "POST", "/v1/sms/dlr?" + Auth(message.gateway_id) + "&id=" + message.gateway_id + "&status=1",
      "", "", "text/plain");
  EXPECT_GE(post.status, 400);
  EXPECT_EQ(StatusOf(message), OutboxStatus::kSent);
}

}  // namespace
}  // namespace ijazat::appliance::testing
