// Request-level helpers the handlers share: bounded body reading, JSON with a nesting limit,
// and RFC 9457 problem details.
#pragma once

#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ijazat/common/result.h"

namespace ijazat::appliance {

inline constexpr std::size_t kMaxBodyBytes = std::size_t{16} * 1024;
inline constexpr int kMaxJsonDepth = 32;

// Reads at most kMaxBodyBytes; kResourceExhausted ("body_too_large") past that.
Result<std::string> ReadBody(std::istream& in, long long content_length);

// Parses a JSON object with at most kMaxJsonDepth levels of nesting, valid UTF-8.
// kInvalidArgument ("invalid_json", "json_too_deep", "not_an_object").
Result<nlohmann::json> ParseJsonObject(const std::string& body);

// The provider API's request bodies, read and checked as the handlers do: a JSON object (as
// ParseJsonObject) with only the named fields, each a string no longer than its cap.
// Errors: ParseJsonObject's, and kInvalidArgument "invalid_request" (unknown field, missing or
// mistyped field, too long). The values are not interpreted here (the CNIC is checked by
// ConsentService).
struct ConsentRequestBody {
  std::string cnic;                 // at most kMaxCnicField bytes
  std::string purpose;              // at most kMaxPurposeField bytes
  std::vector<std::string> scopes;  // 1 to kMaxScopes, each at most kMaxScopeField bytes
};
inline constexpr std::size_t kMaxCnicField = 32;
inline constexpr std::size_t kMaxPurposeField = 64;
inline constexpr std::size_t kMaxScopes = 16;
inline constexpr std::size_t kMaxScopeField = 32;
inline constexpr std::size_t kMaxOtpField = 16;
inline constexpr std::size_t kMaxTokenField = 8192;

// POST /v1/consents: {"cnic", "purpose", "scopes"}.
Result<ConsentRequestBody> ParseConsentRequestBody(const std::string& body);
// POST /v1/consents/{id}/confirm: {"otp"}; returns the code.
Result<std::string> ParseConfirmBody(const std::string& body);
// POST /v1/verifications: {"consent_token"}; returns the token.
Result<std::string> ParseVerifyBody(const std::string& body);

// The error as a client may see it: documented reasons pass; a part that is down is named by
// its own reason ("hsm_unavailable", "store_unavailable", "registry_unavailable") whatever it
// failed with; anything else becomes "internal". Neither carries the original message.
Error PublicError(const Error& error);

// The HTTP status for an error code (and, for a few reasons, a more exact one).
int HttpStatusFor(const Error& error);

// application/problem+json body.
std::string ProblemJson(int status, const Error& error, const std::string& request_id,
                        const nlohmann::json& extensions = nlohmann::json::object());

}  // namespace ijazat::appliance
