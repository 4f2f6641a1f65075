#include "model.h"

#include <array>
#include <ctime>
#include <utility>

namespace ijazat::appliance {
namespace {

// Names as stored in the database and written to logs; never renumber or rename.
constexpr std::array<std::pair<ConsentState, std::string_view>, 6> kConsentStates = {{
    {ConsentState::kPending, "pending"},
    {ConsentState::kGranted, "granted"},
    {ConsentState::kFailed, "failed"},
    {ConsentState::kExpired, "expired"},
    {ConsentState::kUsed, "used"},
    {ConsentState::kRevoked, "revoked"},
}};

constexpr std::array<std::pair<OutboxKind, std::string_view>, 8> kOutboxKinds = {{
    {OutboxKind::kOtp, "otp"},
    {OutboxKind::kEnrolled, "enrolled"},
    {OutboxKind::kNumberChanged, "number_changed"},
    {OutboxKind::kGranted, "granted"},
    {OutboxKind::kHelp, "help"},
    {OutboxKind::kReply, "reply"},
    {OutboxKind::kSuspended, "suspended"},
    {OutboxKind::kChangeCancelled, "change_cancelled"},
}};

constexpr std::array<std::pair<OutboxStatus, std::string_view>, 5> kOutboxStatuses = {{
    {OutboxStatus::kQueued, "queued"},
    {OutboxStatus::kSent, "sent"},
    {OutboxStatus::kFailed, "failed"},
    {OutboxStatus::kDropped, "dropped"},
    {OutboxStatus::kDelivered, "delivered"},
}};

template <typename Enum, std::size_t N>
std::string_view NameOf(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "unknown";
}

template <typename Enum, std::size_t N>
std::optional<Enum> Parse(const std::array<std::pair<Enum, std::string_view>, N>& table,
                          std::string_view name) {
  for (const auto& [e, n] : table) {
    if (n == name) return e;
  }
  return std::nullopt;
}

}  // namespace

std::string_view ConsentStateName(ConsentState state) { return NameOf(kConsentStates, state); }
std::optional<ConsentState> ParseConsentState(std::string_view name) {
  return Parse(kConsentStates, name);
}

std::string_view OutboxKindName(OutboxKind kind) { return NameOf(kOutboxKinds, kind); }
std::optional<OutboxKind> ParseOutboxKind(std::string_view name) {
  return Parse(kOutboxKinds, name);
}

std::string_view OutboxStatusName(OutboxStatus status) { return NameOf(kOutboxStatuses, status); }
std::optional<OutboxStatus> ParseOutboxStatus(std::string_view name) {
  return Parse(kOutboxStatuses, name);
}

std::string Iso8601(Timestamp t) {
  const std::time_t seconds = static_cast<std::time_t>(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

}  // namespace ijazat::appliance
