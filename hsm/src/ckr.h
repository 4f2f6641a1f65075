// Every CK_RV the HSM layer can see, mapped to the project's errors in one place.
#pragma once

#include <string>
#include <string_view>

#include "ijazat/common/result.h"
#include "pkcs11.h"

namespace ijazat::hsm {

// "CKR_DEVICE_ERROR"; "CKR_0x80000001" for values this table does not know.
std::string RvName(CK_RV rv);

enum class Recovery {
  kNone,     // not retryable: the request itself is wrong, or the PIN is
  kHandles,  // a cached object handle went stale (SoftHSM drops them at logout): look up again
  kSession,  // the session or login was lost: reopen and log in again
  kModule,   // the device, token or library went away: re-initialise the module
};
Recovery RecoveryFor(CK_RV rv);

// Reasons of retryable errors. Only kReasonUnavailable leaves the HSM layer; a lost session is
// mended inside it.
inline constexpr char kReasonUnavailable[] = "hsm_unavailable";
inline constexpr char kReasonSessionLost[] = "hsm_session_lost";
inline constexpr char kReasonStaleHandle[] = "hsm_stale_handle";

// Which recovery an error from ErrorFromRv asks for.
Recovery RecoveryFor(const Error& error);

// The error for `rv` returned by `function` ("C_Sign"), with the code and reason that callers
// act on. Retryable values map to kUnavailable / "hsm_unavailable".
Error ErrorFromRv(CK_RV rv, std::string_view function);

}  // namespace ijazat::hsm
