// Strict JSON for untrusted input: one object, no duplicate member names at any depth, bounded
// nesting, nothing after it, valid UTF-8 throughout. Never throws.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "ijazat/common/result.h"

namespace ijazat::verifier::internal {

inline constexpr int kMaxJsonDepth = 16;

// On failure: kInvalidArgument, reason "malformed", a message starting with `what`.
Result<nlohmann::json> ParseStrictObject(std::string_view text, std::string_view what);

}  // namespace ijazat::verifier::internal
