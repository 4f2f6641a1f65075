// A fresh SoftHSM token per test and the HSM layer opened on it.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "ijazat/hsm/pkcs11_hsm.h"
#include "support/result_matchers.h"
#include "support/softhsm_token.h"

namespace ijazat::hsm {

class HsmTest : public ::testing::Test {
 protected:
  HsmOptions Options() const {
    HsmOptions options;
    options.module_path = testing::kSoftHsmModule;
    options.token_label = token_.label();
    options.pin = PinSource::File(token_.user_pin_file());
    return options;
  }

  std::unique_ptr<Pkcs11Hsm> OpenOrDie(const HsmOptions& options) {
    auto hsm = Pkcs11Hsm::Open(options);
    if (!hsm.ok()) {
      ADD_FAILURE() << "Open: " << hsm.error().message();
      return nullptr;
    }
    return std::move(hsm).value();
  }

  // Opened, with version 1 of every key.
  std::unique_ptr<Pkcs11Hsm> Provisioned(const HsmOptions& options) {
    auto hsm = OpenOrDie(options);
    if (hsm == nullptr) return nullptr;
    for (const KeyKind kind : kAllKeyKinds) {
      const auto created = hsm->GenerateKey(kind);
      if (!created.ok()) ADD_FAILURE() << "GenerateKey: " << created.error().message();
    }
    return hsm;
  }
  std::unique_ptr<Pkcs11Hsm> Provisioned() { return Provisioned(Options()); }

  testing::SoftHsmToken token_;
};

}  // namespace ijazat::hsm
