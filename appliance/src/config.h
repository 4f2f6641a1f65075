// ijazatd's configuration file (YAML), validated as strictly as policies: unknown keys and
// out-of-range values are errors, each with file:line:column and the key's path, and every
// error is reported, not only the first. The file names where secrets are (PIN file or
// variable, TLS key, webhook secret file), never the secrets themselves.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "identity.h"
#include "ijazat/common/result.h"
#include "model.h"

namespace ijazat::appliance {

struct TlsConfig {
  std::string certificate;  // PEM chain
  std::string key;          // PEM private key
  std::string client_ca;    // PEM CA for client certificates; empty: no client certificates
};

struct HsmConfig {
  std::string module = "/usr/lib/softhsm/libsofthsm2.so";
  std::string token;
  std::string pin_file;  // exactly one of pin_file and pin_env
  std::string pin_env;
};

struct SmsConfig {
  std::string short_code = "8009";
  std::string inbound_secret_file;  // the gateway's shared secret for the inbound webhook
  std::string sender = "file";      // "file" or "kannel"
  std::string file;                 // file sender: JSON lines
  // https://… verified against kannel_ca_file, or http://… to a loopback address only.
  std::string kannel_url;
  std::string kannel_ca_file;
  std::string kannel_username;
  std::string kannel_password_file;
  // Where Kannel reports delivery, without credentials: the appliance adds the message id and
  // a token made with the delivery-report secret (dlr_secret_file), never the gateway secret.
  std::string kannel_dlr_url;
  std::string dlr_secret_file;  // required with kannel_dlr_url; a secret of its own
  NumberPlan numbers;           // which numbers may enrol and receive SMS
  SmsCaps caps;
  // Who may enrol a number for a CNIC. kAuthority (the default): only a number that an
  // authority binds to the CNIC (subscriber records or the number recorded at registration, in
  // the registry database), checked again before every code and every grant. kOpen: any
  // number, for development only; logged as a warning at start and shown in /readyz.
  enum class Enrolment { kAuthority, kOpen };
  Enrolment enrolment = Enrolment::kAuthority;
  // At most `max` changes of number per CNIC in any `window` (sliding): a SIM-swap attacker
  // cannot flip the number back and forth.
  struct NumberChanges {
    int max = 3;
    std::chrono::seconds window{30 * 24 * 3600};
  } number_changes;
  int dispatch_batch = 64;   // outbox messages taken per dispatcher pass
  int dispatch_threads = 4;  // dispatcher threads rendering (HSM) and sending (gateway)
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8443";
  int threads = 32;      // workers for complete requests
  int io_threads = 2;    // event loops for TLS and connection I/O
  int max_queued = 256;  // requests waiting for a worker; past it, 503 with Retry-After
  int max_connections = 4096;
  std::chrono::seconds keep_alive_timeout{5};
  std::chrono::seconds request_timeout{10};
  int max_keep_alive_requests = 1000;
};

// The operator of the appliance, named in every receipt as the processor (a piiControllers
// entry with onBehalf: true) after the provider, the controller, whose details come from its
// policy.
struct ReceiptConfig {
  std::string operator_name = "Ijazat operator";
  std::string operator_contact = "see policy_url";
  // The receipts' policyUrl when the provider's policy gives no privacy_policy_url.
  std::string policy_url;  // default: <issuer>/policy
};

struct Config {
  std::string source;  // the file it was read from
  std::string issuer = "https://ijazat.local";
  ReceiptConfig receipt;
  ServerConfig server;
  TlsConfig tls;
  HsmConfig hsm;
  std::string store_path;
  std::string registry_path;
  std::string policy_path;
  SmsConfig sms;
  std::string log_file;  // empty: standard error
  // development.allow_demo_credentials: the policy may hold the public demo API key
  // (policy::kPublishedDemoApiKey). Off by default: ijazatd then refuses such a policy at
  // start (exit 2) and on reload. Only for development appliances (make run).
  bool allow_demo_credentials = false;
};

// Relative paths in the file are taken relative to `base_dir` (ijazatd uses the working
// directory). Errors: kInvalidArgument ("config_invalid") with one line per problem.
Result<Config> LoadConfig(const std::string& path);

// The largest configuration file read.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{256} * 1024;

// Why `url` cannot be smsbox's sendsms URL, or "" when it can: https with a CA file, or plain
// http to a loopback address only.
std::string KannelUrlProblem(const std::string& url, bool has_ca_file);

// LoadConfig on text already read; `source` names the file in errors.
Result<Config> ParseConfig(std::string_view text, const std::string& source);

}  // namespace ijazat::appliance
