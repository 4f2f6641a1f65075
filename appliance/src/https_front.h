// The appliance's HTTPS front end: event loops that accept connections, complete the TLS
// handshake and read each whole request without holding a worker thread, and a pool of
// workers that only ever run complete requests.
//
// Why not one thread per connection: a client that sends a byte a second, or a connection that
// never starts TLS, would hold a thread for its whole timeout, and keep-alive clients would
// keep threads that others wait for. Here a connection costs a few kilobytes while it is idle
// or slow, every request has a whole-request deadline, and requests from all connections wait
// for a worker in one first-come, first-served queue.
//
// Deadlines: from accept to a complete first request, `request_timeout`; idle keep-alive,
// `keep_alive_timeout`; from the first byte of a later request to its last, `request_timeout`;
// writing a response, `request_timeout`. A connection past its deadline is closed.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "http_message.h"
#include "ijazat/common/result.h"

namespace ijazat::appliance {

struct FrontEndOptions {
  std::string listen = "127.0.0.1:0";
  int io_threads = 2;
  int workers = 16;
  int max_queued = 256;        // complete requests waiting for a worker; past it, 503
  int max_connections = 4096;  // open connections; past it, new ones are closed at once
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds keep_alive_timeout{5000};
  int max_keep_alive_requests = 1000;
  HttpLimits limits;
};

struct FrontEndCounters {
  std::atomic<std::int64_t> open_connections{0};
  std::atomic<std::int64_t> queued_requests{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused_at_capacity{0};  // max_connections reached
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> timeouts{0};            // deadlines passed
  std::atomic<std::uint64_t> malformed_requests{0};  // framing errors answered 4xx/5xx
  std::atomic<std::uint64_t> overloaded{0};          // answered 503 with the queue full
};

class HttpsFrontEnd {
 public:
  // Runs on a worker thread, once per complete request; should not throw (if it does, the
  // request gets a 500 problem of the front end's own). Every response, the handler's and the
  // front end's own, leaves with the same headers: Cache-Control: no-store unless the handler
  // gave a Cache-Control, and the security headers (HSTS, nosniff, X-Frame-Options, CSP,
  // Referrer-Policy). The handler adds neither; a HEAD's answer goes without its body.
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // `tls` is a server context configured by the caller (protocols, suites, certificates,
  // client verification); the front end takes a reference to it.
  static Result<std::unique_ptr<HttpsFrontEnd>> Start(const FrontEndOptions& options, SSL_CTX* tls,
                                                      Handler handler);
  ~HttpsFrontEnd();
  HttpsFrontEnd(const HttpsFrontEnd&) = delete;
  HttpsFrontEnd& operator=(const HttpsFrontEnd&) = delete;

  int port() const;
  const FrontEndCounters& counters() const;

  // Stops accepting and closes idle connections; requests already received are answered
  // (up to `grace`); then every connection is closed and the threads joined. Idempotent.
  void Stop(std::chrono::milliseconds grace);

  class Impl;

 private:
  explicit HttpsFrontEnd(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ijazat::appliance
