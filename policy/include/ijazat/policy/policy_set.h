// PolicySet: one validated, immutable provider policy, and the decisions the appliance takes
// from it.
//
// A PolicySet is only ever produced by PolicyLoader, which validates the whole document first,
// so every PolicySet satisfies the schema's invariants (unique ids and credentials, limits in
// their safe ranges, providers only tightening the defaults). It is immutable after
// construction: any number of threads may read it concurrently without locking. Pointers and
// references it hands out (const Provider*, const Purpose*) stay valid for as long as the
// PolicySet lives; request handlers keep the std::shared_ptr<const PolicySet> snapshot they
// started with for the whole request, so a reload never changes a decision half-way.
//
// Lookups and Decide() never fail with an Error: an unknown credential is "no provider" and a
// refused request is a Decision that says why.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/policy/scope.h"

namespace ijazat::policy {

// Limits on the one-time code sent to the citizen.
struct OtpLimits {
  int digits = 6;                 // 6-8
  std::chrono::seconds ttl{300};  // 30s-10m
  int max_attempts = 3;           // wrong codes allowed per consent, 1-5
  bool operator==(const OtpLimits&) const = default;
};

// Limits on the consent token a provider receives after the citizen consents.
struct TokenLimits {
  std::chrono::seconds ttl{900};  // 1m-24h
  int max_uses = 1;               // 1-10
  bool operator==(const TokenLimits&) const = default;
};

// Limits that protect one citizen (one CNIC) from abuse and SIM swaps.
struct CnicLimits {
  int failures_per_day = 10;                              // per CNIC per 24h, 1-100
  int sms_per_hour = 5;                                   // per CNIC, 1-20
  std::chrono::seconds number_change_cooling_off{86400};  // 1h-30d
  bool operator==(const CnicLimits&) const = default;
};

// The limits that apply to a request: the policy defaults, or a provider's tightened copy.
struct Limits {
  OtpLimits otp;
  TokenLimits token;
  CnicLimits cnic;
  bool operator==(const Limits&) const = default;
};

struct RateLimit {
  std::uint32_t requests_per_minute = 60;  // sustained rate, 1-6000
  std::uint32_t burst = 10;                // requests allowed at once, 1-1000
  bool operator==(const RateLimit&) const = default;
};

enum class ProviderStatus { kActive, kSuspended };
std::string_view ToString(ProviderStatus status);

enum class CredentialType {
  kApiKey,             // SHA-256 of the API key as presented by the provider
  kClientCertificate,  // SHA-256 of the client certificate's DER encoding
};
std::string_view ToString(CredentialType type);

struct Credential {
  CredentialType type = CredentialType::kApiKey;
  std::string sha256_hex;  // 64 lowercase hex digits; never a plaintext key
  std::string label;       // free text for reviewers ("prod key 2025-06"); may be empty
};

struct Purpose {
  std::string id;             // slug, unique within its provider
  std::string sms_text;       // GSM-7 text named in the citizen's SMS
  std::vector<Scope> scopes;  // non-empty, catalogue order, no duplicates
  bool Allows(Scope scope) const;
};

// The provider as the data controller that every consent receipt names (Kantara
// piiControllers, the first entry): who receives the citizen's data and answers for it.
struct Controller {
  std::string legal_name;          // the registered name ("Demo Bank Limited"); required
  std::string address;             // one line, street to city; may be empty
  std::string country;             // ISO 3166-1 alpha-2, upper case ("PK"); required
  std::string contact;             // a role or office ("Data Protection Officer"); required
  std::string email;               // may be empty
  std::string phone;               // "+92 21 111 000 000"; may be empty
  std::string privacy_policy_url;  // https://...; the receipts' policyUrl; may be empty
  bool operator==(const Controller&) const = default;
};

struct Provider {
  std::string id;            // slug; the token's `aud`
  std::string display_name;  // GSM-7 text named in the citizen's SMS
  // The `controller` section; absent, receipts name the provider by its display name alone.
  std::optional<Controller> controller;
  ProviderStatus status = ProviderStatus::kActive;
  std::optional<std::chrono::sys_seconds> valid_from;   // inclusive
  std::optional<std::chrono::sys_seconds> valid_until;  // exclusive
  std::vector<Credential> credentials;                  // sorted by (type, hash)
  std::vector<Purpose> purposes;                        // sorted by id
  RateLimit rate_limit;
  bool reveal_enrolment_status = false;
  Limits limits;  // effective limits: the defaults, tightened by this provider's overrides

