#include "identity.h"

#include <algorithm>
#include <cctype>
#include <tuple>
#include <utility>

namespace ijazat::appliance {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// "  revoke   k7q2-m9xd " -> {"REVOKE", "K7Q2-M9XD"}: the first word upper-cased, the rest
// trimmed with inner runs of spaces folded.
std::pair<std::string, std::string> SplitCommand(std::string_view text) {
  std::string folded;
  for (const char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (space && (folded.empty() || folded.back() == ' ')) continue;
    folded.push_back(space ? ' ' : c);
  }
  while (!folded.empty() && folded.back() == ' ') folded.pop_back();
  const auto gap = folded.find(' ');
  return {AsciiUpper(folded.substr(0, gap)),
          gap == std::string::npos ? "" : folded.substr(gap + 1)};
}

}  // namespace

Result<std::string> ParseCnic(std::string_view text) {
  auto invalid = [] {
    return Error(ErrorCode::kInvalidArgument,
                 "a CNIC has 13 digits, written 3520212345671 or 35202-1234567-1", "invalid_cnic");
  };
  if (text.size() > 32) return invalid();
  std::string digits;
  std::string shape;  // digits and dashes only, to check where the dashes are
  for (const char c : text) {
    if (IsDigit(c)) {
      digits.push_back(c);
      shape.push_back('9');
    } else if (c == '-') {
      shape.push_back('-');
    } else if (c != ' ') {
      return invalid();
    }
  }
  if (digits.size() != 13) return invalid();
  if (shape != "9999999999999" && shape != "99999-9999999-9") return invalid();
  return digits;
}

std::optional<std::string> FindCnicInSms(std::string_view text) {
  std::string body = AsciiUpper(text);
  if (const auto at = body.find("CNIC"); at != std::string::npos) body.erase(at, 4);
  // Strip the separators gateways and people add.
  for (char& c : body) {
    if (c == ':' || c == '\t' || c == '\r' || c == '\n' || c == '.') c = ' ';
  }
  const auto first = body.find_first_not_of(' ');
  if (first == std::string::npos) return std::nullopt;
  const auto last = body.find_last_not_of(' ');
  auto parsed = ParseCnic(std::string_view(body).substr(first, last - first + 1));
  if (!parsed.ok()) return std::nullopt;
  return std::move(parsed).value();
}

std::string Printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Status ValidateNumberPlan(const NumberPlan& plan) {
  const auto all_digits = [](std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), IsDigit);
  };
  if (!all_digits(plan.country_code) || plan.country_code.size() > 3 ||
      plan.country_code[0] == '0') {
    return Error(ErrorCode::kInvalidArgument, "country_code must be 1 to 3 digits, not 0-led",
                 "invalid_number_plan");
  }
  if (plan.national_digits < 4 || plan.country_code.size() + plan.national_digits > 15) {
    return Error(ErrorCode::kInvalidArgument,
                 "national_digits must be at least 4, and with the country code at most 15 "
                 "(E.164)",
                 "invalid_number_plan");
  }
  if (plan.ranges.empty()) {
    return Error(ErrorCode::kInvalidArgument, "ranges must name at least one prefix",
                 "invalid_number_plan");
  }
  const std::string country = "+" + plan.country_code;
  for (const std::string& range : plan.ranges) {
    if (range.size() < 2 || range[0] != '+' || !all_digits(std::string_view(range).substr(1)) ||
        range.rfind(country, 0) != 0 || range.size() > country.size() + plan.national_digits) {
      std::string message = "range \"" + Printable(range);
      message.append("\" must be \"").append(country);
      message.append("\" followed by at most national_digits digits");
      return Error(ErrorCode::kInvalidArgument, message, "invalid_number_plan");
    }
  }
  return OkStatus();
}

Result<std::string> NormalizeMsisdn(std::string_view text, const NumberPlan& plan) {
  auto invalid = [&plan] {
    std::string ranges;
    for (const std::string& range : plan.ranges) ranges += (ranges.empty() ? "" : ", ") + range;
    return Error(ErrorCode::kInvalidArgument,
                 "not a mobile number in the accepted ranges (" + ranges + ")", "invalid_msisdn");
  };
  if (text.size() > 32) return invalid();
  std::string digits;
  bool plus = false;
  for (const char c : text) {
    if (IsDigit(c)) {
      digits.push_back(c);
    } else if (c == '+' && digits.empty() && !plus) {
      plus = true;
    } else if (c != ' ' && c != '-' && c != '(' && c != ')') {
      return invalid();
    }
  }
  const std::string& cc = plan.country_code;
  std::string national;
  if (plus) {
    if (digits.rfind(cc, 0) != 0) return invalid();
    national = digits.substr(cc.size());
  } else if (digits.rfind("00" + cc, 0) == 0) {
    national = digits.substr(2 + cc.size());
  } else if (digits.rfind(cc, 0) == 0 && digits.size() == cc.size() + plan.national_digits) {
    national = digits.substr(cc.size());
  } else if (!digits.empty() && digits.front() == '0') {
    national = digits.substr(1);  // the trunk prefix
  } else {
    national = digits;
  }
  if (national.size() != plan.national_digits) return invalid();
  std::string e164 = "+" + cc + national;
  for (const std::string& range : plan.ranges) {
    if (e164.rfind(range, 0) == 0) return e164;
  }
  return invalid();
}

Result<std::string> NormalizeMsisdn(std::string_view text) {
  static const NumberPlan kDefault;
  return NormalizeMsisdn(text, kDefault);
}

Result<InboundSms> ParseInboundSms(std::string_view sender, std::string_view to,
                                   std::string_view short_code, std::string_view text) {
  static const NumberPlan kDefault;
  return ParseInboundSms(sender, to, short_code, text, kDefault);
}

Result<InboundSms> ParseInboundSms(std::string_view sender, std::string_view to,
                                   std::string_view short_code, std::string_view text,
                                   const NumberPlan& numbers) {
  InboundSms sms;
  IJAZAT_ASSIGN_OR_RETURN(sms.from, NormalizeMsisdn(sender, numbers));
  if (to != short_code) {
    return Error(ErrorCode::kInvalidArgument,
                 "messages must be sent to the short code " + std::string(short_code),
                 "wrong_short_code");
  }
  if (text.size() > kMaxInboundSmsLength) {
    return Error(ErrorCode::kInvalidArgument, "the message is longer than 640 characters",
                 "sms_too_long");
  }
  sms.cnic = FindCnicInSms(text);
  if (!sms.cnic) std::tie(sms.verb, sms.argument) = SplitCommand(text);
  return sms;
}

std::string AsciiUpper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string MaskCnic(std::string_view cnic) {
  if (cnic.size() != 13) return "*************";
  return std::string(cnic.substr(0, 5)) + "-*******-" + std::string(cnic.substr(12));
}

std::string MaskMsisdn(std::string_view e164) {
  if (e164.size() < 8) return "*****";
  return std::string(e164.substr(0, 6)) + std::string(e164.size() - 8, '*') +
         std::string(e164.substr(e164.size() - 2));
}

}  // namespace ijazat::appliance
