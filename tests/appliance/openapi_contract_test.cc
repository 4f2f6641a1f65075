// docs/openapi.yaml as the checked contract of the HTTPS API: every operation is driven through
// real requests to the in-process appliance (real SoftHSM token, real HTTPS on port 0, the
// injected clock), each success and each error the test can provoke, and every exchange is
// recorded. tests/tools/openapi_contract.py, run with Debian's python3 (python3-yaml,
// python3-jsonschema), then checks the document itself and each exchange against it: status
// documented for the operation, Content-Type documented, body valid against the schema,
// problem `title` among the reasons listed for that status, and every operation exercised.
// The validator is also fed exchanges and documents that break the contract, and must fail.
#include <Poco/Net/Context.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "appliance_fixture.h"
#include "ijazat/common/bytes.h"
#include "ijazat/hsm/fault_injection.h"
#include "sms.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::testing {
namespace {

using nlohmann::json;

// The providers this suite adds to the fixture's: one with a rate limit of one request a
// minute, one not valid yet, one no longer valid, and one that tolerates a single wrong code
// per CNIC a day.
constexpr char kSlowKey[] = "ijz_test_slow_key_0000000000000000";
constexpr char kEarlyKey[] = "ijz_test_early_key_000000000000000";
constexpr char kLateKey[] = "ijz_test_late_key_0000000000000000";
constexpr char kStrictKey[] = "ijz_test_strict_key_00000000000000";

// A citizen the mobile operators' records bind to a number, with no record in the identity
// registry.
constexpr char kUnregisteredCnic[] = "1111122222223";
constexpr char kUnregisteredPhone[] = "+923009998887";

// Debian's interpreter, with python3-yaml and python3-jsonschema (scripts/install-deps.sh).
constexpr char kPython[] = "/usr/bin/python3";

// A path the document does not have: the exchange is checked against x-ijazat-unknown-paths.
const std::string kUnknownPath;

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return HexEncode(ByteView(digest, sizeof digest));
}

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string SpecPath() { return std::string(IJAZAT_SOURCE_DIR) + "/docs/openapi.yaml"; }

// Runs the validator on `spec` and, when given, a file of exchanges.
ijazat::testing::CommandResult RunValidator(const std::string& spec,
                                            const std::string& exchanges = "",
                                            bool require_all_operations = false) {
  std::string command =
      std::string(kPython) + " " +
      ShellQuote(std::string(IJAZAT_SOURCE_DIR) + "/tests/tools/openapi_contract.py") + " " +
      ShellQuote(spec);
  if (!exchanges.empty()) command += " " + ShellQuote(exchanges);
  if (require_all_operations) command += " --require-all-operations";
  return ijazat::testing::RunCommand(command);
}

json ConsentBody(const std::string& cnic = kCnic) {
  return {{"cnic", cnic}, {"purpose", "account-opening"}, {"scopes", {"name", "date_of_birth"}}};
}

// The three base64url parts of a compact JWS.
std::vector<std::string> JwsParts(const std::string& token) {
  std::vector<std::string> parts;
  std::stringstream in(token);
  std::string part;
  while (std::getline(in, part, '.')) parts.push_back(part);
  return parts;
}

// The token with its header replaced by `edit(header)`, payload and signature kept.
template <typename Edit>
std::string WithHeader(const std::string& token, Edit edit) {
  const std::vector<std::string> parts = JwsParts(token);
  if (parts.size() != 3) return token;
  const std::optional<Bytes> raw = Base64UrlDecode(parts[0]);
  if (!raw) return token;
  json header = json::parse(std::string(raw->begin(), raw->end()), nullptr, false);
  if (!header.is_object()) return token;
  edit(header);
  return Base64UrlEncode(AsBytes(header.dump())) + "." + parts[1] + "." + parts[2];
}

class OpenApiContractTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    if (HasFatalFailure()) return;
    StopAppliance();
    EnableDeliveryReports();
    MakeRoomForReplies();
    WritePolicy(ContractPolicy());
    StartAppliance();
  }

  // The fixture's providers (a bank, a telco that may learn enrolment, a suspended one) and
  // this suite's, with room for every code and notice it sends one citizen within an hour.
  static std::string ContractPolicy() {
    auto provider = [](const std::string& id, const std::string& name, const std::string& status,
                       const std::string& key, const std::string& purpose,
                       const std::string& scopes, const std::string& extra) {
      return "  - id: " + id + "\n    display_name: " + name + "\n    status: " + status +
             "\n    credentials:\n      - {type: api_key, sha256: " + Sha256Hex(key) +
             "}\n    purposes:\n      - id: " + purpose + "\n        sms_text: " + purpose +
             "\n        scopes: [" + scopes + "]\n" + extra;
    };
    const std::string roomy = "    rate_limit: {requests_per_minute: 6000, burst: 1000}\n";
    return std::string(
               "version: contract-1\n"
               "defaults:\n"
               "  otp: {digits: 6, ttl: 5m, max_attempts: 3}\n"
               "  token: {ttl: 15m, max_uses: 2}\n"
               "  limits:\n"
               "    failures_per_cnic_per_day: 10\n"
               "    sms_per_cnic_per_hour: 20\n"
               "    number_change_cooling_off: 24h\n"
               "providers:\n") +
           provider("test-bank", "Test Bank", "active", kBankKey, "account-opening",
                    "name, father_name, date_of_birth", roomy) +
           provider("test-telco", "Test Telco", "active", kTelcoKey, "sim-issuance",
                    "name, cnic_status", roomy + "    reveal_enrolment_status: true\n") +
           provider("test-suspended", "Suspended Co", "suspended", kSuspendedKey, "anything",
                    "name", "") +
           provider("test-slow", "Slow Co", "active", kSlowKey, "account-opening",
                    "name, date_of_birth", "    rate_limit: {requests_per_minute: 1, burst: 1}\n") +
           provider("test-early", "Early Co", "active", kEarlyKey, "account-opening",
                    "name, date_of_birth", "    valid_from: 2027-01-01T00:00:00Z\n") +
           provider("test-late", "Late Co", "active", kLateKey, "account-opening",
                    "name, date_of_birth", "    valid_until: 2025-06-01T00:00:00Z\n") +
           provider("test-strict", "Strict Co", "active", kStrictKey, "account-opening",
                    "name, date_of_birth",
                    "    overrides: {limits: {failures_per_cnic_per_day: 1}}\n");
  }

  // One request through the fixture's HTTPS client, recorded against `path_template`.
  HttpResult Call(const std::string& note, const std::string& method,
                  const std::string& path_template, const std::string& target,
                  const std::string& body, const std::string& api_key,
                  const std::string& content_type = "application/json",
                  const std::map<std::string, std::string>& headers = {}) {
    HttpResult result = Request(method, target, body, api_key, content_type, headers);
    Record(note, method, path_template, target, result);
    return result;
  }
  HttpResult CallJson(const std::string& note, const std::string& method,
                      const std::string& path_template, const std::string& target, const json& body,
                      const std::string& api_key = kBankKey) {
    return Call(note, method, path_template, target, body.dump(), api_key);
  }

  // Raw bytes on a fresh TLS connection, for what the fixture's client will not send
  // (malformed framing, oversized heads, other HTTP versions); recorded likewise.
  HttpResult Raw(const std::string& note, const std::string& method,
                 const std::string& path_template, const std::string& path,
                 const std::string& request) {
    HttpResult result;
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", config_.tls.certificate,
                               Poco::Net::Context::VERIFY_RELAXED, 9, false);
    std::string data;
    try {
      Poco::Net::SecureStreamSocket socket(
          Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(appliance_->port())),
          context);
      socket.setReceiveTimeout(Poco::Timespan(10, 0));
      std::size_t sent = 0;
      while (sent < request.size()) {
        const int n =
            socket.sendBytes(request.data() + sent, static_cast<int>(request.size() - sent));
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      char buffer[4096];
      while (true) {
        const int n = socket.receiveBytes(buffer, sizeof buffer);
        if (n <= 0) break;
        data.append(buffer, static_cast<std::size_t>(n));
        if (ParseRaw(data, &result)) break;
      }
    } catch (const Poco::Exception& e) {
      ADD_FAILURE() << note << ": " << e.displayText();
    }
    if (!ParseRaw(data, &result)) ADD_FAILURE() << note << ": no whole response: " << data;
    Record(note, method, path_template, path, result);
    return result;
  }

  // Parses a whole HTTP/1.1 response with a Content-Length; false while incomplete.
  static bool ParseRaw(const std::string& data, HttpResult* result) {
    const auto head_end = data.find("\r\n\r\n");
    if (data.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return false;
    HttpResult parsed;
    parsed.status = std::stoi(data.substr(9, 3));
    std::size_t at = data.find("\r\n") + 2;
    while (at < head_end) {
      const auto eol = data.find("\r\n", at);
      const std::string line = data.substr(at, eol - at);
      at = eol + 2;
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const auto value_start = line.find_first_not_of(' ', colon + 1);
      parsed.headers[name] = value_start == std::string::npos ? "" : line.substr(value_start);
    }
    const std::size_t length =
        parsed.headers.count("content-length") > 0
            ? static_cast<std::size_t>(std::stoul(parsed.headers["content-length"]))
            : 0;
    if (data.size() < head_end + 4 + length) return false;
    parsed.body = data.substr(head_end + 4, length);
    parsed.json = json::parse(parsed.body, nullptr, false);
    if (parsed.json.is_discarded()) parsed.json = nullptr;
    *result = std::move(parsed);
    return true;
  }

  void Record(const std::string& note, const std::string& method, const std::string& path_template,
              const std::string& target, const HttpResult& result) {
    last_note_ = note;
    json headers = json::object();
    for (const auto& [name, value] : result.headers) headers[name] = value;
    // The path only: the query of a gateway request carries its secret.
    exchanges_.push_back({{"note", note},
                          {"method", method},
                          {"path", target.substr(0, target.find('?'))},
                          {"template", path_template.empty() ? json(nullptr) : json(path_template)},
                          {"status", result.status},
                          {"content_type", result.header("content-type")},
                          {"headers", headers},
                          {"body", result.body}});
  }

  // The answer to the last recorded request: its status and, for a problem, its title.
  void Expect(const HttpResult& result, int status, const std::string& title = "") {
    EXPECT_EQ(result.status, status) << last_note_ << ": " << result.body;
    if (!title.empty()) {
      EXPECT_TRUE(result.json.is_object() && result.json.value("title", "") == title)
          << last_note_ << ": expected " << title << ", got " << result.body;
    }
  }

  // The SMS gateway posting a message to the short code, as JSON.
  HttpResult Sms(const std::string& note, const std::string& from, const std::string& text) {
    return Call(note, "POST", "/v1/sms/inbound", "/v1/sms/inbound",
                json{{"from", from}, {"to", kShortCode}, {"text", text}}.dump(), "",
                "application/json", {{"X-Ijazat-Gateway-Secret", kGatewaySecret}});
  }

  std::string AskConsent(const std::string& note, const std::string& api_key = kBankKey,
                         const std::string& cnic = kCnic) {
    const HttpResult created =
        CallJson(note, "POST", "/v1/consents", "/v1/consents", ConsentBody(cnic), api_key);
    Expect(created, 202);
    return created.json.is_object() ? created.json.value("consent_id", "") : "";
  }

  HttpResult Confirm(const std::string& note, const std::string& id, const std::string& otp,
                     const std::string& api_key = kBankKey) {
    return CallJson(note, "POST", "/v1/consents/{id}/confirm", "/v1/consents/" + id + "/confirm",
                    {{"otp", otp}}, api_key);
  }

  // Confirms `id` with the last code sent to `phone`; returns the grant.
  json GrantConsent(const std::string& note, const std::string& id,
                    const std::string& phone = kPhone) {
    const std::optional<std::string> code = LastCodeFor(phone);
    EXPECT_TRUE(code.has_value()) << note;
    const HttpResult granted = Confirm(note, id, code.value_or("000000"));
    Expect(granted, 200);
    return granted.json.is_object() ? granted.json : json::object();
  }

  HttpResult VerifyToken(const std::string& note, const std::string& token,
                         const std::string& api_key = kBankKey) {
    return CallJson(note, "POST", "/v1/verifications", "/v1/verifications",
                    {{"consent_token", token}}, api_key);
  }

  std::string Head(const std::string& request_line, const std::string& fields = "") {
    return request_line + "\r\nHost: 127.0.0.1\r\n" + fields + "\r\n";
  }

  void TransportAndRouting();
  void SmsGateway();
  void RequestingConsent();
  void ConfirmingConsent();
  void VerifyingAndRevoking();
  void RateLimits();
  void RegistryDown();
  void DependenciesDown();

  // Every recorded answer carries the headers docs/openapi.yaml says every response carries:
  // the front end's own (the framing errors) as much as the handlers'.
  void ExpectTheSameHeadersOnEveryResponse() {
    for (const json& exchange : exchanges_) {
      const std::string note = exchange.value("note", "");
      const json& headers = exchange["headers"];
      auto header = [&](const char* name) { return headers.value(name, std::string()); };
      const bool jwks = exchange["template"].is_string() &&
                        exchange["template"].get<std::string>() == "/.well-known/jwks.json" &&
                        exchange.value("status", 0) == 200;
      EXPECT_EQ(header("cache-control"), jwks ? "public, max-age=300" : "no-store") << note;
      EXPECT_EQ(header("strict-transport-security"), "max-age=63072000") << note;
      EXPECT_EQ(header("x-content-type-options"), "nosniff") << note;
      EXPECT_EQ(header("x-frame-options"), "DENY") << note;
      EXPECT_EQ(header("content-security-policy"), "default-src 'none'; frame-ancestors 'none'")
          << note;
      EXPECT_EQ(header("referrer-policy"), "no-referrer") << note;
      const std::string id = header("x-request-id");
      EXPECT_FALSE(id.empty()) << note;
      const json body = json::parse(exchange.value("body", ""), nullptr, false);
      if (body.is_object() && body.contains("instance")) {
        EXPECT_EQ(body.value("instance", ""), "urn:ijazat:request:" + id) << note;
      }
    }
  }

  json exchanges_ = json::array();
  std::string last_note_;
};

