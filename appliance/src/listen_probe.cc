#include "listen_probe.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace ijazat::appliance {
namespace {

Error Invalid(const std::string& message) {
  return Error(ErrorCode::kFailedPrecondition, "server.listen " + message, "listen_invalid");
}

}  // namespace

Result<std::string> ProbeListen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Invalid("\"" + listen + "\" is not HOST:PORT");
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (const int resolved = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
      resolved != 0) {
    return Invalid("\"" + listen + "\": the host does not resolve (" + ::gai_strerror(resolved) +
                   ")");
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  const int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd < 0) return Invalid("\"" + listen + "\": no socket: " + std::strerror(errno));
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  const int bound = ::bind(fd, found->ai_addr, found->ai_addrlen);
  const int error = errno;
  ::close(fd);
  if (bound == 0) return std::string("free");
  switch (error) {
    case EADDRINUSE:
      return std::string("in use by another process (a serving appliance?)");
    case EADDRNOTAVAIL:
      return Invalid("\"" + listen + "\": no interface of this machine has that address");
    case EACCES:
      return Invalid("\"" + listen +
                     "\": this process may not bind that port (below 1024 it needs "
                     "CAP_NET_BIND_SERVICE, which the packaged unit does not grant): use 8443");
    default:
      return Invalid("\"" + listen + "\": cannot bind: " + std::strerror(error));
  }
}

}  // namespace ijazat::appliance
