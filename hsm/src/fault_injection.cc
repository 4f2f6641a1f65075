#include "ijazat/hsm/fault_injection.h"

#include <atomic>
#include <thread>

#include "module.h"

namespace ijazat::hsm {

void FaultInjector::FailCall(const std::string& function, unsigned long return_value, int nth,
                             int count) {
  const std::lock_guard lock(mutex_);
  rules_[function] = Rule{return_value, nth > 1 ? nth - 1 : 0, count > 0 ? count : -1};
}

void FaultInjector::Delay(const std::string& function, std::chrono::milliseconds delay) {
  const std::lock_guard lock(mutex_);
  delays_[function] = delay;
}

void FaultInjector::Clear() {
  const std::lock_guard lock(mutex_);
  rules_.clear();
  delays_.clear();
}

int FaultInjector::Calls(const std::string& function) const {
  const std::lock_guard lock(mutex_);
  const auto it = calls_.find(function);
  return it == calls_.end() ? 0 : it->second;
}

std::map<std::string, int> FaultInjector::AllCalls() const {
  const std::lock_guard lock(mutex_);
  return calls_;
}

int FaultInjector::InjectedFailures() const {
  const std::lock_guard lock(mutex_);
  return injected_;
}

unsigned long FaultInjector::OnCall(const char* function) {
  std::chrono::milliseconds delay{0};
  unsigned long result = 0;
  {
    const std::lock_guard lock(mutex_);
    ++calls_[function];
    if (const auto it = delays_.find(function); it != delays_.end()) delay = it->second;
    if (const auto it = rules_.find(function); it != rules_.end()) {
      Rule& rule = it->second;
      if (rule.skip > 0) {
        --rule.skip;
      } else if (rule.remaining != 0) {
        result = rule.return_value;
        if (rule.remaining > 0) --rule.remaining;
        ++injected_;
      }
    }
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  return result;
}

namespace {

// The wrapper's state is process-wide because PKCS#11 entry points carry no context.
std::atomic<CK_FUNCTION_LIST*> g_target{nullptr};
std::shared_ptr<FaultInjector> g_injector;  // guarded by g_injector_mutex
std::mutex g_injector_mutex;

CK_RV Intercept(const char* function) {
  std::shared_ptr<FaultInjector> injector;
  {
    const std::lock_guard lock(g_injector_mutex);
    injector = g_injector;
  }
  return injector ? injector->OnCall(function) : CKR_OK;
}

#define IJAZAT_WRAP(name, params, args)                                \
  CK_RV Wrapped_##name params {                                        \
    if (const CK_RV injected = Intercept(#name); injected != CKR_OK) { \
      return injected;                                                 \
    }                                                                  \
    return g_target.load()->name args;                                 \
  }

IJAZAT_WRAP(C_Initialize, (CK_VOID_PTR a), (a))
IJAZAT_WRAP(C_Finalize, (CK_VOID_PTR a), (a))
IJAZAT_WRAP(C_GetInfo, (CK_INFO_PTR a), (a))
IJAZAT_WRAP(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (a, b, c))
IJAZAT_WRAP(C_GetSlotInfo, (CK_SLOT_ID a, CK_SLOT_INFO_PTR b), (a, b))
IJAZAT_WRAP(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b))
IJAZAT_WRAP(C_InitToken, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c, CK_UTF8CHAR_PTR d),
            (a, b, c, d))
IJAZAT_WRAP(C_InitPIN, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c), (a, b, c))
IJAZAT_WRAP(C_OpenSession,
            (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d, CK_SESSION_HANDLE_PTR e),
            (a, b, c, d, e))
IJAZAT_WRAP(C_CloseSession, (CK_SESSION_HANDLE a), (a))
IJAZAT_WRAP(C_CloseAllSessions, (CK_SLOT_ID a), (a))
IJAZAT_WRAP(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b))
IJAZAT_WRAP(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d),
            (a, b, c, d))
IJAZAT_WRAP(C_Logout, (CK_SESSION_HANDLE a), (a))
IJAZAT_WRAP(C_CreateObject,
            (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE_PTR d),
            (a, b, c, d))
IJAZAT_WRAP(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b))
IJAZAT_WRAP(C_GetAttributeValue,
            (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d))
IJAZAT_WRAP(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c), (a, b, c))
IJAZAT_WRAP(C_FindObjects,
            (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, CK_ULONG c, CK_ULONG_PTR d), (a, b, c, d))
IJAZAT_WRAP(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a))
IJAZAT_WRAP(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
IJAZAT_WRAP(C_Encrypt,
            (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e),
            (a, b, c, d, e))
IJAZAT_WRAP(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
IJAZAT_WRAP(C_Decrypt,
            (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e),
            (a, b, c, d, e))
IJAZAT_WRAP(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
IJAZAT_WRAP(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e),
            (a, b, c, d, e))
IJAZAT_WRAP(C_VerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
IJAZAT_WRAP(C_Verify, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e),
            (a, b, c, d, e))
IJAZAT_WRAP(C_GenerateKey,
            (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d,
             CK_OBJECT_HANDLE_PTR e),
            (a, b, c, d, e))
IJAZAT_WRAP(C_GenerateKeyPair,
            (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d,
             CK_ATTRIBUTE_PTR e, CK_ULONG f, CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h),
            (a, b, c, d, e, f, g, h))
IJAZAT_WRAP(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))

#undef IJAZAT_WRAP

}  // namespace

CK_FUNCTION_LIST* FaultInjectingFunctions(CK_FUNCTION_LIST* target,
                                          std::shared_ptr<FaultInjector> injector) {
  static CK_FUNCTION_LIST wrapped;
  static std::once_flag once;
  g_target.store(target);
  {
    const std::lock_guard lock(g_injector_mutex);
    g_injector = std::move(injector);
  }
  std::call_once(once, [] {
    wrapped = *g_target.load();
#define IJAZAT_USE(name) wrapped.name = Wrapped_##name
    IJAZAT_USE(C_Initialize);
    IJAZAT_USE(C_Finalize);
    IJAZAT_USE(C_GetInfo);
    IJAZAT_USE(C_GetSlotList);
    IJAZAT_USE(C_GetSlotInfo);
    IJAZAT_USE(C_GetTokenInfo);
    IJAZAT_USE(C_InitToken);
    IJAZAT_USE(C_InitPIN);
    IJAZAT_USE(C_OpenSession);
    IJAZAT_USE(C_CloseSession);
    IJAZAT_USE(C_CloseAllSessions);
    IJAZAT_USE(C_GetSessionInfo);
    IJAZAT_USE(C_Login);
    IJAZAT_USE(C_Logout);
    IJAZAT_USE(C_CreateObject);
    IJAZAT_USE(C_DestroyObject);
    IJAZAT_USE(C_GetAttributeValue);
    IJAZAT_USE(C_FindObjectsInit);
    IJAZAT_USE(C_FindObjects);
    IJAZAT_USE(C_FindObjectsFinal);
    IJAZAT_USE(C_EncryptInit);
    IJAZAT_USE(C_Encrypt);
    IJAZAT_USE(C_DecryptInit);
    IJAZAT_USE(C_Decrypt);
    IJAZAT_USE(C_SignInit);
    IJAZAT_USE(C_Sign);
    IJAZAT_USE(C_VerifyInit);
    IJAZAT_USE(C_Verify);
    IJAZAT_USE(C_GenerateKey);
    IJAZAT_USE(C_GenerateKeyPair);
    IJAZAT_USE(C_GenerateRandom);
#undef IJAZAT_USE
  });
  return &wrapped;
}

}  // namespace ijazat::hsm
