// ijazat-verify end to end: every exit path and its one-line message, time and leeway options,
// tokens signed by python3-jwcrypto, JWKS over loopback http and over verified https, and the
// worked examples of docs/consent-token.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "ijazat/verifier/jwks.h"
#include "ijazat/verifier/token.h"
#include "ijazat/verifier/verifier.h"
#include "support/result_matchers.h"
#include "support/temp_dir.h"
#include "verifier_test_util.h"

namespace ijazat::verifier {
namespace {

using ::ijazat::testing::CommandResult;
using ::ijazat::testing::ReadFileOrDie;
using ::ijazat::testing::RunCommand;
using ::ijazat::testing::TempDir;
using ::ijazat::testing::TestDataPath;
using ::testing::HasSubstr;
using testing::kIssuedAt;
using testing::SampleConsentClaims;
using testing::SampleReceiptClaims;
using testing::SoftwareSigner;
using ::testing::StartsWith;
using json = nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitRejected = 1;
constexpr int kExitUsage = 2;
constexpr int kExitJwks = 3;

std::string Binary() { return ::ijazat::testing::BinaryPath("ijazat-verify"); }

int LineCount(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

class VerifyCliTest : public ::testing::Test {
 protected:
  VerifyCliTest() { jwks_file_ = dir_.WriteFile("jwks.json", signer_.JwksJson()).string(); }

  CommandResult Run(const std::string& arguments) { return RunCommand(Binary() + " " + arguments); }
  // Verifies with the test JWKS as demo-bank, 10 s after the sample issue time.
  CommandResult Check(const std::string& token, const std::string& extra = "") {
    return Run("--jwks " + jwks_file_ + " --aud demo-bank --at " + std::to_string(kIssuedAt + 10) +
               " " + extra + " '" + token + "'");
  }
  std::string Token(const ConsentTokenClaims& claims = SampleConsentClaims()) const {
    return testing::SignedConsentToken(signer_, claims);
  }
  // Expects a rejection: exit 1 and exactly one line naming the reason.
  void ExpectRejected(const CommandResult& result, const std::string& reason) {
    EXPECT_EQ(result.exit_code, kExitRejected) << result.output;
    EXPECT_THAT(result.output, StartsWith("ijazat-verify: rejected (" + reason + "): "));
    EXPECT_EQ(LineCount(result.output), 1) << result.output;
  }

  TempDir dir_;
  SoftwareSigner signer_;
  std::string jwks_file_;
};

TEST_F(VerifyCliTest, Help_DescribesOptionsAndExitCodes) {
  const auto result = Run("--help");
  EXPECT_EQ(result.exit_code, kExitOk);
  for (const char* text : {"--jwks", "--aud", "--at", "--leeway", "--receipt", "Exit codes",
                           "1 token rejected", "2 usage", "3 JWKS"}) {
    EXPECT_THAT(result.output, HasSubstr(text));
  }
}

TEST_F(VerifyCliTest, ValidToken_PrintsItsClaimsAsJson) {
  const auto result = Check(Token());
  ASSERT_EQ(result.exit_code, kExitOk) << result.output;
  const json claims = json::parse(result.output);
  EXPECT_EQ(claims, json::parse(ConsentTokenPayloadJson(SampleConsentClaims()).value()));
  // Member order is the signed order.
  EXPECT_THAT(result.output, StartsWith("{\n  \"iss\""));
}

TEST_F(VerifyCliTest, AFileNameGivenAsTheToken_IsRejectedWithAHintToUseStandardInput) {
  const auto file = dir_.WriteFile("token.jws", Token());
  const auto result = Check(file.string());
  ExpectRejected(result, "malformed");
  EXPECT_THAT(result.output, HasSubstr("give - and redirect it: < FILE"));
  // A malformed token that is no file gets no such hint.
  EXPECT_THAT(Check("not-a-token").output, Not(HasSubstr("redirect")));
}

TEST_F(VerifyCliTest, TokenFromStandardInput_ToleratesATrailingNewline) {
  const auto file = dir_.WriteFile("token", Token() + "\n");
  const auto result = Run("--jwks " + jwks_file_ + " --aud demo-bank --at " +
                          std::to_string(kIssuedAt) + " - < " + file.string());
  EXPECT_EQ(result.exit_code, kExitOk) << result.output;
}

TEST_F(VerifyCliTest, Receipt_VerifiesWithReceiptFlagOnly) {
  const std::string receipt = testing::SignedReceipt(signer_, SampleReceiptClaims());
  EXPECT_EQ(Check(receipt, "--receipt").exit_code, kExitOk);
  ExpectRejected(Check(receipt), "wrong_typ");
  ExpectRejected(Check(Token(), "--receipt"), "wrong_typ");
}

TEST_F(VerifyCliTest, EachRejection_ExitsOneWithOneLineNamingTheReason) {
  const SoftwareSigner other;
  ConsentTokenClaims other_aud = SampleConsentClaims();
  other_aud.audience = "other-provider";
  const std::string payload = ConsentTokenPayloadJson(SampleConsentClaims()).value();
  const std::string b64_payload = Base64UrlEncode(AsBytes(payload));
  json no_scopes = json::parse(payload);
  no_scopes.erase("scopes");
  std::string bad_signature = Token();
  bad_signature[bad_signature.size() - 5] =
      bad_signature[bad_signature.size() - 5] == 'A' ? 'B' : 'A';

  ExpectRejected(Check("abc"), "malformed");
  ExpectRejected(Check(Base64UrlEncode(AsBytes(R"({"alg":"none","typ":"consent+jwt"})")) + "." +
                       b64_payload + "."),
                 "alg_not_allowed");
  ExpectRejected(
      Check(signer_.SignCompact(R"({"alg":"ES256","typ":"consent+jwt","kid":")" + signer_.Kid() +
                                    R"(","jku":"https://attacker.example/jwks"})",
                                payload)),
      "forbidden_header");
  ExpectRejected(Check(testing::SignedConsentToken(other, SampleConsentClaims())), "unknown_kid");
  ExpectRejected(Check(bad_signature), "bad_signature");
  ExpectRejected(Check(signer_.SignCompact(signer_.Header(), no_scopes.dump())), "missing_claim");
  ExpectRejected(Check(Token(other_aud)), "wrong_audience");
  ExpectRejected(Check(Token(), "--iss https://elsewhere.example"), "wrong_issuer");
  ExpectRejected(
      Run("--jwks " + jwks_file_ + " --aud demo-bank --at 2025-03-01T11:00:00Z " + Token()),
      "expired");
  ExpectRejected(
      Run("--jwks " + jwks_file_ + " --aud demo-bank --at 2025-03-01T09:00:00Z " + Token()),
      "not_yet_valid");
}

