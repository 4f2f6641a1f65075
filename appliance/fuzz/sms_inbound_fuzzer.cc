// libFuzzer harness for the inbound SMS webhook's reading of a message (identity.h): the
// sender's number, the short code, the length cap, and the text as a CNIC or a command.
//
// An input is "SENDER\nTO\nTEXT" (the text may hold more newlines); without newlines the whole
// input is the text, sent from a valid number to the short code. Invariants: an accepted
// message is at most kMaxInboundSmsLength bytes, came to the short code, and its sender is
// +923 and nine digits, normalised idempotently and masked in logs; a CNIC is 13 digits and
// reads back as itself; otherwise the command word is upper case without spaces and the
// argument is trimmed and folded. Rejections are documented 400 problems. Whatever the text,
// building a reply from it (sms_text.h) never throws and gives valid UTF-8 of one SMS that
// reads back from the outbox parameters unchanged. Run by `make fuzz`;
// the corpus runs in every `make test` (tests/fuzz).
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "identity.h"
#include "sms_text.h"

namespace ijazat::appliance::fuzz {
namespace {

constexpr std::string_view kShortCode = "8009";

bool IsDigits(std::string_view text) {
  return text.find_first_not_of("0123456789") == std::string_view::npos;
}

bool IsMsisdn(std::string_view e164) {
  return e164.size() == 13 && e164.substr(0, 4) == "+923" && IsDigits(e164.substr(1));
}

void CheckMsisdn(std::string_view sender) {
  const auto e164 = NormalizeMsisdn(sender);
  if (!e164.ok()) {
    Require(e164.error().reason() == "invalid_msisdn");
    RequireClientError(e164.error(), 400);
    return;
  }
  Require(IsMsisdn(*e164));
  const auto again = NormalizeMsisdn(*e164);
  Require(again.ok() && *again == *e164);
  const std::string masked = MaskMsisdn(*e164);
  Require(masked.size() == e164->size() && masked.substr(6, 5) == "*****");
}

void CheckCnic(std::string_view text) {
  const auto cnic = ParseCnic(text);
  if (!cnic.ok()) {
    Require(cnic.error().reason() == "invalid_cnic");
    RequireClientError(cnic.error(), 400);
    return;
  }
  Require(cnic->size() == 13 && IsDigits(*cnic) && text.size() <= 32);
  const auto again = ParseCnic(*cnic);
  Require(again.ok() && *again == *cnic);
  Require(MaskCnic(*cnic).find(cnic->substr(5, 7)) == std::string::npos);
}

// Replies never echo a sender's text, but the building blocks must hold for any bytes.
void CheckReply(std::string_view text) {
  const auto count = [](std::string_view utf8) {
    std::size_t characters = 0;
    for (const char c : utf8) characters += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return characters;
  };
  const std::string fitted = FitOneSms(text);
  Require(IsUtf8(fitted));
  Require(count(fitted) <= kMaxReplyCharacters);
  if (IsUtf8(text) && count(text) <= kMaxReplyCharacters) Require(fitted == text);
  const auto params = nlohmann::json::parse(ReplyParams(text), nullptr, false);
  Require(params.is_object() && params["text"].is_string() && params["text"] == fitted);
}

void CheckCommand(const InboundSms& sms, std::string_view text) {
  Require(sms.verb.size() + sms.argument.size() <= text.size());
  for (const char c : sms.verb) Require(c != ' ' && !(c >= 'a' && c <= 'z'));
  Require(!sms.verb.empty() || sms.argument.empty());
  if (sms.argument.empty()) return;
  Require(sms.argument.front() != ' ' && sms.argument.back() != ' ');
  Require(sms.argument.find("  ") == std::string::npos);
  for (const char c : sms.argument)
    Require(c == ' ' || std::isspace(static_cast<unsigned char>(c)) == 0);
}

}  // namespace
}  // namespace ijazat::appliance::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ijazat::appliance;
  using namespace ijazat::appliance::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view sender = "03001234567";
  std::string_view to = kShortCode;
  std::string_view text = input;
  if (const auto first = input.find('\n'); first != std::string_view::npos) {
    sender = input.substr(0, first);
    const auto second = input.find('\n', first + 1);
    to = input.substr(first + 1,
                      (second == std::string_view::npos ? input.size() : second) - (first + 1));
    text = second == std::string_view::npos ? std::string_view() : input.substr(second + 1);
  }
  CheckMsisdn(sender);
  CheckCnic(text);
  CheckReply(text);

  const auto sms = ParseInboundSms(sender, to, kShortCode, text);
  if (!sms.ok()) {
    const std::string_view reason = sms.error().reason();
    Require(reason == "invalid_msisdn" || reason == "wrong_short_code" || reason == "sms_too_long");
    RequireClientError(sms.error(), 400);
    return 0;
  }
  Require(text.size() <= kMaxInboundSmsLength);
  Require(to == kShortCode);
  Require(IsMsisdn(sms->from));
  if (sms->cnic) {
    Require(sms->cnic->size() == 13 && IsDigits(*sms->cnic));
    Require(sms->verb.empty() && sms->argument.empty());
    const auto again = FindCnicInSms(*sms->cnic);
    Require(again && *again == *sms->cnic);
  } else {
    CheckCommand(*sms, text);
  }
  return 0;
}
