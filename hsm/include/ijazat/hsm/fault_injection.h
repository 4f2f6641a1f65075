// Fault injection at the PKCS#11 boundary, for tests.
//
// When an HsmOptions carries a FaultInjector, the HSM layer calls the module through a
// function list that consults the injector before forwarding each call. Rules say which
// PKCS#11 function fails ("C_Sign"), from which call on, how many times, and with which
// return value; or how long it stalls. The recovery code then sees exactly what a failing
// network HSM would return. Only one injector can be attached in a process at a time.
// Thread safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace ijazat::hsm {

// PKCS#11 return values tests inject, without exposing pkcs11.h.
namespace rv {
inline constexpr unsigned long kGeneralError = 0x05;
inline constexpr unsigned long kDeviceError = 0x30;
inline constexpr unsigned long kDeviceRemoved = 0x32;
inline constexpr unsigned long kPinIncorrect = 0xA0;
inline constexpr unsigned long kSessionClosed = 0xB0;
inline constexpr unsigned long kSessionHandleInvalid = 0xB3;
inline constexpr unsigned long kTokenNotPresent = 0xE0;
inline constexpr unsigned long kUserNotLoggedIn = 0x101;
inline constexpr unsigned long kCryptokiNotInitialized = 0x190;
}  // namespace rv

class FaultInjector {
 public:
  // Calls to `function` fail with `return_value`, starting with its `nth` call from now
  // (1 = the next call), `count` times in a row (0 = until Clear()).
  void FailCall(const std::string& function, unsigned long return_value, int nth = 1,
                int count = 1);
  // Every call to `function` first sleeps for `delay`.
  void Delay(const std::string& function, std::chrono::milliseconds delay);
  void Clear();

  // How many times `function` was called through the injector (failed or not).
  int Calls(const std::string& function) const;
  // Every function called so far, with its count.
  std::map<std::string, int> AllCalls() const;
  // How many calls the injector has failed so far.
  int InjectedFailures() const;

  // Used by the wrapper: decides the fate of one call. Returns 0 to forward it.
  unsigned long OnCall(const char* function);

 private:
  struct Rule {
    unsigned long return_value = 0;
    int skip = 0;       // calls still to let through before failing
    int remaining = 0;  // failures still to inject; <0 means forever
  };
  mutable std::mutex mutex_;
  std::map<std::string, Rule> rules_;
  std::map<std::string, std::chrono::milliseconds> delays_;
  std::map<std::string, int> calls_;
  int injected_ = 0;
};

}  // namespace ijazat::hsm