TEST_F(VerifyCliTest, At_AcceptsUnixSecondsAndRfc3339Utc) {
  const std::string token = Token();  // valid 10:00:00 to 10:10:00 UTC, leeway 60 s
  for (const char* at :
       {"1740823200", "2025-03-01T10:00:00Z", "2025-03-01t10:10:59z", "2025-03-01T10:05:00.123456Z",
        "2025-03-01T10:05:00+00:00", "2025-03-01T09:59:00Z"}) {
    const auto result = Run("--jwks " + jwks_file_ + " --aud demo-bank --at " + at + " " + token);
    EXPECT_EQ(result.exit_code, kExitOk) << at << ": " << result.output;
  }
  ExpectRejected(
      Run("--jwks " + jwks_file_ + " --aud demo-bank --at 2025-03-01T10:11:00Z " + token),
      "expired");
}

TEST_F(VerifyCliTest, Leeway_IsConfigurable) {
  const std::string token = Token();  // exp 10:10:00
  const std::string base = "--jwks " + jwks_file_ + " --aud demo-bank --at 2025-03-01T10:10:30Z ";
  EXPECT_EQ(Run(base + token).exit_code, kExitOk);
  ExpectRejected(Run(base + "--leeway 0 " + token), "expired");
  ExpectRejected(Run(base + "--leeway 30 " + token), "expired");
  EXPECT_EQ(Run(base + "--leeway 31 " + token).exit_code, kExitOk);
}

