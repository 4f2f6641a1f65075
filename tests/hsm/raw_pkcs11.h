// Direct PKCS#11 access to the token under test, independent of the HSM layer: to import keys
// with known values (RFC test vectors), and to break sessions or the module from outside as a
// failing HSM would.
#pragma once

#include <string>
#include <vector>

#include "ijazat/common/bytes.h"
#include "pkcs11.h"

namespace ijazat::testing {

class RawPkcs11 {
 public:
  explicit RawPkcs11(const std::string& module_path);
  ~RawPkcs11();
  RawPkcs11(const RawPkcs11&) = delete;
  RawPkcs11& operator=(const RawPkcs11&) = delete;

  CK_FUNCTION_LIST* fn() const { return fn_; }
  CK_SLOT_ID SlotOf(const std::string& label) const;

  // Imports a generic secret (HMAC) key with a known value as a token object.
  void ImportHmacKey(const std::string& token, const std::string& pin, const std::string& label,
                     const Bytes& value) const;
  // Closes every session of this process on the token: SoftHSM also logs the token out.
  void CloseAllSessions(const std::string& token) const;
  // Finalises the module under everyone's feet; returns what C_Finalize returned.
  CK_RV Finalize() const;
  // Initialises it again (CKR_CRYPTOKI_ALREADY_INITIALIZED counts as success).
  CK_RV Initialize() const;

 private:
  void* handle_ = nullptr;
  CK_FUNCTION_LIST* fn_ = nullptr;
};

}  // namespace ijazat::testing
