// What changed between two policies, in the terms a security reviewer cares about: providers
// added or removed, suspended or reinstated, credentials, purposes and scopes gained or lost,
// limits loosened or tightened. Pure functions over immutable PolicySets; thread safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ijazat/policy/policy_set.h"

namespace ijazat::policy {

enum class ChangeImpact {
  kLoosened,   // grants more access or weakens a protection
  kTightened,  // grants less access or strengthens a protection
  kNeutral,    // neither (a label, an SMS text, the version)
};
std::string_view ToString(ChangeImpact impact);  // "loosened", "tightened", "changed"

struct PolicyChange {
  ChangeImpact impact = ChangeImpact::kNeutral;
  std::string path;     // by id, not index: "providers[demo-bank].purposes[account-opening]"
  std::string summary;  // "scope photo added", "ttl 5m -> 8m"
};

// Changes in a stable order: version, defaults, then providers by id.
std::vector<PolicyChange> DiffPolicies(const PolicySet& before, const PolicySet& after);

}  // namespace ijazat::policy
