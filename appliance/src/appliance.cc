#include "appliance.h"

#include <algorithm>
#include <chrono>

#include "audit_anchor.h"
#include "citizen_crypto.h"
#include "consent_service.h"
#include "enrolments.h"
#include "hsm_token_service.h"
#include "ijazat/hsm/pkcs11_hsm.h"
#include "ijazat/policy/policy_store.h"
#include "ijazat/policy/rate_limiter.h"
#include "listen_probe.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "server.h"
#include "sms.h"
#include "sms_inbox.h"
#include "sqlite_schema.h"
#include "store.h"
#include "tls_files.h"

namespace ijazat::appliance {

class Appliance::Impl {
 public:
  Config config;
  SystemClock system_clock;
  const Clock* clock = nullptr;
  std::unique_ptr<Logger> logger;
  Metrics metrics;
  std::unique_ptr<policy::PolicyStore> policies;
  std::unique_ptr<hsm::Pkcs11Hsm> hsm;
  std::unique_ptr<ConsentStore> store;
  std::unique_ptr<IdentityRegistry> registry;
  std::unique_ptr<CitizenCrypto> crypto;
  std::unique_ptr<Enrolments> enrolments;
  std::unique_ptr<HsmTokenService> tokens;
  std::unique_ptr<SmsSender> sender;
  std::unique_ptr<OutboxDispatcher> dispatcher;
  std::unique_ptr<ConsentService> consents;
  std::unique_ptr<SmsInbox> inbox;
  std::unique_ptr<policy::ProviderRateLimiter> rate_limiter;
  std::unique_ptr<ApplianceServer> server;
  std::unique_ptr<AuditAnchor> audit_anchor;
  std::string key_versions;  // as last logged (hsm.keys)
  // Read by the start, handed to the server when it starts.
  SecretString inbound_secret;
  SecretString dlr_secret;
  std::string audit_key;  // the verifier key of the audit checkpoints
  bool stopped = false;
};

namespace {

Error Context(const Error& error, const std::string& what) { return error.WithContext(what); }

// Shared secrets (the gateway's, the delivery reports') are at least this long: 128 bits of
// hex, and more in practice (openssl rand -hex 32).
constexpr std::size_t kMinSharedSecretSize = 32;

// Everything the start does before it serves, in the order it does it. For a check (`serve`
// false) the log goes to standard error, the audit chain is verified but not signed, and
// neither the dispatcher nor the server starts: nothing is bound, nothing is sent.
Result<std::unique_ptr<Appliance::Impl>> Assemble(const Config& config,
                                                  const ApplianceOptions& options, bool serve,
                                                  std::vector<std::string>* checked) {
  auto impl = std::make_unique<Appliance::Impl>();
  Appliance::Impl& a = *impl;
  a.config = config;
  a.clock = options.clock != nullptr ? options.clock : &a.system_clock;
  a.logger = std::make_unique<Logger>(serve ? config.log_file : std::string());
  const auto note = [checked](std::string line) {
    if (checked != nullptr) checked->push_back(std::move(line));
  };

  // The files first: a wrong path or a key others can read is found before the HSM is touched.
  auto tls =
      CheckTlsFiles({config.tls.certificate, config.tls.key, config.tls.client_ca}, a.clock->Now());
  if (!tls.ok()) return tls.error();
  for (const std::string& warning : *tls) a.logger->Warn("tls.certificate", {{"detail", warning}});
  note("TLS: " + config.tls.certificate + " and its key " + config.tls.key + " match" +
       (config.tls.client_ca.empty() ? "" : "; client CAs from " + config.tls.client_ca));
  auto listen = ProbeListen(config.server.listen);
  if (!listen.ok()) return listen.error();
  note("listen: " + config.server.listen + ", " + *listen);

  std::vector<policy::Diagnostic> diagnostics;
  policy::LoaderRules rules;
  rules.refuse_published_demo_credentials = !config.allow_demo_credentials;
  auto policies =
      policy::PolicyStore::Open(config.policy_path, policy::PolicyLoader({}, rules), &diagnostics);
  if (!policies.ok()) return Context(policies.error(), "loading the policy " + config.policy_path);
  if (config.allow_demo_credentials) {
    a.logger->Warn("policy.demo_credentials_allowed",
                   {{"detail",
                     "development.allow_demo_credentials is on: the policy may accept the "
                     "public demo API key; never use this setting in service"}});
  }
  a.policies = std::move(policies).value();
  note("policy: " + config.policy_path + ", " + a.policies->Current()->identity().ToString());

  hsm::HsmOptions hsm_options;
  hsm_options.module_path = config.hsm.module;
  hsm_options.token_label = config.hsm.token;
  hsm_options.pin = config.hsm.pin_file.empty() ? hsm::PinSource::Environment(config.hsm.pin_env)
                                                : hsm::PinSource::File(config.hsm.pin_file);
  hsm_options.faults = options.hsm_faults;
  // Every thread that may call the HSM at once keeps its session: opening and closing sessions
  // under load costs a round trip each on a network HSM.
  hsm_options.max_idle_sessions = static_cast<std::size_t>(
      std::max(8, config.server.threads + config.sms.dispatch_threads + 2));
  auto opened = hsm::Pkcs11Hsm::Open(hsm_options);
  if (!opened.ok()) return Context(opened.error(), "opening the HSM");
  a.hsm = std::move(opened).value();
  std::string active_keys;
  for (const hsm::KeyKind kind : {hsm::KeyKind::kOtp, hsm::KeyKind::kReceipt, hsm::KeyKind::kIndex,
                                  hsm::KeyKind::kData, hsm::KeyKind::kLog}) {
    auto active = a.hsm->ActiveKey(kind);
    if (!active.ok()) return Context(active.error(), "checking the HSM's keys");
    active_keys += (active_keys.empty() ? "" : " ") + active->Label();
  }
  note("HSM: " + config.hsm.module + ", token " + config.hsm.token +
       ", PIN accepted; active keys " + active_keys + ", every key as its template requires");

  // A check opens the store only when the start would change nothing in it: a store the start
  // would create or migrate is left as it is (a check may run beside a serving appliance, or
  // with a newer build than the one serving).
  bool open_store = serve;
  if (!serve) {
    auto state = sqlite::InspectStoreFile(config.store_path);
    if (!state.ok()) return Context(state.error(), "checking the store " + config.store_path);
    open_store = state->exists && state->pending == 0;
    if (!state->exists) {
      // The HSM remembers the last head it signed: a store that held a signed chain is not
      // lost unnoticed, by the check as by the start.
      auto signed_head = LastSignedAuditHead(*a.hsm);
      if (!signed_head.ok()) return Context(signed_head.error(), "reading the audit head");
      if (*signed_head && (*signed_head)->seq > 0) {
        return Error(ErrorCode::kDataLoss,
                     "checking the audit chain: the store " + config.store_path +
                         " does not exist, but the HSM last signed its audit chain at seq " +
                         std::to_string((*signed_head)->seq) +
                         ": the database was lost or moved; restore it and check it with "
                         "ijazat-audit verify",
                     "audit_chain_inconsistent");
      }
      note("store: " + config.store_path + " does not exist: the start would create it");
    } else if (state->pending > 0) {
      note("store: " + config.store_path + " at schema version " + std::to_string(state->version) +
           ": the start would apply " + std::to_string(state->pending) +
           " migration(s); left unopened, so the audit "
           "chain is not verified");
    }
  }
  if (open_store) {
    auto store = OpenSqliteStore({config.store_path, 5000});
    if (!store.ok()) return Context(store.error(), "opening the store " + config.store_path);
    a.store = std::move(store).value();
    note("store: " + config.store_path + " at the current schema version");
  }
  auto registry = OpenSqliteRegistry(config.registry_path);
  if (!registry.ok()) {
    return Context(registry.error(), "opening the identity registry " + config.registry_path);
  }
  a.registry = std::move(registry).value();
  note("identity registry: " + config.registry_path);
  if (a.store) {
    a.audit_anchor =
        std::make_unique<AuditAnchor>(*a.store, *a.hsm, *a.clock, AuditOrigin(config.issuer));
    auto audit_key = a.audit_anchor->VerifierKey();
    if (!audit_key.ok()) return Context(audit_key.error(), "exporting the audit log key");
    a.audit_key = *audit_key;
  }
  if (options.accept_restored_audit_chain) {
    auto head = a.store->AuditChainHead();
    if (!head.ok()) return Context(head.error(), "reading the audit chain");
    if (auto accepted = a.audit_anchor->AcceptRestoredChain(); !accepted.ok()) {
      return Context(accepted.error(), "accepting the restored audit chain");
    }
    AuditEvent restored;
    restored.at = a.clock->Now();
    restored.event = "audit.restore_accepted";
    restored.detail = "{\"head_seq\":" + std::to_string(head->seq) + "}";
    if (auto recorded = a.store->RecordEvent(restored, {}); !recorded.ok()) {
      return Context(recorded.error(), "recording the restore in the audit chain");
    }
    a.logger->Warn("audit.restore_accepted",
                   {{"head_seq", head->seq},
                    {"detail",
                     "started with --accept-restored-audit: the HSM's record of the "
                     "last signed head was replaced by this database's"}});
  }
  // Whatever the chain holds at start is signed before anything is added to it. A chain that
  // disagrees with its own last checkpoint (truncated or rewritten while the appliance was
  // stopped, or a backup restored without its checkpoints' chain) is never signed, and the
  // appliance does not start on it. A check verifies the same and signs nothing: it may run
  // beside a serving appliance.
  if (!serve) {
    if (a.audit_anchor) {
      if (auto verified = a.audit_anchor->Verify(); !verified.ok()) {
        return Context(verified.error(), "checking the audit chain");
      }
      note("audit chain: agrees with the last head the HSM signed");
    }
  } else if (auto first = a.audit_anchor->Checkpoint(); !first.ok()) {
    if (first.error().reason() == "audit_chain_inconsistent") {
      a.logger->Error("audit.chain_inconsistent", {{"error", first.error().message()}});
      return Context(first.error(), "checking the audit chain");
    }
    a.metrics.CountEvent("audit_checkpoint_failed");
    a.logger->Error("audit.checkpoint_failed", {{"error", first.error().message()}});
  } else if (*first) {
    a.logger->Info("audit.checkpoint", {{"seq", (*first)->seq}, {"note", (*first)->note}});
  }

  auto inbound_secret =
      hsm::PinSource::File(config.sms.inbound_secret_file, "SMS gateway secret").Read();
  if (!inbound_secret.ok()) {
    return Context(inbound_secret.error(), "reading the SMS gateway secret");
  }
  if (inbound_secret->UnsafeView().size() < kMinSharedSecretSize) {
    return Error(ErrorCode::kFailedPrecondition,
                 "the SMS gateway secret in " + config.sms.inbound_secret_file +
                     " is shorter than " + std::to_string(kMinSharedSecretSize) +
                     " characters: one logged token or URL would let it be guessed offline; "
                     "make one with openssl rand -hex 32",
                 "config_invalid");
  }

  a.crypto = std::make_unique<CitizenCrypto>(*a.hsm);
  const bool open_enrolment = config.sms.enrolment == SmsConfig::Enrolment::kOpen;
  if (open_enrolment) {
    // Anyone can enrol any CNIC from any number: a takeover of every citizen's consent.
    a.logger->Warn("enrolment.open",
                   {{"detail",
                     "sms.enrolment is open-for-development: any number can enrol any CNIC; "
                     "never use this setting with real citizens"}});
  } else if (auto source = a.registry->CheckBindingSource(); !source.ok()) {
    // Fail at start, not at the first enrolment: the records must be there.
    return Context(source.error(), "sms.enrolment is authority, but");
  }
  hsm::Pkcs11Hsm* hsm_ptr = a.hsm.get();
  a.tokens = std::make_unique<HsmTokenService>(
      *a.hsm,
      ReceiptIssuer{config.issuer, config.receipt.operator_name, config.receipt.operator_contact,
                    "PK", config.receipt.policy_url, config.sms.short_code},
      [hsm_ptr] { return hsm_ptr->Jwks(); });

  // Delivery reports are authenticated by a secret of their own: the gateway secret, which
  // authenticates citizens' SMS, is never handed to Kannel.
  SecretString dlr_secret;
  if (!config.sms.dlr_secret_file.empty()) {
    auto read = hsm::PinSource::File(config.sms.dlr_secret_file, "delivery-report secret").Read();
    if (!read.ok()) return Context(read.error(), "reading the delivery-report secret");
    if (read->UnsafeView().size() < kMinSharedSecretSize) {
      // Each report's token is an HMAC of its id under this secret, and Kannel logs tokens: a
      // short secret is found from one of them offline.
      return Error(ErrorCode::kFailedPrecondition,
                   "the delivery-report secret in " + config.sms.dlr_secret_file +
                       " is shorter than " + std::to_string(kMinSharedSecretSize) +
                       " characters; make one with openssl rand -hex 32",
                   "config_invalid");
    }
    if (ConstantTimeEquals(AsBytes(read->UnsafeView()), AsBytes(inbound_secret->UnsafeView()))) {
      return Error(ErrorCode::kFailedPrecondition,
                   "sms.dlr_secret_file holds the gateway secret: give delivery reports a "
                   "secret of their own (openssl rand -hex 32)",
                   "config_invalid");
    }
    dlr_secret = std::move(read).value();
  }
  if (config.sms.sender == "kannel") {
    auto password = hsm::PinSource::File(config.sms.kannel_password_file, "Kannel password").Read();
    if (!password.ok()) return Context(password.error(), "reading the Kannel password");
    KannelOptions kannel;
    kannel.url = config.sms.kannel_url;
    kannel.ca_file = config.sms.kannel_ca_file;
    kannel.username = config.sms.kannel_username;
    kannel.password = std::move(password).value();
    kannel.from = config.sms.short_code;
    kannel.dlr_url = config.sms.kannel_dlr_url;
    kannel.dlr_secret = SecretString(std::string(dlr_secret.UnsafeView()));
    auto sender = KannelSmsSender::Create(std::move(kannel));
    if (!sender.ok()) return sender.error();
    a.sender = std::move(sender).value();
  } else {
    a.sender = std::make_unique<FileSmsSender>(config.sms.file, *a.clock);
  }
  if (!serve) {
    // What follows wires the services together and checks nothing more.
    const std::string sms_note =
        std::string("SMS: ") +
        (config.sms.sender == "kannel" ? "Kannel at " + config.sms.kannel_url
                                       : "written to " + config.sms.file) +
        "; gateway secret read; enrolment " +
        (open_enrolment ? "open-for-development" : "authority");
    note(sms_note);
    return impl;
  }
  a.enrolments = std::make_unique<Enrolments>(
      *a.store, *a.crypto, open_enrolment ? nullptr : a.registry.get(), *a.clock);
  a.dispatcher = std::make_unique<OutboxDispatcher>(
      *a.store, *a.crypto, *a.sender, SmsTemplates(), *a.clock,
      DispatcherOptions{
          config.sms.dispatch_batch, config.sms.dispatch_threads,
          open_enrolment ? nullptr : a.enrolments.get(), config.sms.caps,
          [logger = a.logger.get(), metrics = &a.metrics](
              std::string_view cap, const std::string& provider, const std::string& consent_id) {
            // Codes go to one citizen or number faster than the caps allow: per provider, so
            // that the operator sees who, and can suspend it. The consent id leads to the
            // request that asked for the code (http.request logs it with its request id).
            metrics->CountLimitHit(provider, cap);
            logger->Warn(
                "sms.cap_hit",
                {{"cap", std::string(cap)}, {"provider", provider}, {"consent_id", consent_id}});
          }});
  OutboxDispatcher* dispatcher = a.dispatcher.get();
  auto notify = [dispatcher] { dispatcher->Wake(); };
  a.consents = std::make_unique<ConsentService>(*a.store, *a.crypto, *a.enrolments, *a.tokens,
                                                *a.registry, *a.clock, notify);
  SmsInboxOptions inbox_options;
  inbox_options.short_code = config.sms.short_code;
  inbox_options.numbers = config.sms.numbers;
  inbox_options.max_number_changes = config.sms.number_changes.max;
  inbox_options.number_change_window = config.sms.number_changes.window.count();
  inbox_options.caps = config.sms.caps;
  a.inbox = std::make_unique<SmsInbox>(*a.store, *a.crypto, *a.enrolments, *a.clock,
                                       std::move(inbox_options), notify);
  a.rate_limiter = std::make_unique<policy::ProviderRateLimiter>();
  a.inbound_secret = std::move(inbound_secret).value();
  a.dlr_secret = std::move(dlr_secret);
  return impl;
}

}  // namespace

int ExitStatusFor(const Error& error) {
  static constexpr std::string_view kConfiguration[] = {
      "config_invalid",        "policy_invalid",   "subscribers_missing",
      "tls_invalid",           "listen_invalid",   "audit_chain_inconsistent",
      "module_load_failed",    "token_not_found",  "pin_source",
      "pin_invalid",           "pin_not_usable",   "unknown_key",
      "key_template_mismatch", "key_ambiguous",    "database_path_invalid",
      "store_schema_newer",    "registry_missing", "registry_invalid",
  };
  const std::string_view reason = error.reason();
  if (reason == "pin_incorrect" || reason == "pin_locked") return 3;
  if (reason == "pin_file_unsafe" || reason == "tls_key_unsafe") return 4;
  for (const std::string_view configuration : kConfiguration) {
    if (reason == configuration) return 2;
  }
  return 1;
}

Result<std::vector<std::string>> Appliance::Check(const Config& config,
                                                  const ApplianceOptions& options) {
  std::vector<std::string> checked;
  IJAZAT_RETURN_IF_ERROR(Assemble(config, options, false, &checked));
  return checked;
}

Result<std::unique_ptr<Appliance>> Appliance::Start(const Config& config,
                                                    const ApplianceOptions& options) {
  IJAZAT_ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, Assemble(config, options, true, nullptr));
  Impl& a = *impl;
  if (options.start_dispatcher) a.dispatcher->Start();

