#include "appliance_fixture.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLManager.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <fstream>
#include <sstream>

#include "ijazat/common/bytes.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "registry.h"
#include "sms.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::testing {
namespace {

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return HexEncode(ByteView(digest, sizeof digest));
}

void WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace

DatabaseLock::DatabaseLock(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) return;
  sqlite3_busy_timeout(db_, 5000);  // past a reader that holds the file for a moment
  held_ = sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK;
}

DatabaseLock::~DatabaseLock() {
  Release();
  sqlite3_close(db_);
}

void DatabaseLock::Release() {
  if (held_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  held_ = false;
}

std::string ApplianceTest::TestPolicy() {
  return R"(version: test-1
defaults:
  otp: {digits: 6, ttl: 5m, max_attempts: 3}
  token: {ttl: 15m, max_uses: 2}
  limits:
    failures_per_cnic_per_day: 10
    sms_per_cnic_per_hour: 5
    number_change_cooling_off: 24h
providers:
  - id: test-bank
    display_name: Test Bank
    status: active
    credentials:
      - {type: api_key, sha256: )" +
         Sha256Hex(kBankKey) + R"(}
    purposes:
      - id: account-opening
        sms_text: opening a bank account
        scopes: [name, father_name, date_of_birth]
    rate_limit: {requests_per_minute: 6000, burst: 1000}
    controller:
      legal_name: Test Bank Limited
      address: 1 Test Road, Lahore
      country: PK
      contact: Data Protection Officer
      email: dpo@test-bank.example
      phone: +92 42 111 000 000
      privacy_policy_url: https://test-bank.example/privacy
  - id: test-telco
    display_name: Test Telco
    status: active
    credentials:
      - {type: api_key, sha256: )" +
         Sha256Hex(kTelcoKey) + R"(}
    purposes:
      - id: sim-issuance
        sms_text: issuing a new SIM
        scopes: [name, cnic_status]
    rate_limit: {requests_per_minute: 6000, burst: 1000}
    reveal_enrolment_status: true
  - id: test-suspended
    display_name: Suspended Co
    status: suspended
    credentials:
      - {type: api_key, sha256: )" +
         Sha256Hex(kSuspendedKey) + R"(}
    purposes:
      - id: anything
        sms_text: anything
        scopes: [name]
)";
}

void ApplianceTest::WritePolicy(const std::string& yaml) { WriteFile(dir_ / "policy.yaml", yaml); }

void ApplianceTest::EnableDeliveryReports() {
  WriteFile(dir_ / "dlr.secret", kDlrSecret);
  config_.sms.dlr_secret_file = (dir_ / "dlr.secret").string();
}

void ApplianceTest::MakeRoomForReplies() {
  config_.sms.caps.per_number_per_hour = 100;
  config_.sms.caps.per_number_per_day = 300;
}

void ApplianceTest::RestartWithRoomForReplies() {
  StopAppliance();
  MakeRoomForReplies();
  StartAppliance();
}

void ApplianceTest::SetUp() {
  dir_ = token_.dir().path();
  {
    hsm::HsmOptions options;
    options.module_path = ijazat::testing::kSoftHsmModule;
    options.token_label = token_.label();
    options.pin = hsm::PinSource::File(token_.user_pin_file());
    auto hsm = hsm::Pkcs11Hsm::Open(options);
    ASSERT_TRUE(hsm.ok()) << hsm.error().message();
    for (const hsm::KeyKind kind : hsm::kAllKeyKinds) {
      ASSERT_TRUE((*hsm)->GenerateKey(kind).ok());
    }
  }
  const auto tls = ijazat::testing::RunCommand(
      "cd " + dir_.string() +
      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
      " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
      " -keyout server.key -out server.crt");
  ASSERT_EQ(tls.exit_code, 0) << tls.output;
  WritePolicy(TestPolicy());
  WriteFile(dir_ / "gateway.secret", kGatewaySecret);
  const auto imported =
      ImportRegistryCsv((dir_ / "registry.db").string(),
                        std::string(IJAZAT_SOURCE_DIR) + "/appliance/demo/registry.csv");
  ASSERT_TRUE(imported.ok()) << imported.error().message();
  // The demo's subscriber records bind kPhone (and a few others) to the demo CNICs: enrolment
  // needs an authority's binding by default.
  const auto subscribers =
      ImportSubscribersCsv((dir_ / "registry.db").string(),
                           std::string(IJAZAT_SOURCE_DIR) + "/appliance/demo/subscribers.csv");
  ASSERT_TRUE(subscribers.ok()) << subscribers.error().message();

  config_.issuer = "https://ijazat.test";
  config_.server.listen = "127.0.0.1:0";
  config_.server.threads = 8;
  config_.tls.certificate = (dir_ / "server.crt").string();
  config_.tls.key = (dir_ / "server.key").string();
  config_.hsm.module = ijazat::testing::kSoftHsmModule;
  config_.hsm.token = token_.label();
  config_.hsm.pin_file = token_.user_pin_file().string();
  config_.store_path = (dir_ / "ijazat.db").string();
  config_.registry_path = (dir_ / "registry.db").string();
  config_.policy_path = (dir_ / "policy.yaml").string();
  config_.sms.short_code = kShortCode;
  config_.sms.inbound_secret_file = (dir_ / "gateway.secret").string();
  config_.sms.sender = "file";
  config_.sms.file = (dir_ / "sms.jsonl").string();
  config_.receipt.policy_url = "https://ijazat.test/policy";
  config_.log_file = (dir_ / "ijazatd.log").string();
  StartAppliance();
}

