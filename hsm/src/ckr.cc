#include "ckr.h"

#include <cstdio>

namespace ijazat::hsm {
namespace {

struct RvEntry {
  CK_RV rv;
  const char* name;
};

#define IJAZAT_RV(name) \
  { name, #name }
constexpr RvEntry kRvNames[] = {
    IJAZAT_RV(CKR_OK),
    IJAZAT_RV(CKR_CANCEL),
    IJAZAT_RV(CKR_HOST_MEMORY),
    IJAZAT_RV(CKR_SLOT_ID_INVALID),
    IJAZAT_RV(CKR_GENERAL_ERROR),
    IJAZAT_RV(CKR_FUNCTION_FAILED),
    IJAZAT_RV(CKR_ARGUMENTS_BAD),
    IJAZAT_RV(CKR_NO_EVENT),
    IJAZAT_RV(CKR_NEED_TO_CREATE_THREADS),
    IJAZAT_RV(CKR_CANT_LOCK),
    IJAZAT_RV(CKR_ATTRIBUTE_READ_ONLY),
    IJAZAT_RV(CKR_ATTRIBUTE_SENSITIVE),
    IJAZAT_RV(CKR_ATTRIBUTE_TYPE_INVALID),
    IJAZAT_RV(CKR_ATTRIBUTE_VALUE_INVALID),
    IJAZAT_RV(CKR_ACTION_PROHIBITED),
    IJAZAT_RV(CKR_DATA_INVALID),
    IJAZAT_RV(CKR_DATA_LEN_RANGE),
    IJAZAT_RV(CKR_DEVICE_ERROR),
    IJAZAT_RV(CKR_DEVICE_MEMORY),
    IJAZAT_RV(CKR_DEVICE_REMOVED),
    IJAZAT_RV(CKR_ENCRYPTED_DATA_INVALID),
    IJAZAT_RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
    IJAZAT_RV(CKR_FUNCTION_CANCELED),
    IJAZAT_RV(CKR_FUNCTION_NOT_PARALLEL),
    IJAZAT_RV(CKR_FUNCTION_NOT_SUPPORTED),
    IJAZAT_RV(CKR_KEY_HANDLE_INVALID),
    IJAZAT_RV(CKR_KEY_SIZE_RANGE),
    IJAZAT_RV(CKR_KEY_TYPE_INCONSISTENT),
    IJAZAT_RV(CKR_KEY_NOT_NEEDED),
    IJAZAT_RV(CKR_KEY_CHANGED),
    IJAZAT_RV(CKR_KEY_NEEDED),
    IJAZAT_RV(CKR_KEY_INDIGESTIBLE),
    IJAZAT_RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    IJAZAT_RV(CKR_KEY_NOT_WRAPPABLE),
    IJAZAT_RV(CKR_KEY_UNEXTRACTABLE),
    IJAZAT_RV(CKR_MECHANISM_INVALID),
    IJAZAT_RV(CKR_MECHANISM_PARAM_INVALID),
    IJAZAT_RV(CKR_OBJECT_HANDLE_INVALID),
    IJAZAT_RV(CKR_OPERATION_ACTIVE),
    IJAZAT_RV(CKR_OPERATION_NOT_INITIALIZED),
    IJAZAT_RV(CKR_PIN_INCORRECT),
    IJAZAT_RV(CKR_PIN_INVALID),
    IJAZAT_RV(CKR_PIN_LEN_RANGE),
    IJAZAT_RV(CKR_PIN_EXPIRED),
    IJAZAT_RV(CKR_PIN_LOCKED),
    IJAZAT_RV(CKR_SESSION_CLOSED),
    IJAZAT_RV(CKR_SESSION_COUNT),
    IJAZAT_RV(CKR_SESSION_HANDLE_INVALID),
    IJAZAT_RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    IJAZAT_RV(CKR_SESSION_READ_ONLY),
    IJAZAT_RV(CKR_SESSION_EXISTS),
    IJAZAT_RV(CKR_SESSION_READ_ONLY_EXISTS),
    IJAZAT_RV(CKR_SESSION_READ_WRITE_SO_EXISTS),
    IJAZAT_RV(CKR_SIGNATURE_INVALID),
    IJAZAT_RV(CKR_SIGNATURE_LEN_RANGE),
    IJAZAT_RV(CKR_TEMPLATE_INCOMPLETE),
    IJAZAT_RV(CKR_TEMPLATE_INCONSISTENT),
    IJAZAT_RV(CKR_TOKEN_NOT_PRESENT),
    IJAZAT_RV(CKR_TOKEN_NOT_RECOGNIZED),
    IJAZAT_RV(CKR_TOKEN_WRITE_PROTECTED),
    IJAZAT_RV(CKR_USER_ALREADY_LOGGED_IN),
    IJAZAT_RV(CKR_USER_NOT_LOGGED_IN),
    IJAZAT_RV(CKR_USER_PIN_NOT_INITIALIZED),
    IJAZAT_RV(CKR_USER_TYPE_INVALID),
    IJAZAT_RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    IJAZAT_RV(CKR_USER_TOO_MANY_TYPES),
    IJAZAT_RV(CKR_DOMAIN_PARAMS_INVALID),
    IJAZAT_RV(CKR_CURVE_NOT_SUPPORTED),
    IJAZAT_RV(CKR_BUFFER_TOO_SMALL),
    IJAZAT_RV(CKR_RANDOM_SEED_NOT_SUPPORTED),
    IJAZAT_RV(CKR_RANDOM_NO_RNG),
    IJAZAT_RV(CKR_CRYPTOKI_NOT_INITIALIZED),
    IJAZAT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    IJAZAT_RV(CKR_MUTEX_BAD),
    IJAZAT_RV(CKR_MUTEX_NOT_LOCKED),
};
#undef IJAZAT_RV

}  // namespace

std::string RvName(CK_RV rv) {
  for (const auto& entry : kRvNames) {
    if (entry.rv == rv) return entry.name;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "CKR_0x%08lx", rv);
  return buffer;
}

Recovery RecoveryFor(CK_RV rv) {
  switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_OPERATION_ACTIVE:  // a session left mid-operation by an interrupted call
      return Recovery::kSession;
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
      return Recovery::kHandles;
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_SLOT_ID_INVALID:
    case CKR_GENERAL_ERROR:
      return Recovery::kModule;
    default:
      return Recovery::kNone;
  }
}

Recovery RecoveryFor(const Error& error) {
  if (error.reason() == kReasonSessionLost) return Recovery::kSession;
  if (error.reason() == kReasonStaleHandle) return Recovery::kHandles;
  if (error.reason() == kReasonUnavailable) return Recovery::kModule;
  return Recovery::kNone;
}

Error ErrorFromRv(CK_RV rv, std::string_view function) {
  std::string message = std::string(function) + " returned " + RvName(rv);
  switch (RecoveryFor(rv)) {
    case Recovery::kHandles:
      return Error(ErrorCode::kUnavailable, "HSM unavailable: " + message, kReasonStaleHandle);
    case Recovery::kSession:
      return Error(ErrorCode::kUnavailable, "HSM unavailable: " + message, kReasonSessionLost);
    case Recovery::kModule:
      return Error(ErrorCode::kUnavailable, "HSM unavailable: " + message, kReasonUnavailable);
    case Recovery::kNone:
      break;
  }
  switch (rv) {
    case CKR_PIN_INCORRECT:
      return Error(ErrorCode::kUnauthenticated, "the HSM rejected the PIN (" + message + ")",
                   "pin_incorrect");
    case CKR_PIN_LOCKED:
      return Error(ErrorCode::kUnauthenticated,
                   "the token's PIN is locked after too many wrong attempts (" + message + ")",
                   "pin_locked");
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      return Error(ErrorCode::kInvalidArgument,
                   "the PIN has characters or a length the token does not accept (" + message + ")",
                   "pin_invalid");
    case CKR_PIN_EXPIRED:
    case CKR_USER_PIN_NOT_INITIALIZED:
      return Error(ErrorCode::kFailedPrecondition,
                   "the token's user PIN is not set or has expired (" + message + ")",
                   "pin_not_usable");
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
      return Error(ErrorCode::kInvalidArgument,
                   "the sealed data does not authenticate under this key (" + message + ")",
                   "ciphertext_invalid");
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_MECHANISM_INVALID:
      return Error(ErrorCode::kFailedPrecondition,
                   "the key does not permit this operation (" + message + ")", "key_misuse");
    case CKR_TOKEN_WRITE_PROTECTED:
      return Error(ErrorCode::kFailedPrecondition, "the token is write-protected (" + message + ")",
                   "token_read_only");
    case CKR_HOST_MEMORY:
    case CKR_SESSION_COUNT:
      return Error(ErrorCode::kResourceExhausted, "the HSM is out of resources (" + message + ")",
                   "hsm_exhausted");
    default:
      return Error(ErrorCode::kInternal, message, "hsm_error");
  }
}

}  // namespace ijazat::hsm
