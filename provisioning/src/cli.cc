#include "ijazat/provisioning/cli.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "ijazat/hsm/pkcs11_hsm.h"
#include "ijazat/tlog/note.h"

namespace ijazat::provisioning {
namespace {

using hsm::KeyInfo;
using hsm::KeyKind;
using hsm::KeyRef;
using hsm::PinSource;
using hsm::Pkcs11Hsm;

constexpr char kDefaultToken[] = "ijazat-dev";
// Where `make run` keeps the local development token, relative to the working directory; used
// only with --dev, never by default (run as root from someone else's directory, a default
// there would hand that directory's owner the token and the PIN the tool uses).
constexpr char kLocalHsmDir[] = "var/hsm";

constexpr char kUsage[] = R"(usage: ijazat-provision [options] COMMAND [command options]

Commands:
  tokens                          list the tokens the PKCS#11 module shows
  init-token [--label LABEL]      initialise a development token (SoftHSM): SO PIN from
                                  --so-pin-file FILE or IJAZAT_HSM_SO_PIN, user PIN from the
                                  PIN source below
  keygen --name NAME              create version 1 of a key (refuses if it exists)
  keygen --all                    create version 1 of every key that has none yet
  rotate --name NAME              create the next version and make it active
  retire --name NAME --version V  retire a verify-only version
  destroy --name NAME --version V --confirm
                                  destroy a retired version's key objects for good
  list [--json]                   every key version: state, kid, mechanism, attributes
  check [--json]                  audit every key against its template (exit 1 on deviation)
  jwks                            the JWKS of every non-retired receipt-signing version
  audit-key --origin ORIGIN       the verifier key of every non-retired log version, for
                                  ijazat-audit verify --key; ORIGIN is "<issuer host>/audit"

Key names: otp, receipt, index, data, log.

Options (each also read from the environment variable shown):
  --module PATH     PKCS#11 module (IJAZAT_HSM_MODULE; default /usr/lib/softhsm/libsofthsm2.so)
  --token LABEL     token label (IJAZAT_HSM_TOKEN; default ijazat-dev)
  --pin-file FILE   user PIN file (IJAZAT_HSM_PIN_FILE), owned by the user running this tool,
                    mode 0600 or 0400; without one, the PIN is read from IJAZAT_HSM_PIN
  --dev             the local development token of `make run` in ./var/hsm: its user.pin (when
                    no PIN is given otherwise) and its softhsm2.conf (when SOFTHSM2_CONF is not
                    set); both must belong to the user running the tool, writable by nobody else
  -h, --help        this text

PINs are never accepted on the command line.

Exit codes: 0 ok, 1 check found deviations, 2 usage, 3 module not loadable, 4 token not found,
5 PIN problem, 6 key or token exists, 7 unknown key or version, 8 key state forbids it,
9 HSM failure.
)";

struct Options {
  std::string command;
  std::string module_path;
  std::string token;
  std::optional<std::string> pin_file;
  std::optional<std::string> so_pin_file;
  std::optional<std::string> label;
  std::optional<std::string> name;
  std::optional<std::string> version;
  std::optional<std::string> origin;
  bool all = false;
  bool confirm = false;
  bool json = false;
  bool help = false;
  bool dev = false;
  bool token_given = false;  // --token on the command line (not the default or environment)
};

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

struct UsageError {
  std::string message;
};

Result<Options> Parse(const std::vector<std::string>& args) {
  Options options;
  options.module_path = EnvOr("IJAZAT_HSM_MODULE", hsm::kDefaultModulePath);
  options.token = EnvOr("IJAZAT_HSM_TOKEN", kDefaultToken);
  if (const char* file = std::getenv("IJAZAT_HSM_PIN_FILE"); file != nullptr && *file != '\0') {
    options.pin_file = file;
  }
  auto usage = [](const std::string& message) {
    return Error(ErrorCode::kInvalidArgument, message, "usage");
  };
  const std::map<std::string, std::optional<std::string>*> valued = {
      {"--so-pin-file", &options.so_pin_file},
      {"--label", &options.label},
      {"--name", &options.name},
      {"--version", &options.version},
      {"--origin", &options.origin}};
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto take_value = [&]() -> Result<std::string> {
      if (i + 1 >= args.size() || args[i + 1].empty()) return usage(arg + " needs a value");
      return args[++i];
    };
    if (arg == "-h" || arg == "--help") {
      options.help = true;
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--all") {
      options.all = true;
    } else if (arg == "--confirm") {
      options.confirm = true;
    } else if (arg == "--dev") {
      options.dev = true;
    } else if (arg == "--pin" || arg == "--so-pin" || arg.rfind("--pin=", 0) == 0 ||
               arg.rfind("--so-pin=", 0) == 0) {
      return usage(
          "PINs are never taken from the command line, where other users and shell histories "
          "can read them; use --pin-file FILE or IJAZAT_HSM_PIN (and --so-pin-file FILE or "
          "IJAZAT_HSM_SO_PIN)");
    } else if (arg == "--module") {
      IJAZAT_ASSIGN_OR_RETURN(options.module_path, take_value());
    } else if (arg == "--token") {
      IJAZAT_ASSIGN_OR_RETURN(options.token, take_value());
      options.token_given = true;
    } else if (arg == "--pin-file") {
      IJAZAT_ASSIGN_OR_RETURN(options.pin_file, take_value());
    } else if (const auto it = valued.find(arg); it != valued.end()) {
      if (it->second->has_value()) return usage(arg + " is given twice");
      IJAZAT_ASSIGN_OR_RETURN(*it->second, take_value());
    } else if (!arg.empty() && arg[0] == '-') {
      return usage("unknown option " + arg);
    } else if (options.command.empty()) {
      options.command = arg;
    } else {
      return usage("unexpected argument \"" + arg + "\"");
    }
  }
  return options;
}

