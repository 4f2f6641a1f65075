// Reading claims from a verified payload into the public structs. Private to the library (and
// the fuzz harness).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ijazat/common/result.h"
#include "ijazat/verifier/token.h"

namespace ijazat::verifier::internal {

// NumericDates are accepted in [0, kMaxNumericDate] (9999-12-31T23:59:59Z), so that adding a
// leeway can never overflow.
inline constexpr std::int64_t kMaxNumericDate = 253402300799;

// Errors: "missing_claim" for an absent required claim, "malformed" for a claim of the wrong
// type or out of range. `audiences` receives "aud" (one string, or each string of the array);
// the structs' `audience` is left empty for the caller to fill with the one that matched.
Result<ConsentTokenClaims> ConsentClaimsFromJson(const nlohmann::json& payload,
                                                 std::vector<std::string>* audiences);
Result<ReceiptClaims> ReceiptClaimsFromJson(const nlohmann::json& payload,
                                            std::vector<std::string>* audiences);

}  // namespace ijazat::verifier::internal
