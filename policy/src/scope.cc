#include "ijazat/policy/scope.h"

#include <array>

namespace ijazat::policy {
namespace {

struct ScopeEntry {
  Scope scope;
  std::string_view name;
};

constexpr std::array<ScopeEntry, 7> kCatalogue = {{
    {Scope::kName, "name"},
    {Scope::kFatherName, "father_name"},
    {Scope::kDateOfBirth, "date_of_birth"},
    {Scope::kGender, "gender"},
    {Scope::kAddress, "address"},
    {Scope::kPhoto, "photo"},
    {Scope::kCnicStatus, "cnic_status"},
}};

constexpr std::array<Scope, kCatalogue.size()> kAllScopes = [] {
  std::array<Scope, kCatalogue.size()> all{};
  for (std::size_t i = 0; i < kCatalogue.size(); ++i) all[i] = kCatalogue[i].scope;
  return all;
}();

}  // namespace

std::span<const Scope> AllScopes() { return kAllScopes; }

std::string_view ScopeName(Scope scope) {
  for (const auto& entry : kCatalogue) {
    if (entry.scope == scope) return entry.name;
  }
  return "unknown";
}

std::optional<Scope> ParseScope(std::string_view name) {
  for (const auto& entry : kCatalogue) {
    if (entry.name == name) return entry.scope;
  }
  return std::nullopt;
}

}  // namespace ijazat::policy
