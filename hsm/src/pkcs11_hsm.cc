#include "ijazat/hsm/pkcs11_hsm.h"

#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <type_traits>
#include <unordered_map>

#include "ckr.h"
#include "ijazat/hsm/jwk.h"
#include "key_templates.h"
#include "module.h"
#include "pkcs11.h"

namespace ijazat::hsm {
namespace {

constexpr CK_ULONG kFindBatch = 64;
constexpr char kRetiredPrefix[] = "retired:";
constexpr char kDestroyedPrefix[] = "destroyed:";
constexpr char kApplication[] = "ijazat";
constexpr std::size_t kGcmIvSize = 12;
constexpr std::size_t kGcmTagSize = 16;
// While the HSM is unreachable, requests fail fast and a reconnect is tried at most this often.
// Reconnection attempts after a failed one are spaced out: 200 ms, doubling to 30 s.
constexpr auto kReconnectInterval = std::chrono::milliseconds(200);
constexpr auto kMaxReconnectInterval = std::chrono::seconds(30);

// RFC 4231 test case 6: a 131-byte key, so that SoftHSM accepts it for HMAC-SHA256.
constexpr char kKatMessage[] = "Test Using Larger Than Block-Size Key - Hash Key First";
constexpr char kKatExpected[] = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
constexpr std::size_t kKatKeySize = 131;

CK_BYTE_PTR Mutable(ByteView bytes) {
  // PKCS#11 takes non-const input buffers it does not write to. An empty span may have a null
  // data pointer, which some modules reject even with a zero length.
  static CK_BYTE empty = 0;
  return bytes.empty() ? &empty : const_cast<CK_BYTE_PTR>(bytes.data());
}

template <typename T>
CK_ATTRIBUTE Attribute(CK_ATTRIBUTE_TYPE type, T& value) {
  return CK_ATTRIBUTE{type, &value, sizeof(T)};
}
CK_ATTRIBUTE Attribute(CK_ATTRIBUTE_TYPE type, std::string& value) {
  return CK_ATTRIBUTE{type, value.data(), value.size()};
}
CK_ATTRIBUTE Attribute(CK_ATTRIBUTE_TYPE type, Bytes& value) {
  return CK_ATTRIBUTE{type, value.data(), value.size()};
}

Bytes Sha256(ByteView message) {
  Bytes digest(SHA256_DIGEST_LENGTH);
  SHA256(message.data(), message.size(), digest.data());
  return digest;
}

Error UnknownKey(const KeyRef& key) {
  return Error(ErrorCode::kNotFound, "the token has no key " + key.Label(), "unknown_key");
}

Error Misuse(const KeyRef& key, std::string_view operation) {
  return Error(ErrorCode::kInvalidArgument,
               key.Label() + " is a " + std::string(KeyKindName(key.kind)) +
                   " key and cannot be used for " + std::string(operation),
               "key_misuse");
}

Error AsUnavailable(const Error& error) {
  if (error.reason() == kReasonUnavailable) return error;
  return Error(ErrorCode::kUnavailable, error.message(), kReasonUnavailable);
}

// Unwraps the DER OCTET STRING around an EC point, as CKA_EC_POINT carries it (PKCS#11 v2.40);
// accepts a raw point too, as some modules return.
std::optional<Bytes> UnwrapEcPoint(const Bytes& value, std::size_t point_size) {
  if (value.size() == point_size) return value;
  if (value.size() == point_size + 2 && value[0] == 0x04 && value[1] == point_size) {
    return Bytes(value.begin() + 2, value.end());
  }
  return std::nullopt;
}

struct Handles {
  CK_OBJECT_HANDLE primary = CK_INVALID_HANDLE;     // the secret or private key
  CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;  // key pairs only
};

// Which versions of each kind exist on the token and which are retired.
struct Catalog {
  std::map<KeyKind, std::set<std::uint32_t>> versions;
  std::map<KeyKind, std::set<std::uint32_t>> retired;
  std::map<KeyKind, std::set<std::uint32_t>> destroyed;  // key objects destroyed on purpose
  // The kid a destroyed key pair had, from its destruction record.
  std::map<std::pair<KeyKind, std::uint32_t>, std::string> destroyed_kids;
  // Versions left out of `versions` because they deviate from their templates, with how.
  std::vector<Deviation> rejected;

  bool Exists(const KeyRef& key) const {
    const auto it = versions.find(key.kind);
    return it != versions.end() && it->second.count(key.version) > 0;
  }
  bool IsRetired(const KeyRef& key) const {
    const auto it = retired.find(key.kind);
    return it != retired.end() && it->second.count(key.version) > 0;
  }
  // The highest version that is not retired.
  std::optional<std::uint32_t> Active(KeyKind kind) const {
    const auto it = versions.find(kind);
    if (it == versions.end()) return std::nullopt;
    for (auto v = it->second.rbegin(); v != it->second.rend(); ++v) {
      if (!IsRetired({kind, *v})) return *v;
    }
    return std::nullopt;
  }
  std::optional<std::uint32_t> Highest(KeyKind kind) const {
    const auto it = versions.find(kind);
    if (it == versions.end() || it->second.empty()) return std::nullopt;
    return *it->second.rbegin();
  }
  KeyState StateOf(const KeyRef& key) const {
    if (IsRetired(key)) return KeyState::kRetired;
    return Active(key.kind) == key.version ? KeyState::kActive : KeyState::kVerifyOnly;
  }
};

}  // namespace

class Pkcs11Hsm::Impl {
 public:
  // A worker session borrowed from the pool for one operation. Returned on destruction,
  // or closed if an operation on it failed.
  class Session {
   public:
    Session(Impl* impl, CK_SESSION_HANDLE handle) : impl_(impl), handle_(handle) {}
    Session(Session&& other) noexcept
        : impl_(std::exchange(other.impl_, nullptr)),
          handle_(other.handle_),
          healthy_(other.healthy_) {}
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    Session& operator=(Session&&) = delete;
    ~Session() {
      if (impl_ != nullptr) impl_->Release(handle_, healthy_);
    }
    CK_SESSION_HANDLE handle() const { return handle_; }
    // Records a failed call: the session goes back to the HSM instead of the pool.
    Error Fail(CK_RV rv, std::string_view function) {
      healthy_ = false;
      return ErrorFromRv(rv, function);
    }

   private:
    Impl* impl_;
    CK_SESSION_HANDLE handle_;
    bool healthy_ = true;
  };

  Impl(HsmOptions options, std::shared_ptr<Module> module, SecretString pin)
      : options_(std::move(options)), module_(std::move(module)), pin_(std::move(pin)) {
    fn_ = options_.faults ? FaultInjectingFunctions(module_->functions(), options_.faults)
                          : module_->functions();
  }

  ~Impl() {
    const std::unique_lock lock(state_mutex_);
    DisconnectLocked();
  }

  CK_FUNCTION_LIST* fn() const { return fn_; }

  Status Connect() {
    const std::unique_lock lock(state_mutex_);
    return ConnectLocked();
  }

  // Runs `op` with a pooled session; on a retryable failure recovers and runs it again, up to
  // max_attempts times. `op` returns a Result or Status.
  template <typename Op>
  auto Run(Op&& op) -> std::invoke_result_t<Op&, Session&> {
    using R = std::invoke_result_t<Op&, Session&>;
    std::optional<Error> last;
    for (int attempt = 0; attempt < std::max(1, options_.max_attempts); ++attempt) {
      std::uint64_t epoch = 0;
      {
        const std::shared_lock lock(state_mutex_);
        epoch = epoch_;
        if (connected_) {
          auto session = AcquireSession();
          if (session.ok()) {
            R result = op(*session);
            if (result.ok() || RecoveryFor(result.error()) == Recovery::kNone) return result;
            last = result.error();
          } else if (RecoveryFor(session.error()) == Recovery::kNone) {
            return R(session.error());
          } else {
            last = session.error();
          }
        } else {
          last = last_connect_error_.value_or(
              Error(ErrorCode::kUnavailable, "HSM unavailable", kReasonUnavailable));
        }
      }
      if (RecoveryFor(*last) == Recovery::kHandles) {
        ClearHandles();  // found again on the next attempt, or reported unknown
        continue;
      }
      if (Status recovered = Recover(epoch, RecoveryFor(*last)); !recovered.ok()) {
        return R(AsUnavailable(recovered.error()));
      }
    }
    return R(AsUnavailable(*last));
  }

