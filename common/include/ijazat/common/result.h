// Result<T> and Status: the error values that every Ijazat library returns.
//
// Libraries never throw on their data path; they return a Result. An Error carries a canonical
// code (what kind of failure, for callers that map it to HTTP statuses or exit codes), a stable
// machine-readable reason (a short snake_case tag such as "pin_incorrect"), and a sentence for
// people. Messages never contain secrets: callers put no PIN, key, OTP, CNIC or phone number in
// them.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace ijazat {

enum class ErrorCode {
  kInvalidArgument,     // the caller's input is malformed or out of range
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // the thing to create exists already
  kPermissionDenied,    // authenticated, but not allowed
  kUnauthenticated,     // credentials missing or wrong (including a wrong PIN)
  kFailedPrecondition,  // the system is not in a state that allows the operation
  kResourceExhausted,   // a limit was reached
  kUnavailable,         // a dependency (HSM, store) is down; retrying later may succeed
  kInternal,            // an invariant broke; a defect
  kDataLoss,            // stored data is corrupt
};

constexpr std::string_view ToString(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kFailedPrecondition:
      return "failed_precondition";
    case ErrorCode::kResourceExhausted:
      return "resource_exhausted";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kDataLoss:
      return "data_loss";
  }
  return "unknown";
}

class Error {
 public:
  // `reason` must be a string literal (it is kept as a view); it defaults to the code's name.
  Error(ErrorCode code, std::string message, std::string_view reason = {})
      : code_(code),
        reason_(reason.empty() ? ToString(code) : reason),
        message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  std::string_view reason() const { return reason_; }
  const std::string& message() const { return message_; }

  // The same error with context in front of its message: "loading policy: <message>".
  Error WithContext(std::string_view context) const {
    return Error(code_, std::string(context) + ": " + message_, reason_);
  }

 private:
  ErrorCode code_;
  std::string_view reason_;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Error>, "Result<Error> is ambiguous");

 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition: ok(). Calling value() on an error aborts: it is a defect, not a runtime path.
  T& value() & { return std::get<0>(Checked()); }
  const T& value() const& { return std::get<0>(Checked()); }
  T&& value() && { return std::get<0>(std::move(Checked())); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Precondition: !ok().
  const Error& error() const {
    if (ok()) std::abort();
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error>& Checked() {
    if (!ok()) std::abort();
    return state_;
  }
  const std::variant<T, Error>& Checked() const {
    if (!ok()) std::abort();
    return state_;
  }

  std::variant<T, Error> state_;
};

// Result<void>: success, or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    if (ok()) std::abort();
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status OkStatus() { return {}; }

}  // namespace ijazat

#define IJAZAT_CONCAT_INNER(a, b) a##b
#define IJAZAT_CONCAT(a, b) IJAZAT_CONCAT_INNER(a, b)

// Returns the error of `expr` (a Status or Result) from the enclosing function.
#define IJAZAT_RETURN_IF_ERROR(expr)                         \
  do {                                                       \
    auto&& ijazat_status_ = (expr);                          \
    if (!ijazat_status_.ok()) return ijazat_status_.error(); \
  } while (false)

// `IJAZAT_ASSIGN_OR_RETURN(auto x, F());` declares x from F()'s value or returns its error.
#define IJAZAT_ASSIGN_OR_RETURN(lhs, expr) \
  IJAZAT_ASSIGN_OR_RETURN_IMPL(IJAZAT_CONCAT(ijazat_result_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` may be a declaration such as `auto x`.
#define IJAZAT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.error();                 \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