int ExitCodeFor(const Error& error) {
  const std::string_view reason = error.reason();
  if (reason == "usage") return kExitUsage;
  if (reason == "module_load_failed") return kExitModule;
  if (reason == "token_not_found" || reason == "no_tokens" || reason == "no_free_slot") {
    return kExitToken;
  }
  if (reason == "pin_incorrect" || reason == "pin_locked" || reason == "pin_source" ||
      reason == "pin_file_unsafe" || reason == "pin_invalid" || reason == "pin_not_usable") {
    return kExitPin;
  }
  if (reason == "key_exists" || reason == "token_exists") return kExitExists;
  if (reason == "unknown_key") return kExitUnknownKey;
  if (reason == "key_active" || reason == "key_retired" || reason == "key_not_active" ||
      reason == "key_not_retired") {
    return kExitKeyState;
  }
  if (reason == "invalid_label") return kExitUsage;
  return kExitHsm;
}

// Whether a file the tool would trust from the working directory is safe to: a regular file
// of the user running the tool that nobody else may write.
Status CheckOwnFile(const std::filesystem::path& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return Error(ErrorCode::kInvalidArgument, path.string() + " is not a regular file",
                 "pin_source");
  }
  if (info.st_uid != ::geteuid() || (info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Error(ErrorCode::kInvalidArgument,
                 path.string() +
                     " must belong to the user running this tool and be writable by nobody "
                     "else: it names the token directory the tool would trust",
                 "pin_file_unsafe");
  }
  return OkStatus();
}

