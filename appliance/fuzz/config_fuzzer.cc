// libFuzzer harness for ijazatd's configuration reader (ParseConfig, the body of LoadConfig).
//
// Invariants beyond "no crash, no hang, no sanitizer report": an accepted file is at most
// kMaxConfigBytes, nests no deeper than the schema (sms.kannel.url: three mappings), and holds
// everything ijazatd needs with every value in range; a rejected one is "config_invalid" with
// one located line per problem. Run by `make fuzz`; the corpus runs in every `make test`
// (tests/fuzz).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "config.h"

namespace ijazat::appliance::fuzz {
namespace {

// The deepest the schema goes: sms -> numbers -> ranges (a list) under the top mapping.
constexpr int kSchemaDepth = 4;

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

// Levels of mappings and sequences, counting the outermost; stops counting past `limit`
// (aliases may make the node graph cyclic).
int YamlDepth(const YAML::Node& node, int limit) {
  if (!node.IsMap() && !node.IsSequence()) return 0;
  if (limit <= 0) return 1;
  int deepest = 0;
  for (const auto& entry : node) {
    if (node.IsMap()) {
      deepest = std::max(
          {deepest, YamlDepth(entry.first, limit - 1), YamlDepth(entry.second, limit - 1)});
    } else {
      deepest = std::max(deepest, YamlDepth(entry, limit - 1));
    }
  }
  return 1 + deepest;
}

void CheckAccepted(std::string_view text, const Config& config) {
  Require(text.size() <= kMaxConfigBytes);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception&) {
    Require(false);  // accepted text must be YAML
  }
  Require(YamlDepth(root, kSchemaDepth + 1) <= kSchemaDepth);
  Require(config.source == "fuzz.yaml");
  for (const std::string* value :
       {&config.tls.certificate, &config.tls.key, &config.hsm.token, &config.store_path,
        &config.registry_path, &config.policy_path, &config.sms.inbound_secret_file, &config.issuer,
        &config.receipt.policy_url}) {
    Require(!value->empty());
  }
  Require(config.hsm.pin_file.empty() != config.hsm.pin_env.empty());
  Require(config.sms.sender == "file" || config.sms.sender == "kannel");
  Require(config.sms.sender != "file" || !config.sms.file.empty());
  Require(config.sms.sender != "kannel" || !config.sms.kannel_url.empty());
  Require(config.sms.short_code.size() <= 15 &&
          config.sms.short_code.find_first_not_of("0123456789") == std::string::npos);
  Require(config.server.threads >= 2 && config.server.threads <= 1024);
  Require(config.server.max_queued >= 1 && config.server.max_queued <= 100000);
  Require(config.server.max_keep_alive_requests >= 1 &&
          config.server.max_keep_alive_requests <= 1000000);
  for (const auto timeout : {config.server.keep_alive_timeout, config.server.request_timeout}) {
    Require(timeout.count() >= 1 && timeout.count() <= 300);
  }
  Require(config.server.listen.find(':') != std::string::npos);
  Require(config.server.io_threads >= 1 && config.server.io_threads <= 64);
  Require(config.server.max_connections >= 16);
  Require(ValidateNumberPlan(config.sms.numbers).ok());
  Require(config.sms.caps.per_number_per_hour >= 1 && config.sms.caps.per_number_per_day >= 1 &&
          config.sms.caps.per_cnic_per_day >= 1);
  Require(config.sms.kannel_dlr_url.find("secret=") == std::string::npos);
  Require(config.sms.dispatch_batch >= 1 && config.sms.dispatch_threads >= 1);
}

}  // namespace
}  // namespace ijazat::appliance::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ijazat::appliance;
  using namespace ijazat::appliance::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto config = ParseConfig(text, "fuzz.yaml");
  if (config.ok()) {
    CheckAccepted(text, *config);
    return 0;
  }
  Require(config.error().reason() == "config_invalid");
  std::istringstream lines(config.error().message());
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    Require(line.rfind("fuzz.yaml", 0) == 0);
    ++count;
  }
  Require(count >= 1);
  return 0;
}
