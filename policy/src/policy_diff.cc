#include "ijazat/policy/policy_diff.h"

#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "ijazat/policy/duration.h"
#include "text_checks.h"
#include "timestamp.h"

namespace ijazat::policy {
namespace {

using std::chrono::seconds;

class Differ {
 public:
  std::vector<PolicyChange> Take() { return std::move(changes_); }

  void Add(ChangeImpact impact, std::string path, std::string summary) {
    changes_.push_back({impact, std::move(path), std::move(summary)});
  }

  // A value where a larger number is stricter (or looser, when higher_is_stricter is false).
  template <typename T, typename Format>
  void Compare(const std::string& path, const T& before, const T& after, bool higher_is_stricter,
               Format format) {
    if (before == after) return;
    const bool stricter = higher_is_stricter ? after > before : after < before;
    Add(stricter ? ChangeImpact::kTightened : ChangeImpact::kLoosened, path,
        format(before) + " -> " + format(after));
  }

  void CompareLimits(const std::string& path, const Limits& before, const Limits& after) {
    const auto number = [](long long v) { return std::to_string(v); };
    const auto duration = [](seconds v) { return FormatDuration(v); };
    Compare<long long>(path + "otp.digits", before.otp.digits, after.otp.digits, true, number);
    Compare<seconds>(path + "otp.ttl", before.otp.ttl, after.otp.ttl, false, duration);
    Compare<long long>(path + "otp.max_attempts", before.otp.max_attempts, after.otp.max_attempts,
                       false, number);
    Compare<seconds>(path + "token.ttl", before.token.ttl, after.token.ttl, false, duration);
    Compare<long long>(path + "token.max_uses", before.token.max_uses, after.token.max_uses, false,
                       number);
    Compare<long long>(path + "limits.failures_per_cnic_per_day", before.cnic.failures_per_day,
                       after.cnic.failures_per_day, false, number);
    Compare<long long>(path + "limits.sms_per_cnic_per_hour", before.cnic.sms_per_hour,
                       after.cnic.sms_per_hour, false, number);
    Compare<seconds>(path + "limits.number_change_cooling_off",
                     before.cnic.number_change_cooling_off, after.cnic.number_change_cooling_off,
                     true, duration);
  }

  void CompareProvider(const Provider& before, const Provider& after) {
    const std::string path = "providers[" + after.id + "]";
    if (before.status != after.status) {
      Add(after.status == ProviderStatus::kSuspended ? ChangeImpact::kTightened
                                                     : ChangeImpact::kLoosened,
          path + ".status",
          std::string(after.status == ProviderStatus::kSuspended ? "suspended" : "reinstated") +
              " (" + std::string(ToString(before.status)) + " -> " +
              std::string(ToString(after.status)) + ")");
    }
    if (before.display_name != after.display_name) {
      Add(ChangeImpact::kNeutral, path + ".display_name",
          "'" + before.display_name + "' -> '" + after.display_name + "' (shown in SMS)");
    }
    CompareController(path + ".controller", before.controller, after.controller);
    CompareWindow(path + ".valid_from", before.valid_from, after.valid_from, true);
    CompareWindow(path + ".valid_until", before.valid_until, after.valid_until, false);
    CompareCredentials(path, before, after);
    ComparePurposes(path, before, after);
    Compare<long long>(path + ".rate_limit.requests_per_minute",
                       before.rate_limit.requests_per_minute, after.rate_limit.requests_per_minute,
                       false, [](long long v) { return std::to_string(v); });
    Compare<long long>(path + ".rate_limit.burst", before.rate_limit.burst, after.rate_limit.burst,
                       false, [](long long v) { return std::to_string(v); });
    if (before.reveal_enrolment_status != after.reveal_enrolment_status) {
      Add(after.reveal_enrolment_status ? ChangeImpact::kLoosened : ChangeImpact::kTightened,
          path + ".reveal_enrolment_status",
          after.reveal_enrolment_status ? "false -> true (enrolment status now revealed)"
                                        : "true -> false");
    }
    CompareLimits(path + ".limits.", before.limits, after.limits);
  }

 private:
  // Every field, before and after: whoever reviews the change must see a new name, address or
  // URL in full (each goes into every receipt the provider receives).
  void CompareController(const std::string& path, const std::optional<Controller>& before,
                         const std::optional<Controller>& after) {
    if (before == after) return;
    if (!after) {
      Add(ChangeImpact::kNeutral, path, "removed (receipts name the display name only)");
      return;
    }
    const Controller empty;
    const Controller& old = before ? *before : empty;
    for (const auto& [field, was, now] :
         {std::tuple<const char*, const std::string*, const std::string*>{
              "legal_name", &old.legal_name, &after->legal_name},
          {"address", &old.address, &after->address},
          {"country", &old.country, &after->country},
          {"contact", &old.contact, &after->contact},
          {"email", &old.email, &after->email},
          {"phone", &old.phone, &after->phone},
          {"privacy_policy_url", &old.privacy_policy_url, &after->privacy_policy_url}}) {
      if (*was == *now) continue;
      Add(ChangeImpact::kNeutral, path + "." + field,
          internal::Quote(*was, 2048) + " -> " + internal::Quote(*now, 2048) +
              " (in every new receipt)");
    }
  }

  // A window bound: a missing valid_from is "forever in the past", a missing valid_until is
  // "forever in the future"; moving a bound outwards loosens.
  void CompareWindow(const std::string& path, const std::optional<std::chrono::sys_seconds>& before,
                     const std::optional<std::chrono::sys_seconds>& after, bool is_start) {
    if (before == after) return;
    const auto text = [](const std::optional<std::chrono::sys_seconds>& t) {
      return t ? internal::FormatTimestamp(*t) : std::string("unset");
    };
    bool loosened = false;
    if (!after) {
      loosened = true;
    } else if (!before) {
      loosened = false;
    } else {
      loosened = is_start ? *after < *before : *after > *before;
    }
    Add(loosened ? ChangeImpact::kLoosened : ChangeImpact::kTightened, path,
        text(before) + " -> " + text(after));
  }

