#include "ijazat/tlog/checkpoint.h"

#include "ijazat/tlog/note.h"

namespace ijazat::tlog {
namespace {

Error Malformed(const std::string& why) {
  return Error(ErrorCode::kInvalidArgument, "malformed checkpoint: " + why, "checkpoint_malformed");
}

}  // namespace

Result<std::string> FormatCheckpoint(const Checkpoint& checkpoint) {
  if (checkpoint.origin.empty() || checkpoint.origin.find('\n') != std::string::npos) {
    return Malformed("the origin must be one non-empty line");
  }
  if (checkpoint.hash.size() != kCheckpointHashSize) return Malformed("the hash is 32 bytes");
  std::string text = checkpoint.origin + "\n" + std::to_string(checkpoint.size) + "\n" +
                     Base64Encode(checkpoint.hash) + "\n";
  for (const std::string& extension : checkpoint.extensions) {
    if (extension.empty() || extension.find('\n') != std::string::npos) {
      return Malformed("an extension is one non-empty line");
    }
    text += extension + "\n";
  }
  return text;
}

Result<Checkpoint> ParseCheckpoint(std::string_view text) {
  if (text.empty() || text.back() != '\n') return Malformed("the text must end with a newline");
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    lines.push_back(text.substr(0, end));
    text.remove_prefix(end + 1);
  }
  if (lines.size() < 3) return Malformed("expected an origin, a size and a hash");
  Checkpoint checkpoint;
  checkpoint.origin = std::string(lines[0]);
  if (checkpoint.origin.empty()) return Malformed("the origin is empty");
  const std::string_view size = lines[1];
  if (size.empty() || size.size() > 20 ||
      size.find_first_not_of("0123456789") != std::string_view::npos ||
      (size.size() > 1 && size[0] == '0')) {
    return Malformed("the size must be a decimal number without leading zeros");
  }
  std::uint64_t value = 0;
  for (const char c : size) {
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return Malformed("the size is out of range");
    value = value * 10 + digit;
  }
  checkpoint.size = value;
  const auto hash = Base64Decode(lines[2]);
  if (!hash || hash->size() != kCheckpointHashSize) {
    return Malformed("the hash must be base64 of 32 bytes");
  }
  checkpoint.hash = *hash;
  for (std::size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) return Malformed("an extension line is empty");
    checkpoint.extensions.emplace_back(lines[i]);
  }
  return checkpoint;
}

}  // namespace ijazat::tlog
