// GoogleMock matchers for Result and Status.
//   EXPECT_THAT(F(), IsOk());
//   EXPECT_THAT(F(), IsOkAndHolds(Eq(3)));
//   EXPECT_THAT(F(), StatusIs(ErrorCode::kNotFound));
//   EXPECT_THAT(F(), HasReason("pin_incorrect"));
#pragma once

#include <gmock/gmock.h>

#include <ostream>
#include <string>

#include "ijazat/common/result.h"

namespace ijazat {

inline void PrintTo(const Error& error, std::ostream* os) {
  *os << "Error{" << ToString(error.code()) << ", " << error.reason() << ", \"" << error.message()
      << "\"}";
}

template <typename T>
void PrintTo(const Result<T>& result, std::ostream* os) {
  if (result.ok()) {
    *os << "ok";
  } else {
    PrintTo(result.error(), os);
  }
}

namespace testing_internal {
template <typename R>
const Error* ErrorOf(const R& result) {
  return result.ok() ? nullptr : &result.error();
}
}  // namespace testing_internal

MATCHER(IsOk, "is ok") {
  if (arg.ok()) return true;
  *result_listener << "error: " << arg.error().message() << " (" << arg.error().reason() << ")";
  return false;
}

MATCHER_P(IsOkAndHolds, matcher, "is ok and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "error: " << arg.error().message();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, arg.value(), result_listener);
}

MATCHER_P(StatusIs, code, std::string("fails with code ") + std::string(ToString(code))) {
  if (arg.ok()) {
    *result_listener << "succeeded";
    return false;
  }
  *result_listener << "error: " << ToString(arg.error().code()) << " " << arg.error().message();
  return arg.error().code() == code;
}

MATCHER_P(HasReason, reason, std::string("fails with reason ") + reason) {
  if (arg.ok()) {
    *result_listener << "succeeded";
    return false;
  }
  *result_listener << "error: " << arg.error().reason() << " " << arg.error().message();
  return arg.error().reason() == std::string_view(reason);
}

}  // namespace ijazat
