#include "https_front.h"

#include <Poco/Exception.h>
#include <Poco/Net/SocketAddress.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http_util.h"

namespace ijazat::appliance {

using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kListenTag = 0;
constexpr std::uint64_t kWakeTag = 1;
constexpr auto kSweepEvery = std::chrono::milliseconds(100);
constexpr int kMaxAcceptsPerWake = 64;
constexpr auto kLingerFor = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = std::size_t{1} << 20;

bool IsLoopback(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    return (ntohl(v4.sin_addr.s_addr) >> 24) == 127;
  }
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    if (IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) && v6.sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

std::string AddressText(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (address.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text, sizeof text);
  } else if (address.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text,
              sizeof text);
  }
  return text;
}

// The headers every response carries, whoever made it: the handler, or the front end itself
// (a framing error, the full queue, a handler that threw). Cache-Control is no-store unless
// the handler gave one (the published keys may be cached).
constexpr std::pair<const char*, const char*> kEveryResponse[] = {
    {"Cache-Control", "no-store"},
    {"Strict-Transport-Security", "max-age=63072000"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
    {"Referrer-Policy", "no-referrer"}};

bool SameName(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// The bytes of a response, with the headers of kEveryResponse that it lacks: the one way a
// response leaves the front end.
std::string Wire(HttpResponse response, bool keep_alive, bool head_only) {
  for (const auto& [name, value] : kEveryResponse) {
    bool given = false;
    for (const auto& header : response.headers) given = given || SameName(header.first, name);
    if (!given) response.headers.emplace_back(name, value);
  }
  return SerializeHttpResponse(response, keep_alive, head_only, HttpDate(time(nullptr)));
}

// SHA-256 of the DER of a verified client certificate, or "".
std::string PeerCertificateDigest(SSL* ssl) {
  X509* certificate = SSL_get1_peer_certificate(ssl);
  if (certificate == nullptr) return "";
  std::string digest;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    unsigned char* der = nullptr;
    const int length = i2d_X509(certificate, &der);
    if (length > 0) {
      unsigned char sha[SHA256_DIGEST_LENGTH];
      SHA256(der, static_cast<std::size_t>(length), sha);
      digest.assign(reinterpret_cast<const char*>(sha), sizeof sha);
    }
    OPENSSL_free(der);
  }
  X509_free(certificate);
  return digest;
}

}  // namespace

class HttpsFrontEnd::Impl {
 public:
  Impl(FrontEndOptions options, SSL_CTX* tls, Handler handler)
      : options_(std::move(options)), tls_(tls), handler_(std::move(handler)) {
    SSL_CTX_up_ref(tls_);
  }
  ~Impl() {
    Stop(std::chrono::milliseconds(0));
    SSL_CTX_free(tls_);
  }

  Status Start();
  void Stop(std::chrono::milliseconds grace);
  int port() const { return port_; }
  const FrontEndCounters& counters() const { return counters_; }

 private:
  struct Connection {
    // kLingering: an error answered and the connection being closed, while what the client
    // still sends is read and dropped, so that the client reads the answer rather than a reset.
    enum class Phase { kHandshake, kReading, kProcessing, kWriting, kLingering };
    std::uint64_t id = 0;
    int fd = -1;
    SSL* ssl = nullptr;
    Phase phase = Phase::kHandshake;
    std::string in;
    std::string out;
    std::size_t out_offset = 0;
    SteadyClock::time_point deadline;
    bool has_deadline = true;
    bool idle = false;           // between requests: the keep-alive deadline applies
    bool continue_sent = false;  // "100 Continue" sent for the request being read
    bool close_after_write = false;
    bool linger = false;  // after the response, drain the client's input before closing
    std::size_t linger_budget = 0;
    bool in_request = false;     // counted in requests_in_progress_
    bool registered = true;      // in the loop's epoll set
    bool peer_gone = false;      // hung up while its request was being handled
    bool want_write = false;     // the last TLS call asked to write
    bool peer_finished = false;  // the client closed its sending side
    std::uint32_t interest = 0;
    int served = 0;
    std::string client_address;
    bool client_loopback = false;
    std::string peer_sha256;
  };

