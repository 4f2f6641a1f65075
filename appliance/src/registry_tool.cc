// ijazat-registry: fills the identity registry database from CSV.
//
//   ijazat-registry import --db FILE CSV
//   ijazat-registry import-subscribers --db FILE CSV
//
// Exit status: 0 imported, 1 the import failed (the message names file and line), 2 usage.
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "registry.h"

namespace {

constexpr const char* kUsage =
    "usage: ijazat-registry import --db FILE CSV\n"
    "       ijazat-registry import-subscribers --db FILE CSV\n"
    "  import: citizens from CSV into the registry database FILE (created if missing).\n"
    "  The header names the columns: cnic and any of name, father_name, date_of_birth,\n"
    "  gender, address, photo, cnic_status, and msisdn (the number recorded at registration,\n"
    "  which binds it to the CNIC). Rows with a CNIC already present replace it.\n"
    "  import-subscribers: the numbers registered to each CNIC (header cnic,msisdn; one row\n"
    "  per number). The numbers of each CNIC in the file replace those it had.\n"
    "  Only numbers these records bind to a CNIC may enrol it (sms.enrolment: authority);\n"
    "  a running ijazatd checks the enrolments of every CNIC an import touched within a minute.\n"
    "  All or nothing: on any error nothing is imported.\n";

int Usage(std::string_view problem) {
  std::cerr << "ijazat-registry: " << problem << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.empty() || (args[0] != "import" && args[0] != "import-subscribers")) {
    return Usage("expected the command \"import\" or \"import-subscribers\"");
  }
  const bool subscribers = args[0] == "import-subscribers";

  std::string db;
  std::string csv;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--db") {
      if (i + 1 >= args.size()) return Usage("--db needs a file");
      db = args[++i];
    } else if (arg.starts_with("--db=")) {
      db = arg.substr(5);
    } else if (arg.starts_with("-") && arg != "-") {
      return Usage("unknown option " + arg);
    } else if (csv.empty()) {
      csv = arg;
    } else {
      return Usage("more than one CSV file");
    }
  }
  if (db.empty()) return Usage("--db FILE is required");
  if (csv.empty()) return Usage("the CSV file is required");

  const auto imported = subscribers ? ijazat::appliance::ImportSubscribersCsv(db, csv)
                                    : ijazat::appliance::ImportRegistryCsv(db, csv);
  if (!imported.ok()) {
    std::cerr << "ijazat-registry: " << imported.error().message() << "\n";
    return 1;
  }
  std::cout << "imported " << *imported << (subscribers ? " subscriber numbers\n" : " citizens\n");
  return 0;
}
