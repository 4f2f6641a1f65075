// The provider API's body checks (http_util.h): as pure functions, and against the running
// server over HTTPS for every input of the provider API fuzz corpus, so that the functions the
// fuzzer exercises say exactly what the handlers do.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "appliance_fixture.h"
#include "http_util.h"
#include "support/result_matchers.h"
#include "support/temp_dir.h"

namespace ijazat::appliance {
namespace {

TEST(ParseConsentRequestBody, ReadsTheThreeFields) {
  const auto body = ParseConsentRequestBody(
      R"({"cnic":"35202-1234567-1","purpose":"kyc","scopes":["name","date_of_birth"]})");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->cnic, "35202-1234567-1");
  EXPECT_EQ(body->purpose, "kyc");
  EXPECT_EQ(body->scopes, (std::vector<std::string>{"name", "date_of_birth"}));
}

TEST(ParseConsentRequestBody, RefusesEveryOtherShape) {
  const std::string scopes16 =
      R"(["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p")";
  EXPECT_TRUE(
      ParseConsentRequestBody(R"({"cnic":"1","purpose":"p","scopes":)" + scopes16 + "]}").ok());
  for (const std::string& body : {
           R"({"cnic":"1","purpose":"p","scopes":)" + scopes16 + R"(,"q"]})",
           std::string(R"({"cnic":"1","purpose":"p","scopes":[]})"),
           std::string(R"({"cnic":"1","purpose":"p","scopes":"name"})"),
           std::string(R"({"cnic":"1","purpose":"p","scopes":[1]})"),
           std::string(R"({"cnic":"1","purpose":"p"})"),
           std::string(R"({"cnic":1,"purpose":"p","scopes":["a"]})"),
           std::string(R"({"cnic":"1","purpose":"p","scopes":["a"],"x":1})"),
           R"({"cnic":")" + std::string(33, '1') + R"(","purpose":"p","scopes":["a"]})",
           R"({"cnic":"1","purpose":")" + std::string(65, 'p') + R"(","scopes":["a"]})",
           R"({"cnic":"1","purpose":"p","scopes":[")" + std::string(33, 's') + R"("]})",
       }) {
    EXPECT_THAT(ParseConsentRequestBody(body), HasReason("invalid_request")) << body;
  }
  EXPECT_THAT(ParseConsentRequestBody("[]"), HasReason("not_an_object"));
  EXPECT_THAT(ParseConsentRequestBody("{"), HasReason("invalid_json"));
  EXPECT_THAT(ParseConsentRequestBody(std::string(40, '[')), HasReason("json_too_deep"));
}

TEST(ParseConfirmAndVerifyBody, ReadOneCappedString) {
  EXPECT_THAT(ParseConfirmBody(R"({"otp":"123456"})"), IsOkAndHolds(std::string("123456")));
  EXPECT_THAT(ParseConfirmBody(R"({"otp":"12345678901234567"})"), HasReason("invalid_request"));
  EXPECT_THAT(ParseConfirmBody(R"({"otp":123456})"), HasReason("invalid_request"));
  EXPECT_THAT(ParseConfirmBody(R"({"otp":"1","consent_token":"x"})"), HasReason("invalid_request"));
  EXPECT_THAT(ParseVerifyBody(R"({"consent_token":"a.b.c"})"), IsOkAndHolds(std::string("a.b.c")));
  EXPECT_TRUE(ParseVerifyBody(R"({"consent_token":")" + std::string(8192, 'A') + "\"}").ok());
  EXPECT_THAT(ParseVerifyBody(R"({"consent_token":")" + std::string(8193, 'A') + "\"}"),
              HasReason("invalid_request"));
  EXPECT_THAT(ParseVerifyBody(R"({"otp":"1"})"), HasReason("invalid_request"));
}

using testing::ApplianceTest;

// The reasons the body checks give; any other answer means the server took the body.
const std::set<std::string> kBodyReasons = {"invalid_request", "invalid_json", "json_too_deep",
                                            "not_an_object", "body_too_large"};

// For every body in the fuzz corpus, the server answers POST /v1/consents, .../confirm and
// /v1/verifications with the problem the pure check gives, or goes past the body checks exactly
// when the check accepts.
TEST_F(ApplianceTest, BodyChecks_AgreeWithTheServerOnTheFuzzCorpus) {
  const std::filesystem::path corpus =
      std::filesystem::path(IJAZAT_SOURCE_DIR) / "appliance/fuzz/corpus/provider_api";
  int inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    const std::string body = ijazat::testing::ReadFileOrDie(entry.path());
    SCOPED_TRACE(entry.path().filename().string());
    const auto check = [&](const std::string& path, const Status& expected) {
      const auto result = Request("POST", path, body, testing::kBankKey);
      const std::string title = result.json.is_object() ? result.json.value("title", "") : "";
      if (expected.ok()) {
        EXPECT_EQ(kBodyReasons.count(title), 0u) << path << ": " << result.body;
      } else {
        EXPECT_EQ(title, expected.error().reason()) << path << ": " << result.body;
        EXPECT_EQ(result.status, HttpStatusFor(expected.error())) << path;
      }
    };
    // The server reads at most kMaxBodyBytes before any check.
    const bool too_large = body.size() > kMaxBodyBytes;
    const auto status = [&](const auto& result) {
      if (too_large) {
        return Status(Error(ErrorCode::kResourceExhausted, "too large", "body_too_large"));
      }
      return result.ok() ? OkStatus() : Status(result.error());
    };
    check("/v1/consents", status(ParseConsentRequestBody(body)));
    check("/v1/consents/c0nsent-1d/confirm", status(ParseConfirmBody(body)));
    check("/v1/verifications", status(ParseVerifyBody(body)));
    ++inputs;
  }
  EXPECT_GE(inputs, 20);
}

}  // namespace
}  // namespace ijazat::appliance
