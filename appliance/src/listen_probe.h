// server.listen, tried before the HSM is opened, so that an address this machine does not have
// or a port the service may not bind is a configuration error (exit status 2) named at once,
// by the start and by --check-config alike.
#pragma once

#include <string>

#include "ijazat/common/result.h"

namespace ijazat::appliance {

// Resolves HOST:PORT and binds a socket to it, then closes it at once. On success returns a
// note for --check-config ("free", or "in use" when another process holds it: a serving
// appliance, which the check may run beside). Errors ("listen_invalid"): the host does not
// resolve, no interface has the address, or the port is privileged and this process may not
// bind it.
Result<std::string> ProbeListen(const std::string& listen);

}  // namespace ijazat::appliance
