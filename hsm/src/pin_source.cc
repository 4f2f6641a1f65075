#include "ijazat/hsm/pin_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ijazat::hsm {
namespace {

constexpr std::size_t kMaxPinLength = 255;

Error PinError(const std::string& message) {
  return Error(ErrorCode::kFailedPrecondition, message, "pin_source");
}

Result<SecretString> Validate(std::string pin, const std::string& where) {
  if (!pin.empty() && pin.back() == '\n') pin.pop_back();
  if (!pin.empty() && pin.back() == '\r') pin.pop_back();
  SecretString secret(std::move(pin));
  const std::string_view view = secret.UnsafeView();
  if (view.empty()) return PinError("the PIN from " + where + " is empty");
  if (view.size() > kMaxPinLength) {
    return PinError("the PIN from " + where + " is longer than 255 bytes");
  }
  if (view.find('\0') != std::string_view::npos || view.find('\n') != std::string_view::npos) {
    return PinError("the PIN from " + where + " contains a NUL byte or a line break");
  }
  return secret;
}

}  // namespace

std::string PinSource::Describe() const {
  return kind_ == Kind::kFile ? "PIN file " + where_ : "environment variable " + where_;
}

Result<SecretString> PinSource::Read() const {
  if (kind_ == Kind::kEnvironment) {
    const char* value = std::getenv(where_.c_str());
    if (value == nullptr) return PinError("the environment variable " + where_ + " is not set");
    return Validate(value, Describe());
  }

  const int fd = ::open(where_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return PinError("cannot open the PIN file " + where_ + ": " + std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return PinError("the PIN file " + where_ + " is not a regular file");
  }
  if ((info.st_mode & S_IRWXO) != 0) {
    ::close(fd);
    return PinError("the PIN file " + where_ +
                    " is accessible to other users; restrict it (chmod 600 or 400)");
  }
  if (info.st_size > static_cast<off_t>(kMaxPinLength + 2)) {
    ::close(fd);
    return PinError("the PIN file " + where_ + " is too large to hold a PIN");
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
  return Validate(std::move(content), Describe());
}

}  // namespace ijazat::hsm
