#include "sms_text.h"

#include <nlohmann/json.hpp>
#include <vector>

namespace ijazat::appliance {
namespace {

// The length of the well-formed UTF-8 sequence at the start of `text`, or 0.
std::size_t SequenceLength(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

bool IsUtf8(std::string_view text) {
  while (!text.empty()) {
    const std::size_t length = SequenceLength(text);
    if (length == 0) return false;
    text.remove_prefix(length);
  }
  return true;
}

std::string FitOneSms(std::string_view text) {
  // Split into characters, replacing what is not UTF-8.
  std::vector<std::string_view> characters;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t length = SequenceLength(rest);
    characters.push_back(length == 0 ? std::string_view("?") : rest.substr(0, length));
    rest.remove_prefix(length == 0 ? 1 : length);
  }
  std::size_t keep = characters.size();
  bool cut = false;
  if (keep > kMaxReplyCharacters) {
    cut = true;
    keep = kMaxReplyCharacters - 3;
    // Back to a word boundary if there is one not too far back.
    for (std::size_t i = keep; i > 100; --i) {
      if (characters[i - 1] == " ") {
        keep = i - 1;
        break;
      }
    }
  }
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < keep; ++i) out.append(characters[i]);
  if (cut) out += "...";
  return out;
}

std::string ReplyParams(std::string_view text) {
  // FitOneSms leaves only valid UTF-8; the replacing dump guards the invariant all the same.
  return nlohmann::json{{"text", FitOneSms(text)}}.dump(-1, ' ', false,
                                                        nlohmann::json::error_handler_t::replace);
}

}  // namespace ijazat::appliance
