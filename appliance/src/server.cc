#include "server.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/URI.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <sstream>
#include <thread>

#include "http_util.h"
#include "https_front.h"
#include "identity.h"

namespace ijazat::appliance {
namespace {

using nlohmann::json;

// Mozilla "intermediate" (TLS 1.2 suites; TLS 1.3 suites are OpenSSL's defaults).
constexpr char kCipherList[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// TLS sessions kept for resumption, in memory only: an hour at most, and at most this many
// (the oldest go first; about 1 KiB each).
constexpr long kSessionLifetimeS = 3600;
constexpr long kSessionCacheSize = 20000;

std::once_flag ssl_once;

std::string NewRequestId() {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t start =
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%08llx%08llx",
                static_cast<unsigned long long>(start & 0xffffffff),
                static_cast<unsigned long long>(++counter));
  return buffer;
}

bool ValidConsentId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  std::string current;
  for (const char c : path) {
    if (c == '/') {
      if (!current.empty()) parts.push_back(current);
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) parts.push_back(current);
  return parts;
}

std::map<std::string, std::string> ParseForm(const std::string& text) {
  std::map<std::string, std::string> fields;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = std::min(text.find('&', start), text.size());
    const std::string pair = text.substr(start, end - start);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      std::string key;
      std::string value;
      std::string raw_key = pair.substr(0, eq);
      std::string raw_value = eq == std::string::npos ? "" : pair.substr(eq + 1);
      for (auto* raw : {&raw_key, &raw_value}) {
        for (char& c : *raw) {
          if (c == '+') c = ' ';
        }
      }
      try {
        Poco::URI::decode(raw_key, key);
        Poco::URI::decode(raw_value, value);
      } catch (const Poco::Exception&) {
        continue;
      }
      fields.emplace(key, value);
    }
    start = end + 1;
  }
  return fields;
}

// The body as application/json, read and checked by `parse` (one of http_util's readers).
template <typename Parse>
auto JsonBody(const HttpRequest& request, Parse parse) -> decltype(parse(request.body)) {
  if (request.MediaType() != "application/json") {
    return Error(ErrorCode::kInvalidArgument, "the body must be application/json",
                 "unsupported_media_type");
  }
  return parse(request.body);
}

// One response in the making. The headers every response carries (Cache-Control: no-store
// unless one is given here, and the security headers) are the front end's, for this reply as
// for the answers it writes itself.
struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::int64_t retry_after = 0;
  // The challenge, for a 401 about the caller's own credentials only (Challenge()).
  bool www_authenticate = false;
  std::string allow;  // with 405: the methods the path takes
  // Everything is private to its caller (the front end's no-store) except the published keys.
  std::string cache_control;
  // The consent the request concerned, for the request's log line: it joins the provider's
  // X-Request-Id to what happened later to the consent (sms.cap_hit, consent events).
  std::string consent_id;
};

// How long providers may cache the JWKS (docs/consent-token.md, "Getting the keys"): a retired
// key leaves their caches within this time.
constexpr int kJwksMaxAgeSeconds = 300;

}  // namespace

class ApplianceServer::Impl {
 public:
  Impl(ServerOptions options, ServerContext context)
      : options_(std::move(options)), context_(std::move(context)) {}

  Status Start();
  void Stop(int grace_ms);
  int port() const { return port_; }

  HttpResponse Handle(const HttpRequest& request);

 private:
  Reply Route(const HttpRequest& request, const std::string& request_id, std::string* route,
              std::string* provider_id);
  Result<const policy::Provider*> Authenticate(const HttpRequest& request,
                                               const policy::PolicySet& policy);
  Reply Problem(const Error& error, const std::string& request_id,
                const json& extensions = json::object());
  // Problem() for the caller's own credentials (a provider's, the SMS gateway's, a delivery
  // report's token), with the WWW-Authenticate challenge. A consent token a verification
  // refuses is 401 too, but without it: the provider's credentials were fine.
  Reply Challenge(const Error& error, const std::string& request_id);
  Reply Json(int status, const json& body);

