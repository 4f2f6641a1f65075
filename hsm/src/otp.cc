#include "ijazat/hsm/otp.h"

#include <array>

namespace ijazat::hsm {

std::string TruncateToDigits(ByteView mac, int digits) {
  const std::size_t offset = mac[mac.size() - 1] & 0x0f;
  const std::uint32_t binary = (static_cast<std::uint32_t>(mac[offset] & 0x7f) << 24) |
                               (static_cast<std::uint32_t>(mac[offset + 1]) << 16) |
                               (static_cast<std::uint32_t>(mac[offset + 2]) << 8) |
                               static_cast<std::uint32_t>(mac[offset + 3]);
  std::uint32_t modulus = 1;
  for (int i = 0; i < digits; ++i) modulus *= 10;
  std::string code = std::to_string(binary % modulus);
  return std::string(static_cast<std::size_t>(digits) - code.size(), '0') + code;
}

Result<std::string> Hotp(Hsm& hsm, const KeyRef& key, std::uint64_t counter, int digits,
                         HmacHash hash) {
  if (digits < 6 || digits > 9) {
    return Error(ErrorCode::kInvalidArgument, "one-time codes have 6 to 9 digits");
  }
  std::array<std::uint8_t, 8> message{};
  for (int i = 7; i >= 0; --i) {
    message[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(counter & 0xff);
    counter >>= 8;
  }
  IJAZAT_ASSIGN_OR_RETURN(const Bytes mac, hsm.Hmac(key, message, hash));
  return TruncateToDigits(mac, digits);
}

}  // namespace ijazat::hsm
