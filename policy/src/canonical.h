// The canonical serialisation of a policy that its SHA-256 identity is computed over.
#pragma once

#include <string>

#include "ijazat/policy/policy_set.h"

namespace ijazat::policy::internal {

// Compact JSON (RFC 8259) with object keys sorted bytewise, no insignificant whitespace,
// integers for counts, durations as whole seconds, timestamps as RFC 3339 strings (or null),
// providers sorted by id, purposes by id, scopes in catalogue order, credentials by type
// then hash, and every effective value written out (defaults included). `content` must
// already be in that order (PolicySet sorts it). The "format" member names this layout, so a
// future layout can never collide with this one.
std::string CanonicalForm(const PolicyContent& content);

}  // namespace ijazat::policy::internal
