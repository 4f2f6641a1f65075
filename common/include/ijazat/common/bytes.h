// Byte buffers, hex and base64url helpers, and a buffer for secrets that is wiped when freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ijazat {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView AsBytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}
inline Bytes ToBytes(std::string_view text) {
  const ByteView view = AsBytes(text);
  return {view.begin(), view.end()};
}

std::string HexEncode(ByteView bytes);
std::optional<Bytes> HexDecode(std::string_view hex);

// RFC 4648 §5 base64url without padding, as JOSE uses it.
std::string Base64UrlEncode(ByteView bytes);
// Accepts only the unpadded base64url alphabet; returns nullopt on anything else, including
// non-canonical trailing bits.
std::optional<Bytes> Base64UrlDecode(std::string_view text);

// Overwrites memory in a way the compiler may not elide.
void SecureWipe(void* data, std::size_t size);
// Overwrites every byte `text` holds, up to its capacity (characters removed from its end
// are still in the buffer), and leaves it empty.
void SecureWipe(std::string& text);

// Constant-time equality: the time taken depends on the lengths only, never on the contents.
bool ConstantTimeEquals(ByteView a, ByteView b);

// A string holding a secret (a PIN, a passphrase). Move-only; wiped on destruction.
class SecretString {
 public:
  SecretString() = default;
  // Takes the caller's string and wipes what is left of it: a short value lives inside the
  // std::string object itself (small-string optimisation), and moving it copies the bytes.
  explicit SecretString(std::string&& value) : value_(std::move(value)) {
    SecureWipe(value);  // NOLINT(bugprone-use-after-move): valid but unspecified, then wiped
  }
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  SecretString(SecretString&& other) noexcept : value_(std::move(other.value_)) { other.Wipe(); }
  SecretString& operator=(SecretString&& other) noexcept {
    if (this != &other) {
      Wipe();
      value_ = std::move(other.value_);
      other.Wipe();
    }
    return *this;
  }
  ~SecretString() { Wipe(); }

  // Deliberately verbose: every read of the secret is visible at the call site.
  std::string_view UnsafeView() const { return value_; }
  bool empty() const { return value_.empty(); }
  std::size_t size() const { return value_.size(); }

 private:
  void Wipe() { SecureWipe(value_); }
  std::string value_;
};

}  // namespace ijazat
