// Signed notes (C2SP signed-note): a UTF-8 text followed by a blank line and one signature line
// per signer, "— <key name> <base64(key id || signature)>". Ijazat signs with Ed25519 keys that
// stay in the HSM, so signing takes a callback; verification is done here, in software, with the
// public key only.
//
//   key id (Ed25519) = first 4 bytes, big-endian, of SHA-256(key name || "\n" || 0x01 || key)
//   verifier key     = "<key name>+<key id as 8 hex digits>+<base64(0x01 || key)>"
//
// Errors: kInvalidArgument with reason "note_malformed" for a text or note that breaks the
// format, "note_key_invalid" for a bad key name or verifier key; kFailedPrecondition
// "note_unverified" when no signature by a known key verifies; whatever the signer returns.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"

namespace ijazat::tlog {

inline constexpr std::size_t kEd25519PublicKeySize = 32;
inline constexpr std::size_t kEd25519SignatureSize = 64;

// The Ed25519 key id of `name` and `public_key` (32 bytes).
std::uint32_t Ed25519KeyId(std::string_view name, ByteView public_key);

// The verifier key string operators hand to verifiers (see above); "note_key_invalid" for a
// name that is empty or holds whitespace or "+", or a key that is not 32 bytes.
Result<std::string> Ed25519VerifierKey(std::string_view name, ByteView public_key);

// One verifier: a parsed verifier key.
struct NoteVerifier {
  std::string name;
  std::uint32_t key_id = 0;
  Bytes public_key;  // Ed25519, 32 bytes
};
Result<NoteVerifier> ParseVerifierKey(std::string_view verifier_key);

// Signs `message` (64 bytes back), e.g. in an HSM.
using Ed25519Signer = std::function<Result<Bytes>(ByteView message)>;

// `text` (non-empty, ending in "\n", no blank line at its end, valid UTF-8 without control
// characters other than "\n") signed by `name`: text || "\n" || the signature line.
Result<std::string> SignNote(std::string_view text, std::string_view name, ByteView public_key,
                             const Ed25519Signer& sign);

// The text of `note` when at least one of its signatures is by a verifier's key (same name and
// key id) and verifies; signatures by unknown keys are ignored, one by a known key that does not
// verify makes the note "note_unverified". With `signed_by`, the names of the keys whose
// signatures verified are added to it (a checkpoint's origin must be one of them).
Result<std::string> OpenNote(std::string_view note, const std::vector<NoteVerifier>& verifiers,
                             std::vector<std::string>* signed_by = nullptr);

// Standard base64 (RFC 4648 section 4, with padding), as signed notes use it; decoding is
// strict (no whitespace, canonical padding).
std::string Base64Encode(ByteView bytes);
std::optional<Bytes> Base64Decode(std::string_view text);

}  // namespace ijazat::tlog