  ServerOptions server_options;
  server_options.listen = config.server.listen;
  server_options.certificate_file = config.tls.certificate;
  server_options.key_file = config.tls.key;
  server_options.client_ca_file = config.tls.client_ca;
  server_options.threads = config.server.threads;
  server_options.max_queued = config.server.max_queued;
  server_options.io_threads = config.server.io_threads;
  server_options.max_connections = config.server.max_connections;
  server_options.keep_alive_timeout_s = static_cast<int>(config.server.keep_alive_timeout.count());
  server_options.request_timeout_s = static_cast<int>(config.server.request_timeout.count());
  server_options.max_keep_alive_requests = config.server.max_keep_alive_requests;
  ServerContext context;
  context.policies = a.policies.get();
  context.consents = a.consents.get();
  context.inbox = a.inbox.get();
  context.tokens = a.tokens.get();
  context.hsm = a.hsm.get();
  context.store = a.store.get();
  context.registry = a.registry.get();
  context.dispatcher = a.dispatcher.get();
  context.rate_limiter = a.rate_limiter.get();
  context.metrics = &a.metrics;
  context.logger = a.logger.get();
  context.clock = a.clock;
  context.inbound_secret = std::move(a.inbound_secret);
  context.dlr_secret = std::move(a.dlr_secret);
  context.enrolment =
      config.sms.enrolment == SmsConfig::Enrolment::kOpen ? "open-for-development" : "authority";
  auto server = ApplianceServer::Start(server_options, std::move(context));
  if (!server.ok()) return server.error();
  a.server = std::move(server).value();

