// The HTTPS server's certificate and key, checked as files before anything is bound, so that
// `ijazatd --check-config` and the start refuse the same mistakes with the same words.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ijazat/common/result.h"

namespace ijazat::appliance {

struct TlsFiles {
  std::string certificate;  // PEM: the server certificate first, then its chain
  std::string key;          // PEM: the certificate's private key, unencrypted
  std::string client_ca;    // PEM: CA certificates for client certificates; may be empty
};

// Checks that each file parses, that the key is the certificate's key, and that the key file
// is out of other users' reach: root's or this process's user's, not writable by its group,
// readable by its group only when this process is in that group (root:ijazat 0640, as the
// package installs it), nothing for others. On success returns warnings for an operator: a
// certificate that expired or expires within 30 days, or that is not valid yet.
//   "tls_invalid"     a file missing or unreadable, not PEM, an encrypted key, a key that is
//                     not the certificate's, a client CA file without a certificate;
//   "tls_key_unsafe"  the key file is readable or writable by other users, or not a regular
//                     file.
Result<std::vector<std::string>> CheckTlsFiles(const TlsFiles& files, std::int64_t now);

}  // namespace ijazat::appliance
