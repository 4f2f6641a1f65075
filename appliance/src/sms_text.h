// The texts of SMS replies as the appliance builds them: one message at most, cut at whole
// characters, and safe to store whatever bytes went in. Replies are built from fixed templates
// and values the appliance owns (a provider's name from the policy, a reference it issued); a
// sender's own text is never echoed, so a reply can neither relay spam nor carry a CNIC into
// the outbox.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ijazat::appliance {

// The longest reply: one SMS of 160 GSM-7 characters.
inline constexpr std::size_t kMaxReplyCharacters = 160;

// `text` as valid UTF-8 (each byte that is not part of a valid sequence becomes '?') and at
// most kMaxReplyCharacters characters: a longer text is cut at a word boundary where one is
// near, never inside a character, and ends with "...".
std::string FitOneSms(std::string_view text);

// The outbox parameters of a reply, {"text": FitOneSms(text)}. Never throws.
std::string ReplyParams(std::string_view text);

// True if `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool IsUtf8(std::string_view text);

}  // namespace ijazat::appliance