  Result<Handles> HandlesFor(Session& session, const KeyRef& key) {
    {
      const std::lock_guard lock(cache_mutex_);
      if (const auto it = handles_.find(CacheKey(key)); it != handles_.end()) return it->second;
    }
    {
      const std::lock_guard lock(catalog_mutex_);
      if (catalog_.IsRetired(key)) {
        return Error(ErrorCode::kFailedPrecondition, key.Label() + " is retired", "key_retired");
      }
      // Where keys must conform, only audited versions are used: one planted since the last
      // scan, or refused by it, is unknown.
      if (vet_ && !catalog_.Exists(key)) return UnknownKey(key);
    }
    const KeyTemplate& t = TemplateFor(key.kind);
    Handles handles;
    IJAZAT_ASSIGN_OR_RETURN(handles.primary,
                            FindOne(session, t.key_pair ? CKO_PRIVATE_KEY : CKO_SECRET_KEY, key));
    if (t.key_pair) {
      IJAZAT_ASSIGN_OR_RETURN(handles.public_key, FindOne(session, CKO_PUBLIC_KEY, key));
    }
    const std::lock_guard lock(cache_mutex_);
    handles_[CacheKey(key)] = handles;
    return handles;
  }

  Result<CK_OBJECT_HANDLE> FindOne(Session& session, CK_OBJECT_CLASS object_class,
                                   const KeyRef& key) {
    std::string label = key.Label();
    IJAZAT_ASSIGN_OR_RETURN(auto found, FindByLabel(session, object_class, label));
    if (found.empty()) {
      // Private objects are invisible to a session that is not logged in (SoftHSM logs the
      // token out when its last session closes): that is a lost login, not a missing key.
      IJAZAT_RETURN_IF_ERROR(RequireLogin(session));
      return UnknownKey(key);
    }
    if (found.size() > 1) {
      return Error(ErrorCode::kFailedPrecondition,
                   "the token holds more than one " + ObjectClassName(object_class) + " labelled " +
                       label + "; remove the impostor before using the key",
                   "key_ambiguous");
    }
    return found.front();
  }

  Status RequireLogin(Session& session) {
    CK_SESSION_INFO info{};
    const CK_RV rv = fn_->C_GetSessionInfo(session.handle(), &info);
    if (rv != CKR_OK) return session.Fail(rv, "C_GetSessionInfo");
    if (info.state != CKS_RW_USER_FUNCTIONS && info.state != CKS_RO_USER_FUNCTIONS) {
      return session.Fail(CKR_USER_NOT_LOGGED_IN, "C_GetSessionInfo");
    }
    return OkStatus();
  }

  Result<std::vector<CK_OBJECT_HANDLE>> FindByLabel(Session& session, CK_OBJECT_CLASS object_class,
                                                    std::string label) {
    std::array<CK_ATTRIBUTE, 2> query = {Attribute(CKA_CLASS, object_class),
                                         Attribute(CKA_LABEL, label)};
    return FindAll(session, query.data(), query.size());
  }

  Result<std::vector<CK_OBJECT_HANDLE>> FindAll(Session& session, CK_ATTRIBUTE* query,
                                                CK_ULONG count) {
    CK_RV rv = fn_->C_FindObjectsInit(session.handle(), query, count);
    if (rv != CKR_OK) return session.Fail(rv, "C_FindObjectsInit");
    std::vector<CK_OBJECT_HANDLE> all;
    std::array<CK_OBJECT_HANDLE, kFindBatch> batch{};
    for (;;) {
      CK_ULONG n = 0;
      rv = fn_->C_FindObjects(session.handle(), batch.data(), batch.size(), &n);
      if (rv != CKR_OK) {
        fn_->C_FindObjectsFinal(session.handle());
        return session.Fail(rv, "C_FindObjects");
      }
      all.insert(all.end(), batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(n));
      if (n < batch.size()) break;
    }
    rv = fn_->C_FindObjectsFinal(session.handle());
    if (rv != CKR_OK) return session.Fail(rv, "C_FindObjectsFinal");
    return all;
  }

  // Reads a variable-length attribute; nullopt if the object does not have it.
  Result<std::optional<Bytes>> ReadBytes(Session& session, CK_OBJECT_HANDLE object,
                                         CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE attribute{type, nullptr, 0};
    CK_RV rv = fn_->C_GetAttributeValue(session.handle(), object, &attribute, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
        attribute.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
      return std::optional<Bytes>();
    }
    if (rv != CKR_OK) return session.Fail(rv, "C_GetAttributeValue");
    Bytes value(attribute.ulValueLen);
    attribute.pValue = value.data();
    rv = fn_->C_GetAttributeValue(session.handle(), object, &attribute, 1);
    if (rv != CKR_OK) return session.Fail(rv, "C_GetAttributeValue");
    value.resize(attribute.ulValueLen);
    return std::optional<Bytes>(std::move(value));
  }

  Result<std::optional<bool>> ReadBool(Session& session, CK_OBJECT_HANDLE object,
                                       CK_ATTRIBUTE_TYPE type) {
    IJAZAT_ASSIGN_OR_RETURN(auto value, ReadBytes(session, object, type));
    if (!value || value->size() != sizeof(CK_BBOOL)) return std::optional<bool>();
    return std::optional<bool>((*value)[0] != CK_FALSE);
  }

  Result<std::optional<CK_ULONG>> ReadUlong(Session& session, CK_OBJECT_HANDLE object,
                                            CK_ATTRIBUTE_TYPE type) {
    IJAZAT_ASSIGN_OR_RETURN(auto value, ReadBytes(session, object, type));
    if (!value || value->size() != sizeof(CK_ULONG)) return std::optional<CK_ULONG>();
    CK_ULONG result = 0;
    std::copy(value->begin(), value->end(), reinterpret_cast<CK_BYTE*>(&result));
    return std::optional<CK_ULONG>(result);
  }

  Result<std::optional<std::vector<CK_MECHANISM_TYPE>>> ReadMechanisms(Session& session,
                                                                       CK_OBJECT_HANDLE object) {
    IJAZAT_ASSIGN_OR_RETURN(auto value, ReadBytes(session, object, CKA_ALLOWED_MECHANISMS));
    using Mechanisms = std::vector<CK_MECHANISM_TYPE>;
    if (!value) return std::optional<Mechanisms>();
    Mechanisms mechanisms(value->size() / sizeof(CK_MECHANISM_TYPE));
    std::copy(
        value->begin(),
        value->begin() + static_cast<std::ptrdiff_t>(mechanisms.size() * sizeof(CK_MECHANISM_TYPE)),
        reinterpret_cast<CK_BYTE*>(mechanisms.data()));
    return std::optional<Mechanisms>(std::move(mechanisms));
  }

  // Re-reads the catalog of key versions from the token.
  Status Scan() {
    IJAZAT_ASSIGN_OR_RETURN(
        Catalog catalog, Run([&](Session& session) -> Result<Catalog> {
          Catalog found;
          for (const CK_OBJECT_CLASS object_class : {CKO_SECRET_KEY, CKO_PRIVATE_KEY}) {
            CK_OBJECT_CLASS query_class = object_class;
            CK_ATTRIBUTE query = Attribute(CKA_CLASS, query_class);
            IJAZAT_ASSIGN_OR_RETURN(auto objects, FindAll(session, &query, 1));
            for (const CK_OBJECT_HANDLE object : objects) {
              IJAZAT_ASSIGN_OR_RETURN(auto label, ReadBytes(session, object, CKA_LABEL));
              if (!label) continue;
              const auto ref = ParseKeyLabel(std::string(label->begin(), label->end()));
              if (ref && (TemplateFor(ref->kind).key_pair == (object_class == CKO_PRIVATE_KEY))) {
                found.versions[ref->kind].insert(ref->version);
              }
            }
          }
          CK_OBJECT_CLASS data_class = CKO_DATA;
          std::string application = kApplication;
          std::array<CK_ATTRIBUTE, 2> query = {Attribute(CKA_CLASS, data_class),
                                               Attribute(CKA_APPLICATION, application)};
          IJAZAT_ASSIGN_OR_RETURN(auto markers, FindAll(session, query.data(), query.size()));
          for (const CK_OBJECT_HANDLE object : markers) {
            IJAZAT_ASSIGN_OR_RETURN(auto label, ReadBytes(session, object, CKA_LABEL));
            if (!label) continue;
            const std::string text(label->begin(), label->end());
            if (text.rfind(kDestroyedPrefix, 0) == 0) {
              if (const auto ref = ParseKeyLabel(text.substr(sizeof kDestroyedPrefix - 1))) {
                found.destroyed[ref->kind].insert(ref->version);
                // "destroyed kid=<kid>" for a key pair.
                IJAZAT_ASSIGN_OR_RETURN(auto value, ReadBytes(session, object, CKA_VALUE));
                constexpr std::string_view kKid = "destroyed kid=";
                const std::string record = value ? std::string(value->begin(), value->end()) : "";
                if (record.rfind(kKid, 0) == 0) {
                  found.destroyed_kids[{ref->kind, ref->version}] = record.substr(kKid.size());
                }
              }
              continue;
            }
            if (text.rfind(kRetiredPrefix, 0) != 0) continue;
            if (const auto ref = ParseKeyLabel(text.substr(sizeof kRetiredPrefix - 1))) {
              found.retired[ref->kind].insert(ref->version);
            }
          }
          // A search while logged out sees no private object; an empty catalog must be real.
          IJAZAT_RETURN_IF_ERROR(RequireLogin(session));
          return found;
        }));
    // Every version is audited whenever the catalog is read (at open, on refresh, for the
    // JWKS), so that a key planted while the process runs is never used nor published.
    if (vet_) IJAZAT_RETURN_IF_ERROR(vet_(catalog));
    {
      const std::lock_guard lock(catalog_mutex_);
      catalog_ = std::move(catalog);
    }
    ClearHandles();
    return OkStatus();
  }