void OpenApiContractTest::TransportAndRouting() {
  const HttpResult alive = Call("alive", "GET", "/healthz", "/healthz", "", "");
  Expect(alive, 200);
  const HttpResult ready = Call("ready", "GET", "/readyz", "/readyz", "", "");
  Expect(ready, 200);
  const HttpResult keys =
      Call("published keys", "GET", "/.well-known/jwks.json", "/.well-known/jwks.json", "", "");
  Expect(keys, 200);
  const HttpResult metrics = Call("metrics to loopback", "GET", "/metrics", "/metrics", "", "");
  Expect(metrics, 200);

  // HEAD answers as GET, without the body; any other method is refused, naming GET and HEAD.
  const std::map<std::string, const HttpResult*> paths = {{"/healthz", &alive},
                                                          {"/readyz", &ready},
                                                          {"/.well-known/jwks.json", &keys},
                                                          {"/metrics", &metrics}};
  for (const auto& [path, got] : paths) {
    const HttpResult head = Call("HEAD " + path, "HEAD", path, path, "", "");
    Expect(head, 200);
    EXPECT_TRUE(head.body.empty()) << path << ": " << head.body;
    for (const char* name : {"content-type", "cache-control", "strict-transport-security"}) {
      EXPECT_EQ(head.header(name), got->header(name)) << "HEAD " << path << ": " << name;
    }
    if (path != "/metrics") {  // the metrics change between two requests
      EXPECT_EQ(head.header("content-length"), got->header("content-length")) << "HEAD " << path;
    }
  }
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"POST", "/healthz"},
      {"DELETE", "/readyz"},
      {"PUT", "/metrics"},
      {"POST", "/.well-known/jwks.json"},
      {"OPTIONS", "/healthz"}};
  for (const auto& [method, path] : refused) {
    const HttpResult answer = Call(method + " " + path, method, path, path, "", "");
    Expect(answer, 405, "method_not_allowed");
    EXPECT_EQ(answer.header("allow"), "GET, HEAD") << method << " " << path;
  }

  // The front end's answers, before routing.
  Expect(Raw("header line without a colon", "GET", "/healthz", "/healthz",
             Head("GET /healthz HTTP/1.1", "NoColonHere\r\n")),
         400, "malformed_request");
  Expect(Raw("declared body over 16 KiB", "POST", "/v1/consents", "/v1/consents",
             Head("POST /v1/consents HTTP/1.1",
                  "Authorization: Bearer " + std::string(kBankKey) +
                      "\r\nContent-Type: application/json\r\nContent-Length: 20000\r\n")),
         413, "body_too_large");
  Expect(Raw("request line over 8 KiB", "GET", "/healthz", "/healthz",
             Head("GET /healthz?pad=" + std::string(9000, 'a') + " HTTP/1.1")),
         414, "uri_too_long");
  Expect(Raw("an Expect other than 100-continue", "GET", "/.well-known/jwks.json",
             "/.well-known/jwks.json",
             Head("GET /.well-known/jwks.json HTTP/1.1", "Expect: 200-ok\r\n")),
         417, "expectation_failed");
  std::string many_fields;
  for (int i = 0; i < 101; ++i) many_fields += "X-Pad-" + std::to_string(i) + ": 1\r\n";
  Expect(Raw("101 header fields", "GET", "/readyz", "/readyz",
             Head("GET /readyz HTTP/1.1", many_fields)),
         431, "headers_too_large");
  Expect(Raw("gzip transfer coding", "POST", "/v1/verifications", "/v1/verifications",
             Head("POST /v1/verifications HTTP/1.1",
                  "Authorization: Bearer " + std::string(kBankKey) +
                      "\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n")),
         501, "unsupported_transfer_coding");
  Expect(Raw("HTTP/1.2", "GET", "/metrics", "/metrics", Head("GET /metrics HTTP/1.2")), 505,
         "http_version_not_supported");

  // Paths the document does not have.
  Expect(Call("no such path", "GET", kUnknownPath, "/nothing", "", ""), 404, "not_found");
  Expect(Call("no such v1 path", "GET", kUnknownPath, "/v1/nothing", "", kBankKey), 404,
         "not_found");
  Expect(Call("no such consent action", "POST", kUnknownPath, "/v1/consents/abc/extend", "{}",
              kBankKey),
         404, "not_found");
  Expect(
      Call("no such verification path", "GET", kUnknownPath, "/v1/verifications/abc", "", kBankKey),
      404, "not_found");

  // Methods a path does not take: credentials and the rate limit come first on provider paths.
  Expect(Call("DELETE consents, no credentials", "DELETE", "/v1/consents", "/v1/consents", "", ""),
         401, "unauthenticated");
  struct Refused {
    const char* note;
    const char* method;
    const char* path_template;
    const char* target;
    const char* api_key;
    const char* allow;
  };
  for (const Refused& r : std::vector<Refused>{
           {"DELETE consents", "DELETE", "/v1/consents", "/v1/consents", kBankKey, "POST"},
           {"PUT a consent", "PUT", "/v1/consents/{id}", "/v1/consents/abc", kBankKey, "GET"},
           {"GET confirm", "GET", "/v1/consents/{id}/confirm", "/v1/consents/abc/confirm", kBankKey,
            "POST"},
           {"GET revoke", "GET", "/v1/consents/{id}/revoke", "/v1/consents/abc/revoke", kBankKey,
            "POST"},
           {"GET verifications", "GET", "/v1/verifications", "/v1/verifications", kBankKey, "POST"},
           {"PUT inbound SMS", "PUT", "/v1/sms/inbound", "/v1/sms/inbound", "", "GET, POST"},
           {"POST delivery report", "POST", "/v1/sms/dlr", "/v1/sms/dlr", "", "GET"}}) {
    const std::string method = r.method;
    const HttpResult answer = Call(r.note, method, r.path_template, r.target,
                                   method == "PUT" || method == "POST" ? "{}" : "", r.api_key);
    Expect(answer, 405, "method_not_allowed");
    EXPECT_EQ(answer.header("allow"), r.allow) << r.note;
  }
}