  Reply RequestConsent(const HttpRequest& request, const policy::PolicySet& policy,
                       const policy::Provider& provider, const std::string& request_id);
  Reply ConsentRoute(const HttpRequest& request, const policy::PolicySet& policy,
                     const policy::Provider& provider, const std::vector<std::string>& parts,
                     const std::string& request_id);
  Reply MethodNotAllowed(const char* allow, const std::string& request_id);
  Reply Confirm(const HttpRequest& request, const policy::PolicySet& policy,
                const policy::Provider& provider, const std::string& id,
                const std::string& request_id);
  Reply Verify(const HttpRequest& request, const policy::PolicySet& policy,
               const policy::Provider& provider, const std::string& request_id);
  // The query fields of a request from the SMS gateway, once its shared secret (`secret=` or
  // the X-Ijazat-Gateway-Secret header) has been checked in constant time.
  Result<std::map<std::string, std::string>> GatewayQuery(const HttpRequest& request);
  Reply InboundSms(const HttpRequest& request, const std::string& request_id);
  Reply DeliveryReport(const HttpRequest& request, const std::string& request_id);
  Reply Ready(const std::string& request_id);
  Reply MetricsText();

  ServerOptions options_;
  ServerContext context_;
  Poco::Net::Context::Ptr tls_;
  std::unique_ptr<HttpsFrontEnd> front_;
  int port_ = 0;
};

Status ApplianceServer::Impl::Start() {
  try {
    std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
    Poco::Net::Context::Params params;
    params.privateKeyFile = options_.key_file;
    params.certificateFile = options_.certificate_file;
    params.loadDefaultCAs = false;
    params.cipherList = kCipherList;
    params.verificationDepth = 9;
    if (!options_.client_ca_file.empty()) {
      params.caLocation = options_.client_ca_file;
      // Ask for a client certificate; verify it when one is presented.
      params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
    } else {
      params.verificationMode = Poco::Net::Context::VERIFY_NONE;
    }
    Poco::Net::Context::Ptr tls =
        new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
    tls->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                          Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
    tls->preferServerCiphers();
    tls->enableSessionCache(true, "ijazat");

    // No renegotiation: it buys nothing here and has been a denial-of-service lever.
    SSL_CTX_set_options(tls->sslContext(), SSL_OP_NO_RENEGOTIATION);
    // No session tickets: a TLS 1.2 ticket is the session's master secret sealed under one
    // ticket key held for the life of the process, so whoever learns that key decrypts every
    // ticketed session since start. Resumption uses the server's session cache instead: TLS
    // 1.2 by session id, TLS 1.3 by stateful tickets (an id into the cache; the resumed
    // handshake still runs a fresh ECDHE). Cached sessions live kSessionLifetimeS at most
    // and are gone with the process.
    SSL_CTX_set_options(tls->sslContext(), SSL_OP_NO_TICKET);
    SSL_CTX_set_timeout(tls->sslContext(), kSessionLifetimeS);
    SSL_CTX_sess_set_cache_size(tls->sslContext(), kSessionCacheSize);
    tls_ = tls;
  } catch (const Poco::Exception& e) {
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot set up TLS for " + options_.listen + ": " + e.displayText(),
                 "server_start_failed");
  }
  FrontEndOptions front;
  front.listen = options_.listen;
  front.io_threads = options_.io_threads;
  front.workers = options_.threads;
  front.max_queued = options_.max_queued;
  front.max_connections = options_.max_connections;
  front.keep_alive_timeout = std::chrono::seconds(options_.keep_alive_timeout_s);
  front.request_timeout = std::chrono::seconds(options_.request_timeout_s);
  front.max_keep_alive_requests = options_.max_keep_alive_requests;
  front.limits.max_body_bytes = kMaxBodyBytes;
  auto started = HttpsFrontEnd::Start(
      front, tls_->sslContext(), [this](const HttpRequest& request) { return Handle(request); });
  if (!started.ok()) return started.error();
  front_ = std::move(started).value();
  port_ = front_->port();
  return OkStatus();
}
void ApplianceServer::Impl::Stop(int grace_ms) {
  if (!front_) return;
  front_->Stop(std::chrono::milliseconds(grace_ms));
  front_.reset();
}

Reply ApplianceServer::Impl::Json(int status, const json& body) {
  Reply reply;
  reply.status = status;
  reply.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return reply;
}

Reply ApplianceServer::Impl::Problem(const Error& raw, const std::string& request_id,
                                     const json& extensions) {
  const Error error = PublicError(raw);
  Reply reply;
  reply.status = HttpStatusFor(error);
  if (context_.logger != nullptr && (raw.reason() != error.reason() || reply.status >= 500)) {
    // The operator sees what happened; the client sees only that something did (a 503 names
    // the part that is down, never why).
    context_.logger->Warn(
        reply.status == 503 ? "request.dependency_unavailable" : "request.internal_error",
        {{"request_id", request_id},
         {"reason", std::string(raw.reason())},
         {"error", raw.message()}});
  }
  reply.content_type = "application/problem+json";
  reply.body = ProblemJson(reply.status, error, request_id, extensions);
  if (reply.status == 503) reply.retry_after = 5;
  // ijazat_hsm_failures_total counts the HSM's failures only, not the store's or the registry's.
  if (error.reason() == "hsm_unavailable" && context_.metrics != nullptr) {
    context_.metrics->CountHsmFailure(std::string(error.reason()));
  }
  return reply;
}

