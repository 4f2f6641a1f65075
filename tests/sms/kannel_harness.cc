#include "kannel_harness.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace ijazat::testing {
namespace {

constexpr char kAdminPassword[] = "kannel-admin-for-tests";

// A port the kernel considers free right now (bound to 0, read back, released).
int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

bool PortAccepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool accepted = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return accepted;
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Tail(const std::string& text, std::size_t n = 3000) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

KannelHarness::KannelHarness(KannelHarnessOptions options) : options_(std::move(options)) {
  std::filesystem::create_directories(options_.dir);
  // Four distinct ports; they are kept for the harness's lifetime so that the appliance's
  // configuration (sendsms URL) stays valid across Kannel restarts.
  std::vector<int> ports;
  while (ports.size() < 4) {
    const int port = FreeLoopbackPort();
    if (port != 0 && std::find(ports.begin(), ports.end(), port) == ports.end()) {
      ports.push_back(port);
    }
  }
  admin_port_ = ports[0];
  smsbox_port_ = ports[1];
  smsc_port_ = ports[2];
  sendsms_port_ = ports[3];

  const std::string dir = options_.dir.string();
  // bearerbox's access log as docs/sms-gateway.md tells operators to keep it: no message text
  // (%b, %a). smsbox gets none: it would log every message's text, and has no format setting.
  const std::string access_format =
      "access-log-clean = true\n"
      "access-log-format = \"%t %l [SMSC:%i] [from:%p] [to:%P] [flags:%m:%c:%M:%C:%d]\"\n";
  std::ostringstream conf;
  conf << "group = core\n"
       << "admin-port = " << admin_port_ << "\n"
       << "admin-interface = 127.0.0.1\n"
       << "admin-password = " << kAdminPassword << "\n"
       << "smsbox-port = " << smsbox_port_ << "\n"
       << "box-allow-ip = 127.0.0.1\n"
       << "log-file = \"" << dir << "/bearerbox.log\"\n"
       << "log-level = 0\n"
       << "access-log = \"" << dir << "/access.log\"\n"
       << access_format << "dlr-storage = internal\n";
  // Kannel's HTTP client (smsbox calling get-url and dlr-url) checks the server's
  // certificate against this file.
  if (!options_.trusted_ca_file.empty()) {
    conf << "ssl-trusted-ca-file = \"" << options_.trusted_ca_file << "\"\n";
  }
  // smsbox reads its TLS server certificate from the core group.
  if (sendsms_tls()) {
    conf << "ssl-server-cert-file = \"" << options_.sendsms_certificate_file << "\"\n"
         << "ssl-server-key-file = \"" << options_.sendsms_key_file << "\"\n";
  }
  conf << "\n"
       << "group = smsc\n"
       << "smsc = fake\n"
       << "smsc-id = fake\n"
       << "host = 127.0.0.1\n"
       << "port = " << smsc_port_ << "\n"
       << "connect-allow-ip = 127.0.0.1\n"
       << "\n"
       << "group = smsbox\n"
       << "bearerbox-host = 127.0.0.1\n"
       << "bearerbox-port = " << smsbox_port_ << "\n"
       << "sendsms-port = " << sendsms_port_ << "\n"
       << "sendsms-interface = 127.0.0.1\n"
       << (sendsms_tls() ? "sendsms-port-ssl = true\n" : "") << "log-file = \"" << dir
       << "/smsbox.log\"\n"
       << "log-level = 0\n"
       << "\n"
       << "group = sendsms-user\n"
       << "username = " << options_.username << "\n"
       << "password = " << options_.password << "\n"
       << "user-allow-ip = 127.0.0.1\n"
       << "max-messages = 3\n"
       << "concatenation = true\n"
       << "\n"
       << "group = sms-service\n"
       << "keyword = default\n"
       << "catch-all = true\n"
       << "max-messages = 0\n"
       << "get-url = \"" << options_.get_url << "\"\n";
  std::ofstream(options_.dir / "kannel.conf", std::ios::trunc) << conf.str();
}

KannelHarness::~KannelHarness() { Stop(); }

std::string KannelHarness::sendsms_url() const {
  return std::string(sendsms_tls() ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(sendsms_port_) + "/cgi-bin/sendsms";
}

KannelHarness::Process KannelHarness::Spawn(const std::string& name,
                                            const std::vector<std::string>& argv,
                                            const std::filesystem::path& output) {
  Process process;
  process.name = name;
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const std::string out = output.string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: its own process group, so that nothing it starts outlives Terminate().
    ::setpgid(0, 0);
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    if (::chdir(options_.dir.c_str()) != 0) ::_exit(126);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (pid < 0) {
    ADD_FAILURE() << "cannot fork for " << name;
    return process;
  }
  ::setpgid(pid, pid);
  process.pid = pid;
  return process;
}

void KannelHarness::Terminate(Process& process) {
  if (process.pid <= 0) return;
  ::kill(-process.pid, SIGTERM);
  ::kill(process.pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t done = ::waitpid(process.pid, &status, WNOHANG);
    if (done == process.pid || (done < 0 && errno == ECHILD)) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!exited) {
    ::kill(-process.pid, SIGKILL);
    ::kill(process.pid, SIGKILL);
    int status = 0;
    ::waitpid(process.pid, &status, 0);
  }
  // Anything left in its group (Kannel boxes do not fork, but be sure).
  ::kill(-process.pid, SIGKILL);
  process.pid = -1;
}

bool KannelHarness::WaitUntil(const std::function<bool()>& ready,
                              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ready();
}

std::string KannelHarness::AdminStatus() const {
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(admin_port_));
    session.setTimeout(Poco::Timespan(2, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET,
                                   std::string("/status.txt?password=") + kAdminPassword,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    std::string body(std::istreambuf_iterator<char>(in), {});
    return response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK ? body : "";
  } catch (const Poco::Exception&) {
    return "";
  } catch (const std::exception&) {
    return "";
  }
}

bool KannelHarness::StartFakeSmsc(const std::vector<std::string>& messages) {
  Terminate(fakesmsc_);
  // fakesmsc needs at least one message on its command line; -m bounds how many it sends.
  std::vector<std::string> argv = {kFakeSmsc,
                                   "-H",
                                   "127.0.0.1",
                                   "-r",
                                   std::to_string(smsc_port_),
                                   "-i",
                                   "0.1",
                                   "-m",
                                   std::to_string(messages.size())};
  if (messages.empty()) {
    argv.push_back("0 0 text unused");
  } else {
    argv.insert(argv.end(), messages.begin(), messages.end());
  }
  ++fakesmsc_runs_;
  fakesmsc_ = Spawn("fakesmsc", argv,
                    options_.dir / ("fakesmsc-" + std::to_string(fakesmsc_runs_) + ".out"));
  const bool online = WaitUntil(
      [&] {
        const std::string status = AdminStatus();
        const auto smsc = status.find("SMSC connections:");
        return smsc != std::string::npos && status.find("(online", smsc) != std::string::npos;
      },
      std::chrono::seconds(20));
  if (!online) ADD_FAILURE() << "fakesmsc did not connect to bearerbox\n" << Logs();
  return online;
}

bool KannelHarness::Start() {
  for (const char* program : {kBearerbox, kSmsbox, kFakeSmsc}) {
    if (::access(program, X_OK) != 0) {
      ADD_FAILURE() << program
                    << " is missing: install Kannel (scripts/install-deps.sh installs kannel and "
                       "kannel-extras)";
      return false;
    }
  }
  const std::string conf = (options_.dir / "kannel.conf").string();
  if (bearerbox_.pid <= 0) {
    bearerbox_ = Spawn("bearerbox", {kBearerbox, conf}, options_.dir / "bearerbox.out");
  }
  if (!WaitUntil([&] { return !AdminStatus().empty(); }, std::chrono::seconds(20))) {
    ADD_FAILURE() << "bearerbox did not start\n" << Logs();
    return false;
  }
  if (smsbox_.pid <= 0) {
    smsbox_ = Spawn("smsbox", {kSmsbox, conf}, options_.dir / "smsbox.out");
  }
  const bool connected = WaitUntil(
      [&] {
        const std::string status = AdminStatus();
        const auto box_list = status.find("Box connections:");
        if (box_list == std::string::npos) return false;
        const auto smsbox = status.find("smsbox:", box_list);
        const auto smscs = status.find("SMSC connections:", box_list);
        if (smsbox == std::string::npos || smsbox > smscs) return false;
        // sendsms answers too (over TLS, accepting a connection is enough here: the sender's
        // own handshake is what the tests check).
        if (sendsms_tls()) return PortAccepts(sendsms_port_);
        try {
          Poco::Net::HTTPClientSession session("127.0.0.1",
                                               static_cast<Poco::UInt16>(sendsms_port_));
          session.setTimeout(Poco::Timespan(2, 0));
          Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/cgi-bin/sendsms",
                                         Poco::Net::HTTPMessage::HTTP_1_1);
          session.sendRequest(request);
          Poco::Net::HTTPResponse response;
          session.receiveResponse(response).ignore(1 << 20);
          return true;
        } catch (const Poco::Exception&) {
          return false;
        }
      },
      std::chrono::seconds(20));
  if (!connected) {
    ADD_FAILURE() << "smsbox did not connect to bearerbox\n" << Logs();
    return false;
  }
  if (fakesmsc_.pid <= 0) return StartFakeSmsc({});
  return true;
}

void KannelHarness::Stop() {
  Terminate(fakesmsc_);
  Terminate(smsbox_);
  Terminate(bearerbox_);
}

void KannelHarness::Kill(const std::string& box) {
  if (box == "bearerbox") Terminate(bearerbox_);
  if (box == "smsbox") Terminate(smsbox_);
  if (box == "fakesmsc") Terminate(fakesmsc_);
}

bool KannelHarness::running() const {
  return bearerbox_.pid > 0 && smsbox_.pid > 0 && fakesmsc_.pid > 0;
}

bool KannelHarness::SendMo(const std::string& from, const std::string& to,
                           const std::string& text) {
  // fakesmsc's message format: "sender receiver text message words".
  return StartFakeSmsc({from + " " + to + " text " + text});
}

std::vector<KannelMt> KannelHarness::Received() const {
  // fakesmsc prints each message it receives as: ... Got message N: <from to type text>
  static const std::regex line_re(R"(Got message \d+: <(\S+) (\S+) (\S+) ?(.*)>\s*$)");
  std::vector<KannelMt> received;
  for (int run = 1; run <= fakesmsc_runs_; ++run) {
    std::istringstream in(ReadAll(options_.dir / ("fakesmsc-" + std::to_string(run) + ".out")));
    std::string line;
    while (std::getline(in, line)) {
      std::smatch match;
      if (std::regex_search(line, match, line_re)) {
        received.push_back({match[1], match[2], match[3], match[4]});
      }
    }
  }
  return received;
}

std::optional<KannelMt> KannelHarness::WaitFor(const std::function<bool(const KannelMt&)>& match,
                                               const std::function<void()>& poll,
                                               std::chrono::milliseconds timeout) {
  std::optional<KannelMt> found;
  WaitUntil(
      [&] {
        if (poll) poll();
        for (const KannelMt& mt : Received()) {
          if (match(mt)) {
            found = mt;
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

std::string KannelHarness::Logs() const {
  std::string logs;
  for (const char* name : {"bearerbox.out", "smsbox.out", "bearerbox.log", "smsbox.log"}) {
    logs += std::string("--- ") + name + "\n" + Tail(ReadAll(options_.dir / name)) + "\n";
  }
  for (int run = 1; run <= fakesmsc_runs_; ++run) {
    const std::string name = "fakesmsc-" + std::to_string(run) + ".out";
    logs += "--- " + name + "\n" + Tail(ReadAll(options_.dir / name), 1500) + "\n";
  }
  return logs;
}

}  // namespace ijazat::testing
