// The token fuzzer's seed corpus, replayed as an ordinary test: every seed runs through the
// harness body (which aborts on a finding), and the valid_* seeds must verify so that the
// fuzzer starts from inputs that reach the claims checks.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "support/temp_dir.h"
#include "token_fuzz_target.h"

namespace ijazat::verifier {
namespace {

TEST(TokenFuzzCorpusTest, EverySeed_RunsThroughTheHarness) {
  const auto corpus = ::ijazat::testing::TestDataPath("verifier/corpus");
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    const std::string name = entry.path().filename().string();
    const std::string data = ::ijazat::testing::ReadFileOrDie(entry.path());
    const int accepted =
        fuzz::RunTokenFuzzInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
    if (name.rfind("valid_", 0) == 0 || name == "jwks_document") {
      EXPECT_EQ(accepted, 1) << name;
    } else {
      EXPECT_EQ(accepted, 0) << name;
    }
    ++seeds;
  }
  EXPECT_GE(seeds, 15);
}

TEST(TokenFuzzCorpusTest, AwkwardInputs_DoNotCrash) {
  const std::string inputs[] = {
      "",
      ".",
      "..",
      "...",
      std::string(20000, '.'),
      std::string(20000, 'A'),
      std::string(1, '\0'),
      "{",
      std::string(5000, '{'),
      std::string(5000, '['),
      R"({"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]})",
      R"({"iss":"a","sub":"b","aud":[],"iat":1e400})",
  };
  for (const auto& input : inputs) {
    fuzz::RunTokenFuzzInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
}

// kMaxJsonDepth levels of objects and arrays pass, one more does not, whether or not the
// innermost container is empty (the token fuzzer's depth check found 17 empty levels passing).
TEST(StrictJsonDepth, AcceptsTheCapAndNoMore) {
  const auto nest = [](int levels, const std::string& inner) {
    std::string text;
    for (int i = 1; i < levels; ++i) text += i % 2 == 0 ? "[" : R"({"a":)";
    text += inner;
    for (int i = levels - 1; i >= 1; --i) text += i % 2 == 0 ? "]" : "}";
    return text;
  };
  for (const char* const text : {"{}", R"({"b":1})", R"({"b":[]})"}) {
    const std::string inner = text;
    SCOPED_TRACE(inner);
    const int inner_levels = inner.find('[') != std::string::npos ? 2 : 1;
    const int at_cap = internal::kMaxJsonDepth - inner_levels + 1;
    EXPECT_TRUE(internal::ParseStrictObject(nest(at_cap, inner), "doc").ok());
    const auto deeper = internal::ParseStrictObject(nest(at_cap + 1, inner), "doc");
    ASSERT_FALSE(deeper.ok());
    EXPECT_EQ(deeper.error().message(), "doc is nested too deeply");
  }
}

}  // namespace
}  // namespace ijazat::verifier
