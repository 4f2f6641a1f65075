// A real Kannel for one test: bearerbox, smsbox and Kannel's fakesmsc (standing in for the
// operator's SMSC) on free loopback ports, with a kannel.conf written into a private directory.
// Mobile-originated messages go in through fakesmsc; everything Kannel delivers to "phones"
// is read back from fakesmsc's output. Every process is stopped in the destructor.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ijazat::testing {

inline constexpr char kBearerbox[] = "/usr/sbin/bearerbox";
inline constexpr char kSmsbox[] = "/usr/sbin/smsbox";
inline constexpr char kFakeSmsc[] = "/usr/lib/kannel/test/fakesmsc";

struct KannelHarnessOptions {
  std::filesystem::path dir;  // kannel.conf, logs and fakesmsc output go here
  // sms-service get-url, with Kannel's escapes (%p sender, %P receiver, %a text).
  std::string get_url;
  // PEM certificates Kannel trusts as an HTTPS client (the appliance's self-signed one).
  std::string trusted_ca_file;
  // When both are set, smsbox serves sendsms over TLS with this certificate and key
  // (sendsms-port-ssl), and sendsms_url() is https.
  std::string sendsms_certificate_file;
  std::string sendsms_key_file;
  std::string username = "ijazat";
  std::string password = "kannel-password-for-tests";
};

// One message Kannel handed to the fake SMSC (an MT: from the short code to a phone).
struct KannelMt {
  std::string from;
  std::string to;
  std::string type;  // "text" for plain messages
  std::string text;
};

class KannelHarness {
 public:
  // Picks the ports and writes kannel.conf; Start() runs the boxes.
  explicit KannelHarness(KannelHarnessOptions options);
  ~KannelHarness();
  KannelHarness(const KannelHarness&) = delete;
  KannelHarness& operator=(const KannelHarness&) = delete;

  // Starts bearerbox, fakesmsc and smsbox and waits until the fake SMSC and smsbox are
  // connected to bearerbox and sendsms answers. Fails the current test (ADD_FAILURE) and
  // returns false if they do not come up. The ports stay the same across restarts.
  bool Start();
  // SIGTERM to every box (SIGKILL after a grace period); waits for them to exit.
  void Stop();
  // Kills one part only (for outage tests): "bearerbox", "smsbox" or "fakesmsc".
  void Kill(const std::string& box);
  bool running() const;

  // The citizen's phone sends `text` from `from` to `to`: fakesmsc is restarted with this one
  // message (it stays connected afterwards to receive MT). Returns false if it cannot.
  bool SendMo(const std::string& from, const std::string& to, const std::string& text);

  // Every MT the fake SMSC received so far, in order, across fakesmsc restarts.
  std::vector<KannelMt> Received() const;
  // Waits until an MT matching `match` is received, calling `poll` (say, the outbox
  // dispatcher) between looks. Returns the first match.
  std::optional<KannelMt> WaitFor(const std::function<bool(const KannelMt&)>& match,
                                  const std::function<void()>& poll = {},
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

  std::string sendsms_url() const;
  bool sendsms_tls() const {
    return !options_.sendsms_certificate_file.empty() && !options_.sendsms_key_file.empty();
  }
  const std::string& username() const { return options_.username; }
  const std::string& password() const { return options_.password; }
  const std::filesystem::path& dir() const { return options_.dir; }
  // The boxes' logs, for failure messages.
  std::string Logs() const;

 private:
  struct Process {
    pid_t pid = -1;
    std::string name;
  };
  Process Spawn(const std::string& name, const std::vector<std::string>& argv,
                const std::filesystem::path& output);
  void Terminate(Process& process);
  bool WaitUntil(const std::function<bool()>& ready, std::chrono::milliseconds timeout);
  std::string AdminStatus() const;
  bool StartFakeSmsc(const std::vector<std::string>& messages);

  KannelHarnessOptions options_;
  int admin_port_ = 0;
  int smsbox_port_ = 0;
  int smsc_port_ = 0;
  int sendsms_port_ = 0;
  Process bearerbox_;
  Process smsbox_;
  Process fakesmsc_;
  int fakesmsc_runs_ = 0;
};

}  // namespace ijazat::testing
