#include "ijazat/hsm/key_model.h"

#include <charconv>

namespace ijazat::hsm {

std::string_view KeyKindName(KeyKind kind) {
  switch (kind) {
    case KeyKind::kOtp:
      return "otp";
    case KeyKind::kReceipt:
      return "receipt";
    case KeyKind::kIndex:
      return "index";
    case KeyKind::kData:
      return "data";
    case KeyKind::kLog:
      return "log";
  }
  return "unknown";
}

std::optional<KeyKind> ParseKeyKind(std::string_view name) {
  for (const KeyKind kind : kAllKeyKinds) {
    if (KeyKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string_view KeyKindMechanism(KeyKind kind) {
  switch (kind) {
    case KeyKind::kOtp:
    case KeyKind::kIndex:
      return "CKM_SHA256_HMAC";
    case KeyKind::kReceipt:
      return "CKM_ECDSA";
    case KeyKind::kData:
      return "CKM_AES_GCM";
    case KeyKind::kLog:
      return "CKM_EDDSA";
  }
  return "unknown";
}

std::string KeyRef::Label() const {
  return std::string(KeyKindName(kind)) + "/v" + std::to_string(version);
}

std::optional<KeyRef> ParseKeyLabel(std::string_view label) {
  const auto slash = label.find("/v");
  if (slash == std::string_view::npos) return std::nullopt;
  const auto kind = ParseKeyKind(label.substr(0, slash));
  const std::string_view digits = label.substr(slash + 2);
  if (!kind || digits.empty() || digits.size() > 9 || digits.front() == '0') return std::nullopt;
  std::uint32_t version = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return KeyRef{*kind, version};
}

std::string_view KeyStateName(KeyState state) {
  switch (state) {
    case KeyState::kActive:
      return "active";
    case KeyState::kVerifyOnly:
      return "verify-only";
    case KeyState::kRetired:
      return "retired";
    case KeyState::kDestroyed:
      return "destroyed";
  }
  return "unknown";
}

}  // namespace ijazat::hsm