  const auto identity = a.policies->Current()->identity();
  a.logger->Info("appliance.started", {{"port", a.server->port()},
                                       {"policy", identity.ToString()},
                                       {"token", config.hsm.token},
                                       {"audit_key", a.audit_key}});
  return std::unique_ptr<Appliance>(new Appliance(std::move(impl)));
}

Result<std::optional<ConsentStore::AuditCheckpoint>> Appliance::CheckpointAudit() {
  auto checkpoint = impl_->audit_anchor->Checkpoint();
  if (!checkpoint.ok()) {
    impl_->metrics.CountEvent("audit_checkpoint_failed");
    impl_->logger->Error("audit.checkpoint_failed", {{"error", checkpoint.error().message()}});
    return checkpoint.error();
  }
  if (*checkpoint) {
    impl_->logger->Info("audit.checkpoint",
                        {{"seq", (*checkpoint)->seq}, {"note", (*checkpoint)->note}});
  }
  return checkpoint;
}

Result<std::string> Appliance::AuditVerifierKey() { return impl_->audit_anchor->VerifierKey(); }

Appliance::Appliance(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Appliance::~Appliance() { Stop(); }

int Appliance::port() const { return impl_->server->port(); }

Status Appliance::Reload() {
  std::vector<policy::Diagnostic> diagnostics;
  auto reloaded = impl_->policies->Reload(impl_->config.policy_path, &diagnostics);
  Status status = OkStatus();
  if (reloaded.ok()) {
    impl_->logger->Info("policy.reloaded", {{"policy", reloaded->ToString()}});
  } else {
    impl_->metrics.CountEvent("policy_reload_failed");
    impl_->logger->Warn("policy.reload_failed",
                        {{"error", reloaded.error().message()},
                         {"kept", impl_->policies->Current()->identity().ToString()},
                         {"detail",
                          "the file on disk is not the policy in force: a restart would refuse "
                          "it (exit status 2); fix or restore it before any restart"}});
    status = reloaded.error();
  }
  RefreshKeys();
  return status;
}

void Appliance::RefreshKeys() {
  if (auto refreshed = impl_->hsm->Refresh(); !refreshed.ok()) {
    impl_->logger->Warn("hsm.refresh_failed", {{"error", refreshed.error().message()}});
    return;
  }
  // A key version that deviates from its template (planted by hand) is never used: say so.
  for (const std::string& rejected : impl_->hsm->RejectedKeys()) {
    impl_->logger->Error("hsm.key_rejected", {{"key", rejected}});
  }
  impl_->tokens->Refresh();
  // Say which versions are in use when that changed (a rotation or retirement by the key
  // ceremony's tool, from another process).
  std::string versions;
  if (auto keys = impl_->hsm->ListKeys(); keys.ok()) {
    for (const hsm::KeyInfo& key : *keys) {
      versions += (versions.empty() ? "" : " ") + key.ref.Label() + ":" +
                  std::string(hsm::KeyStateName(key.state));
    }
  }
  if (!versions.empty() && versions != impl_->key_versions) {
    impl_->key_versions = versions;
    impl_->logger->Info("hsm.keys", {{"versions", versions}});
  }
}

void Appliance::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server->Stop(10000);
  impl_->dispatcher->Stop();
  (void)CheckpointAudit();  // the last events before the stop are signed too
  impl_->logger->Info("appliance.stopped");
}