  static std::string Describe(const Credential& credential) {
    std::string out =
        std::string(ToString(credential.type)) + " " + credential.sha256_hex.substr(0, 16) + "...";
    if (!credential.label.empty()) out += " (" + credential.label + ")";
    return out;
  }

  void CompareCredentials(const std::string& path, const Provider& before, const Provider& after) {
    std::map<std::string, const Credential*> old_set;
    std::map<std::string, const Credential*> new_set;
    const auto key = [](const Credential& c) {
      return std::string(ToString(c.type)) + ":" + c.sha256_hex;
    };
    for (const Credential& c : before.credentials) old_set.emplace(key(c), &c);
    for (const Credential& c : after.credentials) new_set.emplace(key(c), &c);
    for (const auto& [k, c] : old_set) {
      const auto found = new_set.find(k);
      if (found == new_set.end()) {
        Add(ChangeImpact::kTightened, path + ".credentials", "removed " + Describe(*c));
      } else if (found->second->label != c->label) {
        Add(ChangeImpact::kNeutral, path + ".credentials",
            "label of " + Describe(*found->second) + " was '" + c->label + "'");
      }
    }
    for (const auto& [k, c] : new_set) {
      if (old_set.find(k) == old_set.end()) {
        Add(ChangeImpact::kLoosened, path + ".credentials", "added " + Describe(*c));
      }
    }
  }

  static std::string ScopeList(const std::vector<Scope>& scopes) {
    std::string out;
    for (Scope scope : scopes) {
      if (!out.empty()) out += ", ";
      out += ScopeName(scope);
    }
    return out;
  }

  void ComparePurposes(const std::string& path, const Provider& before, const Provider& after) {
    for (const Purpose& old_purpose : before.purposes) {
      const std::string purpose_path = path + ".purposes[" + old_purpose.id + "]";
      const Purpose* new_purpose = after.FindPurpose(old_purpose.id);
      if (new_purpose == nullptr) {
        Add(ChangeImpact::kTightened, purpose_path,
            "purpose removed (had scopes " + ScopeList(old_purpose.scopes) + ")");
        continue;
      }
      for (Scope scope : new_purpose->scopes) {
        if (!old_purpose.Allows(scope)) {
          Add(ChangeImpact::kLoosened, purpose_path + ".scopes",
              "scope " + std::string(ScopeName(scope)) + " added");
        }
      }
      for (Scope scope : old_purpose.scopes) {
        if (!new_purpose->Allows(scope)) {
          Add(ChangeImpact::kTightened, purpose_path + ".scopes",
              "scope " + std::string(ScopeName(scope)) + " removed");
        }
      }
      if (old_purpose.sms_text != new_purpose->sms_text) {
        Add(ChangeImpact::kNeutral, purpose_path + ".sms_text",
            "'" + old_purpose.sms_text + "' -> '" + new_purpose->sms_text + "' (shown in SMS)");
      }
    }
    for (const Purpose& new_purpose : after.purposes) {
      if (before.FindPurpose(new_purpose.id) == nullptr) {
        Add(ChangeImpact::kLoosened, path + ".purposes[" + new_purpose.id + "]",
            "purpose added with scopes " + ScopeList(new_purpose.scopes));
      }
    }
  }

  std::vector<PolicyChange> changes_;
};

}  // namespace

std::string_view ToString(ChangeImpact impact) {
  switch (impact) {
    case ChangeImpact::kLoosened:
      return "loosened";
    case ChangeImpact::kTightened:
      return "tightened";
    case ChangeImpact::kNeutral:
      return "changed";
  }
  return "changed";
}

std::vector<PolicyChange> DiffPolicies(const PolicySet& before, const PolicySet& after) {
  Differ differ;
  if (before.version() != after.version()) {
    differ.Add(ChangeImpact::kNeutral, "version", before.version() + " -> " + after.version());
  }
  differ.CompareLimits("defaults.", before.defaults(), after.defaults());
  for (const Provider& old_provider : before.providers()) {
    const Provider* new_provider = after.FindProvider(old_provider.id);
    if (new_provider == nullptr) {
      differ.Add(ChangeImpact::kTightened, "providers[" + old_provider.id + "]",
                 "provider removed");
    } else {
      differ.CompareProvider(old_provider, *new_provider);
    }
  }
  for (const Provider& new_provider : after.providers()) {
    if (before.FindProvider(new_provider.id) != nullptr) continue;
    std::string purposes;
    for (const Purpose& purpose : new_provider.purposes) {
      if (!purposes.empty()) purposes += ", ";
      purposes += purpose.id;
    }
    const bool active = new_provider.status == ProviderStatus::kActive;
    differ.Add(active ? ChangeImpact::kLoosened : ChangeImpact::kNeutral,
               "providers[" + new_provider.id + "]",
               "provider added (" + std::string(ToString(new_provider.status)) +
                   ", purposes: " + purposes + ")");
  }
  std::vector<PolicyChange> changes = differ.Take();
  const bool content_changed = before.identity().sha256_hex != after.identity().sha256_hex;
  if (content_changed && before.version() == after.version()) {
    changes.insert(changes.begin(),
                   {ChangeImpact::kNeutral, "version",
                    "unchanged at " + after.version() +
                        " although the policy changed; receipts could not tell the two apart "
                        "by version (the hash still differs)"});
  }
  return changes;
}

}  // namespace ijazat::policy