  struct Completion {
    std::uint64_t id;
    std::string bytes;
    bool close;
  };

  struct Loop {
    int epoll_fd = -1;
    int wake_fd = -1;
    std::thread thread;
    std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections;
    std::uint64_t next_id = 2;
    bool listening = false;
    std::mutex completions_mutex;
    std::vector<Completion> completions;
    std::atomic<bool> exit{false};
  };

  struct Job {
    Loop* loop;
    std::uint64_t id;
    HttpRequest request;
    bool keep_alive;
  };

  void RunLoop(Loop& loop);
  void Wake(Loop& loop);
  void Accept(Loop& loop);
  void Sweep(Loop& loop);
  void TakeCompletions(Loop& loop);
  // Moves a connection as far as it can go without blocking; false when it was closed.
  bool Drive(Loop& loop, Connection& c);
  bool Handshake(Loop& loop, Connection& c);
  bool Flush(Loop& loop, Connection& c);
  bool FinishResponse(Loop& loop, Connection& c);
  bool ReadAndParse(Loop& loop, Connection& c);
  bool Linger(Loop& loop, Connection& c);
  bool Respond(Loop& loop, Connection& c, std::string bytes, bool close);
  void SetInterest(Loop& loop, Connection& c, std::uint32_t events);
  void Close(Loop& loop, Connection& c);
  // Close() after a close_notify, for connections that end in good order (the client finished,
  // an idle keep-alive ran out): the TLS session then stays in the server's cache for
  // resumption. Close() alone leaves the session out, as OpenSSL does after any error.
  void CloseOrderly(Loop& loop, Connection& c);
  // An answer of the front end's own, as a problem: X-Request-Id and the problem's instance
  // name it `edge-N` for the operator, as the handler's answers name their request.
  HttpResponse EdgeProblem(int status, const char* reason, const std::string& detail);
  // The wire bytes of the answer to a request the front end does not hand over: one whose
  // framing is lost (or too large), or one that finds the queue full (`head_only` for a HEAD).
  std::string FramingError(int status, const std::string& message, bool head_only = false);

  void RunWorker();

  FrontEndOptions options_;
  SSL_CTX* tls_;
  Handler handler_;
  FrontEndCounters counters_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<bool> draining_{false};
  std::atomic<int> requests_in_progress_{0};
  std::atomic<std::uint64_t> edge_answers_{0};
  bool stopped_ = false;
  std::mutex stop_mutex_;

  std::mutex jobs_mutex_;
  std::condition_variable jobs_ready_;
  std::deque<Job> jobs_;
  bool workers_stop_ = false;
  std::vector<std::thread> workers_;
};