  const Purpose* FindPurpose(std::string_view purpose_id) const;
};

// What every receipt records about the policy in force.
struct PolicyIdentity {
  std::string version;           // the document's `version`
  std::string sha256_hex;        // SHA-256 of the canonical form, 64 lowercase hex digits
  std::string ToString() const;  // "<version> sha256:<hex>"
  bool operator==(const PolicyIdentity&) const = default;
};

enum class DenyReason {
  kUnknownProvider,
  kProviderSuspended,
  kNotYetValid,
  kExpired,
  kUnknownPurpose,
  kNoScopes,
  kUnknownScope,
  kScopeNotAllowed,
};
// A stable snake_case tag ("provider_suspended") for logs, metrics and API error types.
std::string_view ToString(DenyReason reason);

// The answer to "may this provider ask for these scopes for this purpose now?". The message
// names only the provider's own configuration, so it is safe to return to that provider.
class Decision {
 public:
  static Decision Allow();
  static Decision Deny(DenyReason reason, std::string message);

  bool allowed() const { return !reason_.has_value(); }
  // Precondition: !allowed().
  DenyReason reason() const { return *reason_; }
  const std::string& message() const { return message_; }

 private:
  Decision(std::optional<DenyReason> reason, std::string message)
      : reason_(reason), message_(std::move(message)) {}
  std::optional<DenyReason> reason_;
  std::string message_;
};

// The parsed content of a policy document. PolicyLoader fills and validates it; it is public
// so that tests and tools can read a PolicySet's parts, not so that callers build policies
// around the loader's checks (PolicySet's constructor is reserved to the loader).
struct PolicyContent {
  std::string version;
  Limits defaults;
  std::vector<Provider> providers;
};

class PolicyLoader;

class PolicySet {
 public:
  // Only PolicyLoader can make a ConstructionKey, so only validated content becomes a PolicySet.
  class ConstructionKey {
   private:
    friend class PolicyLoader;
    ConstructionKey() = default;
  };
  PolicySet(ConstructionKey, PolicyContent content);

  PolicySet(const PolicySet&) = delete;
  PolicySet& operator=(const PolicySet&) = delete;

  const std::string& version() const { return content_.version; }
  const PolicyIdentity& identity() const { return identity_; }
  const Limits& defaults() const { return content_.defaults; }
  // Sorted by id.
  std::span<const Provider> providers() const { return content_.providers; }

  // The exact bytes hashed into identity().sha256_hex: compact JSON with sorted keys and every
  // effective value spelled out, so comments, key order, formatting, provider order and
  // explicitly written defaults never change the hash.
  const std::string& canonical_form() const { return canonical_; }

  const Provider* FindProvider(std::string_view provider_id) const;

  // Credential lookups return the provider whatever its status (so the API can tell a
  // suspended provider that it is suspended), or nullptr. The arguments are SHA-256 digests
  // (32 bytes); anything else finds nothing. The maps are keyed by the digest, never by the
  // secret, so a lookup's timing reveals nothing useful about a key.
  const Provider* FindProviderByApiKeyHash(ByteView sha256) const;
  const Provider* FindProviderByCertFingerprint(ByteView sha256_of_der) const;
  // Hashes the presented key and looks the digest up; the key is not kept.
  const Provider* FindProviderByApiKey(std::string_view presented_key) const;

  // May `provider` use the API at all at `now`? It must be active and inside its validity
  // window (kProviderSuspended, kNotYetValid, kExpired otherwise). Every endpoint asks this
  // once the provider is authenticated; Decide() asks it first.
  static Decision Admit(const Provider& provider, std::chrono::system_clock::time_point now);

  // May `provider_id` ask for `scopes` for `purpose_id` at `now`? Checks, in order: the
  // provider exists, is active, is inside its validity window; the purpose exists; at least
  // one scope was asked for; every scope is in the catalogue and allowed for the purpose.
  // Duplicate scopes are harmless. Rate limits are separate (ProviderRateLimiter).
  Decision Decide(std::string_view provider_id, std::string_view purpose_id,
                  std::span<const std::string> scopes,
                  std::chrono::system_clock::time_point now) const;

 private:
  PolicyContent content_;
  std::string canonical_;
  PolicyIdentity identity_;
  std::unordered_map<std::string, std::size_t> by_id_;
  std::unordered_map<std::string, std::size_t> by_api_key_;  // raw 32-byte digest -> index
  std::unordered_map<std::string, std::size_t> by_cert_;     // raw 32-byte digest -> index
};

}  // namespace ijazat::policy
