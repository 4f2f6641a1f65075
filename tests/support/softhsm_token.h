// A fresh SoftHSM token in a private temporary directory, for one test.
//
// SoftHSM reads SOFTHSM2_CONF when the module is initialised, and it is a process-wide
// singleton: create one SoftHsmToken per test process (the suite runs each test case in its own
// process) before anything loads the module. The token is initialised with softhsm2-util, so
// tests of our own C_InitToken code do not depend on it.
#pragma once

#include <filesystem>
#include <string>

#include "support/temp_dir.h"

namespace ijazat::testing {

inline constexpr char kSoftHsmModule[] = "/usr/lib/softhsm/libsofthsm2.so";

class SoftHsmToken {
 public:
  // Writes the configuration and points SOFTHSM2_CONF at it; when `initialize` is true also
  // initialises a token labelled `label` with the PINs below.
  explicit SoftHsmToken(std::string label = "ijazat-test", bool initialize = true);

  const std::string& label() const { return label_; }
  const std::string& user_pin() const { return user_pin_; }
  const std::string& so_pin() const { return so_pin_; }
  // Files holding the PINs, mode 0600.
  const std::filesystem::path& user_pin_file() const { return user_pin_file_; }
  const std::filesystem::path& so_pin_file() const { return so_pin_file_; }
  const std::filesystem::path& config_file() const { return config_file_; }
  const TempDir& dir() const { return dir_; }

  // Environment assignments for a child process ("SOFTHSM2_CONF=... ").
  std::string Environment() const;
  // pkcs11-tool with module, token and user login options, for independent checks.
  std::string Pkcs11Tool(const std::string& arguments) const;

 private:
  TempDir dir_;
  std::string label_;
  std::string user_pin_ = "1234-user";
  std::string so_pin_ = "5678-so";
  std::filesystem::path user_pin_file_;
  std::filesystem::path so_pin_file_;
  std::filesystem::path config_file_;
};

}  // namespace ijazat::testing
