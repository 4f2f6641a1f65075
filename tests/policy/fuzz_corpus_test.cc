// Runs the libFuzzer harness (policy/fuzz/policy_loader_fuzzer.cc) over its seed corpus, the
// malformed corpus and the example, so every build exercises the harness's invariants, not
// only clang fuzz builds. A crash or a broken invariant aborts this test.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "policy/policy_test_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace ijazat::policy {
namespace {

void RunOne(const std::filesystem::path& path) {
  SCOPED_TRACE(path.string());
  const std::string text = ijazat::testing::ReadFileOrDie(path);
  EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
            0);
}

TEST(PolicyFuzzCorpus, EverySeedRunsClean) {
  std::size_t count = 0;
  for (const char* dir : {"policy/fuzz_corpus", "policy/malformed", "policy/valid"}) {
    for (const auto& entry :
         std::filesystem::directory_iterator(ijazat::testing::TestDataPath(dir))) {
      RunOne(entry.path());
      ++count;
    }
  }
  RunOne(testing::ExamplePolicyPath());
  EXPECT_GE(count, 40u);
}

TEST(PolicyFuzzCorpus, EdgeInputsRunClean) {
  for (const std::string& input :
       {std::string(), std::string(1, '\0'), std::string("\xff\xfe"), std::string("---"),
        std::string("- - - - -"), std::string(1000, '['), std::string("&a [*a]"),
        std::string("? ? ? ?"), std::string("a: !<tag:x> b"), std::string("%YAML 1.2\n---\n")}) {
    EXPECT_EQ(
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size()),
        0);
  }
}

}  // namespace
}  // namespace ijazat::policy