TEST_F(VerifyCliTest, UsageErrors_ExitTwoWithOneLine) {
  const std::string jwks = "--jwks " + jwks_file_;
  const std::pair<std::string, const char*> cases[] = {
      {"", "--jwks FILE|URL is required"},
      {"--aud demo-bank x", "--jwks FILE|URL is required"},
      {jwks + " x", "--aud PROVIDER_ID is required"},
      {jwks + " --aud demo-bank", "no token given"},
      {jwks + " --aud demo-bank a b", "more than one token"},
      {jwks + " --aud demo-bank --verbose x", "unknown option --verbose"},
      {jwks + " --aud", "--aud needs a value"},
      {jwks + " --aud demo-bank --aud other x", "--aud is given twice"},
      {jwks + " --aud '' x", "--aud needs a provider id"},
      {jwks + " --aud demo-bank --at yesterday x", "--at takes Unix seconds"},
      {jwks + " --aud demo-bank --at 2025-02-29T00:00:00Z x", "--at takes Unix seconds"},
      {jwks + " --aud demo-bank --at 2025-03-01T10:00:00+05:00 x", "--at takes Unix seconds"},
      {jwks + " --aud demo-bank --at 2025-03-01 x", "--at takes Unix seconds"},
      {jwks + " --aud demo-bank --at -5 x", "--at takes Unix seconds"},
      {jwks + " --aud demo-bank --leeway 301 x", "--leeway takes whole seconds"},
      {jwks + " --aud demo-bank --leeway -1 x", "--leeway takes whole seconds"},
      {jwks + " --aud demo-bank --leeway 1.5 x", "--leeway takes whole seconds"},
      {"--jwks http://example.com/jwks.json --aud demo-bank x",
       "http:// is allowed only for loopback"},
      {"--jwks http://127.0.0.1@example.com/ --aud demo-bank x", "only for loopback"},
      {"--jwks http://localhost.example.com/ --aud demo-bank x", "only for loopback"},
      {"--jwks ftp://example.com/jwks.json --aud demo-bank x", "--jwks takes a file"},
  };
  for (const auto& [arguments, message] : cases) {
    const auto result = Run(arguments);
    EXPECT_EQ(result.exit_code, kExitUsage) << arguments << ": " << result.output;
    EXPECT_THAT(result.output, HasSubstr(message)) << arguments;
    EXPECT_EQ(LineCount(result.output), 1) << arguments << ": " << result.output;
  }
}

TEST_F(VerifyCliTest, UnreadableOrInvalidJwks_ExitsThree) {
  json with_private = json::parse(signer_.JwksJson());
  with_private["keys"][0]["d"] = "AAAA";
  const std::pair<std::string, const char*> cases[] = {
      {(dir_.path() / "missing.json").string(), "cannot read"},
      {dir_.WriteFile("private.json", with_private.dump()).string(), "private member \"d\""},
      {dir_.WriteFile("garbage.json", "<html>").string(), "not a JSON object"},
      {dir_.WriteFile("big.json", std::string(kMaxJwksSize + 10, ' ')).string(), "larger than"},
      {"https://127.0.0.1:1/jwks.json", "cannot fetch"},
  };
  for (const auto& [source, message] : cases) {
    const auto result = Run("--jwks " + source + " --aud demo-bank " + Token());
    EXPECT_EQ(result.exit_code, kExitJwks) << source << ": " << result.output;
    EXPECT_THAT(result.output, HasSubstr(message)) << source;
    EXPECT_EQ(LineCount(result.output), 1) << source << ": " << result.output;
  }
}

