#include "module.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <system_error>

#include "ckr.h"

namespace ijazat::hsm {
namespace {

std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<Module>>& Registry() {
  static auto* registry = new std::map<std::string, std::weak_ptr<Module>>();
  return *registry;
}

}  // namespace

std::string TrimPadded(const CK_UTF8CHAR* field, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(field), size);
  const auto end = text.find_last_not_of(' ');
  text.erase(end == std::string::npos ? 0 : end + 1);
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

Module::Module(std::string path, void* handle, CK_FUNCTION_LIST* functions)
    : path_(std::move(path)), handle_(handle), functions_(functions) {}

Module::~Module() {
  functions_->C_Finalize(nullptr);
  dlclose(handle_);
}

Status Module::Initialize(CK_FUNCTION_LIST* functions) {
  // CKF_OS_LOCKING_OK: the module must lock with OS primitives. SoftHSM turns its locking off
  // entirely when C_Initialize is given NULL, and we call it from many threads.
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = functions->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
    return ErrorFromRv(rv, "C_Initialize");
  return OkStatus();
}

Result<std::shared_ptr<Module>> Module::Acquire(const std::string& path) {
  const std::lock_guard lock(registry_mutex);
  if (auto existing = Registry()[path].lock()) return existing;

  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Error(ErrorCode::kUnavailable,
                 "cannot load the PKCS#11 module " + path + ": " + (why ? why : "unknown error"),
                 "module_load_failed");
  }
  auto* get_function_list =
      reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
  CK_FUNCTION_LIST* functions = nullptr;
  if (get_function_list == nullptr || get_function_list(&functions) != CKR_OK ||
      functions == nullptr) {
    dlclose(handle);
    return Error(ErrorCode::kUnavailable,
                 path + " is not a PKCS#11 module (no usable C_GetFunctionList)",
                 "module_load_failed");
  }
  if (auto status = Initialize(functions); !status.ok()) {
    dlclose(handle);
    Error error = status.error().WithContext("initialising " + path);
    if (path.find("softhsm") != std::string::npos) {
      // SoftHSM fails C_Initialize with CKR_GENERAL_ERROR, and says no more, when it cannot
      // read its configuration file or reach the token directory that file names.
      const char* conf = std::getenv("SOFTHSM2_CONF");
      const std::string file =
          conf != nullptr && *conf != '\0' ? conf : "/etc/softhsm/softhsm2.conf";
      std::error_code ignored;
      const bool exists = std::filesystem::is_regular_file(file, ignored);
      error = Error(error.code(),
                    error.message() + "; SoftHSM reads its configuration from " + file +
                        (conf != nullptr && *conf != '\0' ? " (SOFTHSM2_CONF)"
                                                          : " (SOFTHSM2_CONF is not set)") +
                        (exists ? ": check that its directories.tokendir exists and that this "
                                  "user can read and write it"
                                : ", which does not exist or is not a file: set SOFTHSM2_CONF "
                                  "to the configuration of the token directory"),
                    error.reason());
    }
    return error;
  }
  std::shared_ptr<Module> module(new Module(path, handle, functions));
  Registry()[path] = module;
  return module;
}

Status Module::Reinitialize(CK_FUNCTION_LIST* functions) {
  const std::lock_guard lock(init_mutex_);
  functions->C_Finalize(nullptr);  // may fail if the module already lost its state; ignore
  return Initialize(functions);
}

Result<std::vector<CK_SLOT_ID>> Module::SlotsWithToken(CK_FUNCTION_LIST* functions) const {
  CK_ULONG count = 0;
  CK_RV rv = functions->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) return ErrorFromRv(rv, "C_GetSlotList");
  std::vector<CK_SLOT_ID> slots(count);
  if (count > 0) {
    rv = functions->C_GetSlotList(CK_TRUE, slots.data(), &count);
    if (rv != CKR_OK) return ErrorFromRv(rv, "C_GetSlotList");
    slots.resize(count);
  }
  return slots;
}

Result<CK_SLOT_ID> Module::FindSlotByLabel(CK_FUNCTION_LIST* functions,
                                           const std::string& label) const {
  IJAZAT_ASSIGN_OR_RETURN(auto slots, SlotsWithToken(functions));
  std::string seen;
  for (const CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    const CK_RV rv = functions->C_GetTokenInfo(slot, &info);
    if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED) continue;
    if (rv != CKR_OK) return ErrorFromRv(rv, "C_GetTokenInfo");
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    const std::string token_label = TrimPadded(info.label, sizeof info.label);
    if (token_label == label) return slot;
    seen += (seen.empty() ? "" : ", ") + ("\"" + token_label + "\"");
  }
  if (seen.empty()) {
    // Nothing to choose from: a network HSM's client that cannot reach the HSM shows no
    // token, as does SoftHSM with a token directory it cannot read. It may come back.
    return Error(ErrorCode::kUnavailable,
                 "no token labelled \"" + label + "\" in " + path_ +
                     ": the module shows no initialised token (a network HSM unreachable, or "
                     "SoftHSM's directories.tokendir empty or unreadable by this user)",
                 "no_tokens");
  }
  return Error(ErrorCode::kNotFound,
               "no token labelled \"" + label + "\" in " + path_ + " (tokens there: " + seen + ")",
               "token_not_found");
}

}  // namespace ijazat::hsm