void OpenApiContractTest::SmsGateway() {
  const std::string message = json{{"from", kPhone}, {"to", kShortCode}, {"text", "HELP"}}.dump();
  const std::map<std::string, std::string> secret = {{"X-Ijazat-Gateway-Secret", kGatewaySecret}};
  Expect(Call("inbound SMS without the secret", "POST", "/v1/sms/inbound", "/v1/sms/inbound",
              message, ""),
         401, "unauthenticated");
  Expect(Call("inbound SMS with a wrong secret", "POST", "/v1/sms/inbound", "/v1/sms/inbound",
              message, "", "application/json", {{"X-Ijazat-Gateway-Secret", "wrong"}}),
         401, "unauthenticated");
  Expect(Call("get-url with a wrong secret", "GET", "/v1/sms/inbound",
              "/v1/sms/inbound?secret=wrong&from=%2B923001234567&to=8009&text=HELP", "", ""),
         401, "unauthenticated");
  Expect(Call("inbound SMS as XML", "POST", "/v1/sms/inbound", "/v1/sms/inbound", "<sms/>", "",
              "application/xml", secret),
         415, "unsupported_media_type");
  Expect(Call("inbound SMS, broken JSON", "POST", "/v1/sms/inbound", "/v1/sms/inbound", "{\"from\"",
              "", "application/json", secret),
         400, "invalid_json");
  Expect(Call("inbound SMS, a JSON array", "POST", "/v1/sms/inbound", "/v1/sms/inbound", "[1]", "",
              "application/json", secret),
         400, "not_an_object");
  Expect(Call("inbound SMS, JSON 40 levels deep", "POST", "/v1/sms/inbound", "/v1/sms/inbound",
              std::string(40, '[') + std::string(40, ']'), "", "application/json", secret),
         400, "json_too_deep");
  Expect(Call("inbound SMS without text", "POST", "/v1/sms/inbound", "/v1/sms/inbound",
              json{{"from", kPhone}, {"to", kShortCode}}.dump(), "", "application/json", secret),
         400, "invalid_request");
  Expect(Sms("inbound SMS from a landline", "+924235555555", "HELP"), 400, "invalid_msisdn");
  Expect(Call("inbound SMS to another number", "POST", "/v1/sms/inbound", "/v1/sms/inbound",
              json{{"from", kPhone}, {"to", "9999"}, {"text", "HELP"}}.dump(), "",
              "application/json", secret),
         400, "wrong_short_code");
  Expect(Sms("inbound SMS over 640 characters", kPhone, std::string(641, 'a')), 400,
         "sms_too_long");
  Expect(Call("get-url without text", "GET", "/v1/sms/inbound",
              "/v1/sms/inbound?secret=" + std::string(kGatewaySecret) +
                  "&from=%2B923001234567&to=8009",
              "", ""),
         400, "invalid_request");

  Expect(Sms("enrolment", kPhone, "35202-1234567-1"), 200);
  Expect(Call("HELP as form fields", "POST", "/v1/sms/inbound", "/v1/sms/inbound",
              "from=%2B923001234567&to=8009&text=HELP", "", "application/x-www-form-urlencoded",
              secret),
         200);
  Expect(Call("HISTORY as Kannel's post-url", "POST", "/v1/sms/inbound",
              "/v1/sms/inbound?secret=" + std::string(kGatewaySecret), "HISTORY", "", "text/plain",
              {{"X-Kannel-From", kPhone}, {"X-Kannel-To", kShortCode}}),
         200);
  Expect(Call("HELP as Kannel's get-url", "GET", "/v1/sms/inbound",
              "/v1/sms/inbound?secret=" + std::string(kGatewaySecret) +
                  "&from=%2B923001234567&to=8009&text=HELP",
              "", ""),
         200);
  SentMessages();  // the enrolment reply is outbox message 1

  auto dlr = [&](const std::string& note, const std::string& query) {
    return Call(note, "GET", "/v1/sms/dlr", "/v1/sms/dlr?" + query, "", "");
  };
  const std::string token = DeliveryReportToken(kDlrSecret, 1);
  Expect(dlr("report for a non-numeric id", "id=abc&status=1&token=" + token), 400,
         "invalid_request");
  Expect(dlr("report without a token", "id=1&status=1"), 401, "unauthenticated");
  Expect(dlr("report with another message's token",
             "id=1&status=1&token=" + DeliveryReportToken(kDlrSecret, 2)),
         401, "unauthenticated");
  Expect(dlr("report with an unknown DLR type", "id=1&status=3&token=" + token), 400,
         "invalid_request");
  Expect(dlr("intermediate report", "id=1&status=8&token=" + token), 200);
  Expect(dlr("delivered", "id=1&status=1&token=" + token), 200);
  Expect(dlr("report for an unknown message",
             "id=999999&status=1&token=" + DeliveryReportToken(kDlrSecret, 999999)),
         404, "not_found");
}

