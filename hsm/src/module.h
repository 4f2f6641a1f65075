// A loaded PKCS#11 module: dlopen, C_GetFunctionList, C_Initialize with OS locking, and the
// reverse on destruction. One instance per module path per process, shared by everyone who
// opens it, because PKCS#11 initialisation is process-wide.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ijazat/common/result.h"
#include "ijazat/hsm/fault_injection.h"
#include "pkcs11.h"

namespace ijazat::hsm {

class Module {
 public:
  // The process's instance for `path`, loaded and initialised on first use.
  static Result<std::shared_ptr<Module>> Acquire(const std::string& path);
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& path() const { return path_; }
  // The module's own function list.
  CK_FUNCTION_LIST* functions() const { return functions_; }

  // C_Finalize then C_Initialize: the recovery of last resort. Callers must hold no sessions.
  // `functions` is the list to call through (the module's, or a fault-injecting wrapper).
  Status Reinitialize(CK_FUNCTION_LIST* functions);

  // Slots whose token is present (C_GetSlotList(CK_TRUE)).
  Result<std::vector<CK_SLOT_ID>> SlotsWithToken(CK_FUNCTION_LIST* functions) const;
  // The slot whose token has `label`; "token_not_found" lists the labels there are.
  Result<CK_SLOT_ID> FindSlotByLabel(CK_FUNCTION_LIST* functions, const std::string& label) const;

 private:
  Module(std::string path, void* handle, CK_FUNCTION_LIST* functions);
  static Status Initialize(CK_FUNCTION_LIST* functions);

  std::string path_;
  void* handle_;
  CK_FUNCTION_LIST* functions_;
  std::mutex init_mutex_;
};

// A function list that forwards to `target` after asking the process's attached
// FaultInjector. Attaching replaces any injector attached before.
CK_FUNCTION_LIST* FaultInjectingFunctions(CK_FUNCTION_LIST* target,
                                          std::shared_ptr<FaultInjector> injector);

// "ijazat-dev" from a blank-padded 32-byte CK_UTF8CHAR field.
std::string TrimPadded(const CK_UTF8CHAR* field, std::size_t size);

}  // namespace ijazat::hsm
