// Text rules shared by the loader: UTF-8 and character screening of the raw file, and the
// formats of individual values (slugs, SMS text, hex digests). Pure functions, thread safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ijazat::policy::internal {

// A problem found in the raw bytes, before any YAML parsing.
struct TextProblem {
  int line = 0;    // 1-based
  int column = 0;  // 1-based, in characters
  std::string message;
};

// Screens the whole file: it must be UTF-8 (an initial byte-order mark is allowed), with no
// tabs, no control characters other than line breaks, no C1 controls, and no invisible
// bidirectional or zero-width formatting characters (which let a reviewed file read
// differently from what it is). Stops at the first invalid UTF-8 sequence (nothing after it
// has reliable positions); reports at most `max_problems` others.
std::vector<TextProblem> ScreenText(std::string_view text, std::size_t max_problems);

// Lowercase letters, digits and single hyphens, starting with a letter, ending with a letter
// or digit, at most 64 characters: "demo-bank", "account-opening".
bool IsSlug(std::string_view text);

// SMS-safe text: only characters of the GSM 03.38 basic character set (no escape-table
// characters, which cost two septets and are mangled by some gateways), no line breaks, no
// leading, trailing or doubled spaces, between 1 and `max_chars` characters. On failure
// returns what is wrong, as the end of a sentence ("contains the character '\u{7e}'").
std::optional<std::string> CheckSmsText(std::string_view text, std::size_t max_chars);

// One line of text in any script (the file was screened for controls and invisible
// formatting already): no line breaks, no leading, trailing or doubled spaces, between 1 and
// `max_chars` characters. On failure returns what is wrong, as CheckSmsText does.
std::optional<std::string> CheckOneLine(std::string_view text, std::size_t max_chars);

// The formats of a controller's contact details. Each returns what is wrong, or nullopt.
// ISO 3166-1 alpha-2: two upper-case ASCII letters ("PK").
std::optional<std::string> CheckCountryCode(std::string_view text);
// An address such as dpo@demo-bank.example: printable ASCII, one '@', a dotted domain,
// at most 254 characters.
std::optional<std::string> CheckEmail(std::string_view text);
// International format: '+', then 7 to 15 digits, in groups separated by single spaces or
// hyphens ("+92 21 111 000 000").
std::optional<std::string> CheckPhone(std::string_view text);
// An absolute https URL with a host, printable ASCII without spaces, at most 2048 characters.
std::optional<std::string> CheckHttpsUrl(std::string_view text);

// A SHA-256 written as 64 hex digits, optionally in colon-separated pairs as OpenSSL prints
// certificate fingerprints. Returns 64 lowercase hex digits, or nullopt.
std::optional<std::string> NormaliseSha256Hex(std::string_view text);

// `value` made safe to quote in a message: printable ASCII kept, everything else escaped as
// \u{hex} or \x{hex} (invalid UTF-8), cut to `max_chars` with "..." appended.
std::string Quote(std::string_view value, std::size_t max_chars = 40);

// Levenshtein distance, for "did you mean" suggestions on short keys. Strings longer than 64
// characters are not compared: the result is then the longer length.
std::size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace ijazat::policy::internal
