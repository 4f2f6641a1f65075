// PolicyStore: the policy in force, swapped atomically on reload.
//
// Request threads call Current() once per request and keep the returned snapshot for the whole
// request; the store's lock is held only for the copy of one shared_ptr (an atomic increment),
// never while a policy is parsed. Reload() parses and validates the new file with no lock held
// and swaps the pointer only if the whole file is valid: on any problem the old snapshot stays
// in force, untouched, and every problem is returned. There is never a half-applied policy.
//
// Thread safety: all methods may be called from any thread. Concurrent Reload() calls are
// serialised, so the last one to finish wins.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "ijazat/common/result.h"
#include "ijazat/policy/policy_loader.h"
#include "ijazat/policy/policy_set.h"

namespace ijazat::policy {

class PolicyStore {
 public:
  // Loads the first policy. Errors are those of PolicyLoader::LoadFile.
  static Result<std::unique_ptr<PolicyStore>> Open(const std::filesystem::path& path,
                                                   PolicyLoader loader = PolicyLoader(),
                                                   std::vector<Diagnostic>* diagnostics = nullptr);

  // `initial` must not be null (a null snapshot aborts: it is a defect in the caller).
  explicit PolicyStore(std::shared_ptr<const PolicySet> initial,
                       PolicyLoader loader = PolicyLoader());

  PolicyStore(const PolicyStore&) = delete;
  PolicyStore& operator=(const PolicyStore&) = delete;

  // Never null.
  std::shared_ptr<const PolicySet> Current() const;

  // Returns the identity of the policy now in force. On error the previous policy stays in
  // force and the error lists every problem (see PolicyLoader).
  Result<PolicyIdentity> Reload(const std::filesystem::path& path,
                                std::vector<Diagnostic>* diagnostics = nullptr);

  // Incremented by every successful Reload(); lets callers see that a reload happened.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  const PolicyLoader loader_;
  mutable std::mutex snapshot_mutex_;  // guards current_; held only to copy or swap it
  std::shared_ptr<const PolicySet> current_;
  std::mutex reload_mutex_;  // serialises Reload()
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace ijazat::policy