  // Signing and encryption use the active version only; older versions remain for HMAC
  // recomputation, decryption and (outside the HSM) signature verification.
  Status RequireActive(const KeyRef& key) {
    const std::lock_guard lock(catalog_mutex_);
    if (catalog_.Active(key.kind) == key.version) return OkStatus();
    if (!catalog_.Exists(key)) return UnknownKey(key);
    return Error(ErrorCode::kFailedPrecondition,
                 key.Label() + " is not the active version; it may only verify or decrypt",
                 "key_not_active");
  }

  Catalog CatalogSnapshot() {
    const std::lock_guard lock(catalog_mutex_);
    return catalog_;
  }

  void ClearHandles() {
    const std::lock_guard lock(cache_mutex_);
    handles_.clear();
  }

  void ForgetHandles(const KeyRef& key) {
    const std::lock_guard lock(cache_mutex_);
    handles_.erase(CacheKey(key));
  }

  std::mutex& admin_mutex() { return admin_mutex_; }
  const HsmOptions& options() const { return options_; }

 private:
  static std::uint64_t CacheKey(const KeyRef& key) {
    return (static_cast<std::uint64_t>(key.kind) << 32) | key.version;
  }

  Result<Session> AcquireSession() {
    {
      const std::lock_guard lock(pool_mutex_);
      if (!idle_.empty()) {
        const CK_SESSION_HANDLE handle = idle_.back();
        idle_.pop_back();
        return Session(this, handle);
      }
    }
    CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
    const CK_RV rv =
        fn_->C_OpenSession(slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &handle);
    if (rv != CKR_OK) return ErrorFromRv(rv, "C_OpenSession");
    return Session(this, handle);
  }

  void Release(CK_SESSION_HANDLE handle, bool healthy) {
    {
      const std::lock_guard lock(pool_mutex_);
      if (healthy && idle_.size() < options_.max_idle_sessions) {
        idle_.push_back(handle);
        return;
      }
    }
    fn_->C_CloseSession(handle);
  }

  // Requires the exclusive lock.
  Status ConnectLocked() {
    IJAZAT_ASSIGN_OR_RETURN(slot_, module_->FindSlotByLabel(fn_, options_.token_label));
    CK_RV rv = fn_->C_OpenSession(slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                                  &login_session_);
    if (rv != CKR_OK) return ErrorFromRv(rv, "C_OpenSession");
    const std::string_view pin = pin_.UnsafeView();
    rv = fn_->C_Login(login_session_, CKU_USER,
                      reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data())), pin.size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      fn_->C_CloseSession(login_session_);
      login_session_ = CK_INVALID_HANDLE;
      return ErrorFromRv(rv, "C_Login")
          .WithContext("logging in to token \"" + options_.token_label + "\"");
    }
    ClearHandles();
    connected_ = true;
    last_connect_error_.reset();
    return OkStatus();
  }

  // Requires the exclusive lock. Errors are ignored: the sessions may already be gone.
  void DisconnectLocked() {
    {
      const std::lock_guard lock(pool_mutex_);
      for (const CK_SESSION_HANDLE handle : idle_) fn_->C_CloseSession(handle);
      idle_.clear();
    }
    if (login_session_ != CK_INVALID_HANDLE) {
      fn_->C_CloseSession(login_session_);
      login_session_ = CK_INVALID_HANDLE;
    }
    connected_ = false;
  }

  Status Recover(std::uint64_t seen_epoch, Recovery level) {
    const std::unique_lock lock(state_mutex_);
    if (epoch_ != seen_epoch) {  // another thread recovered meanwhile; just retry
      if (connected_) return OkStatus();
      return last_connect_error_.value_or(
          Error(ErrorCode::kUnavailable, "HSM unavailable", kReasonUnavailable));
    }
    // A PIN the HSM refused is not tried again: each try would use up one of the token's PIN
    // attempts, and a real HSM locks within seconds. Only a restart with the right PIN mends it.
    if (login_refused_) return *login_refused_;
    const auto now = std::chrono::steady_clock::now();
    const auto interval = std::min<std::chrono::steady_clock::duration>(
        kMaxReconnectInterval,
        kReconnectInterval * (std::int64_t{1} << std::min(failed_reconnects_, 8)));
    if (!connected_ && last_connect_error_ && now - last_reconnect_ < interval) {
      return *last_connect_error_;
    }
    last_reconnect_ = now;
    ++epoch_;
    const bool full = level == Recovery::kModule || !connected_;
    DisconnectLocked();
    Status status = full ? module_->Reinitialize(fn_) : OkStatus();
    if (status.ok()) status = ConnectLocked();
    if (!status.ok()) {
      ++failed_reconnects_;
      const std::string_view reason = status.error().reason();
      if (reason == "pin_incorrect" || reason == "pin_locked") {
        login_refused_ = Error(ErrorCode::kUnavailable,
                               status.error().message() +
                                   "; not logging in again, so as not to use up the token's PIN "
                                   "attempts: restart with the right PIN",
                               reason == "pin_incorrect" ? "pin_incorrect" : "pin_locked");
        last_connect_error_ = AsUnavailable(*login_refused_);
        return *login_refused_;
      }
      // A missing token or an unreachable HSM: unavailable, tried again later.
      last_connect_error_ = AsUnavailable(status.error());
      return *last_connect_error_;
    }
    failed_reconnects_ = 0;
    return OkStatus();
  }

  HsmOptions options_;
  std::shared_ptr<Module> module_;
  CK_FUNCTION_LIST* fn_ = nullptr;
  // Kept for the life of the object so that recovery can log in again; wiped on destruction.
  SecretString pin_;

  // Shared by every operation; exclusive while reconnecting.
  std::shared_mutex state_mutex_;
  CK_SLOT_ID slot_ = 0;
  CK_SESSION_HANDLE login_session_ = CK_INVALID_HANDLE;
  bool connected_ = false;
  std::uint64_t epoch_ = 0;
  std::optional<Error> last_connect_error_;
  std::chrono::steady_clock::time_point last_reconnect_{};
  int failed_reconnects_ = 0;
  std::optional<Error> login_refused_;  // terminal: see Recover

 public:
  std::optional<Error> LoginRefused() {
    const std::shared_lock lock(state_mutex_);
    return login_refused_;
  }

 private:
  std::mutex pool_mutex_;
  std::vector<CK_SESSION_HANDLE> idle_;

  std::mutex cache_mutex_;
  std::unordered_map<std::uint64_t, Handles> handles_;

  std::mutex catalog_mutex_;
  Catalog catalog_;

 public:
  // Set when keys must conform to their templates: removes deviating versions from a catalog
  // just read (into Catalog::rejected) before it is used.
  std::function<Status(Catalog&)> vet_;

 private:
  std::mutex admin_mutex_;  // serialises key creation and retirement

  friend class Pkcs11Hsm;
};

using Session = Pkcs11Hsm::Impl::Session;