void OpenApiContractTest::RequestingConsent() {
  const std::string body = ConsentBody().dump();
  auto ask = [&](const std::string& note, const std::string& text, const std::string& key,
                 const std::string& type = "application/json") {
    return Call(note, "POST", "/v1/consents", "/v1/consents", text, key, type);
  };
  Expect(ask("no credentials", body, ""), 401, "unauthenticated");
  Expect(ask("unknown API key", body, kUnknownKey), 401, "unauthenticated");
  Expect(Call("Basic credentials", "POST", "/v1/consents", "/v1/consents", body, "",
              "application/json", {{"Authorization", "Basic dGVzdDp0ZXN0"}}),
         401, "unauthenticated");
  Expect(ask("suspended provider", body, kSuspendedKey), 403, "provider_suspended");
  Expect(ask("provider not valid yet", body, kEarlyKey), 403, "provider_not_yet_valid");
  Expect(ask("provider no longer valid", body, kLateKey), 403, "provider_expired");
  Expect(ask("body as text/plain", body, kBankKey, "text/plain"), 415, "unsupported_media_type");
  Expect(ask("broken JSON", "{\"cnic\":", kBankKey), 400, "invalid_json");
  Expect(ask("a JSON string", "\"hello\"", kBankKey), 400, "not_an_object");
  Expect(ask("JSON 40 levels deep", std::string(40, '[') + std::string(40, ']'), kBankKey), 400,
         "json_too_deep");
  json unknown_field = ConsentBody();
  unknown_field["callback"] = "https://example.test";
  Expect(ask("an unknown field", unknown_field.dump(), kBankKey), 400, "invalid_request");
  json no_scopes = ConsentBody();
  no_scopes.erase("scopes");
  Expect(ask("no scopes", no_scopes.dump(), kBankKey), 400, "invalid_request");
  Expect(ask("a CNIC of 12 digits", ConsentBody("352021234567").dump(), kBankKey), 400,
         "invalid_cnic");
  json purpose = ConsentBody();
  purpose["purpose"] = "loan";
  Expect(ask("a purpose the policy does not have", purpose.dump(), kBankKey), 403,
         "unknown_purpose");
  json scope = ConsentBody();
  scope["scopes"] = {"name", "shoe_size"};
  Expect(ask("a scope outside the catalogue", scope.dump(), kBankKey), 403, "unknown_scope");
  scope["scopes"] = {"name", "address"};
  Expect(ask("a scope the purpose does not allow", scope.dump(), kBankKey), 403,
         "scope_not_allowed");

  const std::string id = AskConsent("consent requested");
  const HttpResult telco =
      CallJson("consent requested by a provider that may learn enrolment", "POST", "/v1/consents",
               "/v1/consents",
               {{"cnic", kCnic}, {"purpose", "sim-issuance"}, {"scopes", {"name", "cnic_status"}}},
               kTelcoKey);
  Expect(telco, 202);
  EXPECT_EQ(telco.json.value("enrolled", false), true) << telco.body;

  auto get = [&](const std::string& note, const std::string& consent, const std::string& key) {
    return Call(note, "GET", "/v1/consents/{id}", "/v1/consents/" + consent, "", key);
  };
  const HttpResult pending = get("a pending consent", id, kBankKey);
  Expect(pending, 200);
  EXPECT_EQ(pending.json.value("state", ""), "pending");
  Expect(get("a consent, no credentials", id, ""), 401, "unauthenticated");
  Expect(get("a consent, suspended provider", id, kSuspendedKey), 403, "provider_suspended");
  Expect(get("another provider's consent", id, kTelcoKey), 404, "consent_not_found");
  Expect(get("an unknown consent", "qT3k0rUu8fJ0b9sYtq3H1g", kBankKey), 404, "consent_not_found");
  Expect(get("an id that cannot be a consent's", "bad.id", kBankKey), 404, "consent_not_found");
}

void OpenApiContractTest::ConfirmingConsent() {
  const std::string id = AskConsent("consent to confirm");
  const std::optional<std::string> code = LastCodeFor(kPhone);
  ASSERT_TRUE(code.has_value());
  const std::string confirm = "/v1/consents/" + id + "/confirm";
  auto post = [&](const std::string& note, const std::string& text, const std::string& key,
                  const std::string& type = "application/json") {
    return Call(note, "POST", "/v1/consents/{id}/confirm", confirm, text, key, type);
  };
  const std::string body = json{{"otp", *code}}.dump();
  Expect(post("confirm, no credentials", body, ""), 401, "unauthenticated");
  Expect(post("confirm, suspended provider", body, kSuspendedKey), 403, "provider_suspended");
  Expect(post("confirm as a form", "otp=" + *code, kBankKey, "application/x-www-form-urlencoded"),
         415, "unsupported_media_type");
  Expect(post("confirm, broken JSON", "{", kBankKey), 400, "invalid_json");
  Expect(post("confirm, an unknown field", json{{"otp", *code}, {"pin", "1"}}.dump(), kBankKey),
         400, "invalid_request");
  Expect(post("confirm, otp as a number", R"({"otp":123456})", kBankKey), 400, "invalid_request");
  Expect(Confirm("confirm with 5 digits", id, "12345"), 400, "invalid_otp_format");
  Expect(Confirm("confirm an unknown consent", "qT3k0rUu8fJ0b9sYtq3H1g", *code), 404,
         "consent_not_found");

  const std::string wrong = *code == "000000" ? "111111" : "000000";
  const HttpResult first = Confirm("wrong code", id, wrong);
  Expect(first, 403, "otp_incorrect");
  EXPECT_EQ(first.json.value("attempts_remaining", -1), 2) << first.body;
  Expect(Confirm("wrong code again", id, wrong), 403, "otp_incorrect");
  const HttpResult last = Confirm("the last wrong code", id, wrong);
  Expect(last, 409, "consent_failed");
  EXPECT_EQ(last.json.value("state", ""), "failed") << last.body;
  Expect(Confirm("confirm a failed consent", id, *code), 409, "consent_failed");

  const std::string granted_id = AskConsent("consent to grant");
  GrantConsent("right code", granted_id);
  Expect(Confirm("confirm a granted consent", granted_id, "123456"), 409, "consent_not_pending");

  const std::string late = AskConsent("consent whose code will expire");
  const std::optional<std::string> late_code = LastCodeFor(kPhone);
  clock_.Advance(5 * 60 + 1);
  Expect(Confirm("confirm after the code expired", late, late_code.value_or("000000")), 410,
         "consent_expired");
  const HttpResult expired =
      Call("an expired consent", "GET", "/v1/consents/{id}", "/v1/consents/" + late, "", kBankKey);
  Expect(expired, 200);
  EXPECT_EQ(expired.json.value("state", ""), "expired");

  // One wrong code a day is all this provider's policy allows per CNIC. Retry-After is when
  // that wrong code leaves the provider's 24-hour window: the provider's own, never another's.
  const std::string strict = AskConsent("consent by a strict provider", kStrictKey);
  const std::optional<std::string> strict_code = LastCodeFor(kPhone);
  const std::string strict_wrong = strict_code.value_or("") == "000000" ? "111111" : "000000";
  Expect(Confirm("strict provider, wrong code", strict, strict_wrong, kStrictKey), 403,
         "otp_incorrect");
  const HttpResult locked = Confirm("strict provider, past the CNIC's limit", strict,
                                    strict_code.value_or("000000"), kStrictKey);
  Expect(locked, 429, "cnic_locked_out");
  EXPECT_EQ(locked.header("retry-after"), "86400") << "the wrong code was a moment ago";
  clock_.Advance(60);
  // A later wrong code from another provider for the same citizen changes nothing for this one.
  const std::string other = AskConsent("a consent by another provider, a minute later");
  const std::optional<std::string> other_code = LastCodeFor(kPhone);
  Expect(Confirm("another provider's wrong code", other,
                 other_code.value_or("") == "000000" ? "111111" : "000000"),
         403, "otp_incorrect");
  clock_.Advance(60);
  const HttpResult still = Confirm("strict provider, two minutes after its wrong code", strict,
                                   strict_code.value_or("000000"), kStrictKey);
  Expect(still, 429, "cnic_locked_out");
  EXPECT_EQ(still.header("retry-after"), std::to_string(86400 - 120));
}