void ApplianceTest::TearDown() { StopAppliance(); }

void ApplianceTest::ImportSubscribers(const std::string& csv) {
  static int files = 0;
  const auto path = dir_ / ("subscribers-" + std::to_string(++files) + ".csv");
  WriteFile(path, csv);
  const auto imported = ImportSubscribersCsv(config_.registry_path, path.string());
  ASSERT_TRUE(imported.ok()) << imported.error().message();
}

void ApplianceTest::StartAppliance() {
  ApplianceOptions options;
  options.clock = &clock_;
  options.start_dispatcher = false;  // tests drain the outbox themselves, deterministically
  options.hsm_faults = faults_;
  auto started = Appliance::Start(config_, options);
  ASSERT_TRUE(started.ok()) << started.error().message();
  appliance_ = std::move(started).value();
}

void ApplianceTest::StopAppliance() {
  if (appliance_) appliance_->Stop();
  appliance_.reset();
}

HttpResult ApplianceTest::Request(const std::string& method, const std::string& path,
                                  const std::string& body, const std::string& api_key,
                                  const std::string& content_type,
                                  const std::map<std::string, std::string>& headers) {
  HttpResult result;
  Poco::Net::Context::Ptr context = new Poco::Net::Context(
      Poco::Net::Context::TLS_CLIENT_USE, "", "", (dir_ / "server.crt").string(),
      Poco::Net::Context::VERIFY_RELAXED, 9, false);
  Poco::Net::HTTPSClientSession session("127.0.0.1", static_cast<Poco::UInt16>(appliance_->port()),
                                        context);
  session.setTimeout(Poco::Timespan(10, 0));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!api_key.empty()) request.set("Authorization", std::string("Bearer ") + api_key);
  for (const auto& [name, value] : headers) request.set(name, value);
  if (!body.empty() || method == "POST") {
    request.setContentType(content_type);
    request.setContentLength64(static_cast<Poco::Int64>(body.size()));
  }
  session.sendRequest(request) << body;
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  result.status = static_cast<int>(response.getStatus());
  for (const auto& [name, value] : response) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    result.headers[lower] = value;
  }
  result.body.assign(std::istreambuf_iterator<char>(in), {});
  result.json = nlohmann::json::parse(result.body, nullptr, false);
  if (result.json.is_discarded()) result.json = nullptr;
  return result;
}

HttpResult ApplianceTest::InboundSms(const std::string& from, const std::string& text) {
  return Request("POST", "/v1/sms/inbound",
                 nlohmann::json{{"from", from}, {"to", kShortCode}, {"text", text}}.dump(), "",
                 "application/json", {{"X-Ijazat-Gateway-Secret", kGatewaySecret}});
}

std::vector<SentSms> ApplianceTest::SentMessages() {
  for (int i = 0; i < 10; ++i) {
    auto handled = appliance_->dispatcher().RunOnce();
    if (!handled.ok() || *handled == 0) break;
  }
  std::vector<SentSms> messages;
  std::ifstream in(dir_ / "sms.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_object()) messages.push_back({json["to"], json["text"]});
  }
  return messages;
}

std::optional<std::string> ApplianceTest::LastCodeFor(const std::string& to) {
  std::optional<std::string> code;
  for (const SentSms& sms : SentMessages()) {
    if (sms.to != to) continue;
    const auto at = sms.text.find("code ");
    if (at != std::string::npos) code = sms.text.substr(at + 5, 6);
  }
  return code;
}

std::string ApplianceTest::RequestConsentId(const std::string& cnic, const std::string& api_key) {
  const auto created =
      Post("/v1/consents",
           {{"cnic", cnic}, {"purpose", "account-opening"}, {"scopes", {"name", "date_of_birth"}}},
           api_key);
  EXPECT_EQ(created.status, 202) << created.body;
  return created.json.is_object() && created.json.contains("consent_id")
             ? created.json["consent_id"].get<std::string>()
             : "";
}

nlohmann::json ApplianceTest::Grant(const std::string& consent_id, const std::string& phone) {
  const auto code = LastCodeFor(phone);
  EXPECT_TRUE(code.has_value());
  const auto confirmed =
      Post("/v1/consents/" + consent_id + "/confirm", {{"otp", code.value_or("000000")}});
  EXPECT_EQ(confirmed.status, 200) << confirmed.body;
  return confirmed.json;
}

}  // namespace ijazat::appliance::testing
