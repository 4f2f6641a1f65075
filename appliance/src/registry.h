// The identity registry the appliance answers verifications from. It stands in for the
// national registry, so it is kept apart from the consent store, in a file of its own. The
// default adapter reads an SQLite table that the operator fills from CSV.
//
// Thread safety: implementations are safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ijazat/common/result.h"

namespace ijazat::appliance {

// The attribute catalogue, as policies name scopes.
inline constexpr const char* kIdentityAttributes[] = {
    "name", "father_name", "date_of_birth", "gender", "address", "photo", "cnic_status"};

class IdentityRegistry {
 public:
  virtual ~IdentityRegistry() = default;
  // The requested attributes of the citizen with this 13-digit CNIC, or nullopt when the
  // registry has no such citizen. Only attributes named in `scopes` are returned.
  virtual Result<std::optional<std::map<std::string, std::string>>> Lookup(
      const std::string& cnic, const std::vector<std::string>& scopes) = 0;
  virtual Status CheckHealth() = 0;

  // Whether an authority binds the number to the CNIC: the mobile operators' subscriber
  // records (every SIM is registered to one CNIC) or the number recorded at CNIC registration,
  // unless an operator's records give that number to someone (its current owner outranks an
  // old registration).
  // kNotBound when neither names this number for the CNIC, including when the CNIC has none.
  // kFailedPrecondition ("subscribers_missing") when the registry holds neither kind of record.
  enum class Binding { kBound, kNotBound };
  virtual Result<Binding> CheckBinding(const std::string& cnic, const std::string& e164) = 0;
  // OkStatus when the registry holds binding records at all, else as CheckBinding.
  virtual Status CheckBindingSource() = 0;

  // The registry's log of changed bindings: every import that may change the numbers bound to
  // a CNIC appends the CNIC, so the appliance can check those enrolments again.
  struct BindingChange {
    std::int64_t seq = 0;
    std::string cnic;
  };
  struct BindingChanges {
    std::vector<BindingChange> changes;  // seq > `after`, in order, at most `limit`
    std::int64_t last = 0;               // the highest seq in the log (0 when empty)
    std::string generation;              // which log: a replaced registry file has another
  };
  virtual Result<BindingChanges> ChangedBindings(std::int64_t after, int limit) = 0;
};

// Opens the registry database read-only. kNotFound ("registry_missing") if the file does not
// exist.
Result<std::unique_ptr<IdentityRegistry>> OpenSqliteRegistry(const std::string& path);

// Imports a CSV file into the registry database at `db_path` (created if missing), replacing
// rows with the same CNIC, in one transaction. The header row names the columns: `cnic` and
// any of kIdentityAttributes, and optionally `msisdn`: the number recorded at the citizen's
// registration, which binds it to the CNIC like a subscriber record. CNICs are normalised to
// 13 digits (dashes and spaces allowed), numbers to E.164.
// Errors name the line and column ("registry.csv:14: cnic \"3520-1\" is not 13 digits"); on
// any error nothing is imported. Returns the number of rows imported.
Result<int> ImportRegistryCsv(const std::string& db_path, const std::string& csv_path);

// Imports subscriber records (header `cnic,msisdn`; a CNIC may have several rows, a number
// one) into the registry database, in one transaction: the numbers of each CNIC named in the
// file replace those it had, and a number in the file leaves any other CNIC that held it (a
// recycled SIM). Every CNIC whose bound numbers may change is appended to the log of changed
// bindings. Numbers are normalised to E.164 (Pakistani forms, or "+" and 8 to 15 digits).
// Errors name the line as for citizens; on any error nothing is imported. Returns the rows.
Result<int> ImportSubscribersCsv(const std::string& db_path, const std::string& csv_path);

}  // namespace ijazat::appliance
