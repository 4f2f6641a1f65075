// The consent store: everything the appliance must remember, behind an interface that an
// SQLite file implements today and PostgreSQL (several appliances sharing state) next.
//
// Every method is one atomic transaction, committed durably before it returns success: a
// consent acknowledged to a client survives a crash. Concurrent writers may share one durable
// commit (group commit); each is still atomic and answered only after that commit. Counters and
// single-use checks happen in the database (conditional updates), never in process memory, so that
// several appliances on one database stay correct. Every state change appends to the audit chain
// inside the same transaction; if the audit append fails, the whole change fails (fail closed).
//
// Thread safety: implementations are safe to call from any number of threads.
// Errors: kUnavailable ("store_unavailable") when the database cannot be reached or is busy
// beyond the timeout; kDataLoss ("store_corrupt") when the integrity check fails;
// kAlreadyExists / kFailedPrecondition as documented per method.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ijazat/common/result.h"
#include "model.h"

namespace ijazat::appliance {

// The sliding window that a provider's failed codes for a CNIC are counted in: each failure
// leaves it this long after it happened.
inline constexpr std::int64_t kCnicFailureWindowSeconds = std::int64_t{24} * 60 * 60;

// Counters of failed codes for a CNIC as one provider sees them, after an update. Kept per
// (CNIC, provider) so that no provider can lock a citizen out for another, with the CNIC-wide
// count of failures in a row that NIST SP 800-63B caps at 100.
struct CnicFailures {
  int in_window = 0;    // this provider's failures for the CNIC in the last 24 hours (sliding)
  int consecutive = 0;  // the CNIC's failures since its last success, every provider's
  int provider_consecutive = 0;  // this provider's since its last success for the CNIC
};

// What happened to a code attempt, decided atomically by the store.
struct AttemptResult {
  Consent consent;    // the consent after the update
  CnicFailures cnic;  // the CNIC's counters after the update
};

// SMS counted against caps: see ConsentStore::CountMessages.
struct SmsCounts {
  int cnic_provider_hour = 0;
  int cnic_provider_day = 0;
  int cnic_hour = 0;
  int cnic_day = 0;
  int number_provider_hour = 0;
  int number_provider_day = 0;
  int number_hour = 0;
  int number_day = 0;
  int number_replies_hour = 0;  // replies to the sender's texts (kHelp, kReply, kEnrolled)
  int number_replies_day = 0;
};

// A code the dispatcher is about to hand over, and the limits it must fit (SmsCounts'
// fields, each the most allowed before this one).
struct CodeClaim {
  std::int64_t message_id = 0;
  std::string consent_id;
  BlindIndex cnic;
  std::string provider_id;
  BlindIndex phone;                // the enrolled number's index, recorded with the code
  std::vector<BlindIndex> phones;  // the number under every usable index version, for counting
  Sealed recipient;                // the enrolled number, sealed for the CNIC's index
  Timestamp now = 0;
  SmsCounts limits;
};

// One outcome for UpdateMessages.
struct MessageUpdate {
  std::int64_t id = 0;
  OutboxStatus status = OutboxStatus::kQueued;
  Timestamp next_attempt_at = 0;
  std::string gateway_id;
  std::string error;
};

class ConsentStore {
 public:
  virtual ~ConsentStore() = default;

