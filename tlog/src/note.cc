#include "ijazat/tlog/note.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdio>
#include <memory>

namespace ijazat::tlog {
namespace {

constexpr std::string_view kSignaturePrefix = "\xE2\x80\x94 ";  // U+2014 EM DASH, then a space
constexpr std::uint8_t kAlgEd25519 = 0x01;
constexpr std::size_t kMaxSignatures = 100;

Error Malformed(const std::string& why) {
  return Error(ErrorCode::kInvalidArgument, "malformed note: " + why, "note_malformed");
}

Error KeyInvalid(const std::string& why) {
  return Error(ErrorCode::kInvalidArgument, "invalid note key: " + why, "note_key_invalid");
}

// Key names are non-empty and hold neither "+" nor whitespace (ASCII or the Unicode spaces a
// reader could not see; non-ASCII is refused outright for simplicity).
bool ValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F || c == '+') return false;
  }
  return true;
}

// Valid UTF-8 without control characters other than "\n".
bool ValidText(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n') || c == 0x7F) return false;
      ++i;
      continue;
    }
    int extra = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(extra) >= text.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const std::uint32_t min = extra == 1 ? 0x80 : extra == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (cp >= 0x80 && cp < 0xA0) return false;  // C1 controls
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

std::uint32_t BigEndian32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

bool VerifyEd25519(ByteView public_key, std::string_view message, ByteView signature) {
  if (public_key.size() != kEd25519PublicKeySize || signature.size() != kEd25519SignatureSize) {
    return false;
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()),
      EVP_PKEY_free);
  if (!key) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace

std::string Base64Encode(ByteView bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

std::optional<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '+' || c == '/';
    const bool padding =
        c == '=' && i + 2 >= text.size() && (i + 1 == text.size() || text[i + 1] == '=');
    if (!alphabet && !padding) return std::nullopt;
  }
  Bytes out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t length = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --length;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --length;
  out.resize(length);
  // Canonical: encoding the result again gives the same text (no stray bits in the padding).
  if (Base64Encode(out) != text) return std::nullopt;
  return out;
}

std::uint32_t Ed25519KeyId(std::string_view name, ByteView public_key) {
  std::string input(name);
  input += '\n';
  input += static_cast<char>(kAlgEd25519);
  input.append(reinterpret_cast<const char*>(public_key.data()), public_key.size());
  std::uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return BigEndian32(digest);
}

Result<std::string> Ed25519VerifierKey(std::string_view name, ByteView public_key) {
  if (!ValidKeyName(name))
    return KeyInvalid("the key name must be non-empty ASCII without spaces or +");
  if (public_key.size() != kEd25519PublicKeySize) return KeyInvalid("an Ed25519 key is 32 bytes");
  char id[9];
  std::snprintf(id, sizeof id, "%08x", Ed25519KeyId(name, public_key));
  Bytes encoded{kAlgEd25519};
  encoded.insert(encoded.end(), public_key.begin(), public_key.end());
  return std::string(name) + "+" + id + "+" + Base64Encode(encoded);
}

Result<NoteVerifier> ParseVerifierKey(std::string_view verifier_key) {
  const auto first = verifier_key.find('+');
  const auto second = first == std::string_view::npos ? first : verifier_key.find('+', first + 1);
  if (second == std::string_view::npos) return KeyInvalid("expected NAME+KEYID+KEY");
  NoteVerifier verifier;
  verifier.name = std::string(verifier_key.substr(0, first));
  const std::string_view id = verifier_key.substr(first + 1, second - first - 1);
  const std::string_view key = verifier_key.substr(second + 1);
  if (!ValidKeyName(verifier.name)) return KeyInvalid("bad key name");
  if (id.size() != 8 || id.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return KeyInvalid("the key id is 8 lowercase hex digits");
  }
  verifier.key_id = static_cast<std::uint32_t>(std::stoul(std::string(id), nullptr, 16));
  const auto decoded = Base64Decode(key);
  if (!decoded || decoded->size() != 1 + kEd25519PublicKeySize || (*decoded)[0] != kAlgEd25519) {
    return KeyInvalid("the key is base64 of 0x01 and a 32-byte Ed25519 key");
  }
  verifier.public_key.assign(decoded->begin() + 1, decoded->end());
  if (Ed25519KeyId(verifier.name, verifier.public_key) != verifier.key_id) {
    return KeyInvalid("the key id does not match the name and key");
  }
  return verifier;
}

