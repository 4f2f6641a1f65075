#include "text_checks.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>

namespace ijazat::policy::internal {
namespace {

constexpr char32_t kInvalid = 0xFFFFFFFF;

// Decodes one UTF-8 sequence at text[i]; returns kInvalid for malformed, overlong, surrogate
// or out-of-range sequences. `length` receives the bytes consumed (1 for invalid input).
char32_t DecodeUtf8(std::string_view text, std::size_t i, std::size_t& length) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = byte(0);
  length = 1;
  if (lead < 0x80) return lead;
  std::size_t extra = 0;
  char32_t code = 0;
  char32_t minimum = 0;
  if ((lead & 0xE0) == 0xC0) {
    extra = 1;
    code = lead & 0x1Fu;
    minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    extra = 2;
    code = lead & 0x0Fu;
    minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    extra = 3;
    code = lead & 0x07u;
    minimum = 0x10000;
  } else {
    return kInvalid;
  }
  if (i + extra >= text.size()) return kInvalid;
  for (std::size_t k = 1; k <= extra; ++k) {
    if ((byte(k) & 0xC0) != 0x80) return kInvalid;
    code = (code << 6) | (byte(k) & 0x3Fu);
  }
  if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return kInvalid;
  length = extra + 1;
  return code;
}

bool IsInvisibleFormatting(char32_t c) {
  return c == 0x061C || c == 0x200B || c == 0x200C || c == 0x200D || c == 0x200E || c == 0x200F ||
         (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF ||
         c == 0x2028 || c == 0x2029;
}

// Characters that print nothing, or look like a space or like nothing, beyond those the whole
// file is screened for: every format character (Unicode category Cf), variation selectors,
// Hangul fillers, the combining grapheme joiner, every space but U+0020, private use. In a
// controller's name or address they would let two different texts read the same.
bool IsHiddenInText(char32_t c) {
  constexpr std::pair<char32_t, char32_t> kRanges[] = {
      {0x00A0, 0x00A0},    {0x00AD, 0x00AD},   {0x034F, 0x034F},   {0x0600, 0x0605},
      {0x061C, 0x061C},    {0x06DD, 0x06DD},   {0x070F, 0x070F},   {0x08E2, 0x08E2},
      {0x115F, 0x1160},    {0x1680, 0x1680},   {0x17B4, 0x17B5},   {0x180B, 0x180F},
      {0x2000, 0x200F},    {0x2028, 0x202F},   {0x205F, 0x206F},   {0x3000, 0x3000},
      {0x3164, 0x3164},    {0xE000, 0xF8FF},   {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},
      {0xFFA0, 0xFFA0},    {0xFFF0, 0xFFFF},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
      {0x13430, 0x1343F},  {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF},
      {0xF0000, 0x10FFFF},
  };
  return std::any_of(std::begin(kRanges), std::end(kRanges),
                     [c](const auto& range) { return c >= range.first && c <= range.second; });
}

std::string CodePoint(char32_t c) {
  std::array<char, 16> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "U+%04X", static_cast<unsigned>(c));
  return buffer.data();
}

// GSM 03.38 basic character set, without LF, CR and ESC.
constexpr std::u32string_view kGsmBasic =
    U"@\u00A3$\u00A5\u00E8\u00E9\u00F9\u00EC\u00F2\u00C7\u00D8\u00F8\u00C5\u00E5"
    U"\u0394_\u03A6\u0393\u039B\u03A9\u03A0\u03A8\u03A3\u0398\u039E\u00C6\u00E6\u00DF\u00C9"
    U" !\"#\u00A4%&'()*+,-./0123456789:;<=>?"
    U"\u00A1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00C4\u00D6\u00D1\u00DC\u00A7"
    U"\u00BFabcdefghijklmnopqrstuvwxyz\u00E4\u00F6\u00F1\u00FC\u00E0";

}  // namespace