  // --- Enrolments -----------------------------------------------------------------------------
  virtual Result<std::optional<Enrolment>> FindEnrolment(const BlindIndex& cnic) = 0;
  // Every enrolment made from the number (a number may be enrolled for several CNICs).
  virtual Result<std::vector<Enrolment>> FindEnrolmentsByPhone(const BlindIndex& phone) = 0;
  // Every enrolment whose number was changed away from this one and is still in its hold at
  // `now` (the previous number may still LOCK).
  virtual Result<std::vector<Enrolment>> FindEnrolmentsByPreviousPhone(const BlindIndex& phone,
                                                                       Timestamp now) = 0;
  // Saves the enrolment for `enrolment.cnic`, appends `audit`, queues `messages`, and with
  // `number_change` records a change of number at `enrolment.updated_at`, in one transaction.
  // Conditional on the revision read: `enrolment.revision` 0 inserts a new record, N updates
  // the record at revision N (and makes it N + 1). kFailedPrecondition ("enrolment_changed") when
  // the record was made or changed since it was read: nothing is written; read again and retry.
  virtual Status SaveEnrolment(const Enrolment& enrolment, const AuditEvent& audit,
                               const std::vector<OutboxMessage>& messages,
                               bool number_change = false) = 0;
  // Changes of number for the CNIC recorded after `since` (their rate limit).
  virtual Result<int> CountNumberChanges(const BlindIndex& cnic, Timestamp since) = 0;
  // How far the appliance has read the registry's log of changed bindings: the log's
  // generation and the last entry read (empty and 0 at first).
  struct SweepCursor {
    std::string generation;
    std::int64_t seq = 0;
  };
  virtual Result<SweepCursor> RegistrySweepCursor() = 0;
  virtual Status SetRegistrySweepCursor(const SweepCursor& cursor) = 0;

  // Appends `audit` and queues `messages` in one transaction (an event that changes no record,
  // such as a refused number change).
  virtual Status RecordEvent(const AuditEvent& audit,
                             const std::vector<OutboxMessage>& messages) = 0;

  // Citizen's blocks of providers (BLOCK / UNBLOCK).
  virtual Status SetBlocked(const BlindIndex& cnic, const std::string& provider_id, bool blocked,
                            const AuditEvent& audit) = 0;
  virtual Result<bool> IsBlocked(const BlindIndex& cnic, const std::string& provider_id) = 0;

  // --- Consents -------------------------------------------------------------------------------
  // Inserts a new consent (state pending) with its audit event and outgoing messages.
  // kAlreadyExists if the id is taken.
  virtual Status InsertConsent(const Consent& consent, const AuditEvent& audit,
                               const std::vector<OutboxMessage>& messages) = 0;
  virtual Result<std::optional<Consent>> FindConsent(const std::string& id) = 0;
  virtual Result<std::optional<Consent>> FindConsentByReference(const BlindIndex& cnic,
                                                                const std::string& reference) = 0;

  // The CNIC's failure counters for `provider_id` at `now`.
  virtual Result<CnicFailures> GetCnicFailures(const BlindIndex& cnic,
                                               const std::string& provider_id, Timestamp now) = 0;
  // When `provider_id`'s failures for the CNIC in the window fall below `limit`: when the
  // limit-th most recent of them leaves the window. `now` when fewer than `limit` are in it.
  // Only this provider's failures count, so the answer tells it nothing of another's.
  virtual Result<Timestamp> CnicFailureWindowAdmitsAt(const BlindIndex& cnic,
                                                      const std::string& provider_id, Timestamp now,
                                                      int limit) = 0;
  // The citizen re-confirmed the enrolled number: wrong codes in a row start again from 0
  // (CNIC-wide and for every provider), so that the 100-in-a-row lock can be lifted by the
  // number's holder alone.
  virtual Status ResetConsecutiveFailures(const BlindIndex& cnic, const AuditEvent& audit) = 0;

  // A wrong code for a pending consent: attempts + 1, and the consent becomes failed when
  // attempts reach max_attempts; one failure recorded for the (CNIC, provider) at `now`, and
  // the CNIC's and the provider's consecutive counters + 1. kFailedPrecondition
  // ("consent_not_pending") if the consent is not pending, or has expired at `now` (it is then
  // marked expired).
  virtual Result<AttemptResult> RecordFailedAttempt(const std::string& consent_id, Timestamp now,
                                                    const AuditEvent& audit) = 0;