Result<std::string> SignNote(std::string_view text, std::string_view name, ByteView public_key,
                             const Ed25519Signer& sign) {
  if (text.empty() || text.back() != '\n') return Malformed("the text must end with a newline");
  if (text.find("\n\n") != std::string_view::npos || text.front() == '\n') {
    return Malformed("the text must hold no blank line");
  }
  if (!ValidText(text)) return Malformed("the text must be UTF-8 without control characters");
  if (!ValidKeyName(name)) return KeyInvalid("bad key name");
  if (public_key.size() != kEd25519PublicKeySize) return KeyInvalid("an Ed25519 key is 32 bytes");
  IJAZAT_ASSIGN_OR_RETURN(
      const Bytes signature,
      sign(ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
  if (signature.size() != kEd25519SignatureSize) {
    return Error(ErrorCode::kInternal,
                 "the signer returned " + std::to_string(signature.size()) +
                     " bytes, not an Ed25519 signature",
                 "note_signer_failed");
  }
  const std::uint32_t id = Ed25519KeyId(name, public_key);
  Bytes blob{static_cast<std::uint8_t>(id >> 24), static_cast<std::uint8_t>(id >> 16),
             static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id)};
  blob.insert(blob.end(), signature.begin(), signature.end());
  return std::string(text) + "\n" + std::string(kSignaturePrefix) + std::string(name) + " " +
         Base64Encode(blob) + "\n";
}

Result<std::string> OpenNote(std::string_view note, const std::vector<NoteVerifier>& verifiers,
                             std::vector<std::string>* signed_by) {
  const auto split = note.rfind("\n\n");
  if (split == std::string_view::npos) return Malformed("no signature block");
  const std::string_view text = note.substr(0, split + 1);
  std::string_view signatures = note.substr(split + 2);
  if (!ValidText(text)) return Malformed("the text must be UTF-8 without control characters");
  if (signatures.empty() || signatures.back() != '\n') {
    return Malformed("the signature block must end with a newline");
  }
  std::size_t count = 0;
  bool verified = false;
  while (!signatures.empty()) {
    const auto end = signatures.find('\n');
    const std::string_view line = signatures.substr(0, end);
    signatures.remove_prefix(end + 1);
    if (++count > kMaxSignatures) return Malformed("too many signatures");
    if (line.substr(0, kSignaturePrefix.size()) != kSignaturePrefix) {
      return Malformed("a signature line must start with an em dash and a space");
    }
    const std::string_view rest = line.substr(kSignaturePrefix.size());
    const auto space = rest.find(' ');
    if (space == std::string_view::npos)
      return Malformed("a signature line needs a name and a signature");
    const std::string_view name = rest.substr(0, space);
    const auto blob = Base64Decode(rest.substr(space + 1));
    if (!ValidKeyName(name) || !blob || blob->size() < 5) {
      return Malformed("a signature line has a bad name or signature");
    }
    const std::uint32_t id = BigEndian32(blob->data());
    for (const NoteVerifier& verifier : verifiers) {
      if (verifier.name != name || verifier.key_id != id) continue;
      const ByteView signature(blob->data() + 4, blob->size() - 4);
      if (!VerifyEd25519(verifier.public_key, text, signature)) {
        return Error(ErrorCode::kFailedPrecondition,
                     "the note's signature by " + std::string(name) + " does not verify",
                     "note_unverified");
      }
      verified = true;
      if (signed_by != nullptr) signed_by->push_back(verifier.name);
    }
  }
  if (!verified) {
    return Error(ErrorCode::kFailedPrecondition, "the note is signed by no known key",
                 "note_unverified");
  }
  return std::string(text);
}

}  // namespace ijazat::tlog
