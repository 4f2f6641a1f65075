// The body of the token fuzzer, shared with the test that replays the seed corpus
// (tests/verifier/fuzz_corpus_test.cc), so the corpus runs in every ordinary test run.
//
// Each input is tried as a consent token and as a receipt against a fixed JWKS at a fixed time,
// as a JWKS document, and as a claims payload (the claims readers are only reachable through a
// valid signature otherwise). Claims that parse are issued again and must read back equal.
// Whatever is accepted is within the caps: a token at most kMaxTokenSize bytes, a JWKS at most
// kMaxJwksSize bytes and kMaxJwksKeys keys, a strict JSON object at most
// internal::kMaxJsonDepth levels deep.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "claims_json.h"
#include "ijazat/verifier/jwks.h"
#include "ijazat/verifier/token.h"
#include "ijazat/verifier/verifier.h"
#include "strict_json.h"

namespace ijazat::verifier::fuzz {

// The public half of a throwaway key that signed the valid_* seeds (tests/data/verifier/
// make_corpus.py); its private half was not kept.
inline constexpr std::string_view kFuzzJwks =
    R"({"keys":[{"crv":"P-256","kty":"EC","x":"9JUqZ2tGSSpL0lzGpNap7dCKRfVDC2ZJloWs5r1-rrk",)"
    R"("y":"LF1sDoGnucsCAAJLrSnU6uuBd9FCvHQko87k63v2b0k",)"
    R"("kid":"fk-C9zcDkk0KZpE9bfh4qAjHczJb_FRDgU9yTjdaRu8","alg":"ES256","use":"sig"}]})";
inline constexpr std::int64_t kFuzzNow = 1750000000;
inline constexpr char kFuzzAudience[] = "fuzz-provider";

inline const Jwks& FuzzJwks() {
  static const Jwks* const jwks = [] {
    auto parsed = Jwks::Parse(kFuzzJwks);
    if (!parsed.ok()) std::abort();
    return new Jwks(std::move(parsed).value());
  }();
  return *jwks;
}

// A defect found by the fuzzer: abort so that libFuzzer (or the test) reports it.
inline void Require(bool condition) {
  if (!condition) std::abort();
}

// Levels of arrays and objects, counting the outermost; stops counting past `limit`.
inline int JsonDepth(const nlohmann::json& value, int limit) {
  if (!value.is_structured()) return 0;
  if (limit <= 0) return 1;
  int deepest = 0;
  for (const auto& child : value) deepest = std::max(deepest, JsonDepth(child, limit - 1));
  return 1 + deepest;
}

inline void CheckConsentRoundTrip(const nlohmann::json& payload) {
  std::vector<std::string> audiences;
  auto claims = internal::ConsentClaimsFromJson(payload, &audiences);
  if (!claims.ok()) return;
  Require(!audiences.empty());
  claims->audience = audiences.front();
  const auto json = ConsentTokenPayloadJson(*claims);
  if (!json.ok()) return;  // issuance is stricter than reading (pseudonym, exp after nbf)
  auto again = internal::ParseStrictObject(*json, "reissued payload");
  Require(again.ok());
  auto reread = internal::ConsentClaimsFromJson(*again, &audiences);
  Require(reread.ok());
  reread->audience = audiences.front();
  Require(*reread == *claims);
}

inline void CheckReceiptRoundTrip(const nlohmann::json& payload) {
  std::vector<std::string> audiences;
  auto claims = internal::ReceiptClaimsFromJson(payload, &audiences);
  if (!claims.ok()) return;
  Require(!audiences.empty());
  claims->audience = audiences.front();
  const auto json = ReceiptPayloadJson(*claims);
  if (!json.ok()) return;
  auto again = internal::ParseStrictObject(*json, "reissued payload");
  Require(again.ok());
  auto reread = internal::ReceiptClaimsFromJson(*again, &audiences);
  Require(reread.ok());
  reread->audience = audiences.front();
  // Optional members that were empty strings are omitted on reissue and read back empty.
  Require(*reread == *claims);
}

// Returns how many ways the input was accepted (as a token, a receipt, a JWKS).
inline int RunTokenFuzzInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  int accepted = 0;
  for (const TokenType type : {TokenType::kConsentToken, TokenType::kReceipt}) {
    VerifyOptions options;
    options.type = type;
    options.audience = kFuzzAudience;
    options.now = kFuzzNow;
    const auto verified = Verify(input, FuzzJwks(), options);
    if (!verified.ok()) {
      Require(!verified.error().reason().empty());
      continue;
    }
    ++accepted;
    Require(input.size() <= kMaxTokenSize);
    Require(verified->type == type);
    Require(verified->consent.has_value() == (type == TokenType::kConsentToken));
    Require(verified->receipt.has_value() == (type == TokenType::kReceipt));
    Require(FuzzJwks().Contains(verified->kid));
  }
  if (const auto jwks = Jwks::Parse(input); jwks.ok()) {
    ++accepted;
    Require(input.size() <= kMaxJwksSize && jwks->size() <= kMaxJwksKeys);
  }
  const auto payload = internal::ParseStrictObject(input, "input");
  if (payload.ok()) {
    Require(JsonDepth(*payload, internal::kMaxJsonDepth + 1) <= internal::kMaxJsonDepth);
    CheckConsentRoundTrip(*payload);
    CheckReceiptRoundTrip(*payload);
  }
  return accepted;
}

}  // namespace ijazat::verifier::fuzz
