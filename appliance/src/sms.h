// Outgoing SMS: senders (a file sink by default, Kannel's sendsms for real gateways), the
// message templates, and the dispatcher that drains the persisted outbox with retries.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "citizen_crypto.h"
#include "clock.h"
#include "ijazat/common/result.h"
#include "store.h"

namespace ijazat::appliance {

class SmsSender {
 public:
  virtual ~SmsSender() = default;
  // Hands one message to the gateway; returns the gateway's message id (may be empty).
  // kUnavailable when the gateway cannot take it now (the dispatcher retries).
  virtual Result<std::string> Send(std::int64_t message_id, const std::string& to_e164,
                                   const std::string& text) = 0;
};

// Appends one JSON object per message to a file: {"id":..,"at":..,"to":"+92...","text":".."}.
// The development and test sink: it holds the codes, so keep it out of production.
class FileSmsSender final : public SmsSender {
 public:
  FileSmsSender(std::string path, const Clock& clock) : path_(std::move(path)), clock_(clock) {}
  Result<std::string> Send(std::int64_t message_id, const std::string& to_e164,
                           const std::string& text) override;

 private:
  std::string path_;
  const Clock& clock_;
  std::mutex mutex_;
};

struct KannelOptions {
  std::string url;  // smsbox sendsms URL, e.g. http://127.0.0.1:13013/cgi-bin/sendsms
  std::string username;
  std::string password;    // read from a file or the environment by the configuration
  std::string from;        // the short code, 8009
  std::string dlr_url;     // optional: where Kannel reports delivery (our webhook), no secret
  std::string dlr_secret;  // the gateway secret, added to dlr_url as `secret=`
  int timeout_ms = 5000;
};

// Kannel's sendsms over HTTP (GET with query parameters, as Kannel documents it).
class KannelSmsSender final : public SmsSender {
 public:
  explicit KannelSmsSender(KannelOptions options) : options_(std::move(options)) {}
  Result<std::string> Send(std::int64_t message_id, const std::string& to_e164,
                           const std::string& text) override;

 private:
  KannelOptions options_;
};

// The texts citizens receive. Placeholders: {code} {provider} {purpose} {minutes}
// {reference} {text}.
struct SmsTemplates {
  std::string otp =
      "Ijazat code {code}: {provider} asks to verify your CNIC for {purpose}. Share it only "
      "with {provider}. Valid {minutes} min.";
  std::string enrolled =
      "Ijazat: this number is now enrolled for your CNIC. Verification codes will come here.";
  std::string number_changed =
      "Ijazat: your CNIC was enrolled with a new number. Verification is on hold for a while. "
      "Not you? Call NADRA 1777.";
  std::string granted =
      "Ijazat: you allowed {provider} to verify your CNIC for {purpose}. Ref {reference}. To "
      "undo: REVOKE {reference}";
  std::string help =
      "Ijazat: send your 13-digit CNIC to enrol this number. Commands: HISTORY, REVOKE <ref>, "
      "BLOCK <provider>, UNBLOCK <provider>, LOCK, UNLOCK, HELP.";
};

// Replaces {name} with values[name]; unknown placeholders are left as they are.
std::string RenderTemplate(const std::string& text,
                           const std::map<std::string, std::string>& values);

struct DispatcherMetrics {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> retried{0};
};

// Drains the outbox: renders each due message (deriving a code again in the HSM), sends it,
// records the outcome. A code whose consent is no longer pending or has expired is dropped,
// never sent late. Failed sends retry with exponential backoff (2 s doubling to 5 min) until
// `not_after` or 24 h. Runs on its own thread; Wake() makes it look at once.
class OutboxDispatcher {
 public:
  OutboxDispatcher(ConsentStore& store, CitizenCrypto& crypto, SmsSender& sender,
                   SmsTemplates templates, const Clock& clock);
  ~OutboxDispatcher();
  OutboxDispatcher(const OutboxDispatcher&) = delete;
  OutboxDispatcher& operator=(const OutboxDispatcher&) = delete;

  void Start();
  void Stop();
  void Wake();
  // One pass over the due messages (tests call it directly); returns how many it handled.
  Result<int> RunOnce();

  const DispatcherMetrics& metrics() const { return metrics_; }

 private:
  Result<std::string> Render(const OutboxMessage& message, bool* drop);
  Status Dispatch(const OutboxMessage& message, Timestamp now);
  void Loop();

  ConsentStore& store_;
  CitizenCrypto& crypto_;
  SmsSender& sender_;
  SmsTemplates templates_;
  const Clock& clock_;
  DispatcherMetrics metrics_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ijazat::appliance
