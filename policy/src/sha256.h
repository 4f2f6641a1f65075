// SHA-256 through OpenSSL, kept private so that no public header depends on OpenSSL.
#pragma once

#include <string_view>

#include "ijazat/common/bytes.h"

namespace ijazat::policy::internal {

// 32 bytes. Aborts only if OpenSSL cannot compute a SHA-256 at all (a broken installation).
Bytes Sha256(ByteView data);
inline Bytes Sha256(std::string_view text) { return Sha256(AsBytes(text)); }

}  // namespace ijazat::policy::internal
