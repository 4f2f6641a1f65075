// POSIX access ACLs for tests, without libacl: the shape systemd's LoadCredential= gives a
// credential file when its file system takes ACLs (tmpfs): root's, mode 0400, and an ACL
// entry that lets the service user read it.
#pragma once

#include <gtest/gtest.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <sys/types.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ijazat::testing {

// Sets the access ACL of `path`: the owner reads, `user` reads, `group` (when given) reads,
// nothing else; the mask allows reading (it shows as the group bits of the mode: 0440).
inline void SetReadAcl(const std::filesystem::path& path, uid_t user,
                       std::optional<gid_t> group = std::nullopt) {
  constexpr auto kAny = static_cast<__le32>(ACL_UNDEFINED_ID);
  std::vector<posix_acl_xattr_entry> entries = {
      {ACL_USER_OBJ, ACL_READ, kAny}, {ACL_USER, ACL_READ, user}, {ACL_GROUP_OBJ, 0, kAny}};
  if (group) entries.push_back({ACL_GROUP, ACL_READ, *group});
  entries.push_back({ACL_MASK, ACL_READ, kAny});
  entries.push_back({ACL_OTHER, 0, kAny});
  const posix_acl_xattr_header header{POSIX_ACL_XATTR_VERSION};
  std::string value(sizeof(header) + entries.size() * sizeof(entries[0]), '\0');
  std::memcpy(value.data(), &header, sizeof(header));
  std::memcpy(value.data() + sizeof(header), entries.data(), entries.size() * sizeof(entries[0]));
  ASSERT_EQ(setxattr(path.c_str(), "system.posix_acl_access", value.data(), value.size(), 0), 0)
      << "setxattr " << path << ": " << std::strerror(errno);
}

}  // namespace ijazat::testing
