// libFuzzer harness for the provider API's request bodies: the bounded body read, the JSON
// object parser with its nesting cap, and the checks of the consent-request, confirm and verify
// bodies (http_util.h), each input tried as all three.
//
// Invariants beyond "no crash, no sanitizer report": a body is read whole exactly when it is
// at most kMaxBodyBytes; every accepted JSON object nests at most kMaxJsonDepth levels; an
// accepted body has only its fields, each within its cap; every rejection is a documented 4xx
// problem. Run by `make fuzz`; the corpus runs in every `make test` (tests/fuzz).
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "fuzz_check.h"
#include "http_util.h"
#include "identity.h"

namespace ijazat::appliance::fuzz {
namespace {

void CheckReadBody(const std::string& input) {
  for (const long long declared : {static_cast<long long>(input.size()), -1LL}) {
    std::istringstream in(input);
    const auto body = ReadBody(in, declared);
    Require(body.ok() == (input.size() <= kMaxBodyBytes));
    if (body.ok()) {
      Require(*body == input);
    } else {
      Require(body.error().reason() == "body_too_large");
      RequireClientError(body.error(), 413);
    }
  }
}

void CheckRejection(const Error& error) {
  const std::string_view reason = error.reason();
  Require(reason == "invalid_json" || reason == "json_too_deep" || reason == "not_an_object" ||
          reason == "invalid_request");
  RequireClientError(error, 400);
}

}  // namespace
}  // namespace ijazat::appliance::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ijazat::appliance;
  using namespace ijazat::appliance::fuzz;
  const std::string input(reinterpret_cast<const char*>(data), size);
  CheckReadBody(input);
  if (input.size() > kMaxBodyBytes) return 0;  // the server stops at the read

  const auto object = ParseJsonObject(input);
  if (object.ok()) {
    Require(object->is_object());
    Require(JsonDepth(*object, kMaxJsonDepth + 1) <= kMaxJsonDepth);
  } else {
    CheckRejection(object.error());
    Require(object.error().reason() != "invalid_request");
  }

  const auto consent = ParseConsentRequestBody(input);
  if (consent.ok()) {
    Require(object.ok() && object->size() == 3);
    Require(consent->cnic.size() <= kMaxCnicField);
    Require(consent->purpose.size() <= kMaxPurposeField);
    Require(!consent->scopes.empty() && consent->scopes.size() <= kMaxScopes);
    for (const std::string& scope : consent->scopes) Require(scope.size() <= kMaxScopeField);
    // What ConsentService does next with the CNIC.
    const auto cnic = ParseCnic(consent->cnic);
    Require(cnic.ok() ? cnic->size() == 13 : cnic.error().reason() == "invalid_cnic");
  } else {
    CheckRejection(consent.error());
  }

  const auto otp = ParseConfirmBody(input);
  if (otp.ok()) {
    Require(object.ok() && object->size() == 1 && otp->size() <= kMaxOtpField);
  } else {
    CheckRejection(otp.error());
  }

  const auto token = ParseVerifyBody(input);
  if (token.ok()) {
    Require(object.ok() && object->size() == 1 && token->size() <= kMaxTokenField);
  } else {
    CheckRejection(token.error());
  }
  // One body is never two requests: the field sets do not overlap.
  Require(static_cast<int>(consent.ok()) + static_cast<int>(otp.ok()) +
              static_cast<int>(token.ok()) <=
          1);
  return 0;
}