std::vector<TextProblem> ScreenText(std::string_view text, std::size_t max_problems) {
  std::vector<TextProblem> problems;
  int line = 1;
  int column = 1;
  std::size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  const auto report = [&](std::string message) {
    if (problems.size() < max_problems) problems.push_back({line, column, std::move(message)});
  };
  while (i < text.size()) {
    std::size_t length = 1;
    const char32_t c = DecodeUtf8(text, i, length);
    if (c == kInvalid) {
      std::array<char, 8> hex{};
      std::snprintf(hex.data(), hex.size(), "0x%02X", static_cast<unsigned char>(text[i]));
      report(std::string("the file is not valid UTF-8 (byte ") + hex.data() +
             "); save it as UTF-8");
      return problems;
    }
    if (c == '\n') {
      ++line;
      column = 1;
      i += length;
      continue;
    }
    if (c == '\t') {
      report("tab character; YAML indentation and policy values must use spaces only");
    } else if (c == '\r') {
      if (i + 1 >= text.size() || text[i + 1] != '\n') {
        // Positions after a bare CR would be wrong in every editor; one report is enough.
        report("carriage return without a line feed; use Unix (LF) or Windows (CRLF) line ends");
        return problems;
      }
    } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F)) {
      report("control character " + CodePoint(c) + " is not allowed in a policy file");
    } else if (IsInvisibleFormatting(c)) {
      report("invisible formatting character " + CodePoint(c) +
             " is not allowed: it can make the file read differently from what it is");
    }
    ++column;
    i += length;
  }
  return problems;
}

bool IsSlug(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  if (text.front() < 'a' || text.front() > 'z') return false;
  if (text.back() == '-') return false;
  char previous = 0;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || (c == '-' && previous == '-')) return false;
    previous = c;
  }
  return true;
}

namespace {

// The rules every one-line text shares: valid UTF-8, no line break, no leading, trailing or
// doubled space; `refuse` says what else is wrong with a character. Counts the characters.
template <typename Refuse>
std::optional<std::string> CheckLine(std::string_view text, std::size_t& count, Refuse refuse) {
  if (text.empty()) return "is empty";
  count = 0;
  std::size_t i = 0;
  char32_t previous = 0;
  while (i < text.size()) {
    std::size_t length = 1;
    const char32_t c = DecodeUtf8(text, i, length);
    if (c == kInvalid) return "is not valid UTF-8";
    if (c == '\n' || c == '\r') return "contains a line break; it must be one line";
    if (auto problem = refuse(c)) return problem;
    if (c == ' ' && previous == ' ') return "contains two spaces in a row";
    previous = c;
    ++count;
    i += length;
  }
  if (text.front() == ' ' || text.back() == ' ') return "starts or ends with a space";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> CheckSmsText(std::string_view text, std::size_t max_chars) {
  std::size_t count = 0;
  if (auto problem = CheckLine(text, count, [](char32_t c) -> std::optional<std::string> {
        if (kGsmBasic.find(c) != std::u32string_view::npos) return std::nullopt;
        return "contains " +
               (c < 0x80 && c >= 0x20 ? std::string("the character '") + static_cast<char>(c) + "'"
                                      : "the character " + CodePoint(c)) +
               ", which is outside the GSM-7 basic character set that every phone displays";
      })) {
    return problem;
  }
  if (count > max_chars) return "is " + std::to_string(count) + " characters long";
  return std::nullopt;
}

std::optional<std::string> CheckOneLine(std::string_view text, std::size_t max_chars) {
  std::size_t count = 0;
  if (auto problem = CheckLine(text, count, [](char32_t c) -> std::optional<std::string> {
        if (c < 0x20 || (c >= 0x7F && c < 0xA0)) {
          return "contains the control character " + CodePoint(c);
        }
        if (IsHiddenInText(c)) {
          return "contains " + CodePoint(c) +
                 ", an invisible, space-like or private-use character that would let two "
                 "different texts read the same; use ordinary spaces and visible characters";
        }
        return std::nullopt;
      })) {
    return problem;
  }
  if (count > max_chars) {
    return "is " + std::to_string(count) + " characters long; at most " +
           std::to_string(max_chars) + " are allowed";
  }
  return std::nullopt;
}

namespace {

bool IsPrintableAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

// The 249 codes ISO 3166-1 assigns officially (not the user-assigned AA, QM-QZ, XA-XZ, ZZ).
constexpr std::string_view kCountryCodes =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI "
    "BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN "
    "CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK "
    "FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM "
    "HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK "
    "ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP "
    "NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW "
    "SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF "
    "TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

std::optional<std::string> CheckCountryCode(std::string_view text) {
  if (text.size() != 2 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return "must be an ISO 3166-1 alpha-2 country code: two upper-case letters such as PK";
  }
  for (std::size_t i = 0; i + 1 < kCountryCodes.size(); i += 3) {
    if (kCountryCodes.substr(i, 2) == text) return std::nullopt;
  }
  return "is not a country code ISO 3166-1 assigns (PK, AE, GB, ...)";
}

std::optional<std::string> CheckEmail(std::string_view text) {
  const std::size_t at = text.find('@');
  const bool shaped = !text.empty() && text.size() <= 254 && IsPrintableAscii(text) &&
                      at != std::string_view::npos && at > 0 &&
                      text.find('@', at + 1) == std::string_view::npos;
  const std::string_view domain = shaped ? text.substr(at + 1) : std::string_view();
  if (!shaped || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.' || domain.find("..") != std::string_view::npos) {
    return "must be an e-mail address such as dpo@demo-bank.example (printable ASCII, one @, "
           "a dotted domain, at most 254 characters)";
  }
  return std::nullopt;
}

std::optional<std::string> CheckPhone(std::string_view text) {
  std::size_t digits = 0;
  bool ok = text.size() >= 2 && text.size() <= 32 && text[0] == '+' && text[1] >= '0' &&
            text[1] <= '9' && text.back() >= '0' && text.back() <= '9';
  for (std::size_t i = 1; ok && i < text.size(); ++i) {
    const char c = text[i];
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c == ' ' || c == '-') {
      ok = text[i - 1] >= '0' && text[i - 1] <= '9';  // single separators between digits
    } else {
      ok = false;
    }
  }
  if (!ok || digits < 7 || digits > 15) {
    return "must be an international number: + and 7 to 15 digits, grouped with single spaces "
           "or hyphens, such as +92 21 111 000 000";
  }
  return std::nullopt;
}

std::optional<std::string> CheckHttpsUrl(std::string_view text) {
  constexpr std::string_view kScheme = "https://";
  // RFC 3986: unreserved, reserved and '%' (then two hex digits); nothing a page or a JSON
  // consumer could take as markup or quoting.
  constexpr std::string_view kAllowed =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?#[]@!$&'()*+,;=%";
  bool ok = text.size() > kScheme.size() && text.size() <= 2048 &&
            text.substr(0, kScheme.size()) == kScheme &&
            text.find_first_not_of(kAllowed) == std::string_view::npos;
  if (ok) {
    // The authority: a host of letters, digits, dots and hyphens, an optional port; no user
    // information (https://bank.example@evil.example names evil.example).
    const std::string_view rest = text.substr(kScheme.size());
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    const std::string_view host = authority.substr(0, authority.find(':'));
    const std::string_view port =
        authority.size() > host.size() ? authority.substr(host.size() + 1) : std::string_view();
    ok = !host.empty() && host.front() != '.' && host.front() != '-' &&
         host.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
             std::string_view::npos &&
         host.find("..") == std::string_view::npos &&
         (authority.size() == host.size() ||
          (!port.empty() && port.size() <= 5 &&
           port.find_first_not_of("0123456789") == std::string_view::npos));
    for (std::size_t at = text.find('%'); ok && at != std::string_view::npos;
         at = text.find('%', at + 1)) {
      ok = at + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[at + 1])) &&
           std::isxdigit(static_cast<unsigned char>(text[at + 2]));
    }
  }
  if (!ok) {
    return "must be an absolute https URL with a host name and no user information, such as "
           "https://demo-bank.example/privacy (RFC 3986 characters only, at most 2048)";
  }
  return std::nullopt;
}