namespace {

CK_MECHANISM_TYPE HmacMechanism(HmacHash hash) {
  switch (hash) {
    case HmacHash::kSha1:
      return CKM_SHA_1_HMAC;
    case HmacHash::kSha512:
      return CKM_SHA512_HMAC;
    case HmacHash::kSha256:
      break;
  }
  return CKM_SHA256_HMAC;
}

Result<Bytes> SignWith(Pkcs11Hsm::Impl& impl, Session& session, CK_MECHANISM mechanism,
                       CK_OBJECT_HANDLE key, ByteView input, std::size_t max_output) {
  CK_FUNCTION_LIST* fn = impl.fn();
  CK_RV rv = fn->C_SignInit(session.handle(), &mechanism, key);
  if (rv != CKR_OK) return session.Fail(rv, "C_SignInit");
  Bytes output(max_output);
  CK_ULONG length = output.size();
  rv = fn->C_Sign(session.handle(), Mutable(input), input.size(), output.data(), &length);
  if (rv != CKR_OK) return session.Fail(rv, "C_Sign");
  output.resize(length);
  return output;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Opening and closing.

// Audits every version in `catalog` against its template and moves each that deviates into
// Catalog::rejected (defined with the key management below).
static Status VetCatalog(Pkcs11Hsm::Impl& impl, Catalog& catalog);

Pkcs11Hsm::Pkcs11Hsm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pkcs11Hsm::~Pkcs11Hsm() = default;

Result<std::unique_ptr<Pkcs11Hsm>> Pkcs11Hsm::Open(const HsmOptions& options) {
  if (options.token_label.empty()) {
    return Error(ErrorCode::kInvalidArgument, "no token label given", "token_not_found");
  }
  IJAZAT_ASSIGN_OR_RETURN(auto module, Module::Acquire(options.module_path));
  IJAZAT_ASSIGN_OR_RETURN(SecretString pin, options.pin.Read());
  auto impl = std::make_unique<Impl>(options, std::move(module), std::move(pin));
  IJAZAT_RETURN_IF_ERROR(impl->Connect());
  std::unique_ptr<Pkcs11Hsm> hsm(new Pkcs11Hsm(std::move(impl)));
  if (options.require_conforming_keys) {
    Impl* raw = hsm->impl_.get();
    raw->vet_ = [raw](Catalog& catalog) { return VetCatalog(*raw, catalog); };
  }
  IJAZAT_RETURN_IF_ERROR(hsm->impl_->Scan());
  if (options.require_conforming_keys) {
    IJAZAT_ASSIGN_OR_RETURN(const auto deviations, hsm->AuditKeys());
    if (!deviations.empty()) {
      const Deviation& d = deviations.front();
      return Error(ErrorCode::kFailedPrecondition,
                   std::to_string(deviations.size()) +
                       " key attribute(s) deviate from the templates, e.g. " + d.key + ": " +
                       d.attribute + " is " + d.found + ", expected " + d.expected +
                       "; run ijazat-provision check",
                   "key_template_mismatch");
    }
  }
  if (options.self_test) IJAZAT_RETURN_IF_ERROR(hsm->SelfTest());
  return hsm;
}

// ---------------------------------------------------------------------------------------------
// Operations.

Result<Bytes> Pkcs11Hsm::Hmac(const KeyRef& key, ByteView data, HmacHash hash) {
  if (key.kind != KeyKind::kOtp && key.kind != KeyKind::kIndex) return Misuse(key, "HMAC");
  return impl_->Run([&](Session& session) -> Result<Bytes> {
    IJAZAT_ASSIGN_OR_RETURN(const Handles handles, impl_->HandlesFor(session, key));
    return SignWith(*impl_, session, CK_MECHANISM{HmacMechanism(hash), nullptr, 0}, handles.primary,
                    data, 64);
  });
}

Result<Bytes> Pkcs11Hsm::SignEs256(const KeyRef& key, ByteView message) {
  if (key.kind != KeyKind::kReceipt) return Misuse(key, "ES256 signatures");
  IJAZAT_RETURN_IF_ERROR(impl_->RequireActive(key));
  const Bytes digest = Sha256(message);
  return impl_->Run([&](Session& session) -> Result<Bytes> {
    IJAZAT_ASSIGN_OR_RETURN(const Handles handles, impl_->HandlesFor(session, key));
    IJAZAT_ASSIGN_OR_RETURN(Bytes signature,
                            SignWith(*impl_, session, CK_MECHANISM{CKM_ECDSA, nullptr, 0},
                                     handles.primary, digest, 132));
    if (signature.size() != 64) {
      return Error(ErrorCode::kInternal,
                   "the HSM returned a " + std::to_string(signature.size()) +
                       "-byte ECDSA signature; P-256 signatures are 64 bytes",
                   "hsm_error");
    }
    return signature;
  });
}

Result<Bytes> Pkcs11Hsm::SignEd25519(const KeyRef& key, ByteView message) {
  if (key.kind != KeyKind::kLog) return Misuse(key, "Ed25519 signatures");
  IJAZAT_RETURN_IF_ERROR(impl_->RequireActive(key));
  return impl_->Run([&](Session& session) -> Result<Bytes> {
    IJAZAT_ASSIGN_OR_RETURN(const Handles handles, impl_->HandlesFor(session, key));
    return SignWith(*impl_, session, CK_MECHANISM{CKM_EDDSA, nullptr, 0}, handles.primary, message,
                    64);
  });
}

Result<Bytes> Pkcs11Hsm::Seal(const KeyRef& key, ByteView plaintext, ByteView aad) {
  if (key.kind != KeyKind::kData) return Misuse(key, "encryption");
  IJAZAT_RETURN_IF_ERROR(impl_->RequireActive(key));
  return impl_->Run([&](Session& session) -> Result<Bytes> {
    IJAZAT_ASSIGN_OR_RETURN(const Handles handles, impl_->HandlesFor(session, key));
    CK_FUNCTION_LIST* fn = impl_->fn();
    Bytes sealed(kGcmIvSize + plaintext.size() + kGcmTagSize);
    CK_RV rv = fn->C_GenerateRandom(session.handle(), sealed.data(), kGcmIvSize);
    if (rv != CKR_OK) return session.Fail(rv, "C_GenerateRandom");
    CK_GCM_PARAMS params{sealed.data(), kGcmIvSize, kGcmIvSize * 8,
                         Mutable(aad),  aad.size(), kGcmTagSize * 8};
    CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof params};
    rv = fn->C_EncryptInit(session.handle(), &mechanism, handles.primary);
    if (rv != CKR_OK) return session.Fail(rv, "C_EncryptInit");
    CK_ULONG length = sealed.size() - kGcmIvSize;
    rv = fn->C_Encrypt(session.handle(), Mutable(plaintext), plaintext.size(),
                       sealed.data() + kGcmIvSize, &length);
    if (rv != CKR_OK) return session.Fail(rv, "C_Encrypt");
    sealed.resize(kGcmIvSize + length);
    return sealed;
  });
}

Result<Bytes> Pkcs11Hsm::Open(const KeyRef& key, ByteView sealed, ByteView aad) {
  if (key.kind != KeyKind::kData) return Misuse(key, "decryption");
  if (sealed.size() < kGcmIvSize + kGcmTagSize) {
    return Error(ErrorCode::kInvalidArgument, "the sealed data is too short to be AES-GCM output",
                 "ciphertext_invalid");
  }
  return impl_->Run([&](Session& session) -> Result<Bytes> {
    IJAZAT_ASSIGN_OR_RETURN(const Handles handles, impl_->HandlesFor(session, key));
    CK_FUNCTION_LIST* fn = impl_->fn();
    CK_GCM_PARAMS params{Mutable(sealed.first(kGcmIvSize)),
                         kGcmIvSize,
                         kGcmIvSize * 8,
                         Mutable(aad),
                         aad.size(),
                         kGcmTagSize * 8};
    CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof params};
    CK_RV rv = fn->C_DecryptInit(session.handle(), &mechanism, handles.primary);
    if (rv != CKR_OK) return session.Fail(rv, "C_DecryptInit");
    const ByteView body = sealed.subspan(kGcmIvSize);
    Bytes plaintext(body.size());
    CK_ULONG length = plaintext.size();
    rv = fn->C_Decrypt(session.handle(), Mutable(body), body.size(), plaintext.data(), &length);
    if (rv != CKR_OK) {
      Error error = session.Fail(rv, "C_Decrypt");
      // SoftHSM reports a failed GCM tag check as CKR_GENERAL_ERROR. A session that still
      // answers means the device is fine and the data is bad; retrying would not help.
      if (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) {
        CK_SESSION_INFO info{};
        if (fn->C_GetSessionInfo(session.handle(), &info) == CKR_OK) {
          return Error(ErrorCode::kInvalidArgument,
                       "the sealed data does not authenticate under " + key.Label(),
                       "ciphertext_invalid");
        }
      }
      return error;
    }
    plaintext.resize(length);
    return plaintext;
  });
}

Result<Bytes> Pkcs11Hsm::Random(std::size_t count) {
  if (count == 0 || count > 4096) {
    return Error(ErrorCode::kInvalidArgument, "random requests must be 1 to 4096 bytes");
  }
  return impl_->Run([&](Session& session) -> Result<Bytes> {
    Bytes bytes(count);
    const CK_RV rv = impl_->fn()->C_GenerateRandom(session.handle(), bytes.data(), count);
    if (rv != CKR_OK) return session.Fail(rv, "C_GenerateRandom");
    return bytes;
  });
}

