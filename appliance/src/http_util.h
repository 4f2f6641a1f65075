// Request-level helpers the handlers share: bounded body reading, JSON with a nesting limit,
// and RFC 9457 problem details.
#pragma once

#include <istream>
#include <nlohmann/json.hpp>
#include <string>

#include "ijazat/common/result.h"

namespace ijazat::appliance {

inline constexpr std::size_t kMaxBodyBytes = std::size_t{16} * 1024;
inline constexpr int kMaxJsonDepth = 32;

// Reads at most kMaxBodyBytes; kResourceExhausted ("body_too_large") past that.
Result<std::string> ReadBody(std::istream& in, long long content_length);

// Parses a JSON object with at most kMaxJsonDepth levels of nesting, valid UTF-8.
// kInvalidArgument ("invalid_json", "json_too_deep", "not_an_object").
Result<nlohmann::json> ParseJsonObject(const std::string& body);

// The error as a client may see it: documented reasons pass; anything else becomes "internal"
// (or "hsm_unavailable" when it is a dependency being down), without its message.
Error PublicError(const Error& error);

// The HTTP status for an error code (and, for a few reasons, a more exact one).
int HttpStatusFor(const Error& error);

// application/problem+json body.
std::string ProblemJson(int status, const Error& error, const std::string& request_id,
                        const nlohmann::json& extensions = nlohmann::json::object());

}  // namespace ijazat::appliance
