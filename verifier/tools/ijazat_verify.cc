// ijazat-verify: verifies a consent token or receipt against the appliance's JWKS, offline.
// The checks are the library's (ijazat/verifier/verifier.h); this file only reads arguments,
// the JWKS (a file, or a URL through curl) and the token, and maps the result to an exit code.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ijazat/verifier/jwks.h"
#include "ijazat/verifier/verifier.h"

extern char** environ;

namespace {

using ijazat::verifier::Jwks;
using ijazat::verifier::TokenType;
using ijazat::verifier::VerifyOptions;

constexpr int kExitOk = 0;
constexpr int kExitRejected = 1;
constexpr int kExitUsage = 2;
constexpr int kExitJwks = 3;

constexpr char kDefaultCaFile[] = "/etc/ssl/certs/ca-certificates.crt";
constexpr int kFetchTimeoutSeconds = 10;

constexpr char kUsage[] =
    R"(usage: ijazat-verify --jwks FILE|URL --aud PROVIDER_ID [options] TOKEN|-

Verifies an Ijazat consent token (or, with --receipt, a consent receipt) offline against the
appliance's JWKS and prints its verified claims as JSON. TOKEN "-" reads the token from
standard input. The format and every check are described in docs/consent-token.md.

Options:
  --jwks FILE|URL     the JWKS: a file, an https:// URL (TLS verified), or an http:// URL on
                      the loopback interface only (localhost, 127.0.0.1, [::1])
  --aud PROVIDER_ID   your provider id; the token's aud must name it (required)
  --iss ISSUER        also require this iss
  --at TIME           verify as of TIME: Unix seconds, or RFC 3339 UTC such as
                      2025-03-01T10:00:00Z (default: now)
  --leeway SECONDS    clock skew allowed for exp, nbf and iat, 0 to 300 (default 60)
  --receipt           expect a consent receipt (typ consent-receipt+jwt)
  --cacert FILE       CA bundle for https:// (default /etc/ssl/certs/ca-certificates.crt)
  -h, --help          this text

Exit codes: 0 verified, 1 token rejected (the line names the reason: malformed,
alg_not_allowed, forbidden_header, wrong_typ, unknown_kid, bad_signature, missing_claim,
wrong_issuer, wrong_audience, not_yet_valid, expired), 2 usage, 3 JWKS unavailable or invalid.
)";

struct Arguments {
  std::string jwks;
  std::string audience;
  std::optional<std::string> issuer;
  std::optional<std::int64_t> at;
  std::int64_t leeway = ijazat::verifier::kDefaultLeewaySeconds;
  bool receipt = false;
  std::string ca_file = kDefaultCaFile;
  std::string token;
  bool help = false;
};

// A failure that ends the program: its exit code and its one line.
struct Failure {
  int exit_code;
  std::string message;
};

template <typename T>
using Outcome = std::variant<T, Failure>;

Failure Usage(std::string message) { return {kExitUsage, std::move(message)}; }

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, std::int64_t m, std::int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::optional<std::int64_t> ParseDigits(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return value;
}

// Unix seconds, or RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)".
std::optional<std::int64_t> ParseTime(std::string_view text) {
  if (const auto seconds = ParseDigits(text)) return seconds;
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  const auto year = ParseDigits(text.substr(0, 4));
  const auto month = ParseDigits(text.substr(5, 2));
  const auto day = ParseDigits(text.substr(8, 2));
  const auto hour = ParseDigits(text.substr(11, 2));
  const auto minute = ParseDigits(text.substr(14, 2));
  const auto second = ParseDigits(text.substr(17, 2));
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    std::size_t digits = 1;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 1) return std::nullopt;
    rest.remove_prefix(digits);  // fractions of a second are dropped
  }
  if (rest != "Z" && rest != "z" && rest != "+00:00") return std::nullopt;
  static constexpr std::array<int, 12> kDaysInMonth = {31, 29, 31, 30, 31, 30,
                                                       31, 31, 30, 31, 30, 31};
  if (*month < 1 || *month > 12 || *day < 1 || *hour > 23 || *minute > 59 || *second > 59) {
    return std::nullopt;
  }
  const bool leap = (*year % 4 == 0 && *year % 100 != 0) || *year % 400 == 0;
  const auto month_index = static_cast<std::size_t>(*month - 1);
  if (*day > kDaysInMonth[month_index] || (*month == 2 && *day == 29 && !leap)) {
    return std::nullopt;
  }
  return DaysFromCivil(*year, *month, *day) * 86400 + *hour * 3600 + *minute * 60 + *second;
}

