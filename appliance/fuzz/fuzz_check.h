// What the appliance's libFuzzer harnesses share: a check that crashes on a broken invariant
// (so libFuzzer, or the corpus replay under ctest, reports it), and the checks every error a
// client may see must pass.
#pragma once

#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "http_util.h"
#include "ijazat/common/result.h"

namespace ijazat::appliance::fuzz {

inline void Require(bool condition) {
  if (!condition) __builtin_trap();
}

// Levels of arrays and objects, counting the outermost; stops counting past `limit`.
inline int JsonDepth(const nlohmann::json& value, int limit) {
  if (!value.is_structured()) return 0;
  if (limit <= 0) return 1;
  int deepest = 0;
  for (const auto& child : value) {
    deepest = std::max(deepest, JsonDepth(child, limit - 1));
  }
  return 1 + deepest;
}

// An error the HTTP layer shows as it is: a documented reason with a message, a 4xx status,
// and a problem document that is valid JSON naming the reason.
inline void RequireClientError(const Error& error, int status) {
  Require(!error.message().empty());
  const Error shown = PublicError(error);
  Require(shown.reason() == error.reason());
  Require(HttpStatusFor(error) == status);
  const std::string problem = ProblemJson(status, error, "fuzz");
  const auto parsed = nlohmann::json::parse(problem, nullptr, /*allow_exceptions=*/false);
  Require(parsed.is_object() && parsed.value("title", "") == error.reason() &&
          parsed.value("status", 0) == status);
}

}  // namespace ijazat::appliance::fuzz