Status HttpsFrontEnd::Impl::Start() {
  // A client that vanishes must not kill the process when a response is written to it.
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
  Poco::Net::SocketAddress address;
  try {
    address = Poco::Net::SocketAddress(options_.listen);
  } catch (const Poco::Exception& e) {
    return Error(ErrorCode::kInvalidArgument,
                 "cannot resolve " + options_.listen + ": " + e.displayText(),
                 "server_start_failed");
  }
  listen_fd_ = ::socket(address.family() == Poco::Net::SocketAddress::IPv6 ? AF_INET6 : AF_INET,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    return Error(ErrorCode::kFailedPrecondition,
                 std::string("cannot create a socket: ") + std::strerror(errno),
                 "server_start_failed");
  }
  const int on = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (::bind(listen_fd_, address.addr(), address.length()) != 0 ||
      ::listen(listen_fd_, 1024) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(listen_fd_);
    listen_fd_ = -1;
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot listen on " + options_.listen + ": " + reason, "server_start_failed");
  }
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(bound).sin6_port
                                            : reinterpret_cast<const sockaddr_in&>(bound).sin_port);

  // Every connection takes a descriptor: raise the soft limit as far as the hard one allows.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    const rlim_t wanted = static_cast<rlim_t>(options_.max_connections) + 256;
    if (files.rlim_cur < wanted) {
      files.rlim_cur = std::min(wanted, files.rlim_max);
      setrlimit(RLIMIT_NOFILE, &files);
      getrlimit(RLIMIT_NOFILE, &files);
    }
    if (files.rlim_cur < wanted) {
      options_.max_connections = static_cast<int>(std::max<rlim_t>(files.rlim_cur / 2, 16));
    }
  }

  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    auto loop = std::make_unique<Loop>();
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epoll_fd < 0 || loop->wake_fd < 0) {
      return Error(ErrorCode::kFailedPrecondition,
                   std::string("cannot create an event loop: ") + std::strerror(errno),
                   "server_start_failed");
    }
    epoll_event wake{};
    wake.events = EPOLLIN;
    wake.data.u64 = kWakeTag;
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->wake_fd, &wake);
    epoll_event listen{};
    listen.events = EPOLLIN | EPOLLEXCLUSIVE;
    listen.data.u64 = kListenTag;
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, listen_fd_, &listen);
    loop->listening = true;
    loops_.push_back(std::move(loop));
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { RunWorker(); });
  }
  for (auto& loop : loops_) {
    Loop* raw = loop.get();
    raw->thread = std::thread([this, raw] { RunLoop(*raw); });
  }
  return OkStatus();
}

void HttpsFrontEnd::Impl::Stop(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(stop_mutex_);
  if (stopped_) return;
  stopped_ = true;
  draining_ = true;
  for (auto& loop : loops_) Wake(*loop);
  const auto deadline = SteadyClock::now() + grace;
  while (requests_in_progress_.load() > 0 && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& loop : loops_) {
    loop->exit = true;
    Wake(*loop);
  }
  for (auto& loop : loops_) {
    if (loop->thread.joinable()) loop->thread.join();
  }
  {
    std::lock_guard<std::mutex> jobs_lock(jobs_mutex_);
    workers_stop_ = true;
  }
  jobs_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
  for (auto& loop : loops_) {
    if (loop->wake_fd >= 0) ::close(loop->wake_fd);
    if (loop->epoll_fd >= 0) ::close(loop->epoll_fd);
  }
  loops_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void HttpsFrontEnd::Impl::Wake(Loop& loop) {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(loop.wake_fd, &one, sizeof one);
}

void HttpsFrontEnd::Impl::RunLoop(Loop& loop) {
  std::vector<epoll_event> events(256);
  auto last_sweep = SteadyClock::now();
  while (!loop.exit.load()) {
    const int n = epoll_wait(loop.epoll_fd, events.data(), static_cast<int>(events.size()),
                             static_cast<int>(kSweepEvery.count()));
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        Accept(loop);
      } else if (tag == kWakeTag) {
        std::uint64_t count = 0;
        [[maybe_unused]] const ssize_t r = ::read(loop.wake_fd, &count, sizeof count);
        TakeCompletions(loop);
        if (draining_.load()) Sweep(loop);
      } else {
        const auto found = loop.connections.find(tag);
        if (found == loop.connections.end()) continue;
        Connection& c = *found->second;
        if (c.phase == Connection::Phase::kProcessing) {
          // Only hang-ups and errors are reported while a worker has the request.
          c.peer_gone = true;
          epoll_ctl(loop.epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
          c.registered = false;
          continue;
        }
        Drive(loop, c);
      }
    }
    const auto now = SteadyClock::now();
    if (now - last_sweep >= kSweepEvery) {
      last_sweep = now;
      Sweep(loop);
    }
  }
  std::vector<std::uint64_t> ids;
  ids.reserve(loop.connections.size());
  for (const auto& [id, connection] : loop.connections) ids.push_back(id);
  for (const std::uint64_t id : ids) Close(loop, *loop.connections.at(id));
}