Reply ApplianceServer::Impl::Challenge(const Error& error, const std::string& request_id) {
  Reply reply = Problem(error, request_id);
  reply.www_authenticate = reply.status == 401;
  return reply;
}

Result<const policy::Provider*> ApplianceServer::Impl::Authenticate(
    const HttpRequest& request, const policy::PolicySet& policy) {
  const policy::Provider* by_key = nullptr;
  const policy::Provider* by_certificate = nullptr;
  bool key_given = false;
  if (const std::string* authorization = request.Header("Authorization");
      authorization != nullptr) {
    const std::string& header = *authorization;
    if (header.rfind("Bearer ", 0) != 0 || header.size() > 512) {
      return Error(ErrorCode::kUnauthenticated, "use Authorization: Bearer <API key>",
                   "unauthenticated");
    }
    key_given = true;
    by_key = policy.FindProviderByApiKey(std::string_view(header).substr(7));
  }
  if (!request.peer_certificate_sha256.empty()) {
    by_certificate = policy.FindProviderByCertFingerprint(AsBytes(request.peer_certificate_sha256));
  }
  if (by_key != nullptr && by_certificate != nullptr && by_key != by_certificate) {
    return Error(ErrorCode::kUnauthenticated,
                 "the API key and the client certificate belong to different providers",
                 "unauthenticated");
  }
  const policy::Provider* provider = by_key != nullptr ? by_key : by_certificate;
  if (!key_given && request.peer_certificate_sha256.empty()) {
    return Error(ErrorCode::kUnauthenticated,
                 "no credentials: send Authorization: Bearer <API key> (or a client certificate "
                 "the policy names)",
                 "unauthenticated");
  }
  if (provider == nullptr || (key_given && by_key == nullptr)) {
    return Error(ErrorCode::kUnauthenticated, "unknown provider credentials", "unauthenticated");
  }
  // Suspended, not yet valid or expired: refused by every endpoint, with the reason.
  const policy::Decision admitted =
      policy::PolicySet::Admit(*provider, AsTimePoint(context_.clock->Now()));
  if (!admitted.allowed()) {
    return Error(ErrorCode::kPermissionDenied, admitted.message(),
                 policy::ToString(admitted.reason()));
  }
  return provider;
}

HttpResponse ApplianceServer::Impl::Handle(const HttpRequest& request) {
  const auto started = std::chrono::steady_clock::now();
  const std::string request_id = NewRequestId();
  std::string route = "unmatched";
  std::string provider_id;
  Reply reply;
  try {
    reply = Route(request, request_id, &route, &provider_id);
  } catch (const std::exception&) {
    reply = Problem(Error(ErrorCode::kInternal, "unexpected error", "internal"), request_id);
  }

  HttpResponse response;
  response.status = reply.status;
  response.body = std::move(reply.body);
  response.headers = {{"Content-Type", reply.content_type}, {"X-Request-Id", request_id}};
  if (!reply.cache_control.empty()) {
    response.headers.emplace_back("Cache-Control", reply.cache_control);
  }
  if (reply.retry_after > 0) {
    response.headers.emplace_back("Retry-After", std::to_string(reply.retry_after));
  }
  if (reply.www_authenticate) {
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ijazat\"");
  }
  if (!reply.allow.empty()) response.headers.emplace_back("Allow", reply.allow);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (context_.metrics != nullptr) context_.metrics->ObserveRequest(route, reply.status, seconds);
  if (context_.logger != nullptr) {
    nlohmann::json fields = {{"request_id", request_id},
                             {"route", route},
                             {"provider", provider_id},
                             {"status", reply.status},
                             {"ms", static_cast<int>(seconds * 1000)}};
    if (!reply.consent_id.empty()) fields["consent_id"] = reply.consent_id;
    context_.logger->Info("http.request", std::move(fields));
  }
  return response;
}

