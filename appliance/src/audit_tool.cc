// ijazat-audit: checks a consent store's audit chain against its signed checkpoints.
//
//   ijazat-audit verify --db FILE --key VKEY [--key VKEY ...] [--checkpoints FILE ...]
//                       [--max-unsigned SECONDS]
//   ijazat-audit checkpoints --db FILE
//
// Exit status: 0 the chain and every checkpoint agree, 1 findings (each printed with its seq),
// 2 usage, 3 the database cannot be read.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "audit_verify.h"

namespace {

constexpr const char* kUsage =
    "usage: ijazat-audit verify --db FILE --key VKEY [--key VKEY ...] [--checkpoints FILE ...]\n"
    "                           [--max-unsigned SECONDS]\n"
    "       ijazat-audit checkpoints --db FILE\n"
    "  verify: walks the audit chain of the consent store FILE (read-only; a live database or\n"
    "  a backup) and checks it against every signed checkpoint: those stored in FILE and those\n"
    "  in each --checkpoints FILE (signed notes, e.g. the \"note\" of the appliance's\n"
    "  audit.checkpoint log lines or an earlier `checkpoints` output). It reports gaps, edited\n"
    "  and unlinked rows, a truncated end, a re-chained copy and forged checkpoints, each with\n"
    "  its seq, and events left unsigned for more than SECONDS (120) before later ones.\n"
    "  VKEY is the audit key (ijazat-provision audit-key --origin ORIGIN, or the\n"
    "  audit_key of the appliance.started log line), one --key per log key version.\n"
    "  checkpoints: prints the signed checkpoints stored in FILE, to archive them elsewhere.\n"
    "Exit status: 0 all agree, 1 findings, 2 usage, 3 the database cannot be read.\n";

int Usage(std::string_view problem) {
  std::cerr << "ijazat-audit: " << problem << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ijazat;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.empty() || (args[0] != "verify" && args[0] != "checkpoints")) {
    return Usage("expected the command \"verify\" or \"checkpoints\"");
  }
  std::string db;
  std::vector<tlog::NoteVerifier> keys;
  std::vector<std::string> notes;
  appliance::AuditVerifyOptions options;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool valued =
        arg == "--db" || arg == "--key" || arg == "--checkpoints" || arg == "--max-unsigned";
    if (!valued) return Usage("unknown argument " + arg);
    if (i + 1 >= args.size() || args[i + 1].empty()) return Usage(arg + " needs a value");
    const std::string& value = args[++i];
    if (arg == "--db") {
      if (!db.empty()) return Usage("--db is given twice");
      db = value;
    } else if (arg == "--max-unsigned") {
      if (value.size() > 9 || value.find_first_not_of("0123456789") != std::string::npos) {
        return Usage("--max-unsigned takes a number of seconds");
      }
      options.max_unsigned_seconds = std::stoll(value);
    } else if (arg == "--key") {
      auto key = tlog::ParseVerifierKey(value);
      if (!key.ok()) return Usage("--key: " + key.error().message());
      keys.push_back(*key);
    } else {
      std::ifstream in(value, std::ios::binary);
      if (!in) return Usage("--checkpoints: cannot read " + value);
      std::stringstream text;
      text << in.rdbuf();
      const auto found = appliance::SplitNotes(text.str());
      if (found.empty()) return Usage("--checkpoints: " + value + " holds no signed note");
      notes.insert(notes.end(), found.begin(), found.end());
    }
  }
  if (db.empty()) return Usage("--db FILE is required");
  if (args[0] == "checkpoints") {
    if (!keys.empty() || !notes.empty() || options.max_unsigned_seconds != 120) {
      return Usage("checkpoints takes --db only");
    }
    const auto stored = appliance::ReadCheckpointNotes(db);
    if (!stored.ok()) {
      std::cerr << "ijazat-audit: " << stored.error().message() << '\n';
      return 3;
    }
    for (const std::string& note : *stored) std::cout << note << '\n';
    return 0;
  }
  if (keys.empty()) return Usage("verify needs --key VKEY (the audit key)");
  const auto result = appliance::VerifyAuditDatabase(db, keys, notes, options);
  if (!result.ok()) {
    std::cerr << "ijazat-audit: " << result.error().message() << '\n';
    return 3;
  }
  for (const appliance::AuditFinding& finding : result->findings) {
    std::cout << finding.kind;
    if (finding.seq > 0) std::cout << " at seq " << finding.seq;
    std::cout << ": " << finding.detail << '\n';
  }
  std::cout << (result->ok() ? "ok" : "FAILED") << ": " << result->events << " events (last seq "
            << result->last_seq << "), " << result->checkpoints_verified
            << " checkpoint(s) verified, anchored up to seq " << result->last_anchored_seq;
  if (result->ok() && result->last_seq > result->last_anchored_seq) {
    std::cout << " (" << result->last_seq - result->last_anchored_seq
              << " later event(s), within --max-unsigned of the newest, not signed yet: the "
                 "appliance signs every minute)";
  }
  std::cout << '\n';
  return result->ok() ? 0 : 1;
}
