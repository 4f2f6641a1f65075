// One-time codes computed through the HSM's HMAC: RFC 4226 dynamic truncation.
#pragma once

#include <cstdint>
#include <string>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"
#include "ijazat/hsm/hsm.h"

namespace ijazat::hsm {

// RFC 4226 §5.3 dynamic truncation of an HMAC to `digits` decimal digits (6 to 9), zero-padded.
// Precondition: mac.size() >= 20.
std::string TruncateToDigits(ByteView mac, int digits);

// HOTP(K, counter) with the key in the HSM (RFC 4226); with a time step counter it is TOTP
// (RFC 6238).
Result<std::string> Hotp(Hsm& hsm, const KeyRef& key, std::uint64_t counter, int digits,
                         HmacHash hash = HmacHash::kSha1);

}  // namespace ijazat::hsm
