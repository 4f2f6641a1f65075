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

  static PinSource File(std::string path) { return PinSource(Kind::kFile, std::move(path)); }
  static PinSource Environment(std::string variable) {
    return PinSource(Kind::kEnvironment, std::move(variable));
  }

  Kind kind() const { return kind_; }
  // The file path or the variable name (never the PIN).
  const std::string& where() const { return where_; }
  std::string Describe() const;

  // Reads the PIN. A file must be a regular file that "others" cannot read or write; one
  // trailing newline is dropped. Errors (reason "pin_source"): missing file or variable,
  // unsafe permissions, empty PIN, PIN longer than 255 bytes or containing a NUL or newline.
  Result<SecretString> Read() const;

 private:
  PinSource(Kind kind, std::string where) : kind_(kind), where_(std::move(where)) {}
  Kind kind_;
  std::string where_;
};

}  // namespace ijazat::hsm