Outcome<Arguments> ParseArguments(const std::vector<std::string>& args) {
  Arguments out;
  bool have_token = false;
  std::vector<std::string> seen;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      return out;
    }
    const bool takes_value = arg == "--jwks" || arg == "--aud" || arg == "--iss" || arg == "--at" ||
                             arg == "--leeway" || arg == "--cacert";
    if (takes_value || arg == "--receipt") {
      if (std::find(seen.begin(), seen.end(), arg) != seen.end()) {
        return Usage(arg + " is given twice");
      }
      seen.push_back(arg);
    }
    if (takes_value) {
      if (i + 1 >= args.size()) return Usage(arg + " needs a value");
      const std::string& value = args[++i];
      if (arg == "--jwks") {
        out.jwks = value;
      } else if (arg == "--aud") {
        if (value.empty()) return Usage("--aud needs a provider id");
        out.audience = value;
      } else if (arg == "--iss") {
        if (value.empty()) return Usage("--iss needs an issuer");
        out.issuer = value;
      } else if (arg == "--at") {
        out.at = ParseTime(value);
        if (!out.at) {
          return Usage("--at takes Unix seconds or an RFC 3339 UTC time (2025-03-01T10:00:00Z)");
        }
      } else if (arg == "--leeway") {
        const auto leeway = ParseDigits(value);
        if (!leeway || *leeway > ijazat::verifier::kMaxLeewaySeconds) {
          return Usage("--leeway takes whole seconds from 0 to 300");
        }
        out.leeway = *leeway;
      } else {
        out.ca_file = value;
      }
    } else if (arg == "--receipt") {
      out.receipt = true;
    } else if (arg.size() > 1 && arg.front() == '-' && arg != "-") {
      return Usage("unknown option " + arg);
    } else if (have_token) {
      return Usage("more than one token given");
    } else {
      out.token = arg;
      have_token = true;
    }
  }
  if (out.jwks.empty()) return Usage("--jwks FILE|URL is required");
  if (out.audience.empty()) return Usage("--aud PROVIDER_ID is required");
  if (!have_token) return Usage("no token given (use - to read it from standard input)");
  return out;
}

Outcome<std::string> ReadLimited(std::istream& in, std::size_t limit, const std::string& what,
                                 int exit_code) {
  std::string data;
  std::array<char, 4096> buffer{};
  while (in) {
    in.read(buffer.data(), buffer.size());
    data.append(buffer.data(), static_cast<std::size_t>(in.gcount()));
    if (data.size() > limit) {
      return Failure{exit_code, what + " is larger than " + std::to_string(limit) + " bytes"};
    }
  }
  if (in.bad()) return Failure{exit_code, "cannot read " + what};
  return data;
}

// The host of an http:// URL is acceptable only on the loopback interface.
bool IsLoopbackHttpUrl(std::string_view url) {
  std::string_view rest = url.substr(std::string_view("http://").size());
  const auto end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) return false;
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    host =
        host.substr(0, host.find(']') == std::string_view::npos ? host.size() : host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "127.0.0.1" || host == "[::1]";
}

// Runs curl (no shell, no ~/.curlrc, no redirects) and returns the body.
Outcome<std::string> FetchUrl(const std::string& url, bool https, const std::string& ca_file) {
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Usage("the JWKS URL contains white space or control characters");
    }
  }
  std::array<int, 2> out_pipe{};
  std::array<int, 2> err_pipe{};
  if (pipe2(out_pipe.data(), O_CLOEXEC) != 0) return Failure{kExitJwks, "cannot create a pipe"};
  if (pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Failure{kExitJwks, "cannot create a pipe"};
  }
  std::vector<std::string> argv_strings = {"curl",
                                           "-q",
                                           "--silent",
                                           "--show-error",
                                           "--fail",
                                           "--proto",
                                           https ? "=https" : "=http",
                                           "--max-time",
                                           std::to_string(kFetchTimeoutSeconds),
                                           "--max-filesize",
                                           std::to_string(ijazat::verifier::kMaxJwksSize)};
  if (https) {
    argv_strings.insert(argv_strings.end(), {"--cacert", ca_file});
  }
  argv_strings.insert(argv_strings.end(), {"--url", url});
  std::vector<char*> argv;
  argv.reserve(argv_strings.size() + 1);
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "curl", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawned != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return Failure{kExitJwks, std::string("cannot run curl: ") + std::strerror(spawned)};
  }

  std::string body;
  std::string errors;
  std::array<pollfd, 2> fds = {pollfd{out_pipe[0], POLLIN, 0}, pollfd{err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      std::array<char, 4096> buffer{};
      const ssize_t n = read(fds[i].fd, buffer.data(), buffer.size());
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      std::string& target = i == 0 ? body : errors;
      if (target.size() <= ijazat::verifier::kMaxJwksSize) {
        target.append(buffer.data(), static_cast<std::size_t>(n));
      }
    }
  }
  for (const auto& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string reason = errors.substr(0, errors.find('\n'));
    if (reason.empty()) reason = "curl failed";
    return Failure{kExitJwks, "cannot fetch " + url + ": " + reason};
  }
  return body;
}