void Appliance::Sweep() {
  if (auto expired = impl_->store->ExpireConsents(impl_->clock->Now()); !expired.ok()) {
    impl_->logger->Warn("store.sweep_failed", {{"error", expired.error().message()}});
  }
  (void)SweepBindings();
  // Rotations and retirements made by ijazat-provision take effect within a sweep, without a
  // signal: a retired version stops verifying and leaves the JWKS.
  RefreshKeys();
  (void)CheckpointAudit();
}

Result<int> Appliance::SweepBindings() {
  int suspended = 0;
  // Bounded in time so that a huge import cannot hold up signals or the HSM for long; the
  // next sweep (a minute later) goes on where this one stopped.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  do {
    auto swept = impl_->enrolments->SweepChangedBindings(200);
    if (!swept.ok()) {
      impl_->logger->Warn("enrolment.sweep_failed", {{"error", swept.error().message()}});
      return swept.error();
    }
    suspended += swept->suspended;
    if (swept->checked > 0 || swept->suspended > 0 || swept->failed > 0) {
      impl_->metrics.CountEvent("enrolment_rechecked", static_cast<std::uint64_t>(swept->checked));
      impl_->metrics.CountEvent("enrolment_suspended",
                                static_cast<std::uint64_t>(swept->suspended));
      impl_->logger->Info("enrolment.rechecked", {{"checked", swept->checked},
                                                  {"suspended", swept->suspended},
                                                  {"failed", swept->failed}});
    }
    if (swept->failed > 0) {
      impl_->metrics.CountEvent("enrolment_recheck_failed",
                                static_cast<std::uint64_t>(swept->failed));
      impl_->logger->Warn("enrolment.recheck_failed",
                          {{"failed", swept->failed}, {"first", swept->first_failure}});
    }
    if (!swept->more) break;
  } while (std::chrono::steady_clock::now() < deadline);
  if (suspended > 0) impl_->dispatcher->Wake();
  return suspended;
}

hsm::Pkcs11Hsm& Appliance::hsm() { return *impl_->hsm; }
ConsentStore& Appliance::store() { return *impl_->store; }
OutboxDispatcher& Appliance::dispatcher() { return *impl_->dispatcher; }

}  // namespace ijazat::appliance
