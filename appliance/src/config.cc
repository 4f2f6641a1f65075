#include "config.h"

#include <Poco/Exception.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/URI.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <tuple>

#include "ijazat/yaml/yaml_tree.h"

namespace ijazat::appliance {
namespace {

using yaml::YamlNode;
using Handler = std::function<void(const YamlNode&, const std::string&)>;

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  void Error(const YamlNode& node, const std::string& path, const std::string& message) {
    std::ostringstream line;
    line << file_ << ':' << node.line << ':' << node.column << ": " << path << ": " << message;
    errors_.push_back(line.str());
  }
  void Error(const std::string& message) { errors_.push_back(file_ + ": " + message); }

  // Reads a mapping: each key must be one of `handlers`; unknown and repeated keys are errors
  // (a second `listen:` would otherwise silently replace the first).
  void Map(const YamlNode& node, const std::string& path,
           const std::map<std::string, Handler>& handlers) {
    if (node.kind != YamlNode::Kind::kMapping) {
      Error(node, path.empty() ? "(top)" : path, "must be a mapping of keys to values");
      return;
    }
    std::map<std::string, int> seen;  // key -> line of its first appearance
    for (const auto& [key_node, value] : node.entries) {
      if (key_node->kind != YamlNode::Kind::kScalar) {
        Error(*key_node, path.empty() ? "(top)" : path, "keys must be plain words");
        continue;
      }
      const std::string& key = key_node->value;
      std::string child = path;
      if (!child.empty()) child += ".";
      child += Printable(key);
      if (const auto [first, inserted] = seen.emplace(key, key_node->line); !inserted) {
        Error(*key_node, child,
              "appears twice in this mapping (first at line " + std::to_string(first->second) +
                  "); give each key once");
        // Read on all the same, so that what it holds is judged too (a PIN in the file).
      }
      const auto it = handlers.find(key);
      if (it == handlers.end()) {
        std::string allowed;
        for (const auto& [name, unused] : handlers) allowed += (allowed.empty() ? "" : ", ") + name;
        Error(*key_node, child, "unknown key; allowed here: " + allowed);
        continue;
      }
      it->second(*value, child);
    }
  }

  Handler String(std::string* out) {
    return [this, out](const YamlNode& node, const std::string& path) {
      if (node.kind != YamlNode::Kind::kScalar || node.value.empty()) {
        Error(node, path, "must be a non-empty string");
        return;
      }
      *out = node.value;
    };
  }

  // A key of an earlier release: an error that names its replacement.
  Handler Renamed(std::string now) {
    return [this, now](const YamlNode& node, const std::string& path) {
      Error(node, path,
            "was renamed " + now +
                ": receipts name the provider as controller (from its policy's controller "
                "section) and the operator as processor");
    };
  }

