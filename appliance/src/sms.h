// Outgoing SMS: senders (a file sink by default, Kannel's sendsms for real gateways), the
// message templates, and the dispatcher that drains the persisted outbox with retries.
#pragma once

#include <Poco/Net/Context.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "citizen_crypto.h"
#include "clock.h"
#include "enrolments.h"
#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"
#include "store.h"

namespace ijazat::appliance {

// One rendered message, ready to hand over.
struct OutgoingSms {
  std::int64_t id = 0;
  std::string to;  // E.164
  std::string text;
};

// Senders are called from several dispatcher threads at once: they must be thread safe.
class SmsSender {
 public:
  virtual ~SmsSender() = default;
  // Hands one message to the gateway; returns the gateway's message id (may be empty).
  // kUnavailable when the gateway cannot take it now (the dispatcher retries).
  virtual Result<std::string> Send(std::int64_t message_id, const std::string& to_e164,
                                   const std::string& text) = 0;
  // Hands several messages over: one result per message, in order. By default one Send each.
  virtual std::vector<Result<std::string>> SendBatch(const std::vector<OutgoingSms>& batch);
  // True if SendBatch costs much less than one Send per message (the file sink: one fsync for
  // the batch). The dispatcher then hands it whole batches from one thread, instead of
  // spreading single sends over its threads.
  virtual bool PrefersBatches() const { return false; }
};

// Appends one JSON object per message to a file: {"id":..,"at":..,"to":"+92...","text":".."}.
// A batch is written with one write and made durable with one fsync before any of it is
// reported sent. The development and test sink: it holds the codes, so keep it out of
// production.
class FileSmsSender final : public SmsSender {
 public:
  FileSmsSender(std::string path, const Clock& clock) : path_(std::move(path)), clock_(clock) {}
  Result<std::string> Send(std::int64_t message_id, const std::string& to_e164,
                           const std::string& text) override;
  std::vector<Result<std::string>> SendBatch(const std::vector<OutgoingSms>& batch) override;
  bool PrefersBatches() const override { return true; }
  // fsyncs done so far (one per batch), for tests.
  std::uint64_t syncs() const { return syncs_.load(); }

 private:
  Status Append(const std::string& lines);

  std::string path_;
  const Clock& clock_;
  std::mutex mutex_;
  std::atomic<std::uint64_t> syncs_{0};
};

struct KannelOptions {
  // smsbox's sendsms URL: https://… (verified against ca_file), or http://… to a loopback
  // address only (the configuration refuses anything else).
  std::string url;
  std::string ca_file;  // PEM CA certificates for an https url
  std::string username;
  SecretString password;    // read from a file or the environment by the configuration
  std::string from;         // the short code, 8009
  std::string dlr_url;      // optional: where Kannel reports delivery (our webhook), no secret
  SecretString dlr_secret;  // the delivery-report secret: each report's URL carries a
                            // DeliveryReportToken of it, never the secret itself
  int timeout_ms = 5000;
};

// The token a delivery report for `message_id` carries (`token=` in its URL): HMAC-SHA256 of
// the message id under the delivery-report secret, 128 bits in lowercase hex. It proves the
// report comes from a URL the appliance handed out for that very message, so Kannel's logs
// and stored reports reveal nothing that authenticates anything else.
std::string DeliveryReportToken(std::string_view dlr_secret, std::int64_t message_id);

// Kannel's sendsms by HTTP POST (Kannel's X-Kannel-* headers, the text as the body), so that
// neither the password nor a code travels in a URL that smsbox's access log records. Keeps idle
// keep-alive connections for reuse (one per concurrent sender at most); a connection idle for
// longer than a few seconds is opened afresh rather than risk one the server has closed.
class KannelSmsSender final : public SmsSender {
 public:
  // Sets up the link (for https, a TLS context that verifies smsbox's certificate against
  // options.ca_file and its host name); errors: config_invalid.
  static Result<std::unique_ptr<KannelSmsSender>> Create(KannelOptions options);
  ~KannelSmsSender() override;
  KannelSmsSender(const KannelSmsSender&) = delete;
  KannelSmsSender& operator=(const KannelSmsSender&) = delete;
  Result<std::string> Send(std::int64_t message_id, const std::string& to_e164,
                           const std::string& text) override;
  // TCP connections opened so far, for tests.
  std::uint64_t connections_opened() const { return connections_opened_.load(); }