void HttpsFrontEnd::Impl::Accept(Loop& loop) {
  for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: stop listening in this loop until the next sweep.
        epoll_ctl(loop.epoll_fd, EPOLL_CTL_DEL, listen_fd_, nullptr);
        loop.listening = false;
      }
      return;
    }
    if (draining_.load() ||
        counters_.open_connections.load() >= static_cast<std::int64_t>(options_.max_connections)) {
      if (!draining_.load()) ++counters_.refused_at_capacity;
      ::close(fd);
      continue;
    }
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    SSL* ssl = SSL_new(tls_);
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
      if (ssl != nullptr) SSL_free(ssl);
      ::close(fd);
      ERR_clear_error();
      continue;
    }
    SSL_set_accept_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    auto connection = std::make_unique<Connection>();
    connection->id = loop.next_id++;
    connection->fd = fd;
    connection->ssl = ssl;
    connection->deadline = SteadyClock::now() + options_.request_timeout;
    connection->client_address = AddressText(peer);
    connection->client_loopback = IsLoopback(peer);
    connection->interest = EPOLLIN;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = connection->id;
    if (epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      SSL_free(ssl);
      ::close(fd);
      continue;
    }
    ++counters_.accepted;
    ++counters_.open_connections;
    loop.connections.emplace(connection->id, std::move(connection));
  }
}

void HttpsFrontEnd::Impl::Sweep(Loop& loop) {
  // While draining the loops keep accepting, to close new connections at once rather than
  // leave them unanswered in the backlog until the listening socket closes.
  if (!loop.listening) {
    epoll_event listen{};
    listen.events = EPOLLIN | EPOLLEXCLUSIVE;
    listen.data.u64 = kListenTag;
    loop.listening = epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, listen_fd_, &listen) == 0;
  }
  const auto now = SteadyClock::now();
  std::vector<std::uint64_t> expired;
  std::vector<std::uint64_t> idle_expired;
  for (const auto& [id, connection] : loop.connections) {
    const Connection& c = *connection;
    if (c.phase == Connection::Phase::kProcessing) continue;
    const bool idle = c.phase == Connection::Phase::kReading && c.in.empty() && c.out.empty();
    if (draining_.load() && idle) {
      idle_expired.push_back(id);
    } else if (c.has_deadline && now >= c.deadline) {
      if (c.phase != Connection::Phase::kLingering) ++counters_.timeouts;
      (idle && c.idle ? idle_expired : expired).push_back(id);
    }
  }
  for (const std::uint64_t id : expired) Close(loop, *loop.connections.at(id));
  for (const std::uint64_t id : idle_expired) CloseOrderly(loop, *loop.connections.at(id));
}

void HttpsFrontEnd::Impl::TakeCompletions(Loop& loop) {
  std::vector<Completion> done;
  {
    std::lock_guard<std::mutex> lock(loop.completions_mutex);
    done.swap(loop.completions);
  }
  for (Completion& completion : done) {
    const auto found = loop.connections.find(completion.id);
    if (found == loop.connections.end()) continue;
    Connection& c = *found->second;
    if (c.peer_gone) {
      Close(loop, c);
      continue;
    }
    Respond(loop, c, std::move(completion.bytes), completion.close || draining_.load());
  }
}

bool HttpsFrontEnd::Impl::Respond(Loop& loop, Connection& c, std::string bytes, bool close) {
  c.phase = Connection::Phase::kWriting;
  c.out = std::move(bytes);
  c.out_offset = 0;
  c.close_after_write = close;
  c.has_deadline = true;
  c.deadline = SteadyClock::now() + options_.request_timeout;
  return Drive(loop, c);
}