namespace {

// The public key of a key pair's version from its CKA_EC_POINT.
Result<PublicKey> PublicKeyFromPoint(const KeyRef& key, const Bytes& encoded) {
  const bool ec = key.kind == KeyKind::kReceipt;
  const auto point = UnwrapEcPoint(encoded, ec ? 65 : 32);
  if (!point) {
    return Error(ErrorCode::kInternal, "cannot parse the public key of " + key.Label(),
                 "hsm_error");
  }
  PublicKey result{key, *point, {}, {}};
  IJAZAT_ASSIGN_OR_RETURN(result.jwk, ec ? Es256Jwk(*point) : Ed25519Jwk(*point));
  IJAZAT_ASSIGN_OR_RETURN(result.kid, ec ? Es256Thumbprint(*point) : Ed25519Thumbprint(*point));
  return result;
}

}  // namespace

Result<PublicKey> Pkcs11Hsm::ExportPublicKey(const KeyRef& key) {
  if (key.kind != KeyKind::kReceipt && key.kind != KeyKind::kLog) {
    return Misuse(key, "public-key export (it is a secret key)");
  }
  IJAZAT_ASSIGN_OR_RETURN(Bytes encoded, impl_->Run([&](Session& session) -> Result<Bytes> {
    IJAZAT_ASSIGN_OR_RETURN(const Handles handles, impl_->HandlesFor(session, key));
    IJAZAT_ASSIGN_OR_RETURN(auto value,
                            impl_->ReadBytes(session, handles.public_key, CKA_EC_POINT));
    if (!value) {
      return Error(ErrorCode::kInternal, key.Label() + " has no CKA_EC_POINT", "hsm_error");
    }
    return std::move(*value);
  }));
  return PublicKeyFromPoint(key, encoded);
}

Result<KeyRef> Pkcs11Hsm::ActiveKey(KeyKind kind) {
  const auto active = impl_->CatalogSnapshot().Active(kind);
  if (!active) {
    return Error(ErrorCode::kNotFound,
                 "the token has no active " + std::string(KeyKindName(kind)) +
                     " key; create one with: ijazat-provision keygen --name " +
                     std::string(KeyKindName(kind)),
                 "unknown_key");
  }
  return KeyRef{kind, *active};
}

Status Pkcs11Hsm::CheckHealth() {
  if (auto refused = impl_->LoginRefused()) return *refused;  // names the PIN problem
  return impl_->Run([&](Session& session) { return impl_->RequireLogin(session); });
}

std::optional<Error> Pkcs11Hsm::LoginRefused() { return impl_->LoginRefused(); }