TEST_F(VerifyCliTest, TokenSignedByJwcrypto_Verifies) {
  // jwcrypto makes its own P-256 key and JWKS and signs a token of the documented format.
  const auto payload_file =
      dir_.WriteFile("payload.json", ConsentTokenPayloadJson(SampleConsentClaims()).value());
  const auto jwks_file = dir_.path() / "jwcrypto-jwks.json";
  const auto python = testing::RunPython(dir_, R"(
import json, sys
from jwcrypto import jwk, jws
key = jwk.JWK.generate(kty="EC", crv="P-256")
public = json.loads(key.export_public())
public.update(kid=key.thumbprint(), alg="ES256", use="sig")
open(sys.argv[2], "w").write(json.dumps({"keys": [public]}))
token = jws.JWS(open(sys.argv[1]).read().encode())
token.add_signature(key, None, json.dumps({"alg": "ES256", "typ": "consent+jwt", "kid": key.thumbprint()}))
print(token.serialize(compact=True))
)",
                                         payload_file.string() + " " + jwks_file.string());
  ASSERT_EQ(python.exit_code, 0) << python.output;
  const std::string token = python.output.substr(0, python.output.find('\n'));
  const auto result = Run("--jwks " + jwks_file.string() + " --aud demo-bank --at " +
                          std::to_string(kIssuedAt + 5) + " " + token);
  EXPECT_EQ(result.exit_code, kExitOk) << result.output;
  EXPECT_THAT(result.output, HasSubstr("\"purpose\": \"account-opening\""));
}

