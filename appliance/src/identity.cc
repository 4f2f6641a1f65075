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

Result<std::string> NormalizeMsisdn(std::string_view text) {
  auto invalid = [] {
    return Error(ErrorCode::kInvalidArgument,
                 "not a Pakistani mobile number (+92 3xx xxxxxxx, 03xx xxxxxxx)", "invalid_msisdn");
  };
  if (text.size() > 32) return invalid();
  std::string digits;
  bool plus = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (IsDigit(c)) {
      digits.push_back(c);
    } else if (c == '+' && digits.empty() && !plus) {
      plus = true;
    } else if (c != ' ' && c != '-' && c != '(' && c != ')') {
      return invalid();
    }
  }
  std::string national;  // 3xxxxxxxxx
  if (plus) {
    if (digits.rfind("92", 0) != 0) return invalid();
    national = digits.substr(2);
  } else if (digits.rfind("0092", 0) == 0) {
    national = digits.substr(4);
  } else if (digits.rfind("92", 0) == 0 && digits.size() == 12) {
    national = digits.substr(2);
  } else if (!digits.empty() && digits.front() == '0') {
    national = digits.substr(1);
  } else {
    national = digits;
  }
  if (national.size() != 10 || national[0] != '3') return invalid();
  return "+92" + national;
}

Result<InboundSms> ParseInboundSms(std::string_view sender, std::string_view to,
                                   std::string_view short_code, std::string_view text) {
  InboundSms sms;
  IJAZAT_ASSIGN_OR_RETURN(sms.from, NormalizeMsisdn(sender));
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
