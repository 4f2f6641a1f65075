#include "sqlite_audit.h"

#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "sqlite_db.h"

namespace ijazat::appliance::sqlite {
namespace {

using Poco::Data::BLOB;
using Poco::Data::Keywords::bind;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;

// seq, at, event, provider_id, consent_id, detail, prev_hash, hash, hash_version, subject,
// subject_key_version
using AuditRow = std::tuple<Poco::Int64, Poco::Int64, std::string, std::string, std::string,
                            std::string, BLOB, BLOB, Poco::Int64, BLOB, Poco::Int64>;
constexpr const char* kAuditColumns =
    "seq, at, event, provider_id, consent_id, detail, prev_hash, hash, hash_version, "
    "COALESCE(subject, x''), subject_key_version";

void AppendLength(Bytes& out, std::size_t length) {
  const auto n = static_cast<std::uint32_t>(length);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(n >> shift));
}

void AppendField(Bytes& out, std::string_view text) {
  AppendLength(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

void AppendField(Bytes& out, std::int64_t value) {
  AppendLength(out, 8);
  const auto u = static_cast<std::uint64_t>(value);
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(u >> shift));
}

AuditEvent FromRow(const AuditRow& row) {
  AuditEvent event;
  event.seq = std::get<0>(row);
  event.at = std::get<1>(row);
  event.event = std::get<2>(row);
  event.provider_id = std::get<3>(row);
  event.consent_id = std::get<4>(row);
  event.detail = std::get<5>(row);
  event.prev_hash = FromBlob(std::get<6>(row));
  event.hash = FromBlob(std::get<7>(row));
  const Poco::Int64 version = std::get<8>(row);
  event.hash_version = version == 1 || version == 2 ? static_cast<int>(version) : 0;
  event.subject.value = FromBlob(std::get<9>(row));
  const Poco::Int64 key_version = std::get<10>(row);
  event.subject.key_version =
      key_version >= 0 && key_version <= UINT32_MAX ? static_cast<std::uint32_t>(key_version) : 0;
  return event;
}

Error Broken(std::int64_t seq, std::string_view what) {
  return Error(ErrorCode::kDataLoss,
               "audit chain broken at seq " + std::to_string(seq) + ": " + std::string(what),
               "audit_broken");
}

}  // namespace

Bytes AuditHash(ByteView prev_hash, const AuditEvent& event) {
  Bytes message(prev_hash.begin(), prev_hash.end());
  AppendField(message, event.seq);
  AppendField(message, event.at);
  AppendField(message, event.event);
  AppendField(message, event.provider_id);
  AppendField(message, event.consent_id);
  AppendField(message, event.detail);
  if (event.hash_version == 2) {
    AppendField(message, std::int64_t{2});
    AppendField(message, std::string_view(reinterpret_cast<const char*>(event.subject.value.data()),
                                          event.subject.value.size()));
    AppendField(message, static_cast<std::int64_t>(event.subject.key_version));
  } else if (event.hash_version != 1) {
    return {};
  }
  Bytes digest(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (EVP_Digest(message.data(), message.size(), digest.data(), &length, EVP_sha256(), nullptr) !=
      1) {
    return {};  // never equal to a stored hash: the chain then reads as broken, not as valid
  }
  digest.resize(length);
  return digest;
}

Status AppendAudit(Connection& session, const AuditEvent& event) {
  AuditEvent row = event;
  row.hash_version = 2;  // every row written now records its subject
  row.seq = 1;
  row.prev_hash.assign(kAuditHashSize, 0);
  {
    Query last = session.Prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (last.Step()) {
      row.seq = last.Int(0) + 1;
      row.prev_hash = last.Blob(1);
      if (row.prev_hash.size() != kAuditHashSize) {
        return Error(ErrorCode::kDataLoss, "appending to the audit chain: last hash is malformed",
                     "audit_broken");
      }
    }
  }
  row.hash = AuditHash(row.prev_hash, row);
  if (row.hash.size() != kAuditHashSize) {
    return Error(ErrorCode::kInternal, "appending to the audit chain: SHA-256 failed",
                 "store_error");
  }
  session
      .Prepare(
          "INSERT INTO audit (seq, at, event, provider_id, consent_id, detail, prev_hash, hash, "
          "hash_version, subject, subject_key_version) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 2, NULLIF(?, x''), ?)")
      .Bind(row.seq)
      .Bind(row.at)
      .Bind(row.event)
      .Bind(row.provider_id)
      .Bind(row.consent_id)
      .Bind(row.detail)
      .Bind(row.prev_hash)
      .Bind(row.hash)
      .Bind(row.subject.value)
      .Bind(static_cast<std::int64_t>(row.subject.key_version))
      .Run();
  return OkStatus();
}

Status VerifyAudit(Connection& session) {
  constexpr Poco::Int64 kPage = 512;
  Bytes prev_hash(kAuditHashSize, 0);
  std::int64_t expected_seq = 1;
  for (;;) {
    std::vector<AuditRow> rows;
    session << std::string("SELECT ") + kAuditColumns +
                   " FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?",
        bind(static_cast<Poco::Int64>(expected_seq)), bind(kPage), into(rows), now;
    if (rows.empty()) return OkStatus();
    for (const AuditRow& raw : rows) {
      const AuditEvent event = FromRow(raw);
      if (event.seq != expected_seq) return Broken(expected_seq, "row missing");
      if (event.prev_hash != prev_hash) return Broken(event.seq, "prev_hash does not match");
      if (event.hash.size() != kAuditHashSize || event.hash != AuditHash(prev_hash, event)) {
        return Broken(event.seq, "hash mismatch");
      }
      prev_hash = event.hash;
      ++expected_seq;
    }
  }
}

AuditHead ReadAuditHead(Connection& session) {
  AuditHead head;
  Query last = session.Prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  if (last.Step()) {
    head.seq = last.Int(0);
    head.hash = last.Blob(1);
  }
  return head;
}

std::vector<AuditEvent> ReadAuditTail(Connection& session, int limit) {
  std::vector<AuditRow> rows;
  session << std::string("SELECT ") + kAuditColumns + " FROM audit ORDER BY seq DESC LIMIT ?",
      bind(static_cast<Poco::Int64>(limit)), into(rows), now;
  std::vector<AuditEvent> events;
  events.reserve(rows.size());
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) events.push_back(FromRow(*it));
  return events;
}

}  // namespace ijazat::appliance::sqlite