Outcome<std::string> LoadJwksDocument(const Arguments& args) {
  const std::string& source = args.jwks;
  if (source.rfind("https://", 0) == 0) return FetchUrl(source, true, args.ca_file);
  if (source.rfind("http://", 0) == 0) {
    if (!IsLoopbackHttpUrl(source)) {
      return Usage("http:// is allowed only for loopback hosts; use https://");
    }
    return FetchUrl(source, false, args.ca_file);
  }
  if (source.find("://") != std::string::npos) {
    return Usage("--jwks takes a file, an https:// URL or a loopback http:// URL");
  }
  std::ifstream in(source, std::ios::binary);
  if (!in) return Failure{kExitJwks, "cannot read " + source};
  return ReadLimited(in, ijazat::verifier::kMaxJwksSize, source, kExitJwks);
}

std::string TrimWhiteSpace(std::string text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!text.empty() && is_space(text.back())) text.pop_back();
  std::size_t start = 0;
  while (start < text.size() && is_space(text[start])) ++start;
  return text.substr(start);
}

int Run(const std::vector<std::string>& raw_args, std::istream& in, std::ostream& out,
        std::ostream& err) {
  const auto fail = [&err](const Failure& failure) {
    err << "ijazat-verify: " << failure.message << "\n";
    return failure.exit_code;
  };
  auto parsed = ParseArguments(raw_args);
  if (const auto* failure = std::get_if<Failure>(&parsed)) {
    if (failure->exit_code == kExitUsage) {
      err << "ijazat-verify: " << failure->message << " (see --help)\n";
      return kExitUsage;
    }
    return fail(*failure);
  }
  const Arguments& args = std::get<Arguments>(parsed);
  if (args.help) {
    out << kUsage;
    return kExitOk;
  }

  auto document = LoadJwksDocument(args);
  if (const auto* failure = std::get_if<Failure>(&document)) return fail(*failure);
  const auto jwks = Jwks::Parse(std::get<std::string>(document));
  if (!jwks.ok()) return fail({kExitJwks, jwks.error().message()});

  std::string token = args.token;
  if (token == "-") {
    auto read = ReadLimited(in, 4 * ijazat::verifier::kMaxTokenSize, "the token", kExitRejected);
    if (const auto* failure = std::get_if<Failure>(&read)) {
      return fail({kExitRejected, "rejected (malformed): " + failure->message});
    }
    token = std::get<std::string>(read);
  }
  token = TrimWhiteSpace(std::move(token));

  VerifyOptions options;
  options.type = args.receipt ? TokenType::kReceipt : TokenType::kConsentToken;
  options.audience = args.audience;
  options.issuer = args.issuer;
  options.now = args.at;
  options.leeway_seconds = args.leeway;
  const auto verified = ijazat::verifier::Verify(token, *jwks, options);
  if (!verified.ok()) {
    const auto& error = verified.error();
    if (error.reason() == "invalid_options") return fail(Usage(error.message()));
    std::string message = "rejected (" + std::string(error.reason()) + "): " + error.message();
    // A file's name where the token goes (a JWS holds no "/"): say how to pass a file.
    if (error.reason() == "malformed" && args.token != "-" &&
        (token.find('/') != std::string::npos || ::access(token.c_str(), F_OK) == 0)) {
      message += " (to verify a token kept in a file, give - and redirect it: < FILE)";
    }
    return fail({kExitRejected, message});
  }
  // The payload was parsed strictly by Verify; this keeps the signed member order.
  out << nlohmann::ordered_json::parse(verified->payload_json).dump(2) << "\n";
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return Run(args, std::cin, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "ijazat-verify: internal error: " << e.what() << "\n";
    return kExitRejected;
  }
}
