// ijazatd: the Ijazat consent appliance.
//
//   ijazatd --config FILE [--port-file FILE] [--allow-root]
//   ijazatd --check-config FILE [--allow-root | --syntax-only]
//   ijazatd --version
//
// It refuses to serve as root (the unit runs it as the `ijazat` user) unless --allow-root says
// so (development and tests only), and refuses a PIN file or other secret file that is not
// the process's own or that its group or other users can reach (exit status 4).
//
// SIGHUP reloads the policy (an invalid file keeps the old one, and the log says why) and
// re-reads the HSM's key versions; SIGTERM or SIGINT drains requests in flight and exits.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "appliance.h"
#include "ijazat/hsm/pkcs11_hsm.h"

namespace {

constexpr char kUsage[] =
    "usage: ijazatd --config FILE [--port-file FILE] [--allow-root] [--accept-restored-audit]\n"
    "       ijazatd --check-config FILE [--allow-root | --syntax-only]\n"
    "       ijazatd --version\n"
    "\n"
    "  --config FILE       the appliance's configuration (YAML)\n"
    "  --port-file FILE    write the port it listens on (useful with port 0)\n"
    "  --allow-root        serve even as root (development and tests only)\n"
    "  --accept-restored-audit  start on an audit chain shorter than the head the HSM last\n"
    "                      signed: after restoring an older backup on purpose, checked with\n"
    "                      ijazat-audit verify first (the restore is recorded in the chain)\n"
    "  --check-config FILE run every check the start runs (files, TLS pair, policy, PKCS#11\n"
    "                      module, token, PIN, keys, secrets, store, audit chain) but bind\n"
    "                      nothing, and exit with the status the start would; run it as the\n"
    "                      service user, with the service's environment\n"
    "  --syntax-only       with --check-config: the file's syntax and values only, touching\n"
    "                      no other file (an image build, a review)\n"
    "  --version           print the version and exit\n"
    "\n"
    "Exit status: 0 stopped cleanly, 1 cannot start (HSM, store, ... unavailable),\n"
    "2 invalid arguments or configuration, 3 the HSM rejected the PIN (wrong or locked),\n"
    "4 refused: run as root without --allow-root, or a secret file (PIN, gateway secret,\n"
    "Kannel password) that is not owned by the process's user or that its group or others\n"
    "can access.\n";

constexpr int kExitRefused = 4;

void HardenProcess() {
  // No core dumps: they would hold the PIN and key handles' session state.
  rlimit none{0, 0};
  setrlimit(RLIMIT_CORE, &none);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::string port_file;
  bool check_only = false;
  bool syntax_only = false;
  bool allow_root = false;
  bool accept_restored_audit = false;
  auto usage = [](const std::string& problem) {
    std::cerr << "ijazatd: " << problem << "\n" << kUsage;
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" || arg == "--check-config" || arg == "--port-file") {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') return usage(arg + " needs a file");
      const std::string value = argv[++i];
      if (arg == "--port-file") {
        if (!port_file.empty()) return usage("--port-file is given twice");
        port_file = value;
        continue;
      }
      // One configuration, and one meaning: serving and checking are never both asked for.
      if (!config_path.empty()) {
        return usage("give one of --config FILE and --check-config FILE, once");
      }
      config_path = value;
      check_only = arg == "--check-config";
    } else if (arg == "--allow-root") {
      allow_root = true;
    } else if (arg == "--syntax-only") {
      syntax_only = true;
    } else if (arg == "--accept-restored-audit") {
      accept_restored_audit = true;
    } else if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--version") {
      std::cout << "ijazatd " << IJAZAT_VERSION << '\n';
      return 0;
    } else {
      return usage("unexpected argument \"" + arg + "\"");
    }
  }
  if (config_path.empty()) return usage("--config FILE is required");
  if (check_only && (!port_file.empty() || accept_restored_audit)) {
    return usage("--check-config takes neither --port-file nor --accept-restored-audit");
  }
  if (syntax_only && (!check_only || allow_root)) {
    return usage("--syntax-only goes with --check-config alone");
  }
  auto config = ijazat::appliance::LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "ijazatd: invalid configuration:\n" << config.error().message() << '\n';
    return 2;
  }
  if (syntax_only) {
    std::cout << "ijazatd: " << config_path
              << ": syntax and values valid (files, HSM and keys not checked)\n";
    return 0;
  }
  if (::geteuid() == 0 && !allow_root) {
    // A flaw in the HTTPS server would hand an attacker the whole machine, not one account.
    // A check as root would create files (the store, the token's locks) the service cannot use.
    std::cerr << (check_only
                      ? "ijazatd: refusing to check as root: run the check as the service user, "
                        "with its environment (runuser -u ijazat -- env "
                        "SOFTHSM2_CONF=/etc/ijazat/softhsm2.conf ijazatd --check-config FILE), "
                        "or give --syntax-only, or --allow-root for development\n"
                      : "ijazatd: refusing to run as root: run it as an unprivileged user (the "
                        "packaged unit runs it as ijazat), or pass --allow-root for "
                        "development\n");
    return kExitRefused;
  }
  // Before the PIN is read, for the check as for the start.
  HardenProcess();
  if (check_only) {
    auto checked = ijazat::appliance::Appliance::Check(*config);
    if (!checked.ok()) {
      std::cerr << "ijazatd: " << config_path
                << ": the start would fail: " << checked.error().message() << '\n';
      return ijazat::appliance::ExitStatusFor(checked.error());
    }
    std::cout << "ijazatd: " << config_path << " is valid; the start would serve on "
              << config->server.listen << ":\n";
    for (const std::string& line : *checked) std::cout << "  " << line << '\n';
    return 0;
  }

  // Signals are taken synchronously by this thread; every thread started after inherits the
  // mask, so none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ijazat::appliance::ApplianceOptions options;
  options.accept_restored_audit_chain = accept_restored_audit;
  auto appliance = ijazat::appliance::Appliance::Start(*config, options);
  if (!appliance.ok()) {
    std::cerr << "ijazatd: cannot start: " << appliance.error().message() << '\n';
    return ijazat::appliance::ExitStatusFor(appliance.error());
  }
  if (!port_file.empty()) {
    std::ofstream(port_file) << (*appliance)->port() << '\n';
  }
  timespec tick{1, 0};
  int seconds = 0;
  for (;;) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGHUP) {
      (void)(*appliance)->Reload();
    } else if (sig == SIGTERM || sig == SIGINT) {
      break;
    } else if (++seconds % 60 == 0) {
      (*appliance)->Sweep();
    }
    // The HSM refused the PIN when logging in again after an outage: nothing will log in
    // again, and the service manager must not restart into the same refusal (status 3).
    if (const auto refused = (*appliance)->hsm().LoginRefused()) {
      std::cerr << "ijazatd: stopping: " << refused->message() << '\n';
      (*appliance)->Stop();
      return 3;
    }
  }
  (*appliance)->Stop();
  return 0;
}