  Handler Int(int* out, int min, int max) {
    return [this, out, min, max](const YamlNode& node, const std::string& path) {
      long value = 0;
      if (node.kind != YamlNode::Kind::kScalar || !Parse(node.value, &value) || value < min ||
          value > max) {
        Error(node, path,
              "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max));
        return;
      }
      *out = static_cast<int>(value);
    };
  }

  Handler Seconds(std::chrono::seconds* out, int min, int max) {
    return [this, out, min, max](const YamlNode& node, const std::string& path) {
      const std::string text = node.kind == YamlNode::Kind::kScalar ? node.value : "";
      long seconds = -1;
      long amount = 0;
      // 1 to 6 digits, then one unit: s, m, h or d.
      if (text.size() >= 2 && text.size() <= 7 && Parse(text.substr(0, text.size() - 1), &amount)) {
        const char unit = text.back();
        const long scale = unit == 'd'   ? 86400
                           : unit == 'h' ? 3600
                           : unit == 'm' ? 60
                           : unit == 's' ? 1
                                         : -1;
        if (scale > 0) seconds = amount * scale;
      }
      if (seconds < min || seconds > max) {
        Error(node, path,
              "must be a duration such as 5s, 2m, 1h or 30d, from " + std::to_string(min) +
                  "s to " + std::to_string(max) + "s");
        return;
      }
      *out = std::chrono::seconds(seconds);
    };
  }

  Handler Bool(bool* out) {
    return [this, out](const YamlNode& node, const std::string& path) {
      const std::string text = node.kind == YamlNode::Kind::kScalar ? node.value : "";
      if (text == "true") {
        *out = true;
      } else if (text == "false") {
        *out = false;
      } else {
        Error(node, path, "must be true or false");
      }
    };
  }

  Handler Strings(std::vector<std::string>* out, std::size_t max) {
    return [this, out, max](const YamlNode& node, const std::string& path) {
      if (node.kind != YamlNode::Kind::kSequence || node.items.empty() || node.items.size() > max) {
        Error(node, path, "must be a list of 1 to " + std::to_string(max) + " strings");
        return;
      }
      std::vector<std::string> values;
      for (const auto& item : node.items) {
        if (item->kind != YamlNode::Kind::kScalar || item->value.empty()) {
          Error(*item, path, "each item must be a non-empty string");
          return;
        }
        values.push_back(item->value);
      }
      *out = std::move(values);
    };
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  static bool Parse(const std::string& text, long* value) {
    if (text.empty() || text.size() > 9) return false;
    for (const char c : text) {
      if (c < '0' || c > '9') return false;
    }
    *value = std::stol(text);
    return true;
  }

  std::string file_;
  std::vector<std::string> errors_;
};

// HOST:PORT with HOST a name, an IPv4 address or a bracketed IPv6 address, PORT 0 to 65535.
bool ValidListen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  const std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stol(port) > 65535) {
    return false;
  }
  if (host.front() == '[') {
    return host.size() > 2 && host.back() == ']' &&
           host.find_first_not_of("0123456789abcdefABCDEF:", 1) == host.size() - 1;
  }
  return host.find_first_not_of(
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") ==
         std::string::npos;
}

}  // namespace

Result<Config> LoadConfig(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return Error(ErrorCode::kInvalidArgument,
                 path + ": cannot read the configuration file: " + ec.message(), "config_invalid");
  }
  if (size > kMaxConfigBytes) {
    return Error(ErrorCode::kInvalidArgument,
                 path + ": the configuration file is larger than 256 KiB", "config_invalid");
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseConfig(buffer.str(), path);
}

// The issuer is compared byte for byte by every verifier and names the audit log's origin:
// one spelling of the appliance's public https URL.
std::string IssuerProblem(const std::string& issuer) {
  constexpr char kWhat[] =
      " must be the appliance's public https URL, such as https://ijazat.nadra.example (no "
      "credentials, query, fragment or trailing slash): it is the iss of every token and "
      "receipt, compared exactly by providers";
  Poco::URI uri;
  try {
    uri = Poco::URI(issuer);
  } catch (const Poco::Exception&) {
    return kWhat;
  }
  if (uri.getScheme() != "https" || uri.getHost().empty() || !uri.getUserInfo().empty() ||
      issuer.size() > 255 || issuer.rfind("https://", 0) != 0 || issuer.back() == '/') {
    return kWhat;
  }
  // Letters, digits and . - / : only, so that one URL has one spelling: no escapes, no dot
  // segments, no empty port, nothing outside ASCII.
  const std::string rest = issuer.substr(8);
  const std::string authority = rest.substr(0, rest.find('/'));
  if (issuer.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-/:") !=
          std::string::npos ||
      rest.find("//") != std::string::npos || rest.find("/./") != std::string::npos ||
      rest.find("/../") != std::string::npos || rest.ends_with("/.") || rest.ends_with("/..") ||
      authority.ends_with(":") || authority.find(':') != authority.rfind(':') ||
      rest.find(':', authority.size()) != std::string::npos) {
    return kWhat;
  }
  return "";
}

std::string KannelUrlProblem(const std::string& url, bool has_ca_file) {
  Poco::URI uri;
  try {
    uri = Poco::URI(url);
  } catch (const Poco::Exception&) {
    return "is not a URL";
  }
  if (!uri.getUserInfo().empty()) {
    return "must not carry credentials (the password comes from sms.kannel.password_file)";
  }
  if (uri.getHost().empty()) return "needs a host";
  // Nothing but the path: a query (?username=…&password=…) would put credentials in the
  // request line that smsbox logs, and in the outbox's error notes.
  if (!uri.getRawQuery().empty() || !uri.getFragment().empty() ||
      url.find_first_of("?#") != std::string::npos) {
    return "must carry no query or fragment (the sender adds everything in headers)";
  }
  if (uri.getScheme() == "https") {
    return has_ca_file ? ""
                       : "is https: give sms.kannel.ca_file, the CA that signed smsbox's "
                         "certificate";
  }
  if (uri.getScheme() != "http") return "must be https:// (or http:// to a loopback address)";
  const std::string& host = uri.getHost();
  // An address, not a name that merely looks like one ("127.evil.example").
  Poco::Net::IPAddress address;
  const bool loopback = host == "localhost" ||
                        (Poco::Net::IPAddress::tryParse(host, address) && address.isLoopback());
  if (!loopback) {
    return "is plain http to " + host +
           ": the password and every code would cross the network in clear; use https:// with "
           "sms.kannel.ca_file, or http:// only to a loopback address (Kannel on this machine)";
  }
  return "";
}

Result<Config> ParseConfig(std::string_view text, const std::string& source) {
  const std::string& path = source;
  auto invalid = [&](const std::string& message) {
    return Error(ErrorCode::kInvalidArgument, message, "config_invalid");
  };
  if (text.size() > kMaxConfigBytes) {
    return invalid(path + ": the configuration file is larger than 256 KiB");
  }
  if (text.find('\t') != std::string::npos) {
    return invalid(path + ": tabs are not allowed in YAML indentation; use spaces");
  }

  const yaml::YamlParseResult parsed = yaml::ParseYaml(text, {16, 10000});
  if (parsed.failed) {
    return invalid(path + ":" + std::to_string(parsed.line) + ":" + std::to_string(parsed.column) +
                   ": " + parsed.message);
  }
  if (!parsed.root || parsed.root->kind == YamlNode::Kind::kNull) {
    return invalid(path + ": the configuration file is empty");
  }
  const YamlNode& root = *parsed.root;

  Config config;
  config.source = path;
  Reader r(path);
  {
    r.Map(
        root, "",
        {{"issuer", r.String(&config.issuer)},
         {"receipt",
          [&](const YamlNode& node, const std::string& p) {
            r.Map(node, p,
                  {{"operator_name", r.String(&config.receipt.operator_name)},
                   {"operator_contact", r.String(&config.receipt.operator_contact)},
                   {"policy_url", r.String(&config.receipt.policy_url)},
                   {"controller_name", r.Renamed("operator_name")},
                   {"controller_contact", r.Renamed("operator_contact")}});
          }},
         {"server",
          [&](const YamlNode& node, const std::string& p) {
            r.Map(node, p,
                  {{"listen", r.String(&config.server.listen)},
                   {"threads", r.Int(&config.server.threads, 2, 1024)},
                   {"io_threads", r.Int(&config.server.io_threads, 1, 64)},
                   {"max_queued", r.Int(&config.server.max_queued, 1, 100000)},
                   {"max_connections", r.Int(&config.server.max_connections, 16, 1000000)},
                   {"keep_alive_timeout", r.Seconds(&config.server.keep_alive_timeout, 1, 300)},
                   {"request_timeout", r.Seconds(&config.server.request_timeout, 1, 300)},
                   {"max_keep_alive_requests",
                    r.Int(&config.server.max_keep_alive_requests, 1, 1000000)}});
          }},
         {"tls",
          [&](const YamlNode& node, const std::string& p) {
            r.Map(node, p,
                  {{"certificate", r.String(&config.tls.certificate)},
                   {"key", r.String(&config.tls.key)},
                   {"client_ca", r.String(&config.tls.client_ca)}});
          }},
         {"hsm",
          [&](const YamlNode& node, const std::string& p) {
            r.Map(node, p,
                  {{"module", r.String(&config.hsm.module)},
                   {"token", r.String(&config.hsm.token)},
                   {"pin_file", r.String(&config.hsm.pin_file)},
                   {"pin_env", r.String(&config.hsm.pin_env)},
                   {"pin", [&](const YamlNode& n, const std::string& q) {
                      r.Error(n, q,
                              "a PIN never goes in the configuration; use pin_file or pin_env");
                    }}});
          }},
         {"store",
          [&](const YamlNode& node, const std::string& p) {
            r.Map(node, p, {{"path", r.String(&config.store_path)}});
          }},
         {"registry",
          [&](const YamlNode& node, const std::string& p) {
            r.Map(node, p, {{"path", r.String(&config.registry_path)}});
          }},
         {"policy", r.String(&config.policy_path)},
         {"sms",
          [&](const YamlNode& node, const std::string& p) {
            r.Map(
                node, p,
                {{"short_code", r.String(&config.sms.short_code)},
                 {"inbound_secret_file", r.String(&config.sms.inbound_secret_file)},
                 {"dlr_secret_file", r.String(&config.sms.dlr_secret_file)},
                 {"sender", r.String(&config.sms.sender)},
                 {"file", r.String(&config.sms.file)},
                 {"dispatch_batch", r.Int(&config.sms.dispatch_batch, 1, 10000)},
                 {"dispatch_threads", r.Int(&config.sms.dispatch_threads, 1, 256)},
                 {"kannel",
                  [&](const YamlNode& n, const std::string& q) {
                    r.Map(n, q,
                          {{"url", r.String(&config.sms.kannel_url)},
                           {"ca_file", r.String(&config.sms.kannel_ca_file)},
                           {"username", r.String(&config.sms.kannel_username)},
                           {"password_file", r.String(&config.sms.kannel_password_file)},
                           {"dlr_url", r.String(&config.sms.kannel_dlr_url)}});
                  }},
                 {"numbers",
                  [&](const YamlNode& n, const std::string& q) {
                    int national_digits = static_cast<int>(config.sms.numbers.national_digits);
                    r.Map(n, q,
                          {{"country_code", r.String(&config.sms.numbers.country_code)},
                           {"national_digits", r.Int(&national_digits, 4, 14)},
                           {"ranges", r.Strings(&config.sms.numbers.ranges, 100)}});
                    config.sms.numbers.national_digits = static_cast<std::size_t>(national_digits);
                  }},
                 {"caps",
                  [&](const YamlNode& n, const std::string& q) {
                    r.Map(
                        n, q,
                        {{"per_number_per_hour",
                          r.Int(&config.sms.caps.per_number_per_hour, 1, 1000)},
                         {"per_number_per_day",
                          r.Int(&config.sms.caps.per_number_per_day, 1, 10000)},
                         {"per_cnic_per_hour", r.Int(&config.sms.caps.per_cnic_per_hour, 2, 1000)},
                         {"per_cnic_per_day", r.Int(&config.sms.caps.per_cnic_per_day, 2, 10000)}});
                  }},
                 {"enrolment",
                  [&](const YamlNode& n, const std::string& q) {
                    const std::string mode = n.kind == YamlNode::Kind::kScalar ? n.value : "";
                    if (mode == "authority") {
                      config.sms.enrolment = SmsConfig::Enrolment::kAuthority;
                    } else if (mode == "open-for-development") {
                      config.sms.enrolment = SmsConfig::Enrolment::kOpen;
                    } else {
                      r.Error(n, q,
                              "must be authority (a number enrols only where the registry "
                              "binds it to the CNIC) or open-for-development");
                    }
                  }},
                 {"number_changes",
                  [&](const YamlNode& n, const std::string& q) {
                    r.Map(n, q,
                          {{"max", r.Int(&config.sms.number_changes.max, 1, 100)},
                           {"window",
                            r.Seconds(&config.sms.number_changes.window, 3600, 366 * 86400)}});
                  }},
                 {"require_subscriber_match", [&](const YamlNode& n, const std::string& q) {
                    r.Error(n, q,
                            "was replaced by sms.enrolment: authority (the default: only "
                            "numbers the registry binds to the CNIC) or "
                            "open-for-development");
                  }}});
          }},
         {"log",
          [&](const YamlNode& node, const std::string& p) {
            r.Map(node, p, {{"file", r.String(&config.log_file)}});
          }},
         {"development", [&](const YamlNode& node, const std::string& p) {
            r.Map(node, p, {{"allow_demo_credentials", r.Bool(&config.allow_demo_credentials)}});
          }}});
  }

  std::vector<std::string> errors = r.errors();
  if (config.receipt.policy_url.empty()) config.receipt.policy_url = config.issuer + "/policy";
  auto require = [&](const std::string& value, const std::string& key) {
    if (value.empty()) errors.push_back(path + ": " + key + " is required");
  };
  if (const std::string problem = IssuerProblem(config.issuer); !problem.empty()) {
    errors.push_back(path + ": issuer" + problem);
  }
  // In every receipt: one line, short enough that a receipt stays far below the token size cap.
  for (const auto& [key, value, max] :
       {std::tuple<const char*, const std::string*, std::size_t>{
            "receipt.operator_name", &config.receipt.operator_name, 140},
        {"receipt.operator_contact", &config.receipt.operator_contact, 100},
        {"receipt.policy_url", &config.receipt.policy_url, 2048}}) {
    if (value->size() > max || value->find_first_of("\r\n") != std::string::npos ||
        std::any_of(value->begin(), value->end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      errors.push_back(path + ": " + key + " must be one line of at most " + std::to_string(max) +
                       " bytes, without control characters");
    }
  }
  require(config.tls.certificate, "tls.certificate");
  require(config.tls.key, "tls.key");
  require(config.hsm.token, "hsm.token");
  require(config.store_path, "store.path");
  require(config.registry_path, "registry.path");
  require(config.policy_path, "policy");
  require(config.sms.inbound_secret_file, "sms.inbound_secret_file");
  if (config.hsm.pin_file.empty() == config.hsm.pin_env.empty()) {
    errors.push_back(path + ": hsm: give exactly one of pin_file and pin_env");
  }
  if (config.sms.sender == "file") {
    require(config.sms.file, "sms.file");
  } else if (config.sms.sender == "kannel") {
    require(config.sms.kannel_url, "sms.kannel.url");
    require(config.sms.kannel_username, "sms.kannel.username");
    require(config.sms.kannel_password_file, "sms.kannel.password_file");
    if (!config.sms.kannel_url.empty()) {
      if (const std::string problem =
              KannelUrlProblem(config.sms.kannel_url, !config.sms.kannel_ca_file.empty());
          !problem.empty()) {
        errors.push_back(path + ": sms.kannel.url " + problem);
      }
    }
  } else {
    errors.push_back(path + ": sms.sender must be \"file\" or \"kannel\"");
  }
  if (const Status plan = ValidateNumberPlan(config.sms.numbers); !plan.ok()) {
    errors.push_back(path + ": sms.numbers: " + plan.error().message());
  }
  if (!config.sms.kannel_dlr_url.empty()) {
    if (config.sms.kannel_dlr_url.find("secret=") != std::string::npos ||
        config.sms.kannel_dlr_url.find("token=") != std::string::npos) {
      errors.push_back(path +
                       ": sms.kannel.dlr_url must carry no credential: the appliance adds each "
                       "report's id and token");
    }
    if (config.sms.dlr_secret_file.empty()) {
      errors.push_back(path +
                       ": sms.dlr_secret_file is required with sms.kannel.dlr_url: delivery "
                       "reports are authenticated by a secret of their own (openssl rand -hex "
                       "32), never by the gateway secret");
    } else if (config.sms.dlr_secret_file == config.sms.inbound_secret_file) {
      errors.push_back(path +
                       ": sms.dlr_secret_file must not be sms.inbound_secret_file: the gateway "
                       "secret authenticates citizens' SMS and must not be handed to Kannel");
    }
  }
  if (config.sms.short_code.size() > 15 ||
      config.sms.short_code.find_first_not_of("0123456789") != std::string::npos) {
    errors.push_back(path + ": sms.short_code must be digits");
  }
  if (!ValidListen(config.server.listen)) {
    errors.push_back(path + ": server.listen must be HOST:PORT (port 0 picks a free port)");
  }
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors) message += (message.empty() ? "" : "\n") + e;
    return invalid(message);
  }
  return config;
}

}  // namespace ijazat::appliance
