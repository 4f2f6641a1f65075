// Signed notes, checked against the worked example of the signed-note format (the same key, text
// and signature as Go's golang.org/x/mod/sumdb/note), so that any C2SP verifier reads Ijazat's
// notes and Ijazat reads theirs.
#include "ijazat/tlog/note.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <memory>

namespace ijazat::tlog {
namespace {

using ::testing::HasSubstr;

constexpr char kName[] = "PeterNeumann";
constexpr char kVerifierKey[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr char kSeedBase64[] = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";  // 0x01 || seed
constexpr char kText[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr char kSignatureLine[] =
    "\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

// A software Ed25519 signer for the example's private key (the appliance signs in the HSM).
Ed25519Signer ExampleSigner() {
  return [](ByteView message) -> Result<Bytes> {
    const auto seed = Base64Decode(kSeedBase64);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed->data() + 1, 32),
        EVP_PKEY_free);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    Bytes signature(64);
    std::size_t length = signature.size();
    if (!key || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), signature.data(), &length, message.data(), message.size()) != 1) {
      return Error(ErrorCode::kInternal, "signing failed", "test");
    }
    return signature;
  };
}

NoteVerifier Example() {
  auto verifier = ParseVerifierKey(kVerifierKey);
  EXPECT_TRUE(verifier.ok()) << verifier.error().message();
  return *verifier;
}

TEST(Note, VerifierKeyOfTheExample_RoundTrips) {
  const NoteVerifier verifier = Example();
  EXPECT_EQ(verifier.name, kName);
  EXPECT_EQ(verifier.key_id, 0xc74f20a3U);
  EXPECT_EQ(Ed25519KeyId(kName, verifier.public_key), 0xc74f20a3U);
  const auto again = Ed25519VerifierKey(kName, verifier.public_key);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, kVerifierKey);
}

TEST(Note, SignsTheExampleExactly) {
  const NoteVerifier verifier = Example();
  const auto note = SignNote(kText, kName, verifier.public_key, ExampleSigner());
  ASSERT_TRUE(note.ok()) << note.error().message();
  EXPECT_EQ(*note, std::string(kText) + "\n" + kSignatureLine);
}

TEST(Note, OpensTheExample_AndIgnoresUnknownSigners) {
  const std::string note = std::string(kText) + "\n" + kSignatureLine;
  const auto text = OpenNote(note, {Example()});
  ASSERT_TRUE(text.ok()) << text.error().message();
  EXPECT_EQ(*text, kText);
  // Another signer's line alongside (unknown to us) changes nothing.
  const std::string cosigned =
      note + "\xE2\x80\x94 someone.example " + Base64Encode(Bytes(68, 1)) + "\n";
  EXPECT_TRUE(OpenNote(cosigned, {Example()}).ok());
}

TEST(Note, RefusesAnEditedText_ASignatureByNobodyKnown_AndMalformedNotes) {
  const std::string note = std::string(kText) + "\n" + kSignatureLine;
  std::string edited = note;
  edited[3] = 'X';
  const auto opened = OpenNote(edited, {Example()});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().reason(), "note_unverified");

  NoteVerifier other = Example();
  other.name = "CarmenSandiego";
  EXPECT_EQ(OpenNote(note, {other}).error().reason(), "note_unverified");

  for (const std::string& bad : {std::string(kText), std::string(kText) + "\n",
                                 std::string(kText) + "\n- PeterNeumann AAAA\n",
                                 std::string(kText) + "\n" + kSignatureLine + "trailing",
                                 std::string("a\x01text\n\n") + kSignatureLine}) {
    const auto result = OpenNote(bad, {Example()});
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.error().reason(), "note_malformed") << bad;
  }
}

TEST(Note, SignRefusesTextsThatCouldNotBeOpened) {
  const NoteVerifier verifier = Example();
  for (const std::string& bad :
       {std::string(""), std::string("no newline"), std::string("blank\n\nline\n"),
        std::string("\xff\n"), std::string("tab\there\n")}) {
    const auto note = SignNote(bad, kName, verifier.public_key, ExampleSigner());
    ASSERT_FALSE(note.ok()) << bad;
    EXPECT_EQ(note.error().reason(), "note_malformed") << bad;
  }
  EXPECT_EQ(SignNote(kText, "has space", verifier.public_key, ExampleSigner()).error().reason(),
            "note_key_invalid");
  EXPECT_EQ(SignNote(kText, "a+b", verifier.public_key, ExampleSigner()).error().reason(),
            "note_key_invalid");
}

TEST(Note, ParseVerifierKey_RefusesWrongIdsAlgorithmsAndLengths) {
  for (const char* bad :
       {"PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "PeterNeumann",
        "+c74f20a3+ARpc"}) {
    const auto parsed = ParseVerifierKey(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().reason(), "note_key_invalid") << bad;
  }
}

TEST(Base64, IsStrict) {
  EXPECT_EQ(Base64Encode(Bytes{0xff, 0xee}), "/+4=");
  EXPECT_EQ(*Base64Decode("/+4="), (Bytes{0xff, 0xee}));
  for (const char* bad : {"/+4", "/+5=", "/+4=\n", "-_4=", "=AAA", "A=AA"}) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
  EXPECT_THAT(Base64Encode(Bytes(32, 0)), HasSubstr("AAAA"));
}

}  // namespace
}  // namespace ijazat::tlog