  // The right code: pending -> granted with the fields of `granted` (reference, granted_at,
  // expires_at of the token, max_uses, receipt, receipt_key_version), the CNIC's and this
  // provider's consecutive failures reset to 0, audit and messages appended. Succeeds only if the
  // consent is still pending and unexpired at `now` (single use): otherwise kFailedPrecondition
  // ("consent_not_pending"). kAlreadyExists ("reference_taken") if the reference collides.
  // With `guard`, the citizen's side is checked in the same transaction: the enrolment of the
  // consent's CNIC still has the number `guard->phone`, is neither locked nor suspended, its
  // hold ended at or before `guard->hold_cutoff`, and the citizen does not block the
  // consent's provider; otherwise kPermissionDenied ("citizen_unavailable") and nothing is
  // written.
  struct GrantGuard {
    BlindIndex phone;
    Timestamp hold_cutoff = 0;
  };
  virtual Result<Consent> GrantConsent(const std::string& consent_id, const Consent& granted,
                                       Timestamp now, const AuditEvent& audit,
                                       const std::vector<OutboxMessage>& messages,
                                       const GrantGuard* guard = nullptr) = 0;

  // One verification with the token: uses + 1 (state used when it reaches max_uses) if the
  // consent is granted, unexpired at `now`, below max_uses and belongs to `provider_id`;
  // records the verification for HISTORY. Otherwise kFailedPrecondition with reason
  // "consent_used", "consent_expired", "consent_revoked", "consent_not_granted", or
  // kPermissionDenied ("wrong_provider").
  virtual Result<Consent> UseConsent(const std::string& consent_id, const std::string& provider_id,
                                     Timestamp now, const AuditEvent& audit) = 0;

  // pending or granted -> revoked. kFailedPrecondition ("consent_not_revocable") otherwise.
  virtual Result<Consent> RevokeConsent(const std::string& consent_id, Timestamp now,
                                        const AuditEvent& audit) = 0;

  // Marks pending and granted consents whose expires_at has passed as expired; returns how many.
  // Also forgets failures and number changes past every window they are counted in.
  virtual Result<int> ExpireConsents(Timestamp now) = 0;

  // The CNIC's most recent verifications, newest first.
  virtual Result<std::vector<VerificationRecord>> RecentVerifications(const BlindIndex& cnic,
                                                                      int limit) = 0;

  // --- Outbox ---------------------------------------------------------------------------------
  virtual Status EnqueueMessages(const std::vector<OutboxMessage>& messages) = 0;
  // Queued messages due at `now` (next_attempt_at <= now), oldest first.
  virtual Result<std::vector<OutboxMessage>> DueMessages(Timestamp now, int limit) = 0;
  // Outcome of one send attempt. `status` kSent / kDelivered / kFailed (final) / kDropped, or
  // kQueued with a new next_attempt_at to retry. A message already settled (delivered, failed,
  // dropped) keeps its status: a delivery report may settle a message before the dispatcher
  // records its hand-over, and that outcome stands. The gateway id is recorded either way.
  virtual Status UpdateMessage(std::int64_t id, OutboxStatus status, Timestamp next_attempt_at,
                               const std::string& gateway_id, const std::string& error) = 0;
  // Outcomes of several send attempts (as UpdateMessage each) in one transaction: all or none.
  virtual Status UpdateMessages(const std::vector<MessageUpdate>& updates) = 0;
  // The SMS counted against caps (SmsCaps) in the hour and the day before `now`: for the CNIC
  // (all providers, and `provider_id`'s), and for the number under each of its indexes.
  // Codes still waiting for the dispatcher's decision and dropped messages do not count.
  virtual Result<SmsCounts> CountMessages(const std::optional<BlindIndex>& cnic,
                                          const std::string& provider_id,
                                          const std::vector<BlindIndex>& phones, Timestamp now) = 0;
  // The dispatcher's decision on a queued code, in one transaction: if one more SMS fits
  // every limit of `claim`, the code's message records its recipient and number and is
  // claimed (status sent, gateway id "claimed": it goes out at most once), its consent becomes
  // deliverable, and the answer is empty; otherwise the message is dropped and the answer
  // names the first limit reached ("cnic_provider_hour", "cnic_provider_day", "cnic_hour",
  // "cnic_day", "number_provider_hour", "number_provider_day", "number_hour", "number_day"). The
  // reply limits of `claim.limits` are not used.
  virtual Result<std::string> ClaimCode(const CodeClaim& claim) = 0;
  // Counts by status, for metrics.
  virtual Result<std::vector<std::pair<OutboxStatus, int>>> CountMessagesByStatus() = 0;
  virtual Result<std::optional<OutboxMessage>> FindMessageByGatewayId(const std::string& id) = 0;
  // A delivery report for outbox message `id`, in one transaction: a final `outcome`
  // (kDelivered or kFailed, with `note` as its error) settles a message that is queued or sent,
  // even one whose hand-over is not recorded yet; a settled message keeps its outcome; no
  // outcome (an intermediate report) changes nothing. The message as it is afterwards, or none.
  // Reports name the message, not the attempt: a failure reported for an earlier attempt of a
  // message queued again for a retry settles it as failed, and the retry is not made.
  virtual Result<std::optional<OutboxMessage>> RecordDeliveryReport(
      std::int64_t id, std::optional<OutboxStatus> outcome, const std::string& note) = 0;

