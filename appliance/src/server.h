// The HTTPS front of the appliance: TLS 1.2+ (POCO's context over OpenSSL), served by the
// event-driven HttpsFrontEnd, and one narrow handler that routes, authenticates providers and
// maps results to HTTP. Business rules live in ConsentService and SmsInbox.
#pragma once

#include <memory>
#include <string>

#include "clock.h"
#include "consent_service.h"
#include "ijazat/hsm/hsm.h"
#include "ijazat/policy/policy_store.h"
#include "ijazat/policy/rate_limiter.h"
#include "log.h"
#include "metrics.h"
#include "sms.h"
#include "sms_inbox.h"

namespace ijazat::appliance {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";
  std::string certificate_file;
  std::string key_file;
  std::string client_ca_file;  // empty: client certificates are not requested
  int threads = 32;            // workers: they run complete requests only
  int io_threads = 2;          // event loops: TLS, reading requests, writing responses
  int max_queued = 256;        // complete requests waiting for a worker; past it, 503
  int max_connections = 4096;
  int keep_alive_timeout_s = 5;
  int request_timeout_s = 10;
  int max_keep_alive_requests = 1000;
};

// Everything the handlers use; owned by the caller and alive while the server runs.
struct ServerContext {
  policy::PolicyStore* policies = nullptr;
  ConsentService* consents = nullptr;
  SmsInbox* inbox = nullptr;
  TokenService* tokens = nullptr;
  hsm::Hsm* hsm = nullptr;
  ConsentStore* store = nullptr;
  IdentityRegistry* registry = nullptr;
  OutboxDispatcher* dispatcher = nullptr;  // optional, for metrics
  policy::ProviderRateLimiter* rate_limiter = nullptr;
  Metrics* metrics = nullptr;
  Logger* logger = nullptr;
  const Clock* clock = nullptr;  // the time providers are admitted at (validity windows)
  SecretString inbound_secret;   // the SMS gateway's shared secret (inbound SMS)
  SecretString dlr_secret;       // delivery reports' tokens; empty: reports are refused
  // Shown in /readyz: "authority", or "open-for-development" where any number may enrol.
  std::string enrolment = "authority";
};

class ApplianceServer {
 public:
  static Result<std::unique_ptr<ApplianceServer>> Start(const ServerOptions& options,
                                                        ServerContext context);
  ~ApplianceServer();
  ApplianceServer(const ApplianceServer&) = delete;
  ApplianceServer& operator=(const ApplianceServer&) = delete;

  int port() const;
  // Stops accepting, lets requests in flight finish (up to `grace_ms`), then closes the rest.
  void Stop(int grace_ms);

  class Impl;

 private:
  explicit ApplianceServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ijazat::appliance
