#include "raw_pkcs11.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <array>
#include <stdexcept>

namespace ijazat::testing {

RawPkcs11::RawPkcs11(const std::string& module_path) {
  handle_ = dlopen(module_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) throw std::runtime_error("dlopen failed");
  auto* get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle_, "C_GetFunctionList"));
  if (get == nullptr || get(&fn_) != CKR_OK) throw std::runtime_error("no function list");
  Initialize();
}

RawPkcs11::~RawPkcs11() { dlclose(handle_); }

CK_RV RawPkcs11::Initialize() const {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = fn_->C_Initialize(&args);
  return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

CK_RV RawPkcs11::Finalize() const { return fn_->C_Finalize(nullptr); }

CK_SLOT_ID RawPkcs11::SlotOf(const std::string& label) const {
  std::array<CK_SLOT_ID, 16> slots{};
  CK_ULONG count = slots.size();
  EXPECT_EQ(fn_->C_GetSlotList(CK_TRUE, slots.data(), &count), CKR_OK);
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_TOKEN_INFO info{};
    if (fn_->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
    std::string text(reinterpret_cast<const char*>(info.label), sizeof info.label);
    text.erase(text.find_last_not_of(' ') + 1);
    if (text == label) return slots[i];
  }
  ADD_FAILURE() << "no token " << label;
  return 0;
}

void RawPkcs11::ImportHmacKey(const std::string& token, const std::string& pin,
                              const std::string& label, const Bytes& value) const {
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  ASSERT_EQ(fn_->C_OpenSession(SlotOf(token), CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                               &session),
            CKR_OK);
  const CK_RV login =
      fn_->C_Login(session, CKU_USER,
                   reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data())), pin.size());
  ASSERT_TRUE(login == CKR_OK || login == CKR_USER_ALREADY_LOGGED_IN);
  CK_OBJECT_CLASS object_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_GENERIC_SECRET;
  CK_BBOOL yes = CK_TRUE;
  std::array<CK_MECHANISM_TYPE, 3> mechanisms = {CKM_SHA_1_HMAC, CKM_SHA256_HMAC, CKM_SHA512_HMAC};
  std::string label_copy = label;
  Bytes value_copy = value;
  std::array<CK_ATTRIBUTE, 8> attributes = {{
      {CKA_CLASS, &object_class, sizeof object_class},
      {CKA_KEY_TYPE, &key_type, sizeof key_type},
      {CKA_TOKEN, &yes, sizeof yes},
      {CKA_PRIVATE, &yes, sizeof yes},
      {CKA_SIGN, &yes, sizeof yes},
      {CKA_LABEL, label_copy.data(), label_copy.size()},
      {CKA_VALUE, value_copy.data(), value_copy.size()},
      {CKA_ALLOWED_MECHANISMS, mechanisms.data(), sizeof mechanisms},
  }};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  EXPECT_EQ(fn_->C_CreateObject(session, attributes.data(), attributes.size(), &key), CKR_OK);
  fn_->C_CloseSession(session);
}

void RawPkcs11::CloseAllSessions(const std::string& token) const {
  EXPECT_EQ(fn_->C_CloseAllSessions(SlotOf(token)), CKR_OK);
}

}  // namespace ijazat::testing