void OpenApiContractTest::VerifyingAndRevoking() {
  clock_.Advance(3600);  // a new hour for the citizen's SMS cap
  const std::string id = AskConsent("consent to verify with");
  const json grant = GrantConsent("granted for verification", id);
  const std::string token = grant.value("consent_token", "");
  const std::string receipt = grant.value("receipt", "");
  ASSERT_FALSE(token.empty());

  auto post = [&](const std::string& note, const std::string& text, const std::string& key,
                  const std::string& type = "application/json") {
    return Call(note, "POST", "/v1/verifications", "/v1/verifications", text, key, type);
  };
  const std::string body = json{{"consent_token", token}}.dump();
  const HttpResult no_credentials = post("verify, no credentials", body, "");
  Expect(no_credentials, 401, "unauthenticated");
  EXPECT_EQ(no_credentials.header("www-authenticate"), "Bearer realm=\"ijazat\"")
      << "the provider's own credentials: challenged";
  const HttpResult unknown_key = post("verify, an unknown API key", body, kUnknownKey);
  Expect(unknown_key, 401, "unauthenticated");
  EXPECT_EQ(unknown_key.header("www-authenticate"), "Bearer realm=\"ijazat\"");
  Expect(post("verify, suspended provider", body, kSuspendedKey), 403, "provider_suspended");
  Expect(post("verify as text/plain", body, kBankKey, "text/plain"), 415, "unsupported_media_type");
  Expect(post("verify, broken JSON", "{\"consent_token\"", kBankKey), 400, "invalid_json");
  Expect(
      post("verify, an unknown field", json{{"consent_token", token}, {"x", 1}}.dump(), kBankKey),
      400, "invalid_request");
  Expect(VerifyToken("a token that is not a JWS", "not-a-token"), 400, "malformed");
  std::string tampered = token;
  const std::size_t signature = tampered.rfind('.') + 1;
  tampered[signature] = tampered[signature] == 'A' ? 'B' : 'A';
  // A refused token is 401 with its reason, but the provider's credentials were fine: no
  // challenge, which would tell it to change them.
  auto refused = [&](const std::string& note, const std::string& presented,
                     const std::string& reason, const std::string& key = kBankKey) {
    const HttpResult answer = VerifyToken(note, presented, key);
    Expect(answer, 401, reason);
    EXPECT_TRUE(answer.header("www-authenticate").empty())
        << note << ": " << answer.header("www-authenticate");
  };
  refused("a token whose signature does not verify", tampered, "bad_signature");
  refused("a receipt for a token", receipt, "wrong_typ");
  refused("a token with an unknown kid",
          WithHeader(token, [](json& header) { header["kid"] = "unknown-kid"; }), "unknown_kid");
  refused("a token with alg HS256",
          WithHeader(token, [](json& header) { header["alg"] = "HS256"; }), "alg_not_allowed");
  refused("a token naming its own key",
          WithHeader(token, [](json& header) { header["jku"] = "https://x.test"; }),
          "forbidden_header");
  refused("another provider's token", token, "wrong_audience", kTelcoKey);
  const HttpResult verified = VerifyToken("verified", token);
  Expect(verified, 200);
  EXPECT_EQ(verified.json.value("uses_remaining", -1), 1) << verified.body;
  Expect(VerifyToken("verified again, the last use", token), 200);
  Expect(VerifyToken("a token whose uses are spent", token), 409, "consent_used");

  // Revocation.
  const std::string revocable = AskConsent("consent to revoke");
  const std::string revocable_token =
      GrantConsent("granted for revocation", revocable).value("consent_token", "");
  auto revoke = [&](const std::string& note, const std::string& consent, const std::string& key) {
    return Call(note, "POST", "/v1/consents/{id}/revoke", "/v1/consents/" + consent + "/revoke", "",
                key);
  };
  Expect(revoke("revoke, no credentials", revocable, ""), 401, "unauthenticated");
  Expect(revoke("revoke, suspended provider", revocable, kSuspendedKey), 403, "provider_suspended");
  Expect(revoke("revoke an unknown consent", "qT3k0rUu8fJ0b9sYtq3H1g", kBankKey), 404,
         "consent_not_found");
  Expect(revoke("revoked", revocable, kBankKey), 200);
  Expect(revoke("revoke again", revocable, kBankKey), 409, "consent_not_revocable");
  Expect(VerifyToken("a revoked consent's token", revocable_token), 409, "consent_revoked");
  const std::string pending = AskConsent("a pending consent");
  Expect(revoke("revoke a pending consent", pending, kBankKey), 409, "consent_not_revocable");

  // The citizen's LOCK stops a grant and a verification; UNLOCK allows them again.
  const std::string held = AskConsent("consent granted before a LOCK");
  const std::string held_token =
      GrantConsent("granted before a LOCK", held).value("consent_token", "");
  const std::string waiting = AskConsent("consent asked before a LOCK");
  const std::optional<std::string> waiting_code = LastCodeFor(kPhone);
  Expect(Sms("LOCK", kPhone, "LOCK"), 200);
  Expect(Confirm("the right code while locked", waiting, waiting_code.value_or("000000")), 403,
         "citizen_unavailable");
  Expect(VerifyToken("a token while locked", held_token), 403, "citizen_unavailable");
  Expect(Sms("UNLOCK", kPhone, "UNLOCK"), 200);
  const HttpResult got =
      Call("a granted consent", "GET", "/v1/consents/{id}", "/v1/consents/" + held, "", kBankKey);
  Expect(got, 200);
  EXPECT_EQ(got.json.value("state", ""), "granted");
  clock_.Advance(15 * 60 + 1);
  refused("an expired token", held_token, "expired");

  // A citizen the operators bind to a number but the identity registry does not know.
  ImportSubscribers(std::string("cnic,msisdn\n") + kUnregisteredCnic + "," + kUnregisteredPhone +
                    "\n");
  Expect(Sms("enrolment of a citizen without a registry record", kUnregisteredPhone,
             kUnregisteredCnic),
         200);
  SentMessages();
  const std::string unregistered =
      AskConsent("consent of a citizen without a registry record", kBankKey, kUnregisteredCnic);
  const std::string unregistered_token =
      GrantConsent("granted without a registry record", unregistered, kUnregisteredPhone)
          .value("consent_token", "");
  Expect(VerifyToken("verify a citizen without a registry record", unregistered_token), 404,
         "identity_not_found");
}

