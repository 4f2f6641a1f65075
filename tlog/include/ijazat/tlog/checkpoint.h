// Checkpoints (C2SP tlog-checkpoint): the body of a signed note naming a log's origin, its size
// and the hash that commits to its contents, then optional extension lines:
//
//   <origin>\n
//   <size, decimal, no leading zeros>\n
//   <base64 of the 32-byte hash>\n
//   [<extension line>\n ...]
//
// For Ijazat's audit chain the size is the sequence number of the last event and the hash is
// that event's chain hash; the transparency log's checkpoints will carry its Merkle tree head.
// Errors: kInvalidArgument, reason "checkpoint_malformed".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/common/result.h"

namespace ijazat::tlog {

inline constexpr std::size_t kCheckpointHashSize = 32;

struct Checkpoint {
  std::string origin;  // e.g. "ijazat.example.pk/audit"
  std::uint64_t size = 0;
  Bytes hash;                           // 32 bytes
  std::vector<std::string> extensions;  // non-empty lines, no "\n"
};

// The checkpoint's text (the body of its note); "checkpoint_malformed" for an empty origin or
// one with a newline, a hash that is not 32 bytes, or an empty extension line.
Result<std::string> FormatCheckpoint(const Checkpoint& checkpoint);
Result<Checkpoint> ParseCheckpoint(std::string_view text);

}  // namespace ijazat::tlog