bool HttpsFrontEnd::Impl::Drive(Loop& loop, Connection& c) {
  if (c.phase == Connection::Phase::kHandshake && !Handshake(loop, c)) return false;
  if (c.phase == Connection::Phase::kHandshake) return true;  // waiting for the client
  if (c.out_offset < c.out.size()) {
    if (!Flush(loop, c)) return false;
    if (c.out_offset < c.out.size()) return true;  // waiting to write
  }
  if (c.phase == Connection::Phase::kWriting && !FinishResponse(loop, c)) return false;
  if (c.phase == Connection::Phase::kReading) return ReadAndParse(loop, c);
  if (c.phase == Connection::Phase::kLingering) return Linger(loop, c);
  return true;
}

bool HttpsFrontEnd::Impl::Linger(Loop& loop, Connection& c) {
  char buffer[16384];
  while (true) {
    ERR_clear_error();
    const int n = SSL_read(c.ssl, buffer, sizeof buffer);
    if (n > 0 && static_cast<std::size_t>(n) < c.linger_budget) {
      c.linger_budget -= static_cast<std::size_t>(n);
      continue;
    }
    if (n <= 0 && SSL_get_error(c.ssl, n) == SSL_ERROR_WANT_READ) return true;
    ERR_clear_error();
    Close(loop, c);  // the client finished, failed, or sent more than we drain
    return false;
  }
}

bool HttpsFrontEnd::Impl::Handshake(Loop& loop, Connection& c) {
  ERR_clear_error();
  const int result = SSL_do_handshake(c.ssl);
  if (result == 1) {
    c.peer_sha256 = PeerCertificateDigest(c.ssl);
    c.phase = Connection::Phase::kReading;
    return true;
  }
  const int error = SSL_get_error(c.ssl, result);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    SetInterest(loop, c, error == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
    return true;
  }
  ++counters_.handshake_failures;
  ERR_clear_error();
  Close(loop, c);
  return false;
}

bool HttpsFrontEnd::Impl::Flush(Loop& loop, Connection& c) {
  while (c.out_offset < c.out.size()) {
    ERR_clear_error();
    const int n =
        SSL_write(c.ssl, c.out.data() + c.out_offset,
                  static_cast<int>(std::min<std::size_t>(c.out.size() - c.out_offset, 1 << 30)));
    if (n > 0) {
      c.out_offset += static_cast<std::size_t>(n);
      continue;
    }
    const int error = SSL_get_error(c.ssl, n);
    if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
      SetInterest(loop, c, error == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
      return true;
    }
    ERR_clear_error();
    Close(loop, c);
    return false;
  }
  c.out.clear();
  c.out_offset = 0;
  return true;
}

bool HttpsFrontEnd::Impl::FinishResponse(Loop& loop, Connection& c) {
  if (c.in_request) {
    c.in_request = false;
    --requests_in_progress_;
  }
  if (c.close_after_write || draining_.load()) {
    ERR_clear_error();
    SSL_shutdown(c.ssl);  // best effort: a close_notify, without waiting for the client's
    if (c.linger && !draining_.load()) {
      ::shutdown(c.fd, SHUT_WR);
      c.phase = Connection::Phase::kLingering;
      c.has_deadline = true;
      c.deadline = SteadyClock::now() + kLingerFor;
      c.linger_budget = kLingerBytes;
      std::string().swap(c.in);
      SetInterest(loop, c, EPOLLIN);
      return Linger(loop, c);
    }
    Close(loop, c);
    return false;
  }
  c.phase = Connection::Phase::kReading;
  c.idle = c.in.empty();
  // An idle connection keeps no buffers: thousands of them must stay cheap.
  if (c.idle) std::string().swap(c.in);
  std::string().swap(c.out);
  c.has_deadline = true;
  c.deadline =
      SteadyClock::now() + (c.idle ? options_.keep_alive_timeout : options_.request_timeout);
  return true;
}

