// Where the HSM user PIN (or SO PIN) comes from: a file or an environment variable.
// Never argv, never a configuration value, never a log line.
#pragma once

#include <string>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"

namespace ijazat::hsm {

class PinSource {
 public:
  enum class Kind { kFile, kEnvironment };

  // `what` names the secret in messages ("PIN", "SMS gateway secret", ...).
  static PinSource File(std::string path, std::string what = "PIN") {
    return PinSource(Kind::kFile, std::move(path), std::move(what));
  }
  static PinSource Environment(std::string variable) {
    return PinSource(Kind::kEnvironment, std::move(variable), "PIN");
  }

  Kind kind() const { return kind_; }
  // The file path or the variable name (never the PIN).
  const std::string& where() const { return where_; }
  std::string Describe() const;

  // Reads the PIN; one trailing newline is dropped. A file must be a regular file (not a
  // symbolic link) that only the effective user of this process can reach: either its own
  // with mode 0600 or 0400, or root's with mode 0400 and an ACL that lets this user read it
  // and grants nothing to anyone else. Those are the two shapes of systemd's LoadCredential=
  // (file ownership on ramfs, an ACL on tmpfs). Any group access is refused. Errors:
  //   "pin_file_unsafe"  the file's owner or mode is wrong (the message says which, and how
  //                      to fix it);
  //   "pin_source"       missing file or variable, not a regular file, empty PIN, PIN longer
  //                      than 255 bytes or containing a NUL or newline.
  Result<SecretString> Read() const;

 private:
  PinSource(Kind kind, std::string where, std::string what)
      : kind_(kind), where_(std::move(where)), what_(std::move(what)) {}
  Kind kind_;
  std::string where_;
  std::string what_;
};

}  // namespace ijazat::hsm
