// ijazat-policy: check, hash and compare provider policy files.
//
// A thin shell over the policy library; docs/policy.md describes the commands. Exit codes:
// 0 success, 1 a policy is invalid, 2 usage error, 3 a file cannot be read.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/policy/policy_diff.h"
#include "ijazat/policy/policy_loader.h"
#include "ijazat/policy/policy_set.h"

namespace {

using ijazat::policy::ChangeImpact;
using ijazat::policy::PolicyLoader;
using ijazat::policy::PolicySet;

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreadable = 3;

constexpr std::string_view kUsage =
    "usage:\n"
    "  ijazat-policy check FILE       validate; print a one-line summary or every problem\n"
    "  ijazat-policy hash FILE        print the policy hash (SHA-256 of the canonical form)\n"
    "  ijazat-policy diff OLD NEW     what a reviewer needs to see between two policies\n"
    "  ijazat-policy canonical FILE   print the canonical form the hash is computed over\n"
    "exit codes: 0 ok, 1 policy invalid, 2 usage error, 3 file unreadable\n";

struct Loaded {
  std::shared_ptr<const PolicySet> policy;
  int exit_code = kExitOk;
};

// Loads one file; on failure prints every problem to stderr.
Loaded Load(const std::string& path) {
  const PolicyLoader loader;
  std::vector<ijazat::policy::Diagnostic> diagnostics;
  auto result = loader.LoadFile(path, &diagnostics);
  if (result.ok()) return {std::move(result).value(), kExitOk};
  for (const auto& diagnostic : diagnostics) std::cerr << diagnostic.ToString() << '\n';
  if (result.error().reason() == "policy_unreadable") return {nullptr, kExitUnreadable};
  std::cerr << path << ": " << diagnostics.size()
            << (diagnostics.size() == 1 ? " problem" : " problems")
            << " found; the policy is not valid\n";
  return {nullptr, kExitInvalid};
}

int Check(const std::string& path) {
  const Loaded loaded = Load(path);
  if (!loaded.policy) return loaded.exit_code;
  const PolicySet& policy = *loaded.policy;
  std::size_t active = 0;
  std::size_t purposes = 0;
  for (const auto& provider : policy.providers()) {
    if (provider.status == ijazat::policy::ProviderStatus::kActive) ++active;
    purposes += provider.purposes.size();
  }
  const std::size_t providers = policy.providers().size();
  std::cout << "OK " << path << ": version " << policy.version() << ", " << providers
            << (providers == 1 ? " provider" : " providers") << " (" << active << " active, "
            << providers - active << " suspended), " << purposes
            << (purposes == 1 ? " purpose" : " purposes") << ", sha256 "
            << policy.identity().sha256_hex << '\n';
  return kExitOk;
}

int Hash(const std::string& path) {
  const Loaded loaded = Load(path);
  if (!loaded.policy) return loaded.exit_code;
  std::cout << loaded.policy->identity().sha256_hex << '\n';
  return kExitOk;
}

int Canonical(const std::string& path) {
  const Loaded loaded = Load(path);
  if (!loaded.policy) return loaded.exit_code;
  std::cout << loaded.policy->canonical_form() << '\n';
  return kExitOk;
}

int Diff(const std::string& old_path, const std::string& new_path) {
  const Loaded before = Load(old_path);
  const Loaded after = Load(new_path);
  if (!before.policy || !after.policy) {
    return before.exit_code == kExitUnreadable || after.exit_code == kExitUnreadable
               ? kExitUnreadable
               : kExitInvalid;
  }
  const auto changes = ijazat::policy::DiffPolicies(*before.policy, *after.policy);
  std::size_t loosened = 0;
  std::size_t tightened = 0;
  for (const auto& change : changes) {
    std::string tag;
    switch (change.impact) {
      case ChangeImpact::kLoosened:
        tag = "LOOSENED ";
        ++loosened;
        break;
      case ChangeImpact::kTightened:
        tag = "TIGHTENED";
        ++tightened;
        break;
      case ChangeImpact::kNeutral:
        tag = "CHANGED  ";
        break;
    }
    std::cout << tag << ' ' << change.path << ": " << change.summary << '\n';
  }
  if (changes.empty()) {
    std::cout << "no changes: both files are the same policy (sha256 "
              << after.policy->identity().sha256_hex << ")\n";
  } else {
    std::cout << changes.size() << (changes.size() == 1 ? " change: " : " changes: ") << loosened
              << " loosened, " << tightened << " tightened, "
              << changes.size() - loosened - tightened << " other\n";
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")) {
    std::cout << kUsage;
    return kExitOk;
  }
  if (args.size() == 2 && args[0] == "check") return Check(args[1]);
  if (args.size() == 2 && args[0] == "hash") return Hash(args[1]);
  if (args.size() == 2 && args[0] == "canonical") return Canonical(args[1]);
  if (args.size() == 3 && args[0] == "diff") return Diff(args[1], args[2]);
  std::cerr << kUsage;
  return kExitUsage;
}
