#include "ijazat/hsm/pin_source.h"

#include <endian.h>
#include <fcntl.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

namespace ijazat::hsm {
namespace {

constexpr std::size_t kMaxPinLength = 255;

Error PinError(const std::string& message) {
  return Error(ErrorCode::kFailedPrecondition, message, "pin_source");
}

Error UnsafeFileError(const std::string& message) {
  return Error(ErrorCode::kFailedPrecondition, message, "pin_file_unsafe");
}

std::string OctalMode(mode_t mode) {
  std::string octal = "0000";
  for (int digit = 3; digit >= 0; --digit) {
    octal[static_cast<std::size_t>(digit)] = static_cast<char>('0' + (mode & 07));
    mode >>= 3;
  }
  return octal;
}

// A file's POSIX access ACL, when it has one beyond the mode bits: whether it grants `user`
// read access, and whether it grants anything to any other named user or to any group.
struct AccessAcl {
  bool reads_user = false;
  bool grants_others = false;
};

std::optional<AccessAcl> ReadAccessAcl(int fd, uid_t user) {
  std::array<unsigned char, 4096> buffer{};
  const ssize_t size = ::fgetxattr(fd, "system.posix_acl_access", buffer.data(), buffer.size());
  constexpr std::size_t kHeader = sizeof(posix_acl_xattr_header);
  constexpr std::size_t kEntry = sizeof(posix_acl_xattr_entry);
  if (size < static_cast<ssize_t>(kHeader)) return std::nullopt;  // none (or unreadable)
  posix_acl_xattr_header header{};
  std::memcpy(&header, buffer.data(), kHeader);
  if (le32toh(header.a_version) != POSIX_ACL_XATTR_VERSION) return std::nullopt;
  unsigned mask = ACL_READ | ACL_WRITE | ACL_EXECUTE;
  std::vector<posix_acl_xattr_entry> entries;
  for (std::size_t at = kHeader; at + kEntry <= static_cast<std::size_t>(size); at += kEntry) {
    posix_acl_xattr_entry entry{};
    std::memcpy(&entry, buffer.data() + at, kEntry);
    if (le16toh(entry.e_tag) == ACL_MASK) mask = le16toh(entry.e_perm);
    entries.push_back(entry);
  }
  AccessAcl acl;
  for (const auto& entry : entries) {
    const unsigned granted = le16toh(entry.e_perm) & mask;
    switch (le16toh(entry.e_tag)) {
      case ACL_USER:
        if (le32toh(entry.e_id) == user) {
          acl.reads_user = (granted & ACL_READ) != 0;
        } else if (granted != 0) {
          acl.grants_others = true;
        }
        break;
      case ACL_GROUP_OBJ:
      case ACL_GROUP:
        if (granted != 0) acl.grants_others = true;
        break;
      default:  // the owner, the mask, others (the mode bits say the same)
        break;
    }
  }
  return acl;
}

// `subject` names the secret and where it came from ("the PIN file /etc/ijazat/hsm-pin").
Result<SecretString> Validate(std::string pin, const std::string& subject) {
  if (!pin.empty() && pin.back() == '\n') pin.pop_back();
  if (!pin.empty() && pin.back() == '\r') pin.pop_back();
  SecretString secret(std::move(pin));
  const std::string_view view = secret.UnsafeView();
  if (view.empty()) return PinError(subject + " is empty");
  if (view.size() > kMaxPinLength) return PinError(subject + " is longer than 255 bytes");
  if (view.find('\0') != std::string_view::npos || view.find('\n') != std::string_view::npos) {
    return PinError(subject + " contains a NUL byte or a line break");
  }
  return secret;
}

}  // namespace

std::string PinSource::Describe() const {
  return kind_ == Kind::kFile ? what_ + " file " + where_ : "environment variable " + where_;
}

Result<SecretString> PinSource::Read() const {
  if (kind_ == Kind::kEnvironment) {
    const char* value = std::getenv(where_.c_str());
    if (value == nullptr) return PinError("the environment variable " + where_ + " is not set");
    return Validate(value, "the " + what_ + " from the " + Describe());
  }

  const std::string file = "the " + Describe();
  const int fd = ::open(where_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ELOOP) {
    // O_NOFOLLOW: a link would let whoever can write its directory point the appliance at
    // another file.
    std::error_code ignored;
    const auto target = std::filesystem::read_symlink(where_, ignored);
    return PinError(file + " is a symbolic link" +
                    (target.empty() ? std::string() : " to " + target.string()) +
                    ": name the file itself in the configuration, not a link to it");
  }
  if (fd < 0) return PinError("cannot open " + file + ": " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return PinError(file + " is not a regular file");
  }
  // Only this process's user (and root, who reads everything anyway) may reach the secret:
  // not other users, not a group, whatever its members. Two shapes pass:
  //  - the file is this user's own, mode 0600 or 0400 (systemd's LoadCredential= on ramfs,
  //    Debian 12's default; Docker secrets set up as docs/operations.md says);
  //  - the file is root's, mode 0400 plus an access ACL that lets this user read it and
  //    grants nothing to any other user or group (LoadCredential= where the credentials
  //    file system takes ACLs: tmpfs, newer systemd). With an ACL, the mode's group bits are
  //    the ACL's mask, so they are judged through the ACL.
  const uid_t self = ::geteuid();
  const mode_t permissions = info.st_mode & 07777;
  const std::optional<AccessAcl> acl = ReadAccessAcl(fd, self);
  std::string unsafe;
  if ((info.st_mode & S_IRWXO) != 0) {
    unsafe = " is accessible to other users (mode " + OctalMode(permissions) + ")";
  } else if (acl && acl->grants_others) {
    unsafe = " is accessible to other users or groups through its ACL (getfacl shows them)";
  } else if (!acl && (info.st_mode & S_IRWXG) != 0) {
    unsafe = " is accessible to its group (mode " + OctalMode(permissions) + ")";
  }
  if (!unsafe.empty()) {
    ::close(fd);
    return UnsafeFileError(file + unsafe + "; restrict it to its owner: chmod 600 (or 400)");
  }
  const bool handed_by_root = info.st_uid == 0 && acl && acl->reads_user;
  if (info.st_uid != self && !handed_by_root) {
    ::close(fd);
    return UnsafeFileError(file + " is owned by uid " + std::to_string(info.st_uid) +
                           ", not by uid " + std::to_string(self) +
                           " that this process runs as; chown it to that user (systemd's "
                           "LoadCredential= hands the service its own copy)");
  }
  if (info.st_size > static_cast<off_t>(kMaxPinLength + 2)) {
    ::close(fd);
    return PinError(file + " is too large to hold a " + what_);
  }
  std::string content(kMaxPinLength + 2, '\0');
  std::size_t length = 0;
  while (length < content.size()) {
    const ssize_t n = ::read(fd, content.data() + length, content.size() - length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    length += static_cast<std::size_t>(n);
  }
  ::close(fd);
  content.resize(length);
  return Validate(std::move(content), file);
}

}  // namespace ijazat::hsm