bool HttpsFrontEnd::Impl::ReadAndParse(Loop& loop, Connection& c) {
  // A pipelining client may queue a whole request behind another, but not more than that.
  const std::size_t cap = options_.limits.max_header_bytes + 8 * options_.limits.max_body_bytes;
  char buffer[16384];
  c.want_write = false;
  while (c.in.size() < cap) {
    ERR_clear_error();
    const int n = SSL_read(c.ssl, buffer, sizeof buffer);
    if (n > 0) {
      if (c.idle) {
        // The first byte of a request: from now on the whole-request deadline applies.
        c.idle = false;
        c.deadline = SteadyClock::now() + options_.request_timeout;
      }
      c.in.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    const int error = SSL_get_error(c.ssl, n);
    if (error == SSL_ERROR_WANT_READ) break;
    if (error == SSL_ERROR_WANT_WRITE) {
      c.want_write = true;
      break;
    }
    ERR_clear_error();
    if (error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && n == 0)) {
      // The client finished sending: a request it completed first is still answered.
      c.peer_finished = true;
      break;
    }
    Close(loop, c);  // a TLS or socket error
    return false;
  }

  if (c.in.empty()) {
    if (c.peer_finished) {
      CloseOrderly(loop, c);
      return false;
    }
    SetInterest(loop, c, c.want_write ? EPOLLOUT : EPOLLIN);
    return true;
  }
  HttpRequest request;
  request.client_address = c.client_address;
  request.client_loopback = c.client_loopback;
  request.peer_certificate_sha256 = c.peer_sha256;
  const HttpParse parse = ParseHttpRequest(c.in, options_.limits, &request);
  if (c.peer_finished && parse.state != HttpParse::State::kComplete) {
    // The client finished sending without completing a request: nothing to answer.
    Close(loop, c);
    return false;
  }
  switch (parse.state) {
    case HttpParse::State::kIncomplete:
      if (c.in.size() >= cap) {
        ++counters_.malformed_requests;
        c.linger = true;
        return Respond(loop, c, FramingError(413, "the request is too large"), true);
      }
      if (parse.expect_continue && !c.continue_sent) {
        c.continue_sent = true;
        c.out = "HTTP/1.1 100 Continue\r\n\r\n";
        c.out_offset = 0;
        if (!Flush(loop, c)) return false;
      }
      SetInterest(loop, c,
                  c.want_write || c.out_offset < c.out.size() ? EPOLLIN | EPOLLOUT : EPOLLIN);
      return true;
    case HttpParse::State::kInvalid:
      ++counters_.malformed_requests;
      c.linger = true;
      return Respond(loop, c, FramingError(parse.status, parse.message), true);
    case HttpParse::State::kComplete:
      break;
  }
  c.in.erase(0, parse.consumed);
  c.continue_sent = false;
  c.phase = Connection::Phase::kProcessing;
  c.has_deadline = false;
  ++c.served;
  c.in_request = true;
  ++requests_in_progress_;
  SetInterest(loop, c, 0);
  const bool keep_alive =
      request.keep_alive && !c.peer_finished && c.served < options_.max_keep_alive_requests;
  {
    std::unique_lock<std::mutex> lock(jobs_mutex_);
    if (jobs_.size() >= static_cast<std::size_t>(options_.max_queued)) {
      lock.unlock();
      ++counters_.overloaded;
      return Respond(loop, c,
                     FramingError(503, "the appliance is at capacity; retry after a second",
                                  request.method == "HEAD"),
                     true);
    }
    jobs_.push_back(Job{&loop, c.id, std::move(request), keep_alive});
    ++counters_.queued_requests;
  }
  jobs_ready_.notify_one();
  return true;
}

std::string HttpsFrontEnd::Impl::FramingError(int status, const std::string& message,
                                              bool head_only) {
  const char* reason = "malformed_request";
  switch (status) {
    case 413:
      reason = "body_too_large";
      break;
    case 414:
      reason = "uri_too_long";
      break;
    case 417:
      reason = "expectation_failed";
      break;
    case 431:
      reason = "headers_too_large";
      break;
    case 501:
      reason = "unsupported_transfer_coding";
      break;
    case 505:
      reason = "http_version_not_supported";
      break;
    case 503:
      reason = "overloaded";
      break;
    default:
      break;
  }
  HttpResponse response = EdgeProblem(status, reason, message);
  response.close = true;
  if (status == 503) response.headers.emplace_back("Retry-After", "1");
  return Wire(std::move(response), false, head_only);
}

