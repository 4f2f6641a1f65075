// libFuzzer harness for PolicyLoader::LoadString.
//
// Beyond "no crash, no hang, no sanitizer report", it checks the loader's contract on every
// input: a failure always explains itself with at least one diagnostic; a success has none,
// stays within the loader's caps (size; nesting, also through aliases), hashes deterministically,
// diffs as unchanged against itself, and finds each provider by each of its credentials. The same
// function runs over the checked-in corpus as an ordinary test (tests/policy/fuzz_corpus_test.cc),
// so gcc builds exercise it too.
//
// `make fuzz FUZZERS=policy_loader_fuzzer` builds and runs it (docs/testing.md).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/policy/policy_diff.h"
#include "ijazat/policy/policy_loader.h"
#include "ijazat/policy/policy_set.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

// Levels of mappings and sequences in yaml-cpp's reading of the text, counting the outermost,
// through aliases; stops counting past `limit` (an alias may make the graph cyclic).
int YamlDepth(const YAML::Node& node, int limit) {
  if (!node.IsMap() && !node.IsSequence()) return 0;
  if (limit <= 0) return 1;
  int deepest = 0;
  for (const auto& entry : node) {
    if (node.IsMap()) {
      deepest = std::max(
          {deepest, YamlDepth(entry.first, limit - 1), YamlDepth(entry.second, limit - 1)});
    } else {
      deepest = std::max(deepest, YamlDepth(entry, limit - 1));
    }
  }
  return 1 + deepest;
}

void CheckCaps(std::string_view text, const ijazat::policy::LoaderLimits& limits) {
  Check(text.size() <= limits.max_file_bytes);
  const int max_depth = static_cast<int>(limits.max_depth);
  try {
    Check(YamlDepth(YAML::Load(std::string(text)), max_depth + 1) <= max_depth);
  } catch (const YAML::Exception&) {
    Check(false);  // an accepted policy is YAML
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ijazat::policy;
  static const PolicyLoader loader;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<Diagnostic> diagnostics;
  auto result = loader.LoadString(text, "fuzz.yaml", &diagnostics);
  if (!result.ok()) {
    Check(!diagnostics.empty());
    Check(!result.error().message().empty());
    for (const Diagnostic& diagnostic : diagnostics) Check(!diagnostic.message.empty());
    return 0;
  }
  Check(diagnostics.empty());
  CheckCaps(text, LoaderLimits{});
  const PolicySet& policy = **result;
  Check(policy.identity().sha256_hex.size() == 64);
  Check(DiffPolicies(policy, policy).empty());
  auto again = loader.LoadString(text, "again.yaml");
  Check(again.ok() && (*again)->identity() == policy.identity());
  for (const Provider& provider : policy.providers()) {
    Check(policy.FindProvider(provider.id) == &provider);
    for (const Credential& credential : provider.credentials) {
      const auto digest = ijazat::HexDecode(credential.sha256_hex);
      Check(digest.has_value());
      const Provider* found = credential.type == CredentialType::kApiKey
                                  ? policy.FindProviderByApiKeyHash(*digest)
                                  : policy.FindProviderByCertFingerprint(*digest);
      Check(found == &provider);
    }
  }
  return 0;
}