std::optional<std::string> NormaliseSha256Hex(std::string_view text) {
  std::string hex;
  if (text.size() == 95) {  // "AB:CD:..." 32 pairs and 31 colons
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (i % 3 == 2) {
        if (text[i] != ':') return std::nullopt;
      } else {
        hex += text[i];
      }
    }
  } else if (text.size() == 64) {
    hex = std::string(text);
  } else {
    return std::nullopt;
  }
  for (char& c : hex) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return hex;
}

std::string Quote(std::string_view value, std::size_t max_chars) {
  std::string out = "'";
  std::size_t count = 0;
  std::size_t i = 0;
  while (i < value.size()) {
    if (count == max_chars) {
      out += "...";
      break;
    }
    std::size_t length = 1;
    const char32_t c = DecodeUtf8(value, i, length);
    std::array<char, 16> buffer{};
    if (c == kInvalid) {
      std::snprintf(buffer.data(), buffer.size(), "\\x{%02x}",
                    static_cast<unsigned char>(value[i]));
      out += buffer.data();
    } else if (c >= 0x20 && c < 0x7F && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buffer.data(), buffer.size(), "\\u{%x}", static_cast<unsigned>(c));
      out += buffer.data();
    }
    ++count;
    i += length;
  }
  out += "'";
  return out;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  // Suggestions are for short keys; a hostile megabyte-long key must not cost quadratic time.
  constexpr std::size_t kMaxLength = 64;
  if (a.size() > kMaxLength || b.size() > kMaxLength) return std::max(a.size(), b.size());
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace ijazat::policy::internal