Reply ApplianceServer::Impl::Route(const HttpRequest& request, const std::string& request_id,
                                   std::string* route, std::string* provider_id) {
  const std::string path(request.Path());
  const std::string& method = request.method;
  const std::vector<std::string> parts = SplitPath(path);
  // `allow` is the Allow header's value: the methods the path takes.
  auto method_not_allowed = [&](const char* allow) { return MethodNotAllowed(allow, request_id); };
  // The operator's paths and the published keys are read with GET or HEAD (the front end
  // writes a HEAD's answer without its body).
  constexpr char kGetOrHead[] = "GET, HEAD";
  const bool get_or_head = method == "GET" || method == "HEAD";

  if (path == "/healthz") {
    *route = "healthz";
    if (!get_or_head) return method_not_allowed(kGetOrHead);
    return Json(200, {{"status", "ok"}});
  }
  if (path == "/readyz") {
    *route = "readyz";
    if (!get_or_head) return method_not_allowed(kGetOrHead);
    return Ready(request_id);
  }
  if (path == "/metrics") {
    *route = "metrics";
    // Volumes, failure counts and queue sizes are for the operator's scraper on this host:
    // to anyone else the path does not exist, whatever the method.
    if (!request.client_loopback) {
      return Problem(Error(ErrorCode::kNotFound, "no such endpoint", "not_found"), request_id);
    }
    if (!get_or_head) return method_not_allowed(kGetOrHead);
    return MetricsText();
  }
  if (path == "/.well-known/jwks.json") {
    *route = "jwks";
    if (!get_or_head) return method_not_allowed(kGetOrHead);
    auto jwks = context_.tokens->Jwks();
    if (!jwks.ok()) return Problem(jwks.error(), request_id);
    Reply reply;
    reply.body = *jwks;
    reply.content_type = "application/jwk-set+json";
    reply.cache_control = "public, max-age=" + std::to_string(kJwksMaxAgeSeconds);
    return reply;
  }
  if (path == "/v1/sms/inbound") {
    *route = "sms_inbound";
    if (method != "GET" && method != "POST") return method_not_allowed("GET, POST");
    return InboundSms(request, request_id);
  }
  if (path == "/v1/sms/dlr") {
    *route = "sms_dlr";
    if (method != "GET") return method_not_allowed("GET");
    return DeliveryReport(request, request_id);
  }

  if (parts.empty() || parts[0] != "v1") {
    return Problem(Error(ErrorCode::kNotFound, "no such endpoint", "not_found"), request_id);
  }
  // Provider API: authenticate, rate-limit, dispatch.
  const std::shared_ptr<const policy::PolicySet> policy = context_.policies->Current();
  const bool consents = parts.size() >= 2 && parts[1] == "consents";
  const bool verifications = parts.size() == 2 && parts[1] == "verifications";
  if (!consents && !verifications) {
    return Problem(Error(ErrorCode::kNotFound, "no such endpoint", "not_found"), request_id);
  }
  *route = verifications       ? "verifications"
           : parts.size() == 2 ? "consents"
           : parts.size() == 3 ? "consent"
                               : "consent_" + parts[3];
  if (parts.size() > 4 || (parts.size() == 4 && parts[3] != "confirm" && parts[3] != "revoke")) {
    *route = "unmatched";
    return Problem(Error(ErrorCode::kNotFound, "no such endpoint", "not_found"), request_id);
  }
  auto provider = Authenticate(request, *policy);
  if (!provider.ok()) return Challenge(provider.error(), request_id);
  *provider_id = (*provider)->id;
  if (context_.rate_limiter != nullptr) {
    const policy::RateDecision rate = context_.rate_limiter->TryAcquire(**provider);
    if (!rate.allowed) {
      Reply reply = Problem(Error(ErrorCode::kResourceExhausted,
                                  "rate limit exceeded for this provider", "rate_limited"),
                            request_id);
      reply.retry_after =
          std::chrono::duration_cast<std::chrono::seconds>(rate.retry_after).count() + 1;
      return reply;
    }
  }

  if (verifications) {
    if (method != "POST") return method_not_allowed("POST");
    return Verify(request, *policy, **provider, request_id);
  }
  if (parts.size() == 2) {
    if (method != "POST") return method_not_allowed("POST");
    return RequestConsent(request, *policy, **provider, request_id);
  }
  const std::string& id = parts[2];
  if (!ValidConsentId(id)) {
    return Problem(Error(ErrorCode::kNotFound, "no consent with this id for this provider",
                         "consent_not_found"),
                   request_id);
  }
  Reply reply = ConsentRoute(request, *policy, **provider, parts, request_id);
  reply.consent_id = id;
  return reply;
}

