#include "ijazat/policy/policy_set.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>

#include "canonical.h"
#include "sha256.h"
#include "timestamp.h"

namespace ijazat::policy {
namespace {

std::string DigestKey(ByteView digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

std::string JoinScopes(const std::vector<Scope>& scopes) {
  std::string out;
  for (Scope scope : scopes) {
    if (!out.empty()) out += ", ";
    out += ScopeName(scope);
  }
  return out;
}

}  // namespace

std::string_view ToString(ProviderStatus status) {
  return status == ProviderStatus::kActive ? "active" : "suspended";
}

std::string_view ToString(CredentialType type) {
  return type == CredentialType::kApiKey ? "api_key" : "client_certificate";
}

std::string_view ToString(DenyReason reason) {
  switch (reason) {
    case DenyReason::kUnknownProvider:
      return "unknown_provider";
    case DenyReason::kProviderSuspended:
      return "provider_suspended";
    case DenyReason::kNotYetValid:
      return "provider_not_yet_valid";
    case DenyReason::kExpired:
      return "provider_expired";
    case DenyReason::kUnknownPurpose:
      return "unknown_purpose";
    case DenyReason::kNoScopes:
      return "no_scopes";
    case DenyReason::kUnknownScope:
      return "unknown_scope";
    case DenyReason::kScopeNotAllowed:
      return "scope_not_allowed";
  }
  return "denied";
}

bool Purpose::Allows(Scope scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

const Purpose* Provider::FindPurpose(std::string_view purpose_id) const {
  for (const Purpose& purpose : purposes) {
    if (purpose.id == purpose_id) return &purpose;
  }
  return nullptr;
}

std::string PolicyIdentity::ToString() const { return version + " sha256:" + sha256_hex; }

Decision Decision::Allow() { return Decision(std::nullopt, {}); }

Decision Decision::Deny(DenyReason reason, std::string message) {
  return Decision(reason, std::move(message));
}

PolicySet::PolicySet(ConstructionKey, PolicyContent content) : content_(std::move(content)) {
  // Normalise order so that lookups, the canonical form and diffs never depend on the order
  // things were written in.
  std::sort(content_.providers.begin(), content_.providers.end(),
            [](const Provider& a, const Provider& b) { return a.id < b.id; });
  for (Provider& provider : content_.providers) {
    std::sort(provider.purposes.begin(), provider.purposes.end(),
              [](const Purpose& a, const Purpose& b) { return a.id < b.id; });
    for (Purpose& purpose : provider.purposes) {
      std::sort(purpose.scopes.begin(), purpose.scopes.end());
      purpose.scopes.erase(std::unique(purpose.scopes.begin(), purpose.scopes.end()),
                           purpose.scopes.end());
    }
    std::sort(provider.credentials.begin(), provider.credentials.end(),
              [](const Credential& a, const Credential& b) {
                return std::tie(a.type, a.sha256_hex) < std::tie(b.type, b.sha256_hex);
              });
  }
  for (std::size_t i = 0; i < content_.providers.size(); ++i) {
    const Provider& provider = content_.providers[i];
    by_id_.emplace(provider.id, i);
    for (const Credential& credential : provider.credentials) {
      const auto digest = HexDecode(credential.sha256_hex);
      if (!digest) continue;  // the loader guarantees 64 hex digits
      auto& index = credential.type == CredentialType::kApiKey ? by_api_key_ : by_cert_;
      index.emplace(DigestKey(*digest), i);
    }
  }
  canonical_ = internal::CanonicalForm(content_);
  identity_ = {content_.version, HexEncode(internal::Sha256(canonical_))};
}

const Provider* PolicySet::FindProvider(std::string_view provider_id) const {
  const auto found = by_id_.find(std::string(provider_id));
  return found == by_id_.end() ? nullptr : &content_.providers[found->second];
}

const Provider* PolicySet::FindProviderByApiKeyHash(ByteView sha256) const {
  if (sha256.size() != 32) return nullptr;
  const auto found = by_api_key_.find(DigestKey(sha256));
  return found == by_api_key_.end() ? nullptr : &content_.providers[found->second];
}

const Provider* PolicySet::FindProviderByCertFingerprint(ByteView sha256_of_der) const {
  if (sha256_of_der.size() != 32) return nullptr;
  const auto found = by_cert_.find(DigestKey(sha256_of_der));
  return found == by_cert_.end() ? nullptr : &content_.providers[found->second];
}

const Provider* PolicySet::FindProviderByApiKey(std::string_view presented_key) const {
  if (presented_key.empty()) return nullptr;
  return FindProviderByApiKeyHash(internal::Sha256(presented_key));
}

Decision PolicySet::Admit(const Provider& provider, std::chrono::system_clock::time_point now) {
  if (provider.status == ProviderStatus::kSuspended) {
    return Decision::Deny(DenyReason::kProviderSuspended,
                          "provider " + provider.id + " is suspended");
  }
  if (provider.valid_from && now < *provider.valid_from) {
    return Decision::Deny(DenyReason::kNotYetValid,
                          "provider " + provider.id + " is not valid before " +
                              internal::FormatTimestamp(*provider.valid_from));
  }
  if (provider.valid_until && now >= *provider.valid_until) {
    return Decision::Deny(DenyReason::kExpired,
                          "provider " + provider.id + " was valid until " +
                              internal::FormatTimestamp(*provider.valid_until));
  }
  return Decision::Allow();
}

Decision PolicySet::Decide(std::string_view provider_id, std::string_view purpose_id,
                           std::span<const std::string> scopes,
                           std::chrono::system_clock::time_point now) const {
  const Provider* provider = FindProvider(provider_id);
  if (provider == nullptr) {
    return Decision::Deny(DenyReason::kUnknownProvider, "the provider is not in the policy");
  }
  if (Decision admitted = Admit(*provider, now); !admitted.allowed()) return admitted;
  const Purpose* purpose = provider->FindPurpose(purpose_id);
  if (purpose == nullptr) {
    std::string known;
    for (const Purpose& candidate : provider->purposes) {
      if (!known.empty()) known += ", ";
      known += candidate.id;
    }
    // The requested purpose id is the caller's input: it is not echoed back.
    return Decision::Deny(
        DenyReason::kUnknownPurpose,
        "provider " + provider->id + " has no such purpose; its purposes are: " + known);
  }
  if (scopes.empty()) {
    return Decision::Deny(DenyReason::kNoScopes, "the request names no scopes; name at least one");
  }
  for (const std::string& name : scopes) {
    const std::optional<Scope> scope = ParseScope(name);
    if (!scope) {
      return Decision::Deny(DenyReason::kUnknownScope,
                            "a requested scope is not in the catalogue of identity attributes");
    }
    if (!purpose->Allows(*scope)) {
      return Decision::Deny(DenyReason::kScopeNotAllowed,
                            "scope " + std::string(ScopeName(*scope)) +
                                " is not allowed for purpose " + purpose->id + " of provider " +
                                provider->id + "; allowed: " + JoinScopes(purpose->scopes));
    }
  }
  return Decision::Allow();
}

}  // namespace ijazat::policy
