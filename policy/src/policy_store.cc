#include "ijazat/policy/policy_store.h"

#include <cstdlib>
#include <utility>

namespace ijazat::policy {

Result<std::unique_ptr<PolicyStore>> PolicyStore::Open(const std::filesystem::path& path,
                                                       PolicyLoader loader,
                                                       std::vector<Diagnostic>* diagnostics) {
  IJAZAT_ASSIGN_OR_RETURN(std::shared_ptr<const PolicySet> initial,
                          loader.LoadFile(path, diagnostics));
  return std::make_unique<PolicyStore>(std::move(initial), loader);
}

PolicyStore::PolicyStore(std::shared_ptr<const PolicySet> initial, PolicyLoader loader)
    : loader_(loader), current_(std::move(initial)) {
  if (!current_) std::abort();
}

std::shared_ptr<const PolicySet> PolicyStore::Current() const {
  std::lock_guard lock(snapshot_mutex_);
  return current_;
}

Result<PolicyIdentity> PolicyStore::Reload(const std::filesystem::path& path,
                                           std::vector<Diagnostic>* diagnostics) {
  std::lock_guard reload_lock(reload_mutex_);
  // Parse and validate with no snapshot lock held: readers are never blocked by a reload.
  IJAZAT_ASSIGN_OR_RETURN(std::shared_ptr<const PolicySet> next,
                          loader_.LoadFile(path, diagnostics));
  PolicyIdentity identity = next->identity();
  std::shared_ptr<const PolicySet> previous;
  {
    std::lock_guard lock(snapshot_mutex_);
    previous = std::exchange(current_, std::move(next));
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  // `previous` is released here, outside the lock, if no request still holds it.
  return identity;
}

}  // namespace ijazat::policy