Reply ApplianceServer::Impl::MethodNotAllowed(const char* allow, const std::string& request_id) {
  Reply reply = Problem(Error(ErrorCode::kInvalidArgument,
                              std::string("this path takes only ") + allow, "method_not_allowed"),
                        request_id);
  reply.allow = allow;
  return reply;
}

// /v1/consents/{id} and what follows it, for a valid id.
Reply ApplianceServer::Impl::ConsentRoute(const HttpRequest& request,
                                          const policy::PolicySet& policy,
                                          const policy::Provider& provider,
                                          const std::vector<std::string>& parts,
                                          const std::string& request_id) {
  const std::string& method = request.method;
  auto method_not_allowed = [&](const char* allow) { return MethodNotAllowed(allow, request_id); };
  const std::string& id = parts[2];
  if (parts.size() == 3) {
    if (method != "GET") return method_not_allowed("GET");
    auto consent = context_.consents->Get(provider, id);
    if (!consent.ok()) return Problem(consent.error(), request_id);
    json body = {{"consent_id", consent->id},
                 {"state", std::string(ConsentStateName(consent->state))},
                 {"purpose", consent->purpose},
                 {"scopes", consent->scopes},
                 {"expires_at", Iso8601(consent->expires_at)}};
    if (consent->state == ConsentState::kPending) {
      body["attempts_remaining"] = std::max(0, consent->max_attempts - consent->attempts);
    }
    if (!consent->reference.empty()) {
      body["reference"] = consent->reference;
      body["uses_remaining"] = std::max(0, consent->max_uses - consent->uses);
    }
    return Json(200, body);
  }
  if (method != "POST") return method_not_allowed("POST");
  if (parts[3] == "confirm") return Confirm(request, policy, provider, id, request_id);
  auto revoked = context_.consents->Revoke(provider, id);
  if (!revoked.ok()) return Problem(revoked.error(), request_id);
  return Json(
      200, {{"consent_id", revoked->id}, {"state", std::string(ConsentStateName(revoked->state))}});
}

Reply ApplianceServer::Impl::RequestConsent(const HttpRequest& request,
                                            const policy::PolicySet& policy,
                                            const policy::Provider& provider,
                                            const std::string& request_id) {
  const auto body = JsonBody(request, ParseConsentRequestBody);
  if (!body.ok()) return Problem(body.error(), request_id);
  auto created =
      context_.consents->RequestConsent(policy, provider, body->cnic, body->purpose, body->scopes);
  if (!created.ok()) return Problem(created.error(), request_id);
  json body_out = {{"consent_id", created->consent_id},
                   {"expires_at", Iso8601(created->expires_at)}};
  if (created->enrolled.has_value()) body_out["enrolled"] = *created->enrolled;
  Reply reply = Json(202, body_out);
  reply.consent_id = created->consent_id;
  return reply;
}

Reply ApplianceServer::Impl::Confirm(const HttpRequest& request, const policy::PolicySet& policy,
                                     const policy::Provider& provider, const std::string& id,
                                     const std::string& request_id) {
  auto parsed = JsonBody(request, ParseConfirmBody);
  if (!parsed.ok()) return Problem(parsed.error(), request_id);
  const SecretString otp(std::move(parsed).value());  // wiped when the request is answered
  auto outcome = context_.consents->Confirm(policy, provider, id, otp);
  if (!outcome.ok()) return Problem(outcome.error(), request_id);
  if (outcome->locked_out) {
    if (context_.metrics != nullptr) context_.metrics->CountLimitHit(provider.id, "wrong_codes");
    Reply reply =
        Problem(Error(ErrorCode::kResourceExhausted,
                      "too many wrong codes for this citizen; try again later", "cnic_locked_out"),
                request_id);
    reply.retry_after = std::max<std::int64_t>(1, outcome->retry_after_seconds);
    return reply;
  }
  if (!outcome->accepted) {
    if (context_.metrics != nullptr) context_.metrics->CountOtpFailure();
    const bool failed = outcome->state == ConsentState::kFailed;
    return Problem(
        Error(failed ? ErrorCode::kFailedPrecondition : ErrorCode::kPermissionDenied,
              failed ? "wrong code; no attempts remain and the consent has failed" : "wrong code",
              failed ? "consent_failed" : "otp_incorrect"),
        request_id,
        {{"attempts_remaining", outcome->attempts_remaining},
         {"state", std::string(ConsentStateName(outcome->state))}});
  }
  return Json(200, {{"consent_id", id},
                    {"state", "granted"},
                    {"consent_token", outcome->tokens.consent_token},
                    {"receipt", outcome->tokens.receipt},
                    {"reference", outcome->reference},
                    {"expires_at", Iso8601(outcome->token_expires_at)}});
}

