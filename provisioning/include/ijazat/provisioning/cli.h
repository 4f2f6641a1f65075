// ijazat-provision: the security team's tool for the appliance's keys.
//
// RunProvision parses the arguments, talks to the HSM and writes results to `out` and problems
// to `err`; it returns the process exit code (see ExitCode and docs/provisioning.md). It never
// takes a PIN from the arguments.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ijazat::provisioning {

enum ExitCode : int {
  kExitOk = 0,
  kExitDeviations = 1,  // check: at least one key differs from its template
  kExitUsage = 2,       // unknown command or option, missing or malformed argument
  kExitModule = 3,      // the PKCS#11 module cannot be loaded
  kExitToken = 4,       // no token with the label (or, for init-token, no free slot)
  kExitPin = 5,         // PIN source unreadable or unsafe, PIN wrong or locked
  kExitExists = 6,      // the key or token exists already
  kExitUnknownKey = 7,  // no such key or version
  kExitKeyState = 8,    // the key's state forbids it (retire the active version, ...)
  kExitHsm = 9,         // the HSM failed or is unavailable
};

int RunProvision(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ijazat::provisioning