// A file of the working directory's local token that --dev may trust: its path resolved (no
// symbolic link left that someone could swap between this check and its use), every directory
// on the way this user's or root's and writable by nobody else (or sticky, as /tmp), and the
// file itself this user's and writable by nobody else. The resolved path is the one to use.
Result<std::filesystem::path> TrustedLocalFile(const std::filesystem::path& relative) {
  std::error_code error;
  const std::filesystem::path resolved = std::filesystem::canonical(relative, error);
  if (error) {
    return Error(ErrorCode::kInvalidArgument,
                 "--dev: there is no " + relative.string() +
                     " here; run the tool from the repository after `make run`",
                 "pin_source");
  }
  for (std::filesystem::path dir = resolved.parent_path();; dir = dir.parent_path()) {
    struct stat info {};
    if (::lstat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      return Error(ErrorCode::kInvalidArgument, "--dev: cannot inspect " + dir.string(),
                   "pin_source");
    }
    const bool owner = info.st_uid == ::geteuid() || info.st_uid == 0;
    const bool shared = (info.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (info.st_mode & S_ISVTX) == 0;
    if (!owner || shared) {
      return Error(ErrorCode::kInvalidArgument,
                   "--dev: " + dir.string() +
                       (owner ? " is writable by other users" : " belongs to another user") +
                       ", who could swap the local token's files: run the tool from your own "
                       "clone",
                   "pin_file_unsafe");
    }
    if (dir == dir.parent_path()) break;
  }
  IJAZAT_RETURN_IF_ERROR(CheckOwnFile(resolved));
  return resolved;
}

// The PIN source: --pin-file / IJAZAT_HSM_PIN_FILE, then IJAZAT_HSM_PIN, then with --dev the
// local token's file that `make run` writes (PinSource::File checks its owner and mode).
Result<PinSource> UserPinSource(const Options& options) {
  if (options.pin_file) return PinSource::File(*options.pin_file);
  if (std::getenv("IJAZAT_HSM_PIN") != nullptr) return PinSource::Environment("IJAZAT_HSM_PIN");
  const auto local = std::filesystem::path(kLocalHsmDir) / "user.pin";
  if (options.dev) {
    IJAZAT_ASSIGN_OR_RETURN(const std::filesystem::path trusted, TrustedLocalFile(local));
    return PinSource::File(trusted.string());
  }
  std::string message = "no user PIN source: give --pin-file FILE or set IJAZAT_HSM_PIN";
  if (std::filesystem::exists(local)) {
    message += " (for the local development token in " + std::string(kLocalHsmDir) +
               ", add --dev: the tool never uses a working directory's files unasked)";
  }
  return Error(ErrorCode::kInvalidArgument, message, "pin_source");
}

// A SoftHSM module reads its configuration from SOFTHSM2_CONF. With --dev and none set, use the
// local development token's configuration of `make run` in the working directory.
Status UseLocalSoftHsmConfig(const Options& options) {
  if (!options.dev || std::getenv("SOFTHSM2_CONF") != nullptr) return OkStatus();
  if (options.module_path.find("softhsm") == std::string::npos) return OkStatus();
  const auto local = std::filesystem::path(kLocalHsmDir) / "softhsm2.conf";
  IJAZAT_ASSIGN_OR_RETURN(const std::filesystem::path trusted, TrustedLocalFile(local));
  setenv("SOFTHSM2_CONF", trusted.c_str(), 1);
  return OkStatus();
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonValue(const std::string& value) {
  if (value == "true" || value == "false") return value;
  if (value == "absent") return "null";
  return JsonString(value);
}

Result<KeyKind> KindArgument(const Options& options) {
  if (!options.name) {
    return Error(ErrorCode::kInvalidArgument, options.command + " needs --name NAME", "usage");
  }
  const auto kind = hsm::ParseKeyKind(*options.name);
  if (!kind) {
    return Error(
        ErrorCode::kInvalidArgument,
        "unknown key name \"" + *options.name + "\"; the keys are otp, receipt, index, data, log",
        "usage");
  }
  return *kind;
}

Result<std::unique_ptr<Pkcs11Hsm>> OpenHsm(const Options& options) {
  IJAZAT_ASSIGN_OR_RETURN(PinSource pin, UserPinSource(options));
  hsm::HsmOptions hsm_options;
  hsm_options.module_path = options.module_path;
  hsm_options.token_label = options.token;
  hsm_options.pin = pin;
  hsm_options.self_test = false;  // the appliance tests at start; keys may not exist yet here
  hsm_options.require_conforming_keys = false;  // `check` reports what deviates
  hsm_options.max_idle_sessions = 1;
  return Pkcs11Hsm::Open(hsm_options);
}

void PrintKey(const KeyInfo& key, std::ostream& out) {
  out << key.ref.Label() << "  " << hsm::KeyStateName(key.state) << "  " << key.mechanism;
  if (!key.kid.empty()) out << "  kid=" << key.kid;
  out << '\n';
  for (const auto& object : key.objects) {
    out << "    " << object.object_class << ':';
    for (const auto& attribute : object.attributes) {
      out << ' ' << attribute.name << '=' << attribute.value;
    }
    out << '\n';
  }
}

void PrintKeyJson(const KeyInfo& key, std::ostream& out) {
  out << "{\"name\":" << JsonString(hsm::KeyKindName(key.ref.kind))
      << ",\"version\":" << key.ref.version << ",\"label\":" << JsonString(key.ref.Label())
      << ",\"state\":" << JsonString(hsm::KeyStateName(key.state))
      << ",\"mechanism\":" << JsonString(key.mechanism)
      << ",\"kid\":" << (key.kid.empty() ? "null" : JsonString(key.kid)) << ",\"objects\":[";
  for (std::size_t i = 0; i < key.objects.size(); ++i) {
    const auto& object = key.objects[i];
    out << (i > 0 ? "," : "") << "{\"class\":" << JsonString(object.object_class)
        << ",\"attributes\":{";
    for (std::size_t j = 0; j < object.attributes.size(); ++j) {
      const auto& attribute = object.attributes[j];
      out << (j > 0 ? "," : "") << JsonString(attribute.name) << ':' << JsonValue(attribute.value);
    }
    out << "}}";
  }
  out << "]}";
}

Status RunCommand(const Options& options, std::ostream& out) {
  const std::string& command = options.command;
  if (command == "tokens") {
    IJAZAT_ASSIGN_OR_RETURN(auto tokens, hsm::ListTokens(options.module_path));
    for (const auto& token : tokens) {
      out << (token.initialized ? token.label : "(uninitialised)") << "  " << token.manufacturer
          << "  " << token.model << "  serial=" << token.serial << '\n';
    }
    return OkStatus();
  }
  if (command == "init-token") {
    if (options.label && options.token_given && *options.label != options.token) {
      return Error(ErrorCode::kInvalidArgument,
                   "init-token: --token " + options.token + " and --label " + *options.label +
                       " name different tokens; give the label once",
                   "usage");
    }
    const std::string label = options.label.value_or(options.token);
    if (!options.so_pin_file && std::getenv("IJAZAT_HSM_SO_PIN") == nullptr) {
      return Error(ErrorCode::kInvalidArgument,
                   "init-token needs the SO PIN: give --so-pin-file FILE (IJAZAT_HSM_SO_PIN is "
                   "not set either)",
                   "pin_source");
    }
    PinSource so_source = options.so_pin_file ? PinSource::File(*options.so_pin_file)
                                              : PinSource::Environment("IJAZAT_HSM_SO_PIN");
    IJAZAT_ASSIGN_OR_RETURN(PinSource user_source, UserPinSource(options));
    IJAZAT_ASSIGN_OR_RETURN(SecretString so_pin, so_source.Read());
    IJAZAT_ASSIGN_OR_RETURN(SecretString user_pin, user_source.Read());
    IJAZAT_RETURN_IF_ERROR(hsm::InitToken(options.module_path, label, so_pin, user_pin));
    out << "initialised token \"" << label << "\"\n";
    return OkStatus();
  }

  static const std::set<std::string> kKeyCommands = {"keygen", "rotate", "retire", "destroy",
                                                     "list",   "check",  "jwks",   "audit-key"};
  if (kKeyCommands.count(command) == 0) {
    return Error(ErrorCode::kInvalidArgument,
                 command.empty() ? "no command given (see --help)"
                                 : "unknown command \"" + command + "\" (see --help)",
                 "usage");
  }
  // Validate the arguments before touching the HSM.
  std::optional<KeyKind> kind;
  std::optional<std::uint32_t> version;
  if (command == "keygen" && options.all) {
    if (options.name) {
      return Error(ErrorCode::kInvalidArgument, "give either --name or --all", "usage");
    }
  } else if (command == "keygen" || command == "rotate" || command == "retire" ||
             command == "destroy") {
    IJAZAT_ASSIGN_OR_RETURN(kind, KindArgument(options));
  }
  if (command == "destroy" && !options.confirm) {
    return Error(ErrorCode::kInvalidArgument,
                 "destroy cannot be undone: anything signed, sealed or indexed with the version "
                 "can then never be checked or opened again; add --confirm",
                 "usage");
  }
  if (command == "retire" || command == "destroy") {
    const auto parsed =
        options.version ? hsm::ParseKeyLabel("otp/v" + *options.version) : std::optional<KeyRef>();
    if (!parsed) {
      return Error(ErrorCode::kInvalidArgument,
                   command + " needs --version V, a positive whole number", "usage");
    }
    version = parsed->version;
  }

  if (command == "audit-key" && !options.origin) {
    return Error(ErrorCode::kInvalidArgument,
                 "audit-key needs --origin ORIGIN, the appliance's \"<issuer host>/audit\"",
                 "usage");
  }

  IJAZAT_ASSIGN_OR_RETURN(auto hsm, OpenHsm(options));
  if (command == "keygen" && options.all) {
    IJAZAT_ASSIGN_OR_RETURN(auto keys, hsm->ListKeys());
    std::set<KeyKind> present;
    for (const auto& key : keys) present.insert(key.ref.kind);
    for (const KeyKind each : hsm::kAllKeyKinds) {
      if (present.count(each) > 0) continue;
      IJAZAT_ASSIGN_OR_RETURN(KeyInfo created, hsm->GenerateKey(each));
      out << "created " << created.ref.Label() << '\n';
    }
    return OkStatus();
  }
  if (command == "keygen" || command == "rotate") {
    IJAZAT_ASSIGN_OR_RETURN(KeyInfo created,
                            command == "keygen" ? hsm->GenerateKey(*kind) : hsm->RotateKey(*kind));
    out << "created " << created.ref.Label() << " (active)";
    if (!created.kid.empty()) out << " kid=" << created.kid;
    out << '\n';
    return OkStatus();
  }
  if (command == "retire") {
    const KeyRef key{*kind, *version};
    IJAZAT_RETURN_IF_ERROR(hsm->RetireKey(key));
    out << "retired " << key.Label() << '\n';
    return OkStatus();
  }
  if (command == "destroy") {
    const KeyRef key{*kind, *version};
    IJAZAT_RETURN_IF_ERROR(hsm->DestroyKey(key));
    out << "destroyed " << key.Label() << " (its key objects are gone; the record stays)\n";
    return OkStatus();
  }
  if (command == "list") {
    IJAZAT_ASSIGN_OR_RETURN(auto keys, hsm->ListKeys());
    if (options.json) {
      out << '[';
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (i > 0) out << ',';
        PrintKeyJson(keys[i], out);
      }
      out << "]\n";
    } else if (keys.empty()) {
      out << "no keys on token \"" << options.token << "\"; create them with keygen\n";
    } else {
      for (const auto& key : keys) PrintKey(key, out);
    }
    return OkStatus();
  }
  if (command == "jwks") {
    IJAZAT_ASSIGN_OR_RETURN(std::string jwks, hsm->Jwks());
    out << jwks << '\n';
    return OkStatus();
  }
  if (command == "audit-key") {
    IJAZAT_ASSIGN_OR_RETURN(auto keys, hsm->ListKeys());
    int printed = 0;
    for (const auto& key : keys) {
      if (key.ref.kind != KeyKind::kLog || key.state == hsm::KeyState::kRetired ||
          key.state == hsm::KeyState::kDestroyed) {
        continue;
      }
      IJAZAT_ASSIGN_OR_RETURN(const hsm::PublicKey public_key, hsm->ExportPublicKey(key.ref));
      const auto verifier = tlog::Ed25519VerifierKey(*options.origin, public_key.point);
      if (!verifier.ok()) {
        return Error(ErrorCode::kInvalidArgument, "--origin: " + verifier.error().message(),
                     "usage");
      }
      out << *verifier << '\n';
      ++printed;
    }
    if (printed == 0) {
      return Error(ErrorCode::kNotFound,
                   "no log key on the token; create one with keygen --name log", "unknown_key");
    }
    return OkStatus();
  }
  // check
  IJAZAT_ASSIGN_OR_RETURN(auto keys, hsm->ListKeys());
  IJAZAT_ASSIGN_OR_RETURN(auto deviations, hsm->AuditKeys());
  if (options.json) {
    out << "{\"keys\":" << keys.size() << ",\"deviations\":[";
    for (std::size_t i = 0; i < deviations.size(); ++i) {
      const auto& d = deviations[i];
      out << (i > 0 ? "," : "") << "{\"key\":" << JsonString(d.key)
          << ",\"attribute\":" << JsonString(d.attribute)
          << ",\"expected\":" << JsonString(d.expected) << ",\"found\":" << JsonString(d.found)
          << '}';
    }
    out << "]}\n";
  } else {
    for (const auto& d : deviations) {
      out << d.key << ": " << d.attribute << " is " << d.found << ", expected " << d.expected
          << '\n';
    }
    if (deviations.empty()) {
      out << "ok: " << keys.size() << " key versions match their templates\n";
    } else {
      out << deviations.size() << " deviation(s) in " << keys.size() << " key versions\n";
    }
  }
  if (!deviations.empty()) {
    return Error(ErrorCode::kFailedPrecondition, "keys deviate from their templates", "deviations");
  }
  return OkStatus();
}

}  // namespace

int RunProvision(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto options = Parse(args);
  if (!options.ok()) {
    err << "ijazat-provision: " << options.error().message() << '\n';
    return kExitUsage;
  }
  if (options->help) {
    out << kUsage;
    return kExitOk;
  }
  Status status = UseLocalSoftHsmConfig(*options);
  if (status.ok()) status = RunCommand(*options, out);
  if (status.ok()) return kExitOk;
  if (status.error().reason() == "deviations") return kExitDeviations;
  err << "ijazat-provision: " << status.error().message() << '\n';
  return ExitCodeFor(status.error());
}

}  // namespace ijazat::provisioning