Reply ApplianceServer::Impl::Verify(const HttpRequest& request, const policy::PolicySet& policy,
                                    const policy::Provider& provider,
                                    const std::string& request_id) {
  const auto token = JsonBody(request, ParseVerifyBody);
  if (!token.ok()) return Problem(token.error(), request_id);
  auto verified = context_.consents->Verify(policy, provider, *token);
  if (!verified.ok()) return Problem(verified.error(), request_id);
  Reply reply = Json(200, {{"consent_id", verified->consent_id},
                           {"sub", verified->subject},
                           {"attributes", verified->attributes},
                           {"uses_remaining", verified->uses_remaining}});
  reply.consent_id = verified->consent_id;
  return reply;
}

Result<std::map<std::string, std::string>> ApplianceServer::Impl::GatewayQuery(
    const HttpRequest& request) {
  std::map<std::string, std::string> fields = ParseForm(std::string(request.RawQuery()));
  std::string secret = fields.count("secret") > 0 ? fields["secret"] : "";
  if (const std::string* header = request.Header("X-Ijazat-Gateway-Secret"); header != nullptr) {
    secret = *header;
  }
  if (context_.inbound_secret.empty() ||
      !ConstantTimeEquals(AsBytes(secret), AsBytes(context_.inbound_secret.UnsafeView()))) {
    return Error(ErrorCode::kUnauthenticated, "the gateway secret is missing or wrong",
                 "unauthenticated");
  }
  fields.erase("secret");
  return fields;
}

Reply ApplianceServer::Impl::InboundSms(const HttpRequest& request, const std::string& request_id) {
  auto query = GatewayQuery(request);
  if (!query.ok()) return Challenge(query.error(), request_id);
  std::map<std::string, std::string> fields = std::move(query).value();
  if (request.method == "POST") {
    const std::string& body = request.body;
    const std::string type = request.MediaType();
    if (type == "application/x-www-form-urlencoded") {
      for (auto& [key, value] : ParseForm(body)) fields[key] = value;
    } else if (type == "text/plain") {
      // Kannel's post-url: the text is the body, sender and receiver in headers.
      fields["text"] = body;
      if (const std::string* from = request.Header("X-Kannel-From"); from != nullptr) {
        fields["from"] = *from;
      }
      if (const std::string* to = request.Header("X-Kannel-To"); to != nullptr) fields["to"] = *to;
    } else if (type == "application/json") {
      auto parsed = ParseJsonObject(body);
      if (!parsed.ok()) return Problem(parsed.error(), request_id);
      for (const auto& [key, value] : parsed->items()) {
        if (value.is_string()) fields[key] = value.get<std::string>();
      }
    } else {
      return Problem(
          Error(ErrorCode::kInvalidArgument, "send form fields, JSON, or Kannel's text/plain post",
                "unsupported_media_type"),
          request_id);
    }
  }
  for (const char* field : {"from", "to", "text"}) {
    if (fields.count(field) == 0) {
      return Problem(
          Error(ErrorCode::kInvalidArgument,
                std::string("the inbound message needs \"") + field + "\"", "invalid_request"),
          request_id);
    }
  }
  const auto policy = context_.policies->Current();
  auto outcome = context_.inbox->Handle(*policy, fields["from"], fields["to"], fields["text"]);
  if (!outcome.ok()) return Problem(outcome.error(), request_id);
  if (context_.logger != nullptr) {
    context_.logger->Info("sms.inbound", {{"request_id", request_id},
                                          {"outcome", std::string(InboundOutcomeName(*outcome))}});
  }
  // An empty body: Kannel would otherwise send the response text back as an SMS.
  Reply reply;
  reply.content_type = "text/plain";
  return reply;
}