void OpenApiContractTest::RateLimits() {
  // One request a minute for this provider: the first passes the limit, the rest are refused
  // (well within the minute), whatever they ask.
  Expect(Call("slow provider, first request", "GET", "/v1/consents/{id}",
              "/v1/consents/qT3k0rUu8fJ0b9sYtq3H1g", "", kSlowKey),
         404, "consent_not_found");
  const HttpResult limited = Call("slow provider, GET", "GET", "/v1/consents/{id}",
                                  "/v1/consents/qT3k0rUu8fJ0b9sYtq3H1g", "", kSlowKey);
  Expect(limited, 429, "rate_limited");
  EXPECT_FALSE(limited.header("retry-after").empty());
  Expect(CallJson("slow provider, request", "POST", "/v1/consents", "/v1/consents", ConsentBody(),
                  kSlowKey),
         429, "rate_limited");
  Expect(Confirm("slow provider, confirm", "qT3k0rUu8fJ0b9sYtq3H1g", "123456", kSlowKey), 429,
         "rate_limited");
  Expect(Call("slow provider, revoke", "POST", "/v1/consents/{id}/revoke",
              "/v1/consents/qT3k0rUu8fJ0b9sYtq3H1g/revoke", "", kSlowKey),
         429, "rate_limited");
  Expect(VerifyToken("slow provider, verify", "not-a-token", kSlowKey), 429, "rate_limited");
}

void OpenApiContractTest::RegistryDown() {
  // The identity registry held locked, as by an import that never commits: a verification
  // needs it, and fails once the registry's busy timeout runs out, naming the registry.
  clock_.Advance(24 * 3600);  // a new day for the citizen's SMS caps
  const std::string id = AskConsent("consent to verify while the registry is down");
  const std::string token =
      GrantConsent("granted before the registry goes down", id).value("consent_token", "");
  ASSERT_FALSE(token.empty());
  {
    DatabaseLock lock(config_.registry_path);
    ASSERT_TRUE(lock.held());
    const HttpResult down = VerifyToken("verify while the registry is locked", token);
    Expect(down, 503, "registry_unavailable");
    EXPECT_EQ(down.header("retry-after"), "5");
  }
  const HttpResult up = VerifyToken("verify once the registry is back", token);
  Expect(up, 200);
  EXPECT_EQ(up.json.value("uses_remaining", -1), 1) << "the failed verification counted no use";
}

void OpenApiContractTest::DependenciesDown() {
  // Last: the HSM layer's reconnection after a fault runs on real time.
  faults_->FailCall("C_Sign", hsm::rv::kDeviceError, 1, /*count=*/0);
  const HttpResult down = CallJson("request while the HSM fails", "POST", "/v1/consents",
                                   "/v1/consents", ConsentBody(), kBankKey);
  Expect(down, 503, "hsm_unavailable");
  Expect(Sms("inbound SMS while the HSM fails", kPhone, "HISTORY"), 503, "hsm_unavailable");
  faults_->FailCall("C_GetSessionInfo", hsm::rv::kDeviceError, 1, 0);
  faults_->FailCall("C_Login", hsm::rv::kDeviceError, 1, 0);
  const HttpResult not_ready = Call("not ready", "GET", "/readyz", "/readyz", "", "");
  Expect(not_ready, 503);
  EXPECT_EQ(not_ready.json.value("ready", true), false) << not_ready.body;
  Expect(Call("metrics while the HSM fails", "GET", "/metrics", "/metrics", "", ""), 200);
  faults_->Clear();
}

TEST_F(OpenApiContractTest, EveryOperationAnswersAsTheDocumentSays) {
  TransportAndRouting();
  SmsGateway();
  RequestingConsent();
  RateLimits();
  ConfirmingConsent();
  VerifyingAndRevoking();
  RegistryDown();
  DependenciesDown();
  ExpectTheSameHeadersOnEveryResponse();

  const std::string file = (dir_ / "exchanges.json").string();
  std::ofstream(file) << json{{"exchanges", exchanges_}}.dump(1);
  const auto checked = RunValidator(SpecPath(), file, /*require_all_operations=*/true);
  std::cout << checked.output;
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
}

// --- The validator itself: a contract test that cannot fail would be a defect. ----------------

class OpenApiValidatorTest : public ::testing::Test {
 protected:
  // Runs the validator on the document (or `spec`) and one exchange.
  ijazat::testing::CommandResult Check(const json& exchange, bool require_all = false,
                                       const std::string& spec = SpecPath()) {
    const auto file = dir_.WriteFile("exchanges-" + std::to_string(++files_) + ".json",
                                     json{{"exchanges", {exchange}}}.dump());
    return RunValidator(spec, file.string(), require_all);
  }
  // The document with `from` replaced by `to` (which must be there), as a file.
  std::string Edited(const std::string& from, const std::string& to) {
    std::string spec = ijazat::testing::ReadFileOrDie(SpecPath());
    const auto at = spec.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) spec.replace(at, from.size(), to);
    return dir_.WriteFile("openapi-" + std::to_string(++files_) + ".yaml", spec).string();
  }
  // Runs the validator on the document with `from` replaced by `to`.
  ijazat::testing::CommandResult CheckEdited(const std::string& from, const std::string& to) {
    return RunValidator(Edited(from, to));
  }

  static json Healthz(int status, const std::string& content_type, const std::string& body) {
    return {{"note", "crafted"},         {"method", "GET"},  {"path", "/healthz"},
            {"template", "/healthz"},    {"status", status}, {"content_type", content_type},
            {"headers", json::object()}, {"body", body}};
  }

  ijazat::testing::TempDir dir_;
  int files_ = 0;
};

