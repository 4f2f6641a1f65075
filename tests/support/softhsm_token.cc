#include "support/softhsm_token.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace ijazat::testing {

SoftHsmToken::SoftHsmToken(std::string label, bool initialize) : label_(std::move(label)) {
  const auto tokens = dir_.path() / "tokens";
  std::filesystem::create_directories(tokens);
  config_file_ = dir_.WriteFile("softhsm2.conf", "directories.tokendir = " + tokens.string() +
                                                     "\nobjectstore.backend = file\n"
                                                     "log.level = ERROR\n"
                                                     "slots.removable = false\n");
  user_pin_file_ = dir_.WriteFile("user.pin", user_pin_ + "\n");
  so_pin_file_ = dir_.WriteFile("so.pin", so_pin_ + "\n");
  setenv("SOFTHSM2_CONF", config_file_.c_str(), 1);
  if (initialize) {
    const auto result = RunCommand("softhsm2-util --init-token --free --label '" + label_ +
                                   "' --so-pin '" + so_pin_ + "' --pin '" + user_pin_ + "'");
    if (result.exit_code != 0) ADD_FAILURE() << "softhsm2-util failed: " << result.output;
  }
}

std::string SoftHsmToken::Environment() const {
  return "SOFTHSM2_CONF='" + config_file_.string() + "' ";
}

std::string SoftHsmToken::Pkcs11Tool(const std::string& arguments) const {
  return Environment() + "pkcs11-tool --module " + kSoftHsmModule + " --token-label '" + label_ +
         "' --login --pin '" + user_pin_ + "' " + arguments;
}

}  // namespace ijazat::testing