// Kannel's delivery report: the dlr-url the sender gave, `?secret=..&id=<outbox id>&status=%d`.
// DLR types: 1 delivered, 2 failed, 16 rejected by the SMSC (final); 4 buffered, 8 submitted
// (the message stays "sent"). A final outcome is never overwritten by a later report, nor by
// the dispatcher recording the hand-over after Kannel has already reported on it.
Reply ApplianceServer::Impl::DeliveryReport(const HttpRequest& request,
                                            const std::string& request_id) {
  // Authenticated by the token the report's URL carries (DeliveryReportToken), never by the
  // gateway secret: Kannel holds and logs these URLs.
  std::map<std::string, std::string> fields = ParseForm(std::string(request.RawQuery()));
  const std::string id = fields.count("id") > 0 ? fields["id"] : "";
  const std::string type = fields.count("status") > 0 ? fields["status"] : "";
  std::int64_t message_id = 0;
  const auto parsed = std::from_chars(id.data(), id.data() + id.size(), message_id);
  const bool id_ok = !id.empty() && id.find_first_not_of("0123456789") == std::string::npos &&
                     parsed.ec == std::errc() && parsed.ptr == id.data() + id.size();
  if (!id_ok) {
    return Problem(Error(ErrorCode::kInvalidArgument,
                         "a delivery report needs a numeric \"id\" and a Kannel DLR \"status\" "
                         "(1, 2, 4, 8 or 16)",
                         "invalid_request"),
                   request_id);
  }
  const std::string token = fields.count("token") > 0 ? fields["token"] : "";
  if (context_.dlr_secret.empty() ||
      !ConstantTimeEquals(AsBytes(token), AsBytes(DeliveryReportToken(
                                              context_.dlr_secret.UnsafeView(), message_id)))) {
    return Challenge(Error(ErrorCode::kUnauthenticated,
                           "the delivery report's token is missing or wrong (or delivery reports "
                           "are not configured: sms.dlr_secret_file)",
                           "unauthenticated"),
                     request_id);
  }
  if (type != "1" && type != "2" && type != "4" && type != "8" && type != "16") {
    return Problem(Error(ErrorCode::kInvalidArgument,
                         "a delivery report needs a numeric \"id\" and a Kannel DLR \"status\" "
                         "(1, 2, 4, 8 or 16)",
                         "invalid_request"),
                   request_id);
  }
  std::optional<OutboxStatus> outcome;
  if (type == "1") outcome = OutboxStatus::kDelivered;
  if (type == "2" || type == "16") outcome = OutboxStatus::kFailed;
  auto message = context_.store->RecordDeliveryReport(
      message_id, outcome,
      outcome == OutboxStatus::kFailed ? "delivery report " + type : std::string());
  if (!message.ok()) return Problem(message.error(), request_id);
  if (!message->has_value()) {
    return Problem(Error(ErrorCode::kNotFound, "no message with this id", "not_found"), request_id);
  }
  const OutboxMessage& found = **message;
  if (context_.logger != nullptr) {
    context_.logger->Info(
        "sms.dlr",
        {{"request_id", request_id}, {"message_id", found.id}, {"dlr", std::stoi(type)}});
  }
  Reply reply;
  reply.content_type = "text/plain";
  return reply;
}

Reply ApplianceServer::Impl::Ready(const std::string& request_id) {
  json checks = json::object();
  bool ready = true;
  const Status hsm = context_.hsm->CheckHealth();
  // A PIN the HSM refused is named: it needs an operator, not a wait.
  const std::string_view hsm_reason = hsm.ok() ? "" : hsm.error().reason();
  checks["hsm"] = hsm.ok()                                                      ? "ok"
                  : hsm_reason == "pin_incorrect" || hsm_reason == "pin_locked" ? hsm_reason
                                                                                : "unavailable";
  ready = ready && hsm.ok();
  const Status store = context_.store->CheckHealth();
  checks["store"] = store.ok() ? "ok" : "unavailable";
  ready = ready && store.ok();
  const Status registry = context_.registry->CheckHealth();
  checks["registry"] = registry.ok() ? "ok" : "unavailable";
  ready = ready && registry.ok();
  // Key versions refused for deviating from their templates are named; the appliance keeps
  // serving with the versions that conform.
  const std::vector<std::string> rejected = context_.hsm->RejectedKeys();
  checks["keys"] = rejected.empty() ? "ok" : "rejected";
  json body = {{"ready", ready}, {"checks", checks}, {"enrolment", context_.enrolment}};
  if (!rejected.empty()) body["rejected_keys"] = rejected;
  Reply reply = Json(ready ? 200 : 503, body);
  if (!ready) reply.retry_after = 5;
  (void)request_id;
  return reply;
}