// A small HTTP(S) server in Debian's python3 serving dir_ on 127.0.0.1, port 0, for a few
// requests; stopped by pid in the destructor.
class LocalServer {
 public:
  LocalServer(const TempDir& dir, bool tls) : dir_(dir) {
    std::string tls_args;
    if (tls) {
      const auto made = RunCommand(
          "cd " + dir.path().string() +
          " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
          " -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
          " -keyout tls.key -out tls.crt");
      EXPECT_EQ(made.exit_code, 0) << made.output;
      tls_args = " tls.crt tls.key";
    }
    dir.WriteFile("server.py", R"(
import http.server, os, ssl, sys
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
server.timeout = 30
if len(sys.argv) > 1:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = context.wrap_socket(server.socket, server_side=True)
with open("port.tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename("port.tmp", "port")
for _ in range(4):
    server.handle_request()
)");
    const auto started =
        RunCommand("cd " + dir.path().string() + " && (timeout 60 /usr/bin/python3 server.py" +
                   tls_args + " > server.log 2>&1 & echo $! > server.pid)");
    EXPECT_EQ(started.exit_code, 0) << started.output;
    const auto port_file = dir.path() / "port";
    for (int i = 0; i < 100 && !std::filesystem::exists(port_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    port_ = std::filesystem::exists(port_file) ? ReadFileOrDie(port_file) : "0";
  }
  ~LocalServer() {
    const auto pid_file = dir_.path() / "server.pid";
    if (!std::filesystem::exists(pid_file)) return;
    const long pid = std::strtol(ReadFileOrDie(pid_file).c_str(), nullptr, 10);
    if (pid > 0) kill(static_cast<pid_t>(pid), SIGTERM);
  }
  const std::string& port() const { return port_; }

 private:
  const TempDir& dir_;
  std::string port_;
};

TEST_F(VerifyCliTest, JwksOverLoopbackHttp_IsFetched) {
  const LocalServer server(dir_, false);
  const std::string base = "http://127.0.0.1:" + server.port();
  EXPECT_EQ(Check(Token()).exit_code, kExitOk);
  const auto ok = Run("--jwks " + base + "/jwks.json --aud demo-bank --at " +
                      std::to_string(kIssuedAt) + " " + Token());
  EXPECT_EQ(ok.exit_code, kExitOk) << ok.output;
  const auto missing = Run("--jwks " + base + "/none.json --aud demo-bank " + Token());
  EXPECT_EQ(missing.exit_code, kExitJwks) << missing.output;
  EXPECT_THAT(missing.output, HasSubstr("cannot fetch"));
  EXPECT_EQ(LineCount(missing.output), 1) << missing.output;
}

TEST_F(VerifyCliTest, JwksOverHttps_VerifiesTheServerCertificate) {
  const LocalServer server(dir_, true);
  const std::string url = "https://127.0.0.1:" + server.port() + "/jwks.json";
  const std::string rest = " --aud demo-bank --at " + std::to_string(kIssuedAt) + " " + Token();
  // The test CA is not in the system bundle: TLS verification must refuse the server.
  const auto untrusted = Run("--jwks " + url + rest);
  EXPECT_EQ(untrusted.exit_code, kExitJwks) << untrusted.output;
  EXPECT_THAT(untrusted.output, HasSubstr("cannot fetch"));
  const auto trusted =
      Run("--jwks " + url + " --cacert " + (dir_.path() / "tls.crt").string() + rest);
  EXPECT_EQ(trusted.exit_code, kExitOk) << trusted.output;
}

// The worked examples in docs/consent-token.md are real HSM-signed tokens (written by
// VerifierHsmTest.WorkedExamples_AreWrittenOnRequest); they must keep verifying, and the doc
// must show exactly these files.
TEST_F(VerifyCliTest, DocumentedExamples_VerifyAndMatchTheDoc) {
  const auto examples = TestDataPath("verifier/examples");
  const std::string jwks = (examples / "jwks.json").string();
  const auto token = Run("--jwks " + jwks + " --aud demo-bank --at 2025-03-01T10:05:00Z - < " +
                         (examples / "token.jws").string());
  EXPECT_EQ(token.exit_code, kExitOk) << token.output;
  const auto receipt =
      Run("--jwks " + jwks + " --aud demo-bank --receipt --at 2025-03-01T10:05:00Z - < " +
          (examples / "receipt.jws").string());
  EXPECT_EQ(receipt.exit_code, kExitOk) << receipt.output;
  const auto python =
      RunCommand("/usr/bin/python3 " + (examples / "verify.py").string() + " " + jwks +
                 " demo-bank 1740823500 consent+jwt < " + (examples / "token.jws").string());
  EXPECT_EQ(python.exit_code, 0) << python.output;
  const auto python_receipt = RunCommand(
      "/usr/bin/python3 " + (examples / "verify.py").string() + " " + jwks +
      " demo-bank 1740823500 consent-receipt+jwt < " + (examples / "receipt.jws").string());
  EXPECT_EQ(python_receipt.exit_code, 0) << python_receipt.output;

  const std::string doc = ReadFileOrDie(TestDataPath("../../docs/consent-token.md"));
  const auto trimmed = [](std::string text) {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  };
  for (const char* file : {"token.jws", "receipt.jws", "jwks.json", "verify.py"}) {
    EXPECT_THAT(doc, HasSubstr(trimmed(ReadFileOrDie(examples / file)))) << file;
  }
  // The decoded header and payloads shown are those of the files, member for member.
  for (const char* file : {"token.jws", "receipt.jws"}) {
    const std::string jws = trimmed(ReadFileOrDie(examples / file));
    const auto first = jws.find('.');
    const auto second = jws.find('.', first + 1);
    const auto header = Base64UrlDecode(jws.substr(0, first));
    const auto payload = Base64UrlDecode(jws.substr(first + 1, second - first - 1));
    ASSERT_TRUE(header.has_value() && payload.has_value()) << file;
    const std::string payload_text(payload->begin(), payload->end());
    EXPECT_THAT(doc, HasSubstr(nlohmann::ordered_json::parse(payload_text).dump(2))) << file;
    if (std::string_view(file) == "token.jws") {
      EXPECT_THAT(doc, HasSubstr(std::string(header->begin(), header->end()))) << file;
    }
  }
}

// The Python verifier documented in docs/consent-token.md performs step 9 as the library
// does: for each claim whose type, range or constant is wrong, it rejects with the reason
// ijazat-verify gives, and never crashes (a traceback would exit 1 without "rejected:").
TEST_F(VerifyCliTest, DocumentedPythonVerifier_RejectsWhatIjazatVerifyRejects) {
  const std::string verify_py = TestDataPath("verifier/examples/verify.py").string();
  const json token = json::parse(ConsentTokenPayloadJson(SampleConsentClaims()).value());
  const json receipt = json::parse(ReceiptPayloadJson(SampleReceiptClaims()).value());
  struct Case {
    const char* what;
    bool is_receipt;
    std::function<void(json&)> mutate;
    const char* reason;
  };
  const Case cases[] = {
      {"receipt version", true, [](json& c) { c["version"] = "KI-CR-v9"; }, "malformed"},
      {"receipt id", true, [](json& c) { c["consentReceiptID"] = "c_other"; }, "malformed"},
      {"consent type", true,
       [](json& c) { c["services"][0]["purposes"][0]["consentType"] = "IMPLICIT"; }, "malformed"},
      {"jurisdiction", true, [](json& c) { c["jurisdiction"] = "US"; }, "malformed"},
      {"collection method", true, [](json& c) { c["collectionMethod"] = "WEB"; }, "malformed"},
      {"no controllers", true, [](json& c) { c["piiControllers"] = json::array(); }, "malformed"},
      {"controller not object", true, [](json& c) { c["piiControllers"] = {"Demo Bank"}; },
       "malformed"},
      {"onBehalf string", true, [](json& c) { c["piiControllers"][0]["onBehalf"] = "no"; },
       "malformed"},
      {"sensitive string", true, [](json& c) { c["sensitive"] = "true"; }, "malformed"},
      {"receipt iat string", true, [](json& c) { c["iat"] = "1740823200"; }, "malformed"},
      {"no services", true, [](json& c) { c.erase("services"); }, "missing_claim"},
      {"max_uses zero", false, [](json& c) { c["max_uses"] = 0; }, "malformed"},
      {"max_uses true", false, [](json& c) { c["max_uses"] = true; }, "malformed"},
      {"no scopes", false, [](json& c) { c["scopes"] = json::array(); }, "malformed"},
      {"scope not string", false, [](json& c) { c["scopes"] = {1}; }, "malformed"},
      {"policy hash", false, [](json& c) { c["policy"]["hash"] = "nothex"; }, "malformed"},
      {"policy hash upper", false,
       [](json& c) {
         std::string hash = c["policy"]["hash"];
         for (char& ch : hash) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
         c["policy"]["hash"] = hash;
       },
       "malformed"},
      {"iat string", false, [](json& c) { c["iat"] = "1740823200"; }, "malformed"},
      {"exp fraction", false, [](json& c) { c["exp"] = 1740823800.5; }, "malformed"},
      {"nbf negative", false, [](json& c) { c["nbf"] = -1; }, "malformed"},
      {"aud number", false, [](json& c) { c["aud"] = 7; }, "malformed"},
      {"policy string", false, [](json& c) { c["policy"] = "2025.06.1"; }, "malformed"},
      {"no jti", false, [](json& c) { c.erase("jti"); }, "missing_claim"},
      {"empty iss", false, [](json& c) { c["iss"] = ""; }, "malformed"},
      {"empty policy version", false, [](json& c) { c["policy"]["version"] = ""; }, "malformed"},
      {"empty receipt ids", true,
       [](json& c) {
         c["consentReceiptID"] = "";
         c["jti"] = "";
       },
       "malformed"},
      {"empty contact", true, [](json& c) { c["piiControllers"][0]["contact"] = ""; }, "malformed"},
  };
  for (const Case& c : cases) {
    json payload = c.is_receipt ? receipt : token;
    c.mutate(payload);
    const std::string typ = c.is_receipt ? "consent-receipt+jwt" : "consent+jwt";
    const auto file =
        dir_.WriteFile("mutated.jws", signer_.SignCompact(signer_.Header(typ), payload.dump()));
    const auto ours =
        Run("--jwks " + jwks_file_ + " --aud demo-bank --at " + std::to_string(kIssuedAt + 10) +
            (c.is_receipt ? " --receipt" : "") + " - < " + file.string());
    EXPECT_EQ(ours.exit_code, kExitRejected) << c.what << ": " << ours.output;
    EXPECT_THAT(ours.output, HasSubstr("rejected (" + std::string(c.reason) + ")")) << c.what;
    const auto python =
        RunCommand("/usr/bin/python3 " + verify_py + " " + jwks_file_ + " demo-bank " +
                   std::to_string(kIssuedAt + 10) + " " + typ + " < " + file.string());
    EXPECT_EQ(python.exit_code, 1) << c.what << ": " << python.output;
    EXPECT_THAT(python.output, StartsWith("rejected: " + std::string(c.reason))) << c.what;
  }
  // Texts no JSON library should produce, signed as they are, and headers that are not
  // acceptable: both verifiers reject each with the same reason, and the Python one without a
  // traceback. The header cases need no valid signature: nothing past the header is read.
  const std::string token_text = token.dump();
  const std::string body = token_text.substr(1, token_text.size() - 2);  // the members
  std::string deep = "{" + body + R"(,"x":)";
  for (int i = 0; i < 16; ++i) deep += "[";
  for (int i = 0; i < 16; ++i) deep += "]";
  deep += "}";
  std::string very_deep = R"({"alg":)";
  for (int i = 0; i < 1200; ++i) very_deep += "[";
  const std::pair<std::string, std::string> raw_cases[] = {
      {signer_.Header(), "{" + body + R"(,"x":NaN})"},
      {signer_.Header(), "{" + body + R"(,"x":"\ud800"})"},
      {signer_.Header(), deep},
      {signer_.Header(), " " + token_text},
      {very_deep, token_text},
      {R"({"alg":7,"typ":"consent+jwt","kid":")" + signer_.Kid() + R"("})", token_text},
      {R"({"alg":"ES256","typ":"consent+jwt"})", token_text},
      {" " + signer_.Header(), token_text},
  };
  for (const auto& [header, payload] : raw_cases) {
    const auto file = dir_.WriteFile("raw.jws", signer_.SignCompact(header, payload));
    const auto ours = Run("--jwks " + jwks_file_ + " --aud demo-bank --at " +
                          std::to_string(kIssuedAt + 10) + " - < " + file.string());
    EXPECT_EQ(ours.exit_code, kExitRejected) << header << payload << ": " << ours.output;
    EXPECT_THAT(ours.output, HasSubstr("rejected (malformed)")) << header << payload;
    const auto python =
        RunCommand("/usr/bin/python3 " + verify_py + " " + jwks_file_ + " demo-bank " +
                   std::to_string(kIssuedAt + 10) + " consent+jwt < " + file.string());
    EXPECT_EQ(python.exit_code, 1) << header << payload << ": " << python.output;
    EXPECT_THAT(python.output, StartsWith("rejected: malformed")) << header << payload;
    EXPECT_THAT(python.output, ::testing::Not(HasSubstr("Traceback"))) << header << payload;
  }

  // And the unmutated claims pass both, so the cases above fail for the mutation alone.
  for (const bool is_receipt : {false, true}) {
    const std::string typ = is_receipt ? "consent-receipt+jwt" : "consent+jwt";
    const auto file = dir_.WriteFile(
        "plain.jws",
        signer_.SignCompact(signer_.Header(typ), (is_receipt ? receipt : token).dump()));
    const auto python =
        RunCommand("/usr/bin/python3 " + verify_py + " " + jwks_file_ + " demo-bank " +
                   std::to_string(kIssuedAt + 10) + " " + typ + " < " + file.string());
    EXPECT_EQ(python.exit_code, 0) << typ << ": " << python.output;
  }
  // Usage errors exit 2, apart from every rejection.
  const auto usage = RunCommand("/usr/bin/python3 " + verify_py + " " + jwks_file_ +
                                " demo-bank soon consent+jwt < /dev/null");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
}

}  // namespace
}  // namespace ijazat::verifier
