#include "sms.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/URI.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ijazat::appliance {
namespace {

constexpr std::int64_t kFirstRetrySeconds = 2;
constexpr std::int64_t kMaxRetrySeconds = 300;
constexpr std::int64_t kGiveUpSeconds = std::int64_t{24} * 3600;
constexpr int kBatch = 64;

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

Result<std::string> FileSmsSender::Send(std::int64_t message_id, const std::string& to_e164,
                                        const std::string& text) {
  const std::string line = JsonLine(message_id, clock_.Now(), to_e164, text);
  const std::lock_guard lock(mutex_);
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Error(ErrorCode::kUnavailable,
                 "cannot open the SMS sink " + path_ + ": " + std::strerror(errno),
                 "sms_unavailable");
  }
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  const bool ok = written == line.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok)
    return Error(ErrorCode::kUnavailable, "cannot write the SMS sink " + path_, "sms_unavailable");
  return std::to_string(message_id);
}

Result<std::string> KannelSmsSender::Send(std::int64_t message_id, const std::string& to_e164,
                                          const std::string& text) {
  try {
    Poco::URI uri(options_.url);
    uri.addQueryParameter("username", options_.username);
    uri.addQueryParameter("password", options_.password);
    uri.addQueryParameter("from", options_.from);
    uri.addQueryParameter("to", to_e164);
    uri.addQueryParameter("text", text);
    uri.addQueryParameter("charset", "UTF-8");
    if (!options_.dlr_url.empty()) {
      // Kannel substitutes %d with the delivery status.
      uri.addQueryParameter("dlr-mask", "31");
      std::string secret;
      Poco::URI::encode(options_.dlr_secret, "!#$&'()*+,/:;=?@[]%", secret);
      uri.addQueryParameter("dlr-url",
                            options_.dlr_url +
                                (options_.dlr_url.find('?') == std::string::npos ? "?" : "&") +
                                (secret.empty() ? "" : "secret=" + secret + "&") +
                                "id=" + std::to_string(message_id) + "&status=%d");
    }
    Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
    session.setTimeout(Poco::Timespan(0, static_cast<long>(options_.timeout_ms) * 1000));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, uri.getPathAndQuery(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    std::string answer(std::istreambuf_iterator<char>(body), {});
    answer.resize(std::min<std::size_t>(answer.size(), 200));
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

OutboxDispatcher::OutboxDispatcher(ConsentStore& store, CitizenCrypto& crypto, SmsSender& sender,
                                   SmsTemplates templates, const Clock& clock)
    : store_(store),
      crypto_(crypto),
      sender_(sender),
      templates_(std::move(templates)),
      clock_(clock) {}

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
      if (stopping_) return;
      woken_ = false;
    }
    // Errors (store or HSM down) are retried on the next pass; the messages stay queued.
    while (true) {
      auto handled = RunOnce();
      if (!handled.ok() || *handled < kBatch) break;
    }
  }
}

Result<std::string> OutboxDispatcher::Render(const OutboxMessage& message, bool* drop) {
  *drop = false;
  std::map<std::string, std::string> values;
  const auto params = nlohmann::json::parse(message.params, nullptr, /*allow_exceptions=*/false);
  if (params.is_object()) {
    for (const auto& [key, value] : params.items()) {
      values[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  switch (message.kind) {
    case OutboxKind::kOtp: {
      IJAZAT_ASSIGN_OR_RETURN(const auto consent, store_.FindConsent(message.consent_id));
      if (!consent || consent->state != ConsentState::kPending ||
          consent->expires_at <= clock_.Now()) {
        *drop = true;  // never deliver a code that can no longer be used
        return std::string();
      }
      IJAZAT_ASSIGN_OR_RETURN(values["code"], crypto_.DeriveOtp(*consent));
      return RenderTemplate(templates_.otp, values);
    }
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
  }
  return std::string();
}

Result<int> OutboxDispatcher::RunOnce() {
  const Timestamp now = clock_.Now();
  IJAZAT_ASSIGN_OR_RETURN(const auto due, store_.DueMessages(now, kBatch));
  for (const OutboxMessage& message : due) {
    const Status handled = Dispatch(message, now);
    if (handled.ok()) continue;
    // The HSM or the store is down: stop this pass; everything stays queued for the next.
    if (handled.error().code() == ErrorCode::kUnavailable) return handled.error();
    // Anything else is this message's own problem (say, its key was retired): it must not
    // hold up the messages behind it.
    IJAZAT_RETURN_IF_ERROR(
        store_.UpdateMessage(message.id, OutboxStatus::kFailed, 0, "", handled.error().message()));
    ++metrics_.failed;
  }
  return static_cast<int>(due.size());
}

Status OutboxDispatcher::Dispatch(const OutboxMessage& message, Timestamp now) {
  if (message.not_after != 0 && message.not_after <= now) {
    ++metrics_.dropped;
    return store_.UpdateMessage(message.id, OutboxStatus::kDropped, 0, "",
                                "expired before sending");
  }
  bool drop = false;
  IJAZAT_ASSIGN_OR_RETURN(const std::string text, Render(message, &drop));
  if (drop) {
    ++metrics_.dropped;
    return store_.UpdateMessage(message.id, OutboxStatus::kDropped, 0, "",
                                "consent no longer pending");
  }
  IJAZAT_ASSIGN_OR_RETURN(
      const std::string to,
      crypto_.OpenPhone(message.recipient, message.cnic.value_or(BlindIndex{})));
  // A consent's messages (its code, its grant notice) go out at most once: the message is
  // recorded as sent before it is handed over, so a crash between the two cannot send it again
  // after a restart; a failed hand-over puts it back in the queue. Other messages go out at
  // least once.
  const bool at_most_once =
      message.kind == OutboxKind::kOtp || message.kind == OutboxKind::kGranted;
  if (at_most_once) {
    IJAZAT_RETURN_IF_ERROR(store_.UpdateMessage(message.id, OutboxStatus::kSent, 0, "claimed", ""));
  }
  auto sent = sender_.Send(message.id, to, text);
  if (sent.ok()) {
    ++metrics_.sent;
    return store_.UpdateMessage(message.id, OutboxStatus::kSent, 0, *sent, "");
  }
  const bool retryable = sent.error().code() == ErrorCode::kUnavailable;
  const std::int64_t backoff =
      std::min(kMaxRetrySeconds, kFirstRetrySeconds << std::min(message.attempts, 16));
  const Timestamp next = now + backoff;
  const Timestamp deadline =
      message.not_after != 0 ? message.not_after : message.created_at + kGiveUpSeconds;
  if (retryable && next < deadline) {
    ++metrics_.retried;
    return store_.UpdateMessage(message.id, OutboxStatus::kQueued, next, "",
                                sent.error().message());
  }
  ++(retryable ? metrics_.dropped : metrics_.failed);
  return store_.UpdateMessage(message.id,
                              retryable ? OutboxStatus::kDropped : OutboxStatus::kFailed, 0, "",
                              sent.error().message());
}

}  // namespace ijazat::appliance