TEST_F(OpenApiValidatorTest, PassesAnExchangeTheDocumentDescribes) {
  const auto checked = Check(Healthz(200, "application/json", R"({"status":"ok"})"));
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
}

TEST_F(OpenApiValidatorTest, FailsAnUndocumentedStatus) {
  const auto checked = Check(Healthz(418, "application/problem+json", "{}"));
  EXPECT_EQ(checked.exit_code, 1) << checked.output;
  EXPECT_NE(checked.output.find("status 418 is not documented"), std::string::npos)
      << checked.output;
}

TEST_F(OpenApiValidatorTest, FailsABodyTheSchemaRefuses) {
  json exchange = Healthz(200, "application/json", "");
  exchange["method"] = "GET";
  exchange["path"] = "/v1/consents/qT3k0rUu8fJ0b9sYtq3H1g";
  exchange["template"] = "/v1/consents/{id}";
  exchange["body"] = R"({"consent_id":5,"state":"pending"})";
  const auto checked = Check(exchange);
  EXPECT_EQ(checked.exit_code, 1) << checked.output;
  EXPECT_NE(checked.output.find("body consent_id"), std::string::npos) << checked.output;
}

TEST_F(OpenApiValidatorTest, FailsAReasonNotListedForTheStatus) {
  json exchange = Healthz(403, "application/problem+json", "");
  exchange["method"] = "POST";
  exchange["path"] = exchange["template"] = "/v1/consents";
  exchange["body"] =
      R"({"type":"urn:ijazat:problem:otp_incorrect","title":"otp_incorrect","status":403,)"
      R"("detail":"wrong code","instance":"urn:ijazat:request:1","attempts_remaining":2,)"
      R"("state":"pending"})";
  const auto checked = Check(exchange);
  EXPECT_EQ(checked.exit_code, 1) << checked.output;
  EXPECT_NE(checked.output.find("title 'otp_incorrect' is not a reason documented for 403"),
            std::string::npos)
      << checked.output;
}

TEST_F(OpenApiValidatorTest, FailsAnUndocumentedContentTypeMethodOrPath) {
  const auto html = Check(Healthz(200, "text/html", "<p>ok</p>"));
  EXPECT_EQ(html.exit_code, 1) << html.output;
  EXPECT_NE(html.output.find("Content-Type text/html is not documented"), std::string::npos)
      << html.output;

  // DELETE answered as if it were GET: /healthz documents only 405 for other methods.
  json method = Healthz(200, "application/json", R"({"status":"ok"})");
  method["method"] = "DELETE";
  const auto deleted = Check(method);
  EXPECT_EQ(deleted.exit_code, 1) << deleted.output;
  EXPECT_NE(deleted.output.find("status 200 is not documented for /healthz, another method"),
            std::string::npos)
      << deleted.output;
  // A path that documents nothing for other methods.
  const auto undocumented =
      Check(method, false,
            Edited("  /healthz:\n    x-ijazat-other-methods:", "  /healthz:\n    x-unused:"));
  EXPECT_EQ(undocumented.exit_code, 1) << undocumented.output;
  EXPECT_NE(undocumented.output.find("DELETE /healthz is not documented"), std::string::npos)
      << undocumented.output;

  json path = Healthz(200, "application/json", R"({"status":"ok"})");
  path["path"] = path["template"] = "/v2/healthz";
  const auto unknown = Check(path);
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("the document has no path /v2/healthz"), std::string::npos)
      << unknown.output;
}

TEST_F(OpenApiValidatorTest, FailsWhenAnOperationWasNeverExercised) {
  const auto checked = Check(Healthz(200, "application/json", R"({"status":"ok"})"),
                             /*require_all=*/true);
  EXPECT_EQ(checked.exit_code, 1) << checked.output;
  EXPECT_NE(checked.output.find("operations no exchange exercised: confirmConsent"),
            std::string::npos)
      << checked.output;
}

TEST_F(OpenApiValidatorTest, FailsABrokenDocument) {
  const std::string ok_response =
      "        \"200\":\n          description: ok\n          content:\n"
      "            application/json:\n              schema: {$ref: "
      "\"#/components/schemas/Health\"}\n";
  // A comma in an unquoted flow mapping makes a second key: the Response Object gets a field
  // it does not have.
  const auto flow = CheckEdited(ok_response, "        \"200\": {description: ok, with a comma}\n");
  EXPECT_EQ(flow.exit_code, 1) << flow.output;
  EXPECT_NE(flow.output.find("unknown field(s) 'with a comma'"), std::string::npos) << flow.output;

  const auto duplicate = CheckEdited("      operationId: getHealth\n",
                                     "      operationId: getHealth\n      operationId: health\n");
  EXPECT_EQ(duplicate.exit_code, 1) << duplicate.output;
  EXPECT_NE(duplicate.output.find("duplicate key 'operationId'"), std::string::npos)
      << duplicate.output;

  const auto no_id = CheckEdited("      operationId: getHealth\n", "");
  EXPECT_EQ(no_id.exit_code, 1) << no_id.output;
  EXPECT_NE(no_id.output.find("GET /healthz: no operationId"), std::string::npos) << no_id.output;

  const auto same_id = CheckEdited("operationId: getHealth\n", "operationId: getMetrics\n");
  EXPECT_EQ(same_id.exit_code, 1) << same_id.output;
  EXPECT_NE(same_id.output.find("operationId 'getMetrics' is also"), std::string::npos)
      << same_id.output;

  const auto dangling =
      CheckEdited("#/components/schemas/Health\"", "#/components/schemas/Healthy\"");
  EXPECT_EQ(dangling.exit_code, 1) << dangling.output;
  EXPECT_NE(dangling.output.find("does not resolve"), std::string::npos) << dangling.output;

  const auto bad_schema =
      CheckEdited("    Health:\n      type: object\n", "    Health:\n      type: record\n");
  EXPECT_EQ(bad_schema.exit_code, 1) << bad_schema.output;
  EXPECT_NE(bad_schema.output.find("not a valid JSON Schema 2020-12"), std::string::npos)
      << bad_schema.output;
}

}  // namespace
}  // namespace ijazat::appliance::testing