Status Pkcs11Hsm::SelfTest() {
  auto fail = [](const std::string& what) {
    return Error(ErrorCode::kFailedPrecondition, "HSM self-test failed: " + what,
                 "self_test_failed");
  };
  // HMAC-SHA256 known answer, with a session (non-token) key that exists only for the test.
  IJAZAT_ASSIGN_OR_RETURN(Bytes mac, impl_->Run([&](Session& session) -> Result<Bytes> {
    CK_FUNCTION_LIST* fn = impl_->fn();
    CK_OBJECT_CLASS object_class = CKO_SECRET_KEY;
    CK_KEY_TYPE key_type = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    Bytes value(kKatKeySize, 0xaa);
    std::array<CK_ATTRIBUTE, 6> attributes = {
        Attribute(CKA_CLASS, object_class), Attribute(CKA_KEY_TYPE, key_type),
        Attribute(CKA_TOKEN, no),           Attribute(CKA_SIGN, yes),
        Attribute(CKA_PRIVATE, yes),        Attribute(CKA_VALUE, value)};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    const CK_RV rv =
        fn->C_CreateObject(session.handle(), attributes.data(), attributes.size(), &key);
    if (rv != CKR_OK) return session.Fail(rv, "C_CreateObject");
    auto mac_result = SignWith(*impl_, session, CK_MECHANISM{CKM_SHA256_HMAC, nullptr, 0}, key,
                               AsBytes(kKatMessage), 32);
    fn->C_DestroyObject(session.handle(), key);
    return mac_result;
  }));
  if (HexEncode(mac) != kKatExpected) return fail("HMAC-SHA256 known-answer test mismatch");

  // Sign and verify (outside the HSM) with each active signing key.
  static constexpr char kProbe[] = "ijazat self-test";
  for (const KeyKind kind : {KeyKind::kReceipt, KeyKind::kLog}) {
    const auto active = ActiveKey(kind);
    if (!active.ok()) continue;  // not provisioned yet: nothing to test
    IJAZAT_ASSIGN_OR_RETURN(const PublicKey public_key, ExportPublicKey(*active));
    if (kind == KeyKind::kReceipt) {
      IJAZAT_ASSIGN_OR_RETURN(const Bytes signature, SignEs256(*active, AsBytes(kProbe)));
      if (!VerifyEs256(public_key.point, AsBytes(kProbe), signature)) {
        return fail("the ES256 signature of " + active->Label() + " does not verify");
      }
    } else {
      IJAZAT_ASSIGN_OR_RETURN(const Bytes signature, SignEd25519(*active, AsBytes(kProbe)));
      if (!VerifyEd25519(public_key.point, AsBytes(kProbe), signature)) {
        return fail("the Ed25519 signature of " + active->Label() + " does not verify");
      }
    }
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Key management.

namespace {

struct ObjectReport {
  CK_OBJECT_CLASS object_class;
  std::vector<CK_OBJECT_HANDLE> handles;  // all objects of this class with the key's label
};

std::string BoolText(const std::optional<bool>& value) {
  if (!value) return "absent";
  return *value ? "true" : "false";
}

std::string MechanismsText(const std::optional<std::vector<CK_MECHANISM_TYPE>>& mechanisms) {
  if (!mechanisms) return "absent";
  if (mechanisms->empty()) return "none";
  std::string text;
  for (const auto m : *mechanisms) text += (text.empty() ? "" : ",") + MechanismName(m);
  return text;
}

// Reads every attribute the template names (and the ones an audit needs) from one object.
Result<KeyObjectInfo> DescribeObject(Pkcs11Hsm::Impl& impl, Session& session, const KeyTemplate& t,
                                     const ObjectTemplate& object, CK_OBJECT_HANDLE handle) {
  KeyObjectInfo info{ObjectClassName(object.object_class), {}};
  IJAZAT_ASSIGN_OR_RETURN(auto key_type, impl.ReadUlong(session, handle, CKA_KEY_TYPE));
  info.attributes.push_back({"CKA_KEY_TYPE", key_type ? KeyTypeName(*key_type) : "absent"});
  if (!t.key_pair) {
    IJAZAT_ASSIGN_OR_RETURN(auto length, impl.ReadUlong(session, handle, CKA_VALUE_LEN));
    info.attributes.push_back({"CKA_VALUE_LEN", length ? std::to_string(*length) : "absent"});
  } else {
    IJAZAT_ASSIGN_OR_RETURN(auto params, impl.ReadBytes(session, handle, CKA_EC_PARAMS));
    info.attributes.push_back({"CKA_EC_PARAMS", params ? HexEncode(*params) : "absent"});
  }
  for (const auto* list : {&object.settable, &object.derived}) {
    for (const BoolAttribute& attribute : *list) {
      IJAZAT_ASSIGN_OR_RETURN(auto value, impl.ReadBool(session, handle, attribute.type));
      info.attributes.push_back({attribute.name, BoolText(value)});
    }
  }
  IJAZAT_ASSIGN_OR_RETURN(auto mechanisms, impl.ReadMechanisms(session, handle));
  info.attributes.push_back({"CKA_ALLOWED_MECHANISMS", MechanismsText(mechanisms)});
  return info;
}

// The values each attribute of `object` may read, as DescribeObject prints them.
std::map<std::string, std::vector<std::string>> Expected(const KeyTemplate& t,
                                                         const ObjectTemplate& object) {
  std::map<std::string, std::vector<std::string>> expected;
  expected["CKA_KEY_TYPE"] = {KeyTypeName(t.key_type)};
  if (!t.key_pair) {
    expected["CKA_VALUE_LEN"] = {std::to_string(t.value_length)};
  } else {
    auto& params = expected["CKA_EC_PARAMS"];
    params.push_back(HexEncode(t.ec_params));
    for (const Bytes& alias : t.ec_params_aliases) params.push_back(HexEncode(alias));
  }
  for (const auto* list : {&object.settable, &object.derived}) {
    for (const BoolAttribute& attribute : *list) {
      expected[attribute.name] = {attribute.value ? "true" : "false"};
    }
  }
  expected["CKA_ALLOWED_MECHANISMS"] = {MechanismName(t.allowed_mechanism)};
  return expected;
}

std::string Alternatives(const std::vector<std::string>& values) {
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : " or ") + value;
  return text;
}

struct VersionReport {
  KeyInfo info;
  std::vector<Deviation> deviations;
};

Result<VersionReport> InspectVersion(Pkcs11Hsm::Impl& impl, Session& session, const KeyRef& key,
                                     KeyState state) {
  const KeyTemplate& t = TemplateFor(key.kind);
  VersionReport report;
  report.info.ref = key;
  report.info.state = state;
  report.info.mechanism = MechanismName(t.allowed_mechanism);
  for (const ObjectTemplate& object : t.objects) {
    const std::string name = key.Label() + " (" + ObjectClassName(object.object_class) + ")";
    IJAZAT_ASSIGN_OR_RETURN(auto handles,
                            impl.FindByLabel(session, object.object_class, key.Label()));
    if (handles.empty()) {
      report.deviations.push_back({name, "object", "present", "missing"});
      continue;
    }
    if (handles.size() > 1) {
      report.deviations.push_back(
          {name, "object", "exactly one", std::to_string(handles.size()) + " objects"});
    }
    for (const CK_OBJECT_HANDLE handle : handles) {
      IJAZAT_ASSIGN_OR_RETURN(KeyObjectInfo described,
                              DescribeObject(impl, session, t, object, handle));
      const auto expected = Expected(t, object);
      for (const AttributeValue& attribute : described.attributes) {
        const auto it = expected.find(attribute.name);
        if (it != expected.end() &&
            std::find(it->second.begin(), it->second.end(), attribute.value) == it->second.end()) {
          report.deviations.push_back(
              {name, attribute.name, Alternatives(it->second), attribute.value});
        }
      }
      report.info.objects.push_back(std::move(described));
    }
  }
  IJAZAT_RETURN_IF_ERROR(impl.RequireLogin(session));  // "missing" must not mean "logged out"
  return report;
}

Status CheckCreated(Pkcs11Hsm::Impl& impl, Session& session, const KeyRef& key) {
  IJAZAT_ASSIGN_OR_RETURN(VersionReport report,
                          InspectVersion(impl, session, key, KeyState::kActive));
  if (report.deviations.empty()) return OkStatus();
  const Deviation& d = report.deviations.front();
  return Error(ErrorCode::kFailedPrecondition,
               "the HSM did not apply the key template to " + d.key + ": " + d.attribute + " is " +
                   d.found + ", expected " + d.expected,
               "template_not_applied");
}

}  // namespace

static Status VetCatalog(Pkcs11Hsm::Impl& impl, Catalog& catalog) {
  const Catalog found = catalog;
  for (const auto& [kind, versions] : found.versions) {
    for (const std::uint32_t version : versions) {
      const KeyRef key{kind, version};
      IJAZAT_ASSIGN_OR_RETURN(VersionReport report,
                              impl.Run([&](Pkcs11Hsm::Impl::Session& session) {
                                return InspectVersion(impl, session, key, found.StateOf(key));
                              }));
      if (report.deviations.empty()) continue;
      catalog.versions[kind].erase(version);
      catalog.rejected.insert(catalog.rejected.end(), report.deviations.begin(),
                              report.deviations.end());
    }
  }
  return OkStatus();
}

namespace {

Result<KeyInfo> CreateVersion(Pkcs11Hsm& hsm, Pkcs11Hsm::Impl& impl, const KeyRef& key) {
  const KeyTemplate& t = TemplateFor(key.kind);
  IJAZAT_RETURN_IF_ERROR(impl.Run([&](Session& session) -> Status {
    CK_FUNCTION_LIST* fn = impl.fn();
    // A retried call must not create a second copy: refuse if the label exists already.
    for (const ObjectTemplate& object : t.objects) {
      IJAZAT_ASSIGN_OR_RETURN(auto existing,
                              impl.FindByLabel(session, object.object_class, key.Label()));
      if (!existing.empty()) {
        return Error(ErrorCode::kAlreadyExists, key.Label() + " exists already on the token",
                     "key_exists");
      }
    }
    std::string label = key.Label();
    CK_KEY_TYPE key_type = t.key_type;
    CK_ULONG value_length = t.value_length;
    CK_MECHANISM_TYPE allowed = t.allowed_mechanism;
    Bytes ec_params = t.ec_params;
    std::vector<std::vector<CK_BBOOL>> values;
    std::vector<std::vector<CK_ATTRIBUTE>> templates;
    std::vector<CK_OBJECT_CLASS> classes;
    classes.reserve(t.objects.size());
    for (const ObjectTemplate& object : t.objects) {
      classes.push_back(object.object_class);
      std::vector<CK_BBOOL>& bools = values.emplace_back();
      bools.reserve(object.settable.size());
      std::vector<CK_ATTRIBUTE>& attributes = templates.emplace_back();
      attributes.push_back(Attribute(CKA_CLASS, classes.back()));
      attributes.push_back(Attribute(CKA_KEY_TYPE, key_type));
      attributes.push_back(Attribute(CKA_LABEL, label));
      attributes.push_back(Attribute(CKA_ID, label));
      attributes.push_back(Attribute(CKA_ALLOWED_MECHANISMS, allowed));
      for (const BoolAttribute& attribute : object.settable) {
        bools.push_back(attribute.value ? CK_TRUE : CK_FALSE);
        attributes.push_back(Attribute(attribute.type, bools.back()));
      }
      if (t.key_pair && object.object_class == CKO_PUBLIC_KEY) {
        attributes.push_back(Attribute(CKA_EC_PARAMS, ec_params));
      }
      if (!t.key_pair) attributes.push_back(Attribute(CKA_VALUE_LEN, value_length));
    }
    CK_MECHANISM mechanism{t.generation_mechanism, nullptr, 0};
    CK_RV rv = CKR_OK;
    if (t.key_pair) {
      CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
      CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
      rv = fn->C_GenerateKeyPair(session.handle(), &mechanism, templates[0].data(),
                                 templates[0].size(), templates[1].data(), templates[1].size(),
                                 &public_key, &private_key);
      if (rv != CKR_OK) return session.Fail(rv, "C_GenerateKeyPair");
      if (Status checked = CheckCreated(impl, session, key); !checked.ok()) {
        fn->C_DestroyObject(session.handle(), public_key);
        fn->C_DestroyObject(session.handle(), private_key);
        return checked;
      }
    } else {
      CK_OBJECT_HANDLE secret = CK_INVALID_HANDLE;
      rv = fn->C_GenerateKey(session.handle(), &mechanism, templates[0].data(), templates[0].size(),
                             &secret);
      if (rv != CKR_OK) return session.Fail(rv, "C_GenerateKey");
      if (Status checked = CheckCreated(impl, session, key); !checked.ok()) {
        fn->C_DestroyObject(session.handle(), secret);
        return checked;
      }
    }
    return OkStatus();
  }));
  IJAZAT_RETURN_IF_ERROR(impl.Scan());
  IJAZAT_ASSIGN_OR_RETURN(auto keys, hsm.ListKeys());
  for (KeyInfo& info : keys) {
    if (info.ref == key) return std::move(info);
  }
  return UnknownKey(key);
}

}  // namespace

Result<KeyInfo> Pkcs11Hsm::GenerateKey(KeyKind kind) {
  const std::lock_guard lock(impl_->admin_mutex());
  IJAZAT_RETURN_IF_ERROR(impl_->Scan());
  if (const auto highest = impl_->CatalogSnapshot().Highest(kind)) {
    return Error(ErrorCode::kAlreadyExists,
                 std::string(KeyKindName(kind)) + " exists already (up to version " +
                     std::to_string(*highest) + "); use rotate to create a new version",
                 "key_exists");
  }
  return CreateVersion(*this, *impl_, KeyRef{kind, 1});
}

Result<KeyInfo> Pkcs11Hsm::RotateKey(KeyKind kind) {
  const std::lock_guard lock(impl_->admin_mutex());
  IJAZAT_RETURN_IF_ERROR(impl_->Scan());
  const auto highest = impl_->CatalogSnapshot().Highest(kind);
  if (!highest) {
    return Error(ErrorCode::kNotFound,
                 "the token has no " + std::string(KeyKindName(kind)) +
                     " key to rotate; create version 1 with keygen",
                 "unknown_key");
  }
  return CreateVersion(*this, *impl_, KeyRef{kind, *highest + 1});
}

namespace {
constexpr char kRecordPrefix[] = "record:";
}  // namespace

Result<std::vector<Bytes>> Pkcs11Hsm::ReadRecord(const std::string& name) {
  const std::string label = kRecordPrefix + name;
  return impl_->Run([&](Session& session) -> Result<std::vector<Bytes>> {
    IJAZAT_ASSIGN_OR_RETURN(auto found, impl_->FindByLabel(session, CKO_DATA, label));
    // A search while logged out sees no private object: an absent record must be real.
    IJAZAT_RETURN_IF_ERROR(impl_->RequireLogin(session));
    std::vector<Bytes> values;
    for (const CK_OBJECT_HANDLE object : found) {
      IJAZAT_ASSIGN_OR_RETURN(auto value, impl_->ReadBytes(session, object, CKA_VALUE));
      values.push_back(value.value_or(Bytes{}));
    }
    return values;
  });
}

Status Pkcs11Hsm::WriteRecord(const std::string& name, ByteView value) {
  const std::string label = kRecordPrefix + name;
  return impl_->Run([&](Session& session) -> Status {
    IJAZAT_ASSIGN_OR_RETURN(auto found, impl_->FindByLabel(session, CKO_DATA, label));
    Bytes bytes(value.begin(), value.end());
    CK_OBJECT_CLASS object_class = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    std::string application = kApplication;
    std::string text_label = label;
    std::array<CK_ATTRIBUTE, 7> attributes = {
        Attribute(CKA_CLASS, object_class), Attribute(CKA_TOKEN, yes),
        Attribute(CKA_PRIVATE, yes),        Attribute(CKA_MODIFIABLE, yes),
        Attribute(CKA_LABEL, text_label),   Attribute(CKA_APPLICATION, application),
        Attribute(CKA_VALUE, bytes)};
    // Tokens need not let a data object's value change (SoftHSM does not): the new record is
    // created first and the old one destroyed after, so that a failure in between leaves two
    // records (both read back, and mended by the next write), never none.
    CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
    CK_RV rv = impl_->fn()->C_CreateObject(session.handle(), attributes.data(), attributes.size(),
                                           &object);
    if (rv != CKR_OK) return session.Fail(rv, "C_CreateObject");
    for (const CK_OBJECT_HANDLE old : found) {
      rv = impl_->fn()->C_DestroyObject(session.handle(), old);
      if (rv != CKR_OK) return session.Fail(rv, "C_DestroyObject");
    }
    return OkStatus();
  });
}

namespace {

// A state record (retired:NAME/vN, destroyed:NAME/vN): a private data object of Ijazat's that
// can be neither changed nor, where the token honours CKA_DESTROYABLE, deleted, so that a
// retirement cannot be undone by deleting its record with the user PIN. Idempotent.
Status CreateMarker(Pkcs11Hsm::Impl& impl, std::string label, std::string value) {
  return impl.Run([&](Session& session) -> Status {
    IJAZAT_ASSIGN_OR_RETURN(auto existing, impl.FindByLabel(session, CKO_DATA, label));
    if (!existing.empty()) return OkStatus();  // a retried call that had succeeded
    CK_OBJECT_CLASS object_class = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    std::string application = kApplication;
    std::vector<CK_ATTRIBUTE> attributes = {
        Attribute(CKA_CLASS, object_class), Attribute(CKA_TOKEN, yes),
        Attribute(CKA_PRIVATE, yes),        Attribute(CKA_MODIFIABLE, no),
        Attribute(CKA_LABEL, label),        Attribute(CKA_APPLICATION, application),
        Attribute(CKA_VALUE, value),        Attribute(CKA_DESTROYABLE, no)};
    CK_OBJECT_HANDLE marker = CK_INVALID_HANDLE;
    CK_RV rv = impl.fn()->C_CreateObject(session.handle(), attributes.data(),
                                         static_cast<CK_ULONG>(attributes.size()), &marker);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID) {
      // A token without CKA_DESTROYABLE (before PKCS#11 2.40): the record is unchangeable at
      // least, and `check` notices a version whose record went missing with its objects.
      attributes.pop_back();
      rv = impl.fn()->C_CreateObject(session.handle(), attributes.data(),
                                     static_cast<CK_ULONG>(attributes.size()), &marker);
    }
    if (rv != CKR_OK) return session.Fail(rv, "C_CreateObject");
    return OkStatus();
  });
}

}  // namespace

