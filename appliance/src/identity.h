// Citizen identifiers as people write them: CNICs and Pakistani mobile numbers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/common/result.h"

namespace ijazat::appliance {

// A 13-digit CNIC from "3520212345671", "35202-1234567-1" or with spaces; the only other
// characters allowed are one dash in each of the two usual places. Errors: "invalid_cnic".
Result<std::string> ParseCnic(std::string_view text);

// The CNIC in an SMS body, if the body holds one and nothing else but spaces and the word
// "CNIC" (so "CNIC 35202-1234567-1" enrols, "REVOKE 1234" does not).
std::optional<std::string> FindCnicInSms(std::string_view text);

// Which numbers the appliance talks to. The default is Pakistan's mobile ranges: country code
// 92, ten national digits, +92 3xx. An operator may narrow the ranges (say, to the networks it
// has agreements with) or, outside Pakistan, describe another plan.
struct NumberPlan {
  std::string country_code = "92";             // 1-3 digits
  std::size_t national_digits = 10;            // the national significant number, no trunk 0
  std::vector<std::string> ranges = {"+923"};  // accepted E.164 prefixes, "+" and digits
};

// kInvalidArgument naming what is wrong with a plan from the configuration.
Status ValidateNumberPlan(const NumberPlan& plan);

// `text` as it may appear in an error line: control characters (a quoted YAML string may hold a
// line break) become \xNN, so that each problem stays on one line.
std::string Printable(std::string_view text);

// A number in E.164 ("+923001234567") from the forms people and gateways write: 03001234567,
// 3001234567, 923001234567, +92 300 1234567, 0092-300-1234567. Only numbers in the plan's
// ranges are accepted. Errors: "invalid_msisdn".
Result<std::string> NormalizeMsisdn(std::string_view text, const NumberPlan& plan);
Result<std::string> NormalizeMsisdn(std::string_view text);  // the default plan

// An inbound SMS at the short code as read before anything is looked up or stored: the sender
// in E.164 and either the CNIC it enrols or a command word (upper case) with its argument.
struct InboundSms {
  std::string from;                 // "+923001234567"
  std::optional<std::string> cnic;  // 13 digits, when the text holds a CNIC
  std::string verb;      // when not a CNIC: the first word, upper case ("" for an empty text)
  std::string argument;  // the rest, trimmed, inner runs of white space folded to one space
};

// The longest inbound text accepted (a concatenated SMS of 4 parts).
inline constexpr std::size_t kMaxInboundSmsLength = 640;

// Reads what the gateway posted: `sender` in any form NormalizeMsisdn takes, `to` the number
// it was sent to (must be `short_code`), `text` at most kMaxInboundSmsLength bytes. Errors
// (kInvalidArgument): "invalid_msisdn", "wrong_short_code", "sms_too_long".
Result<InboundSms> ParseInboundSms(std::string_view sender, std::string_view to,
                                   std::string_view short_code, std::string_view text,
                                   const NumberPlan& numbers);
Result<InboundSms> ParseInboundSms(std::string_view sender, std::string_view to,
                                   std::string_view short_code, std::string_view text);

// ASCII upper case (SMS commands, references and provider names are matched case-blind).
std::string AsciiUpper(std::string_view text);

// For logs: "35202-*******-1" and "+92300*****67".
std::string MaskCnic(std::string_view cnic);
std::string MaskMsisdn(std::string_view e164);

}  // namespace ijazat::appliance
