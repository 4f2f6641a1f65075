// libFuzzer harness for PolicyLoader::LoadString.
//
// Beyond "no crash, no hang, no sanitizer report", it checks the loader's contract on every
// input: a failure always explains itself with at least one diagnostic; a success has none,
// hashes deterministically, diffs as unchanged against itself, and finds each provider by
// each of its credentials. The same function runs over the checked-in corpus as an ordinary
// test (tests/policy/fuzz_corpus_test.cc), so gcc builds exercise it too.
//
//   cmake --preset fuzz && cmake --build build/fuzz --target policy_loader_fuzzer
//   mkdir -p /tmp/policy-corpus
//   build/fuzz/bin/policy_loader_fuzzer -dict=policy/fuzz/policy.dict -max_len=4096
//       /tmp/policy-corpus tests/data/policy/fuzz_corpus tests/data/policy/malformed
// (one command line; new inputs go to the first directory).
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
