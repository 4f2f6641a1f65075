// The identity registry the appliance answers verifications from. It stands in for the
// national registry, so it is kept apart from the consent store, in a file of its own. The
// default adapter reads an SQLite table that the operator fills from CSV.
//
// Thread safety: implementations are safe to call from any number of threads.
#pragma once

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
};

// Opens the registry database read-only. kNotFound ("registry_missing") if the file does not
// exist.
Result<std::unique_ptr<IdentityRegistry>> OpenSqliteRegistry(const std::string& path);

// Imports a CSV file into the registry database at `db_path` (created if missing), replacing
// rows with the same CNIC, in one transaction. The header row names the columns: `cnic` and
// any of kIdentityAttributes. CNICs are normalised to 13 digits (dashes and spaces allowed).
// Errors name the line and column ("registry.csv:14: cnic \"3520-1\" is not 13 digits"); on
// any error nothing is imported. Returns the number of rows imported.
Result<int> ImportRegistryCsv(const std::string& db_path, const std::string& csv_path);

}  // namespace ijazat::appliance