// A key pair's public half whatever the version's state (ExportPublicKey refuses retired
// ones): for the kid an auditor needs.
Result<PublicKey> PublicKeyOfAnyState(Pkcs11Hsm::Impl& impl, const KeyRef& key) {
  return impl.Run([&](Session& session) -> Result<PublicKey> {
    IJAZAT_ASSIGN_OR_RETURN(const CK_OBJECT_HANDLE handle,
                            impl.FindOne(session, CKO_PUBLIC_KEY, key));
    IJAZAT_ASSIGN_OR_RETURN(auto value, impl.ReadBytes(session, handle, CKA_EC_POINT));
    if (!value) {
      return Error(ErrorCode::kInternal, key.Label() + " has no CKA_EC_POINT", "hsm_error");
    }
    return PublicKeyFromPoint(key, *value);
  });
}

Status Pkcs11Hsm::DestroyKey(const KeyRef& key) {
  const std::lock_guard lock(impl_->admin_mutex());
  IJAZAT_RETURN_IF_ERROR(impl_->Scan());
  const Catalog catalog = impl_->CatalogSnapshot();
  const auto destroyed = catalog.destroyed.find(key.kind);
  const bool recorded =
      destroyed != catalog.destroyed.end() && destroyed->second.count(key.version);
  if (!catalog.Exists(key) && !recorded) return UnknownKey(key);
  if (!catalog.IsRetired(key)) {
    return Error(ErrorCode::kFailedPrecondition,
                 key.Label() +
                     " is not retired; retire it first (and wait until nothing needs "
                     "to verify with it)",
                 "key_not_retired");
  }
  // The record first, then the objects: a call cut in between leaves a record with objects,
  // which `check` reports and the same command finishes. It keeps a key pair's kid, so that an
  // auditor can still map the receipts it signed to this version.
  std::string record = "destroyed";
  if (TemplateFor(key.kind).key_pair && catalog.Exists(key)) {
    IJAZAT_ASSIGN_OR_RETURN(const PublicKey public_key, PublicKeyOfAnyState(*impl_, key));
    record += " kid=" + public_key.kid;
  }
  IJAZAT_RETURN_IF_ERROR(CreateMarker(*impl_, kDestroyedPrefix + key.Label(), record));
  impl_->ForgetHandles(key);
  const KeyTemplate& t = TemplateFor(key.kind);
  std::vector<CK_OBJECT_CLASS> classes;
  if (t.key_pair) {
    classes = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
  } else {
    classes = {CKO_SECRET_KEY};
  }
  IJAZAT_RETURN_IF_ERROR(impl_->Run([&](Session& session) -> Status {
    for (const CK_OBJECT_CLASS object_class : classes) {
      IJAZAT_ASSIGN_OR_RETURN(auto objects, impl_->FindByLabel(session, object_class, key.Label()));
      for (const CK_OBJECT_HANDLE object : objects) {
        const CK_RV rv = impl_->fn()->C_DestroyObject(session.handle(), object);
        if (rv != CKR_OK) return session.Fail(rv, "C_DestroyObject");
      }
    }
    return OkStatus();
  }));
  return impl_->Scan();
}

Status Pkcs11Hsm::RetireKey(const KeyRef& key) {
  const std::lock_guard lock(impl_->admin_mutex());
  IJAZAT_RETURN_IF_ERROR(impl_->Scan());
  const Catalog catalog = impl_->CatalogSnapshot();
  if (!catalog.Exists(key)) return UnknownKey(key);
  if (catalog.IsRetired(key)) {
    return Error(ErrorCode::kFailedPrecondition, key.Label() + " is retired already",
                 "key_retired");
  }
  if (catalog.Active(key.kind) == key.version) {
    return Error(ErrorCode::kFailedPrecondition,
                 key.Label() + " is the active version; rotate first, then retire it",
                 "key_active");
  }
  IJAZAT_RETURN_IF_ERROR(CreateMarker(*impl_, kRetiredPrefix + key.Label(), "retired"));
  impl_->ForgetHandles(key);
  return impl_->Scan();
}