 private:
  explicit KannelSmsSender(KannelOptions options);
  class Connections;
  KannelOptions options_;
  Poco::Net::Context::Ptr tls_;  // set for an https url
  std::unique_ptr<Connections> connections_;
  std::atomic<std::uint64_t> connections_opened_{0};
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
  std::string suspended =
      "Ijazat: this number is no longer registered to the CNIC it was enrolled for, so it will "
      "get no codes. If it is yours, ask your operator, then send your CNIC to 8009.";
  std::string change_cancelled =
      "Ijazat: the number enrolled before for this CNIC stopped the change to this number. "
      "Codes will not come here.";
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
  std::atomic<std::uint64_t> batches{0};  // passes that found due messages
};

struct DispatcherOptions {
  int batch = 64;   // due messages taken per pass
  int threads = 4;  // threads rendering (HSM) and sending (gateway) a pass's messages
  // When set, a code goes out only while an authority still binds its number to the CNIC;
  // otherwise it is dropped and the enrolment suspended.
  Enrolments* enrolments = nullptr;
  // The caps a code must fit (SmsCaps); a code past one is dropped and `on_cap_hit` told which
  // cap, for which provider and which consent.
  SmsCaps caps = {};
  std::function<void(std::string_view cap, const std::string& provider,
                     const std::string& consent_id)>
      on_cap_hit = {};
  // How long a pass waits after a wake-up, so that the answer to the request that queued a
  // code leaves before the code is decided on (see Loop).
  std::chrono::milliseconds settle{2};
};

// Drains the outbox in passes. A pass takes up to `batch` due messages, renders them on
// `threads` threads (deriving codes again and unsealing numbers in the HSM), records in one
// transaction which are dropped or failed and which of the at-most-once ones are about to go
// (claimed), hands them to the sender (a batch-minded sender gets them all at once; others get
// them one by one from the threads), and records every outcome in one more transaction.
//
// Whether a code goes out at all is decided here, not when the provider asked, so that the
// provider's request costs the same whatever the citizen's state: a code goes to the CNIC's
// enrolled number only if the citizen is enrolled, not locked, not suspended, not in a
// number-change hold for the provider, does not block the provider, the number is still bound
// to the CNIC (options.enrolments), and the SMS caps allow it (ConsentStore::ClaimCode, one
// transaction per code, so the caps are exact). A code whose consent is no longer pending or
// has expired is dropped, never sent late (its expiry is checked again just before the
// hand-over). A consent's messages (its code, its
// grant notice) go out at most once: they are durably claimed before the hand-over. Other
// messages go out at least once. Failed sends retry with exponential backoff (2 s doubling to
// 5 min) until `not_after` or 24 h. Runs on its own thread; Wake() makes it look at once.
class OutboxDispatcher {
 public:
  OutboxDispatcher(ConsentStore& store, CitizenCrypto& crypto, SmsSender& sender,
                   SmsTemplates templates, const Clock& clock, DispatcherOptions options = {});
  ~OutboxDispatcher();
  OutboxDispatcher(const OutboxDispatcher&) = delete;
  OutboxDispatcher& operator=(const OutboxDispatcher&) = delete;

  void Start();
  void Stop();
  void Wake();
  // One pass over the due messages (tests call it directly); returns how many it handled.
  // Every outcome is recorded before it returns.
  Result<int> RunOnce();

  const DispatcherMetrics& metrics() const { return metrics_; }
  const DispatcherOptions& options() const { return options_; }

 private:
  struct Item;
  class Workers;
  // The message's text for `to`; `drop` names why it must not go at all (empty: it may).
  Result<std::string> Render(const OutboxMessage& message, const std::string& to,
                             std::string* drop);
  // A code: decides whether it may go, and renders it for the enrolled number.
  void PrepareCode(const OutboxMessage& message, Timestamp now, Item& item);
  void Prepare(const OutboxMessage& message, Timestamp now, Item& item);
  // One pass. With `may_defer`, when more messages are already waiting, the outcomes are not
  // committed at the end of the pass but with the next pass's first transaction, so that the
  // next pass starts one commit sooner; the messages concerned are kept out of it meanwhile.
  Result<int> RunPass(bool may_defer);
  Status FlushDeferred();
  bool Woken();
  void Loop();

  ConsentStore& store_;
  CitizenCrypto& crypto_;
  SmsSender& sender_;
  SmsTemplates templates_;
  const Clock& clock_;
  DispatcherOptions options_;
  DispatcherMetrics metrics_;
  std::unique_ptr<Workers> workers_;

  std::mutex pass_mutex_;                // one pass at a time; guards the two below
  std::vector<MessageUpdate> deferred_;  // outcomes not committed yet
  std::set<std::int64_t> deferred_ids_;  // their messages, kept out of the next pass
  std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ijazat::appliance