HttpResponse HttpsFrontEnd::Impl::EdgeProblem(int status, const char* reason,
                                              const std::string& detail) {
  const std::string id = "edge-" + std::to_string(++edge_answers_);
  HttpResponse response;
  response.status = status;
  response.headers = {{"Content-Type", "application/problem+json"}, {"X-Request-Id", id}};
  // Written here rather than by ProblemJson, which hides the detail of every 5xx: the framing
  // errors are the client's own doing (or the appliance's capacity), and the detail says which.
  const nlohmann::json problem = {{"type", std::string("urn:ijazat:problem:") + reason},
                                  {"title", reason},
                                  {"status", status},
                                  {"detail", detail},
                                  {"instance", "urn:ijazat:request:" + id}};
  response.body = problem.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

void HttpsFrontEnd::Impl::SetInterest(Loop& loop, Connection& c, std::uint32_t events) {
  if (!c.registered || c.interest == events) return;
  epoll_event event{};
  event.events = events;
  event.data.u64 = c.id;
  epoll_ctl(loop.epoll_fd, EPOLL_CTL_MOD, c.fd, &event);
  c.interest = events;
}

void HttpsFrontEnd::Impl::CloseOrderly(Loop& loop, Connection& c) {
  if (SSL_is_init_finished(c.ssl) != 0) {
    ERR_clear_error();
    SSL_shutdown(c.ssl);  // best effort: a close_notify, without waiting for one
    ERR_clear_error();
  }
  Close(loop, c);
}

void HttpsFrontEnd::Impl::Close(Loop& loop, Connection& c) {
  if (c.in_request) {
    c.in_request = false;
    --requests_in_progress_;
  }
  if (c.registered) epoll_ctl(loop.epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
  SSL_free(c.ssl);
  ::close(c.fd);
  --counters_.open_connections;
  loop.connections.erase(c.id);  // destroys c
}

void HttpsFrontEnd::Impl::RunWorker() {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(jobs_mutex_);
      jobs_ready_.wait(lock, [this] { return workers_stop_ || !jobs_.empty(); });
      if (workers_stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      --counters_.queued_requests;
    }
    HttpResponse response;
    try {
      response = handler_(job.request);
    } catch (...) {
      // The handler answers its own failures; this is the last resort, and it leaves like
      // every other answer, with the same headers.
      response =
          EdgeProblem(500, "internal", "internal error; quote the request id to the operator");
    }
    const bool keep_alive = job.keep_alive && !response.close && !draining_.load();
    Completion completion{
        job.id, Wire(std::move(response), keep_alive, job.request.method == "HEAD"), !keep_alive};
    {
      std::lock_guard<std::mutex> lock(job.loop->completions_mutex);
      job.loop->completions.push_back(std::move(completion));
    }
    Wake(*job.loop);
  }
}

HttpsFrontEnd::HttpsFrontEnd(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsFrontEnd::~HttpsFrontEnd() = default;

Result<std::unique_ptr<HttpsFrontEnd>> HttpsFrontEnd::Start(const FrontEndOptions& options,
                                                            SSL_CTX* tls, Handler handler) {
  auto impl = std::make_unique<Impl>(options, tls, std::move(handler));
  IJAZAT_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HttpsFrontEnd>(new HttpsFrontEnd(std::move(impl)));
}

int HttpsFrontEnd::port() const { return impl_->port(); }
const FrontEndCounters& HttpsFrontEnd::counters() const { return impl_->counters(); }
void HttpsFrontEnd::Stop(std::chrono::milliseconds grace) { impl_->Stop(grace); }

}  // namespace ijazat::appliance
