// The fixed catalogue of identity attributes a provider may be allowed to receive.
//
// The catalogue is code, not configuration: adding an attribute means a reviewed code change,
// so a policy file can only choose among attributes the identity adapter really knows. All
// functions are pure and thread safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ijazat::policy {

enum class Scope : std::uint8_t {
  kName,
  kFatherName,
  kDateOfBirth,
  kGender,
  kAddress,
  kPhoto,
  kCnicStatus,
};

// Every scope, in catalogue order (the order used in canonical forms and messages).
std::span<const Scope> AllScopes();

// The policy-file spelling: "name", "father_name", "date_of_birth", ...
std::string_view ScopeName(Scope scope);

// Exact, case-sensitive match against the catalogue; nullopt for anything else.
std::optional<Scope> ParseScope(std::string_view name);

}  // namespace ijazat::policy