Result<std::vector<KeyInfo>> Pkcs11Hsm::ListKeys() {
  IJAZAT_RETURN_IF_ERROR(impl_->Scan());
  const Catalog catalog = impl_->CatalogSnapshot();
  std::vector<KeyInfo> keys;
  for (const KeyKind kind : kAllKeyKinds) {
    std::set<std::uint32_t> all;
    if (const auto it = catalog.versions.find(kind); it != catalog.versions.end()) {
      all = it->second;
    }
    const auto destroyed = catalog.destroyed.find(kind);
    if (destroyed != catalog.destroyed.end())
      all.insert(destroyed->second.begin(), destroyed->second.end());
    for (auto version = all.rbegin(); version != all.rend(); ++version) {
      const KeyRef key{kind, *version};
      if (!catalog.Exists(key)) {
        // Destroyed: no objects left to inspect, the record's kid for auditors.
        KeyInfo info;
        info.ref = key;
        info.state = KeyState::kDestroyed;
        info.mechanism = MechanismName(TemplateFor(kind).allowed_mechanism);
        if (const auto kid = catalog.destroyed_kids.find({kind, *version});
            kid != catalog.destroyed_kids.end()) {
          info.kid = kid->second;
        }
        keys.push_back(std::move(info));
        continue;
      }
      IJAZAT_ASSIGN_OR_RETURN(VersionReport report, impl_->Run([&](Session& session) {
        return InspectVersion(*impl_, session, key, catalog.StateOf(key));
      }));
      if (TemplateFor(kind).key_pair) {
        // Whatever the version's state: an auditor maps an old receipt's kid to its version,
        // retired ones included (their public half is kept; nothing signs with it).
        auto public_key = PublicKeyOfAnyState(*impl_, key);
        if (public_key.ok()) report.info.kid = public_key->kid;
      }
      keys.push_back(std::move(report.info));
    }
  }
  return keys;
}

Result<std::vector<Deviation>> Pkcs11Hsm::AuditKeys() {
  IJAZAT_RETURN_IF_ERROR(impl_->Scan());
  const Catalog catalog = impl_->CatalogSnapshot();
  std::vector<Deviation> deviations;
  for (const auto& [kind, versions] : catalog.versions) {
    for (const std::uint32_t version : versions) {
      const KeyRef key{kind, version};
      IJAZAT_ASSIGN_OR_RETURN(VersionReport report, impl_->Run([&](Session& session) {
        return InspectVersion(*impl_, session, key, catalog.StateOf(key));
      }));
      deviations.insert(deviations.end(), report.deviations.begin(), report.deviations.end());
    }
  }
  deviations.insert(deviations.end(), catalog.rejected.begin(), catalog.rejected.end());
  // The state records against the key objects: every version from 1 to the highest known has
  // objects or a destruction record; a destroyed version has no objects left and was retired
  // first; a retired one still has its objects unless destroyed.
  for (const KeyKind kind : kAllKeyKinds) {
    auto set_of = [&](const std::map<KeyKind, std::set<std::uint32_t>>& m) {
      const auto it = m.find(kind);
      return it == m.end() ? std::set<std::uint32_t>{} : it->second;
    };
    const auto present = set_of(catalog.versions);
    const auto retired = set_of(catalog.retired);
    const auto destroyed = set_of(catalog.destroyed);
    std::uint32_t highest = 0;
    for (const auto* s : {&present, &retired, &destroyed}) {
      if (!s->empty()) highest = std::max(highest, *s->rbegin());
    }
    for (std::uint32_t v = 1; v <= highest; ++v) {
      const std::string label = KeyRef{kind, v}.Label();
      const bool has = present.count(v) > 0;
      const bool gone = destroyed.count(v) > 0;
      if (gone && has) {
        deviations.push_back(
            {label, "key objects", "destroyed", "still present (run destroy again)"});
      } else if (gone && retired.count(v) == 0) {
        deviations.push_back({label, "state record", "retired before destroyed",
                              "destroyed with no retirement record"});
      } else if (!has && !gone) {
        // Rejected versions are reported above; this is a version whose objects were deleted
        // without the tool, which no one can verify or account for.
        bool rejected = false;
        for (const Deviation& d : catalog.rejected)
          rejected = rejected || d.key.rfind(label, 0) == 0;
        if (!rejected) {
          deviations.push_back({label, "key objects", "present, or a destruction record",
                                "missing (deleted outside ijazat-provision)"});
        }
      }
    }
  }
  return deviations;
}

std::vector<std::string> Pkcs11Hsm::RejectedKeys() {
  std::vector<std::string> names;
  for (const Deviation& d : impl_->CatalogSnapshot().rejected) {
    names.push_back(d.key + ": " + d.attribute + " is " + d.found + ", expected " + d.expected);
  }
  return names;
}

Result<std::string> Pkcs11Hsm::Jwks() {
  IJAZAT_RETURN_IF_ERROR(impl_->Scan());
  const Catalog catalog = impl_->CatalogSnapshot();
  std::vector<std::string> jwks;
  if (const auto it = catalog.versions.find(KeyKind::kReceipt); it != catalog.versions.end()) {
    for (auto version = it->second.rbegin(); version != it->second.rend(); ++version) {
      const KeyRef key{KeyKind::kReceipt, *version};
      if (catalog.IsRetired(key)) continue;
      IJAZAT_ASSIGN_OR_RETURN(const PublicKey public_key, ExportPublicKey(key));
      jwks.push_back(public_key.jwk);
    }
  }
  return JwksDocument(jwks);
}

Status Pkcs11Hsm::Refresh() { return impl_->Scan(); }

// ---------------------------------------------------------------------------------------------
// Tokens.

Result<std::vector<TokenInfo>> ListTokens(const std::string& module_path) {
  IJAZAT_ASSIGN_OR_RETURN(auto module, Module::Acquire(module_path));
  CK_FUNCTION_LIST* fn = module->functions();
  IJAZAT_ASSIGN_OR_RETURN(auto slots, module->SlotsWithToken(fn));
  std::vector<TokenInfo> tokens;
  for (const CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    const CK_RV rv = fn->C_GetTokenInfo(slot, &info);
    if (rv != CKR_OK) return ErrorFromRv(rv, "C_GetTokenInfo");
    tokens.push_back({TrimPadded(info.label, sizeof info.label),
                      TrimPadded(info.manufacturerID, sizeof info.manufacturerID),
                      TrimPadded(info.model, sizeof info.model),
                      TrimPadded(info.serialNumber, sizeof info.serialNumber),
                      (info.flags & CKF_TOKEN_INITIALIZED) != 0});
  }
  return tokens;
}

Status InitToken(const std::string& module_path, const std::string& label,
                 const SecretString& so_pin, const SecretString& user_pin) {
  if (label.empty() || label.size() > 32) {
    return Error(ErrorCode::kInvalidArgument, "a token label must be 1 to 32 bytes long",
                 "invalid_label");
  }
  IJAZAT_ASSIGN_OR_RETURN(auto module, Module::Acquire(module_path));
  CK_FUNCTION_LIST* fn = module->functions();
  if (module->FindSlotByLabel(fn, label).ok()) {
    return Error(ErrorCode::kAlreadyExists, "a token labelled \"" + label + "\" exists already",
                 "token_exists");
  }
  IJAZAT_ASSIGN_OR_RETURN(auto slots, module->SlotsWithToken(fn));
  std::optional<CK_SLOT_ID> free_slot;
  for (const CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    if (fn->C_GetTokenInfo(slot, &info) == CKR_OK && (info.flags & CKF_TOKEN_INITIALIZED) == 0) {
      free_slot = slot;
      break;
    }
  }
  if (!free_slot) {
    return Error(ErrorCode::kFailedPrecondition,
                 "no slot in " + module_path + " has an uninitialised token", "no_free_slot");
  }
  std::array<CK_UTF8CHAR, 32> padded{};
  padded.fill(' ');
  std::copy(label.begin(), label.end(), padded.begin());
  auto pin_ptr = [](const SecretString& pin) {
    return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.UnsafeView().data()));
  };
  CK_RV rv = fn->C_InitToken(*free_slot, pin_ptr(so_pin), so_pin.size(), padded.data());
  if (rv != CKR_OK) return ErrorFromRv(rv, "C_InitToken");
  // Slot numbers may change once a token is initialised (SoftHSM renumbers): find it again.
  IJAZAT_ASSIGN_OR_RETURN(const CK_SLOT_ID slot, module->FindSlotByLabel(fn, label));
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  rv = fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &session);
  if (rv != CKR_OK) return ErrorFromRv(rv, "C_OpenSession");
  rv = fn->C_Login(session, CKU_SO, pin_ptr(so_pin), so_pin.size());
  if (rv == CKR_OK) {
    rv = fn->C_InitPIN(session, pin_ptr(user_pin), user_pin.size());
    fn->C_Logout(session);
    if (rv != CKR_OK) {
      fn->C_CloseSession(session);
      return ErrorFromRv(rv, "C_InitPIN");
    }
  }
  fn->C_CloseSession(session);
  if (rv != CKR_OK) return ErrorFromRv(rv, "C_Login");
  return OkStatus();
}

}  // namespace ijazat::hsm