  // --- Audit and health -----------------------------------------------------------------------
  // Walks the whole chain and recomputes every hash; kDataLoss naming the first broken link.
  virtual Status VerifyAuditChain() = 0;
  virtual Result<std::vector<AuditEvent>> AuditTail(int limit) = 0;
  // A signed head of the audit chain (sqlite_audit.h): the last event's seq and hash, when, and
  // the signed note that vouches for them.
  struct AuditCheckpoint {
    std::int64_t seq = 0;
    Bytes hash;
    Timestamp at = 0;
    std::string note;
  };
  // The chain's head now (seq 0 and an empty hash for an empty chain; `at` and `note` empty).
  virtual Result<AuditCheckpoint> AuditChainHead() = 0;
  // Keeps a signed checkpoint. kFailedPrecondition ("audit_checkpoint_mismatch") when the chain's
  // hash at checkpoint.seq is not checkpoint.hash: nothing is written.
  virtual Status RecordAuditCheckpoint(const AuditCheckpoint& checkpoint) = 0;
  // The checkpoint of the highest seq, if any.
  virtual Result<std::optional<AuditCheckpoint>> LastAuditCheckpoint() = 0;
  // The hash of the event at `seq`, if there is one.
  virtual Result<std::optional<Bytes>> AuditHashAt(std::int64_t seq) = 0;
  // A cheap query that proves the database answers.
  virtual Status CheckHealth() = 0;
  // The database's own integrity check (PRAGMA integrity_check for SQLite).
  virtual Status CheckIntegrity() = 0;
};

struct SqliteStoreOptions {
  std::string path;            // the database file; created if missing
  int busy_timeout_ms = 5000;  // waiting for a lock before "store_unavailable"
};

// Group commit: concurrent writers share one transaction and its durable COMMIT, each still
// answered only after that COMMIT.
struct GroupCommitOptions {
  std::size_t max_writers = 64;  // per COMMIT; 1: one transaction per writer
  // Tests only: called before each COMMIT of the writers' transactions, with how many writers
  // share it.
  std::function<void(std::size_t)> before_commit_for_test;
};

// Opens (creating if needed) the SQLite store and applies pending schema migrations.
// WAL journal, synchronous=FULL, foreign keys on; the file is created with mode 0600.
Result<std::unique_ptr<ConsentStore>> OpenSqliteStore(const SqliteStoreOptions& options,
                                                      const GroupCommitOptions& group = {});

}  // namespace ijazat::appliance
