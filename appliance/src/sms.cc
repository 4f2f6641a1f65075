#include "sms.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/URI.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

namespace ijazat::appliance {
namespace {

constexpr std::int64_t kFirstRetrySeconds = 2;
constexpr std::int64_t kMaxRetrySeconds = 300;
constexpr std::int64_t kGiveUpSeconds = std::int64_t{24} * 3600;
// Kannel connections idle for longer are opened afresh rather than reused.
constexpr int kKannelIdleSeconds = 4;
constexpr std::size_t kKannelMaxIdle = 16;

std::string JsonLine(std::int64_t id, Timestamp at, const std::string& to,
                     const std::string& text) {
  nlohmann::json line = {{"id", id}, {"at", at}, {"to", to}, {"text", text}};
  return line.dump() + "\n";
}

}  // namespace

std::string RenderTemplate(const std::string& text,
                           const std::map<std::string, std::string>& values) {
  std::string out;
  out.reserve(text.size() + 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '{') {
      const auto end = text.find('}', i);
      if (end != std::string::npos) {
        const auto it = values.find(text.substr(i + 1, end - i - 1));
        if (it != values.end()) {
          out += it->second;
          i = end;
          continue;
        }
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::vector<Result<std::string>> SmsSender::SendBatch(const std::vector<OutgoingSms>& batch) {
  std::vector<Result<std::string>> results;
  results.reserve(batch.size());
  for (const OutgoingSms& sms : batch) results.push_back(Send(sms.id, sms.to, sms.text));
  return results;
}

Status FileSmsSender::Append(const std::string& lines) {
  const std::lock_guard lock(mutex_);
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Error(ErrorCode::kUnavailable,
                 "cannot open the SMS sink " + path_ + ": " + std::strerror(errno),
                 "sms_unavailable");
  }
  std::size_t written = 0;
  while (written < lines.size()) {
    const ssize_t n = ::write(fd, lines.data() + written, lines.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  const bool ok = written == lines.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    return Error(ErrorCode::kUnavailable, "cannot write the SMS sink " + path_, "sms_unavailable");
  }
  ++syncs_;
  return OkStatus();
}

Result<std::string> FileSmsSender::Send(std::int64_t message_id, const std::string& to_e164,
                                        const std::string& text) {
  return std::move(SendBatch({OutgoingSms{message_id, to_e164, text}}).front());
}

std::vector<Result<std::string>> FileSmsSender::SendBatch(const std::vector<OutgoingSms>& batch) {
  std::vector<Result<std::string>> results;
  if (batch.empty()) return results;
  std::string lines;
  const Timestamp at = clock_.Now();
  for (const OutgoingSms& sms : batch) lines += JsonLine(sms.id, at, sms.to, sms.text);
  // Nothing is reported sent before the whole batch is on disk.
  const Status appended = Append(lines);
  results.reserve(batch.size());
  for (const OutgoingSms& sms : batch) {
    if (appended.ok()) {
      results.emplace_back(std::to_string(sms.id));
    } else {
      results.emplace_back(appended.error());
    }
  }
  return results;
}

// Idle keep-alive connections to smsbox.
class KannelSmsSender::Connections {
 public:
  std::unique_ptr<Poco::Net::HTTPClientSession> Take() {
    const std::lock_guard lock(mutex_);
    if (idle_.empty()) return nullptr;
    auto session = std::move(idle_.back());
    idle_.pop_back();
    return session;
  }
  void Give(std::unique_ptr<Poco::Net::HTTPClientSession> session) {
    const std::lock_guard lock(mutex_);
    if (idle_.size() < kKannelMaxIdle) idle_.push_back(std::move(session));
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Poco::Net::HTTPClientSession>> idle_;
};

std::string DeliveryReportToken(std::string_view dlr_secret, std::int64_t message_id) {
  const std::string message = "ijazat-dlr-v1:" + std::to_string(message_id);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), dlr_secret.data(), static_cast<int>(dlr_secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  const std::string token = HexEncode(ByteView(mac, 16));
  SecureWipe(mac, sizeof mac);
  return token;
}

KannelSmsSender::KannelSmsSender(KannelOptions options)
    : options_(std::move(options)), connections_(std::make_unique<Connections>()) {}

Result<std::unique_ptr<KannelSmsSender>> KannelSmsSender::Create(KannelOptions options) {
  std::unique_ptr<KannelSmsSender> sender(new KannelSmsSender(std::move(options)));
  const std::string& url = sender->options_.url;
  try {
    const Poco::URI uri(url);
    if (uri.getScheme() == "https") {
      Poco::Net::Context::Params params;
      params.caLocation = sender->options_.ca_file;
      params.loadDefaultCAs = false;
      params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
      params.verificationDepth = 9;
      sender->tls_ = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
      sender->tls_->disableProtocols(
          Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
          Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
      // A certificate that does not verify, or names another host, ends the connection:
      // nobody is asked (POCO's default handler would ask on the console).
      sender->tls_->setInvalidCertificateHandler(new Poco::Net::RejectCertificateHandler(false));
    } else if (uri.getScheme() != "http") {
      return Error(ErrorCode::kInvalidArgument, "the Kannel url must be https:// or http://",
                   "config_invalid");
    }
  } catch (const Poco::Exception& e) {
    return Error(ErrorCode::kInvalidArgument,
                 "cannot set up the link to Kannel (" + url + "): " + e.displayText(),
                 "config_invalid");
  }
  return sender;
}

KannelSmsSender::~KannelSmsSender() = default;

Result<std::string> KannelSmsSender::Send(std::int64_t message_id, const std::string& to_e164,
                                          const std::string& text) {
  try {
    const Poco::URI uri(options_.url);
    // Everything but the text rides in Kannel's request headers, the text in the body: no
    // password, number or code in the URL, which smsbox's access log records.
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, uri.getPathEtc(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(true);
    request.setContentType("text/plain; charset=UTF-8");
    request.setContentLength(static_cast<std::streamsize>(text.size()));
    request.set("X-Kannel-Username", options_.username);
    request.set("X-Kannel-Password", std::string(options_.password.UnsafeView()));
    request.set("X-Kannel-From", options_.from);
    request.set("X-Kannel-To", to_e164);
    if (!options_.dlr_url.empty()) {
      request.set("X-Kannel-DLR-Mask", "31");
      // Kannel substitutes %d with the delivery status.
      request.set("X-Kannel-DLR-URL",
                  options_.dlr_url + (options_.dlr_url.find('?') == std::string::npos ? "?" : "&") +
                      "id=" + std::to_string(message_id) + "&token=" +
                      DeliveryReportToken(options_.dlr_secret.UnsafeView(), message_id) +
                      "&status=%d");
    }
    auto session = connections_->Take();
    if (!session) {
      if (tls_) {
        session =
            std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), tls_);
      } else {
        session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
      }
      session->setKeepAlive(true);
      session->setKeepAliveTimeout(Poco::Timespan(kKannelIdleSeconds, 0));
      ++connections_opened_;
    }
    session->setTimeout(Poco::Timespan(0, static_cast<long>(options_.timeout_ms) * 1000));
    session->sendRequest(request) << text;
    Poco::Net::HTTPResponse response;
    std::istream& body = session->receiveResponse(response);
    std::string answer(std::istreambuf_iterator<char>(body), {});
    answer.resize(std::min<std::size_t>(answer.size(), 200));
    // The whole answer was read: the connection can carry the next message.
    if (response.getKeepAlive()) connections_->Give(std::move(session));
    const int status = static_cast<int>(response.getStatus());
    if (status == 200 || status == 202) return std::to_string(message_id);
    if (status >= 500) {
      return Error(ErrorCode::kUnavailable, "Kannel answered " + std::to_string(status),
                   "sms_unavailable");
    }
    return Error(ErrorCode::kInvalidArgument,
                 "Kannel refused the message (" + std::to_string(status) + "): " + answer,
                 "sms_rejected");
  } catch (const Poco::Exception& e) {
    return Error(ErrorCode::kUnavailable,
                 "cannot reach Kannel at " + options_.url + ": " + e.displayText(),
                 "sms_unavailable");
  } catch (const std::exception& e) {
    return Error(ErrorCode::kUnavailable, std::string("cannot reach Kannel: ") + e.what(),
                 "sms_unavailable");
  }
}

// A few threads that run one pass's work: ForEach(n, fn) runs fn(0..n-1) on them and on the
// calling thread, and returns when every call has returned.
class OutboxDispatcher::Workers {
 public:
  explicit Workers(int threads) {
    for (int i = 1; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~Workers() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    start_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void ForEach(std::size_t n, const std::function<void(std::size_t)>& fn) {
    if (threads_.empty() || n <= 1) {
      for (std::size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    std::uint64_t generation = 0;
    {
      const std::lock_guard lock(mutex_);
      job_ = &fn;
      size_ = n;
      next_ = 0;
      finished_ = 0;
      generation = ++generation_;
    }
    start_.notify_all();
    Work(generation);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return finished_ == size_; });
    job_ = nullptr;
  }

 private:
  void Run() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      Work(seen);
    }
  }

  // Takes items of job `generation` until none is left.
  void Work(std::uint64_t generation) {
    for (;;) {
      const std::function<void(std::size_t)>* fn = nullptr;
      std::size_t item = 0;
      {
        const std::lock_guard lock(mutex_);
        if (generation_ != generation || job_ == nullptr || next_ >= size_) return;
        item = next_++;
        fn = job_;
      }
      (*fn)(item);
      {
        const std::lock_guard lock(mutex_);
        if (++finished_ == size_) done_.notify_all();
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t size_ = 0;
  std::size_t next_ = 0;
  std::size_t finished_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// What a pass does with one due message.
struct OutboxDispatcher::Item {
  enum class Action { kKeep, kSend, kDrop, kFail };
  Action action = Action::kKeep;  // kKeep: left queued (the HSM or the store is down)
  std::string to;
  std::string text;
  std::string note;            // why it is dropped or failed
  std::optional<Error> error;  // kKeep: what was unavailable
  std::optional<Result<std::string>> sent;
  bool late = false;               // expired between rendering and the hand-over
  std::optional<CodeClaim> claim;  // a code: what ClaimCode decides on
};

OutboxDispatcher::OutboxDispatcher(ConsentStore& store, CitizenCrypto& crypto, SmsSender& sender,
                                   SmsTemplates templates, const Clock& clock,
                                   DispatcherOptions options)
    : store_(store),
      crypto_(crypto),
      sender_(sender),
      templates_(std::move(templates)),
      clock_(clock),
      options_(options) {
  options_.batch = std::clamp(options_.batch, 1, 10000);
  options_.threads = std::clamp(options_.threads, 1, 256);
  workers_ = std::make_unique<Workers>(options_.threads);
}

OutboxDispatcher::~OutboxDispatcher() { Stop(); }

void OutboxDispatcher::Start() {
  const std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void OutboxDispatcher::Stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxDispatcher::Wake() {
  {
    const std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

void OutboxDispatcher::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(500), [this] { return woken_ || stopping_; });
      if (stopping_) {
        lock.unlock();
        const std::lock_guard pass(pass_mutex_);
        (void)FlushDeferred();  // what cannot be recorded now is sent again after a restart
        return;
      }
      woken_ = false;
      // A request that queued a code wakes the dispatcher before its own answer has gone out.
      // Waiting a moment lets the answer leave first, so that what the dispatcher then does for
      // the code (send it, or drop it for a citizen who is not reachable) is not part of the
      // time the provider measures; under load the passes follow one another without it.
      if (options_.settle.count() > 0) {
        wake_.wait_for(lock, options_.settle, [this] { return stopping_; });
        woken_ = false;
        if (stopping_) continue;
      }
    }
    // Errors (store or HSM down) are retried on the next pass; the messages stay queued.
    while (true) {
      auto handled = RunPass(/*may_defer=*/true);
      if (!handled.ok() || *handled < options_.batch) break;
    }
  }
}

bool OutboxDispatcher::Woken() {
  const std::lock_guard lock(mutex_);
  return woken_ && !stopping_;
}

Status OutboxDispatcher::FlushDeferred() {
  if (deferred_.empty()) return OkStatus();
  IJAZAT_RETURN_IF_ERROR(store_.UpdateMessages(deferred_));
  deferred_.clear();
  deferred_ids_.clear();
  return OkStatus();
}

Result<std::string> OutboxDispatcher::Render(const OutboxMessage& message,
                                             const std::string& /*to*/, std::string* drop) {
  drop->clear();
  std::map<std::string, std::string> values;
  const auto params = nlohmann::json::parse(message.params, nullptr, /*allow_exceptions=*/false);
  if (params.is_object()) {
    for (const auto& [key, value] : params.items()) {
      values[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  switch (message.kind) {
    case OutboxKind::kOtp:
      break;  // PrepareCode renders codes
    case OutboxKind::kEnrolled:
      return RenderTemplate(templates_.enrolled, values);
    case OutboxKind::kNumberChanged:
      return RenderTemplate(templates_.number_changed, values);
    case OutboxKind::kGranted:
      return RenderTemplate(templates_.granted, values);
    case OutboxKind::kHelp:
      return RenderTemplate(templates_.help, values);
    case OutboxKind::kReply:
      return RenderTemplate("{text}", values);
    case OutboxKind::kSuspended:
      return RenderTemplate(templates_.suspended, values);
    case OutboxKind::kChangeCancelled:
      return RenderTemplate(templates_.change_cancelled, values);
  }
  return std::string();
}

void OutboxDispatcher::Prepare(const OutboxMessage& message, Timestamp now, Item& item) {
  using Action = Item::Action;
  auto trouble = [&](const Error& error) {
    // The HSM or the store is down: the message stays queued for a later pass. Anything else is
    // this message's own problem (say, its key was retired): it fails without holding up the
    // messages behind it.
    if (error.code() == ErrorCode::kUnavailable) {
      item.action = Action::kKeep;
      item.error = error;
    } else {
      item.action = Action::kFail;
      item.note = error.message();
    }
  };
  if (message.not_after != 0 && message.not_after <= now) {
    item.action = Action::kDrop;
    item.note = "expired before sending";
    return;
  }
  if (message.kind == OutboxKind::kOtp) return PrepareCode(message, now, item);
  auto to = crypto_.OpenPhone(message.recipient, message.cnic.value_or(BlindIndex{}));
  if (!to.ok()) return trouble(to.error());
  std::string drop;
  auto text = Render(message, *to, &drop);
  if (!text.ok()) return trouble(text.error());
  if (!drop.empty()) {
    item.action = Action::kDrop;
    item.note = std::move(drop);
    return;
  }
  item.action = Action::kSend;
  item.text = std::move(text).value();
  item.to = std::move(to).value();
}

void OutboxDispatcher::PrepareCode(const OutboxMessage& message, Timestamp now, Item& item) {
  using Action = Item::Action;
  const auto drop = [&](std::string why) {
    item.action = Action::kDrop;
    item.note = std::move(why);
  };
  const Status prepared = [&]() -> Status {
    const auto dropped = [&](std::string why) {
      drop(std::move(why));
      return OkStatus();
    };
    IJAZAT_ASSIGN_OR_RETURN(const auto consent, store_.FindConsent(message.consent_id));
    if (!consent || consent->state != ConsentState::kPending ||
        consent->expires_at <= clock_.Now()) {
      return dropped("consent no longer pending");  // never deliver a code that cannot be used
    }
    std::map<std::string, std::string> values;
    Timestamp hold_extra = 0;
    int provider_hour = options_.caps.per_cnic_per_hour;
    const auto params = nlohmann::json::parse(message.params, nullptr, false);
    if (params.is_object()) {
      for (const auto& [key, value] : params.items()) {
        values[key] = value.is_string() ? value.get<std::string>() : value.dump();
      }
      if (params.contains("hold_extra") && params["hold_extra"].is_number_integer()) {
        hold_extra = std::max<Timestamp>(0, params["hold_extra"].get<Timestamp>());
      }
      if (params.contains("cap_hour") && params["cap_hour"].is_number_integer()) {
        provider_hour = std::max(1, params["cap_hour"].get<int>());
      }
    }
    IJAZAT_ASSIGN_OR_RETURN(const std::optional<Enrolment> enrolment,
                            store_.FindEnrolment(consent->cnic));
    // The citizen's state decides here; the provider's answer was the same in every case.
    if (!enrolment) return dropped("not enrolled");
    if (enrolment->locked) return dropped("locked");
    if (enrolment->suspended) return dropped("suspended");
    if (enrolment->hold_until > now - hold_extra) return dropped("held");
    IJAZAT_ASSIGN_OR_RETURN(const bool blocked,
                            store_.IsBlocked(consent->cnic, consent->provider_id));
    if (blocked) return dropped("blocked");
    IJAZAT_ASSIGN_OR_RETURN(std::string to,
                            crypto_.OpenPhone(enrolment->phone_sealed, enrolment->cnic));
    if (options_.enrolments != nullptr) {
      // The number must still be the citizen's by the authority's records: a recycled or
      // re-assigned number stops receiving codes the moment the records say so.
      IJAZAT_ASSIGN_OR_RETURN(const bool bound, options_.enrolments->CodeMayGo(*consent, to));
      if (!bound) return dropped("number no longer bound to the CNIC");
    }
    {
      // The code leaves as the SMS's text, which the sender hands on; the copy the template
      // needed is wiped here (the text itself lives until the pass ends).
      IJAZAT_ASSIGN_OR_RETURN(const SecretString code, crypto_.DeriveOtp(*consent));
      values["code"].assign(code.UnsafeView());
      item.text = RenderTemplate(templates_.otp, values);
      SecureWipe(values["code"]);
    }
    item.to = std::move(to);
    item.action = Action::kSend;
    const SmsCaps& caps = options_.caps;
    CodeClaim claim;
    claim.message_id = message.id;
    claim.consent_id = consent->id;
    claim.cnic = consent->cnic;
    claim.provider_id = consent->provider_id;
    claim.phone = enrolment->phone;
    // The number's SMS are counted under every index version it has (replies are recorded
    // under the newest); with one version, the enrolment's index is that one.
    IJAZAT_ASSIGN_OR_RETURN(const hsm::KeyRef index_key,
                            crypto_.hsm().ActiveKey(hsm::KeyKind::kIndex));
    if (index_key.version != enrolment->phone.key_version || index_key.version > 1) {
      IJAZAT_ASSIGN_OR_RETURN(claim.phones, crypto_.PhoneIndexes(item.to));
    }
    claim.recipient = enrolment->phone_sealed;
    claim.now = now;
    // One provider may use at most half of each CNIC-wide and number-wide cap.
    claim.limits.cnic_provider_hour =
        std::min(provider_hour, std::max(1, caps.per_cnic_per_hour / 2));
    claim.limits.cnic_provider_day = std::max(1, caps.per_cnic_per_day / 2);
    claim.limits.cnic_hour = caps.per_cnic_per_hour;
    claim.limits.cnic_day = caps.per_cnic_per_day;
    claim.limits.number_provider_hour = std::max(1, caps.per_number_per_hour / 2);
    claim.limits.number_provider_day = std::max(1, caps.per_number_per_day / 2);
    claim.limits.number_hour = caps.per_number_per_hour;
    claim.limits.number_day = caps.per_number_per_day;
    item.claim = std::move(claim);
    return OkStatus();
  }();
  if (!prepared.ok()) {
    if (prepared.error().code() == ErrorCode::kUnavailable) {
      item.action = Action::kKeep;
      item.error = prepared.error();
    } else {
      item.action = Action::kFail;
      item.note = prepared.error().message();
    }
  }
}

Result<int> OutboxDispatcher::RunOnce() { return RunPass(/*may_defer=*/false); }

Result<int> OutboxDispatcher::RunPass(bool may_defer) {
  using Action = Item::Action;
  // One pass at a time: two passes would take the same due messages.
  const std::lock_guard pass(pass_mutex_);
  const Timestamp now = clock_.Now();
  // Messages whose outcome is deferred may still read as queued: they are left out.
  IJAZAT_ASSIGN_OR_RETURN(
      auto candidates,
      store_.DueMessages(now, options_.batch + static_cast<int>(deferred_ids_.size())));
  std::vector<OutboxMessage> due;
  for (auto& message : candidates) {
    if (deferred_ids_.count(message.id) == 0 && static_cast<int>(due.size()) < options_.batch) {
      due.push_back(std::move(message));
    }
  }
  if (due.empty()) {
    IJAZAT_RETURN_IF_ERROR(FlushDeferred());
    return 0;
  }
  ++metrics_.batches;
  std::vector<Item> items(due.size());
  workers_->ForEach(due.size(), [&](std::size_t i) { Prepare(due[i], now, items[i]); });

  // A consent's messages (its code, its grant notice) go out at most once: they are recorded as
  // sent before they are handed over, so a crash between the two cannot send them again after a
  // restart; a failed hand-over puts them back in the queue. Other messages go out at least
  // once. Drops and failures known already are recorded in the same transaction.
  auto at_most_once = [](const OutboxMessage& m) {
    return m.kind == OutboxKind::kOtp || m.kind == OutboxKind::kGranted;
  };
  std::vector<MessageUpdate> before = deferred_;
  std::vector<std::size_t> sending;
  std::optional<Error> unavailable;
  std::uint64_t dropped = 0;
  std::uint64_t failed = 0;
  for (std::size_t i = 0; i < due.size(); ++i) {
    const Item& item = items[i];
    switch (item.action) {
      case Action::kKeep:
        if (!unavailable) unavailable = item.error;
        break;
      case Action::kDrop:
        before.push_back({due[i].id, OutboxStatus::kDropped, 0, "", item.note});
        ++dropped;
        break;
      case Action::kFail:
        before.push_back({due[i].id, OutboxStatus::kFailed, 0, "", item.note});
        ++failed;
        break;
      case Action::kSend:
        if (items[i].claim) break;  // a code: claimed below, against the caps
        if (at_most_once(due[i])) {
          before.push_back({due[i].id, OutboxStatus::kSent, 0, "claimed", ""});
        }
        sending.push_back(i);
        break;
    }
  }
  IJAZAT_RETURN_IF_ERROR(store_.UpdateMessages(before));
  // Codes one at a time, each counted against the caps with those claimed before it.
  for (std::size_t i = 0; i < due.size(); ++i) {
    if (items[i].action != Action::kSend || !items[i].claim) continue;
    auto claimed = store_.ClaimCode(*items[i].claim);
    if (!claimed.ok()) {
      if (claimed.error().code() == ErrorCode::kUnavailable && !unavailable) {
        unavailable = claimed.error();
      }
      continue;  // left queued (store down) or no longer queued
    }
    if (!claimed->empty()) {
      ++dropped;
      if (options_.on_cap_hit) {
        options_.on_cap_hit(*claimed, items[i].claim->provider_id, items[i].claim->consent_id);
      }
      continue;
    }
    sending.push_back(i);
  }
  std::sort(sending.begin(), sending.end());
  deferred_.clear();
  deferred_ids_.clear();
  metrics_.dropped += dropped;
  metrics_.failed += failed;

  // The hand-over. A code that expired since it was rendered is not handed over late.
  auto expired = [&](const OutboxMessage& m) {
    return m.not_after != 0 && m.not_after <= clock_.Now();
  };
  if (sender_.PrefersBatches()) {
    std::vector<OutgoingSms> batch;
    std::vector<std::size_t> batched;
    for (const std::size_t i : sending) {
      if (expired(due[i])) {
        items[i].late = true;
        continue;
      }
      batch.push_back({due[i].id, items[i].to, items[i].text});
      batched.push_back(i);
    }
    auto results = sender_.SendBatch(batch);
    for (std::size_t k = 0; k < batched.size(); ++k) {
      items[batched[k]].sent =
          k < results.size()
              ? std::move(results[k])
              : Result<std::string>(
                    Error(ErrorCode::kInternal, "the sender lost a message", "sms_unavailable"));
    }
  } else {
    workers_->ForEach(sending.size(), [&](std::size_t k) {
      Item& item = items[sending[k]];
      const OutboxMessage& message = due[sending[k]];
      if (expired(message)) {
        item.late = true;
        return;
      }
      item.sent = sender_.Send(message.id, item.to, item.text);
    });
  }

  // Every outcome in one transaction.
  std::vector<MessageUpdate> after;
  after.reserve(sending.size());
  for (const std::size_t i : sending) {
    const OutboxMessage& message = due[i];
    Item& item = items[i];
    if (item.late || !item.sent) {
      after.push_back({message.id, OutboxStatus::kDropped, 0, "", "expired before sending"});
      ++metrics_.dropped;
      continue;
    }
    const Result<std::string>& sent = *item.sent;
    if (sent.ok()) {
      after.push_back({message.id, OutboxStatus::kSent, 0, *sent, ""});
      ++metrics_.sent;
      continue;
    }
    const bool retryable = sent.error().code() == ErrorCode::kUnavailable;
    const std::int64_t backoff =
        std::min(kMaxRetrySeconds, kFirstRetrySeconds << std::min(message.attempts, 16));
    const Timestamp next = now + backoff;
    const Timestamp deadline =
        message.not_after != 0 ? message.not_after : message.created_at + kGiveUpSeconds;
    if (retryable && next < deadline) {
      after.push_back({message.id, OutboxStatus::kQueued, next, "", sent.error().message()});
      ++metrics_.retried;
      continue;
    }
    ++(retryable ? metrics_.dropped : metrics_.failed);
    after.push_back({message.id, retryable ? OutboxStatus::kDropped : OutboxStatus::kFailed, 0, "",
                     sent.error().message()});
  }
  if (may_defer && !unavailable && Woken()) {
    // More is queued already: these outcomes go with the next pass's first transaction.
    for (const MessageUpdate& update : after) deferred_ids_.insert(update.id);
    deferred_ = std::move(after);
  } else {
    IJAZAT_RETURN_IF_ERROR(store_.UpdateMessages(after));
  }
  if (unavailable) return *unavailable;
  return static_cast<int>(due.size());
}

}  // namespace ijazat::appliance
