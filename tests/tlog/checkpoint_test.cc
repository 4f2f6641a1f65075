#include "ijazat/tlog/checkpoint.h"

#include <gtest/gtest.h>

namespace ijazat::tlog {
namespace {

TEST(Checkpoint, FormatsAndParsesTheC2spLayout) {
  Checkpoint checkpoint;
  checkpoint.origin = "ijazat.example.pk/audit";
  checkpoint.size = 1234;
  checkpoint.hash = Bytes(32, 0xab);
  checkpoint.extensions = {"at 1767225600"};
  const auto text = FormatCheckpoint(checkpoint);
  ASSERT_TRUE(text.ok()) << text.error().message();
  EXPECT_EQ(*text,
            "ijazat.example.pk/audit\n1234\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n"
            "at 1767225600\n");
  const auto parsed = ParseCheckpoint(*text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->origin, checkpoint.origin);
  EXPECT_EQ(parsed->size, 1234U);
  EXPECT_EQ(parsed->hash, checkpoint.hash);
  EXPECT_EQ(parsed->extensions, checkpoint.extensions);
}

TEST(Checkpoint, RefusesMalformedTexts) {
  const std::string hash = "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=";
  for (const std::string& bad :
       {std::string(""), "o\n1\n" + hash, std::string("o\n1\n"), "\n1\n" + hash + "\n",
        "o\n01\n" + hash + "\n", "o\n-1\n" + hash + "\n", "o\n18446744073709551616\n" + hash + "\n",
        std::string("o\n1\nAAAA\n"), "o\n1\n" + hash + "\n\n"}) {
    const auto parsed = ParseCheckpoint(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().reason(), "checkpoint_malformed") << bad;
  }
  EXPECT_TRUE(ParseCheckpoint("o\n18446744073709551615\n" + hash + "\n").ok());
  Checkpoint short_hash{"o", 1, Bytes(31, 0), {}};
  EXPECT_FALSE(FormatCheckpoint(short_hash).ok());
}

}  // namespace
}  // namespace ijazat::tlog