Reply ApplianceServer::Impl::MetricsText() {
  std::ostringstream extra;
  if (context_.policies != nullptr) {
    // Which policy is in force on this node (after a reload, or a reload that failed).
    const policy::PolicyIdentity identity = context_.policies->Current()->identity();
    std::string version;
    for (const char c : identity.version) {
      if (c == '\\' || c == '"') version += '\\';
      version += c == '\n' ? ' ' : c;
    }
    extra << "# HELP ijazat_policy_info The provider policy in force: its version and the "
             "SHA-256 of its canonical form.\n# TYPE ijazat_policy_info gauge\n"
          << "ijazat_policy_info{version=\"" << version << "\",sha256=\"" << identity.sha256_hex
          << "\"} 1\n";
  }
  if (context_.hsm != nullptr) {
    extra << "# HELP ijazat_hsm_keys_rejected Key versions on the token refused for deviating "
             "from their templates.\n# TYPE ijazat_hsm_keys_rejected gauge\n"
          << "ijazat_hsm_keys_rejected " << context_.hsm->RejectedKeys().size() << '\n';
  }
  if (context_.store != nullptr) {
    if (auto counts = context_.store->CountMessagesByStatus(); counts.ok()) {
      extra << "# HELP ijazat_sms_outbox_messages SMS outbox messages by status.\n"
               "# TYPE ijazat_sms_outbox_messages gauge\n";
      for (const auto& [status, count] : *counts) {
        extra << "ijazat_sms_outbox_messages{status=\"" << OutboxStatusName(status) << "\"} "
              << count << '\n';
      }
    }
  }
  if (front_) {
    const FrontEndCounters& c = front_->counters();
    extra << "# HELP ijazat_http_connections_open Open client connections.\n"
             "# TYPE ijazat_http_connections_open gauge\n"
          << "ijazat_http_connections_open " << c.open_connections.load() << '\n'
          << "# HELP ijazat_http_requests_queued Complete requests waiting for a worker.\n"
             "# TYPE ijazat_http_requests_queued gauge\n"
          << "ijazat_http_requests_queued " << c.queued_requests.load() << '\n'
          << "# HELP ijazat_http_connection_events_total Connection events by kind.\n"
             "# TYPE ijazat_http_connection_events_total counter\n"
          << "ijazat_http_connection_events_total{event=\"accepted\"} " << c.accepted.load() << '\n'
          << "ijazat_http_connection_events_total{event=\"refused_at_capacity\"} "
          << c.refused_at_capacity.load() << '\n'
          << "ijazat_http_connection_events_total{event=\"handshake_failed\"} "
          << c.handshake_failures.load() << '\n'
          << "ijazat_http_connection_events_total{event=\"timed_out\"} " << c.timeouts.load()
          << '\n'
          << "ijazat_http_connection_events_total{event=\"malformed_request\"} "
          << c.malformed_requests.load() << '\n'
          << "ijazat_http_connection_events_total{event=\"overloaded\"} " << c.overloaded.load()
          << '\n';
  }
  if (context_.dispatcher != nullptr) {
    const DispatcherMetrics& m = context_.dispatcher->metrics();
    extra << "# HELP ijazat_sms_dispatch_total SMS send attempts by outcome.\n"
             "# TYPE ijazat_sms_dispatch_total counter\n"
          << "ijazat_sms_dispatch_total{outcome=\"sent\"} " << m.sent.load() << '\n'
          << "ijazat_sms_dispatch_total{outcome=\"failed\"} " << m.failed.load() << '\n'
          << "ijazat_sms_dispatch_total{outcome=\"dropped\"} " << m.dropped.load() << '\n'
          << "ijazat_sms_dispatch_total{outcome=\"retried\"} " << m.retried.load() << '\n'
          << "# HELP ijazat_sms_dispatch_batches_total Dispatcher passes that found due messages.\n"
             "# TYPE ijazat_sms_dispatch_batches_total counter\n"
          << "ijazat_sms_dispatch_batches_total " << m.batches.load() << '\n';
  }
  Reply reply;
  reply.content_type = "text/plain; version=0.0.4";
  reply.body = context_.metrics != nullptr ? context_.metrics->Render(extra.str()) : extra.str();
  return reply;
}

ApplianceServer::ApplianceServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApplianceServer::~ApplianceServer() { impl_->Stop(0); }

Result<std::unique_ptr<ApplianceServer>> ApplianceServer::Start(const ServerOptions& options,
                                                                ServerContext context) {
  if (context.clock == nullptr) {
    return Error(ErrorCode::kInvalidArgument, "the server needs a clock", "no_clock");
  }
  auto impl = std::make_unique<Impl>(options, std::move(context));
  IJAZAT_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<ApplianceServer>(new ApplianceServer(std::move(impl)));
}

int ApplianceServer::port() const { return impl_->port(); }
void ApplianceServer::Stop(int grace_ms) { impl_->Stop(grace_ms); }

}  // namespace ijazat::appliance
