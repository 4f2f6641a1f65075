#include "ijazat/policy/policy_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <tuple>

#include "ijazat/common/bytes.h"
#include "ijazat/policy/duration.h"
#include "ijazat/yaml/yaml_tree.h"
#include "sha256.h"
#include "text_checks.h"
#include "timestamp.h"

namespace ijazat::policy {
namespace {

using internal::Quote;
using yaml::YamlNode;
using NodePtr = const YamlNode*;
using std::chrono::seconds;

// The safe ranges. They are the outer bounds for both the defaults and provider overrides;
// docs/policy.md lists them and must be kept in step.
struct IntRange {
  long long min;
  long long max;
};
struct DurationRange {
  seconds min;
  seconds max;
};
constexpr IntRange kOtpDigits{6, 8};
constexpr DurationRange kOtpTtl{seconds(30), seconds(600)};
constexpr IntRange kOtpAttempts{1, 5};
constexpr DurationRange kTokenTtl{seconds(60), seconds(86400)};
constexpr IntRange kTokenUses{1, 10};
constexpr IntRange kFailuresPerDay{1, 100};
constexpr IntRange kSmsPerHour{1, 20};
constexpr DurationRange kCoolingOff{seconds(3600), seconds(30 * 86400)};
constexpr IntRange kRequestsPerMinute{1, 6000};
constexpr IntRange kBurst{1, 1000};
constexpr std::size_t kDisplayNameMax = 30;
constexpr std::size_t kSmsTextMax = 40;
constexpr std::size_t kLabelMax = 80;
constexpr std::size_t kControllerNameMax = 140;
constexpr std::size_t kControllerAddressMax = 200;
constexpr std::size_t kControllerContactMax = 100;
constexpr std::size_t kVersionMax = 64;

struct Field {
  std::string_view key;
  bool required;
};

constexpr Field kTopFields[] = {{"version", true}, {"defaults", false}, {"providers", true}};
constexpr Field kLimitsFields[] = {{"otp", false}, {"token", false}, {"limits", false}};
constexpr Field kOtpFields[] = {{"digits", false}, {"ttl", false}, {"max_attempts", false}};
constexpr Field kTokenFields[] = {{"ttl", false}, {"max_uses", false}};
constexpr Field kCnicFields[] = {{"failures_per_cnic_per_day", false},
                                 {"sms_per_cnic_per_hour", false},
                                 {"number_change_cooling_off", false}};
constexpr Field kProviderFields[] = {
    {"id", true},          {"display_name", true}, {"status", true},
    {"valid_from", false}, {"valid_until", false}, {"credentials", false},
    {"purposes", true},    {"rate_limit", false},  {"reveal_enrolment_status", false},
    {"overrides", false},  {"controller", false},
};
constexpr Field kControllerFields[] = {
    {"legal_name", true},
    {"address", false},
    {"country", true},
    {"contact", true},
    {"email", false},
    {"phone", false},
    {"privacy_policy_url", false},
};
constexpr Field kCredentialFields[] = {{"type", true}, {"sha256", true}, {"label", false}};
constexpr Field kPurposeFields[] = {{"id", true}, {"sms_text", true}, {"scopes", true}};
constexpr Field kRateLimitFields[] = {{"requests_per_minute", true}, {"burst", true}};

std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string Index(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

bool IsPlainKey(std::string_view key) {
  if (key.empty() || key.size() > 40) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string JoinKeys(std::span<const Field> fields) {
  std::string out;
  for (const Field& field : fields) {
    if (!out.empty()) out += ", ";
    out += field.key;
  }
  return out;
}

std::string AllScopeNames() {
  std::string out;
  for (Scope scope : AllScopes()) {
    if (!out.empty()) out += ", ";
    out += ScopeName(scope);
  }
  return out;
}

std::string Plural(std::size_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

// A mapping whose keys have been checked against its schema.
class MapReader {
 public:
  NodePtr Get(std::string_view key) const {
    const auto found = values_.find(std::string(key));
    return found == values_.end() ? nullptr : found->second;
  }
  void Set(const std::string& key, NodePtr value) { values_.emplace(key, value); }

 private:
  std::map<std::string, NodePtr> values_;
};

class Validator {
 public:
  Validator(std::string file, const LoaderLimits& limits, const LoaderRules& rules)
      : file_(std::move(file)), limits_(limits), rules_(rules) {}

  std::optional<PolicyContent> Validate(const YamlNode& root) {
    PolicyContent content;
    if (root.kind != YamlNode::Kind::kMapping) {
      Report(root, "",
             "a policy must be a mapping with the keys version, defaults and providers; got " +
                 std::string(yaml::Describe(root.kind)));
      return std::nullopt;
    }
    const auto top = ReadMap(root, "", kTopFields);
    if (!top) return std::nullopt;
    if (NodePtr version = top->Get("version")) ReadVersion(*version, content.version);
    if (NodePtr defaults = top->Get("defaults")) {
      ReadLimits(*defaults, "defaults", content.defaults, nullptr);
    }
    if (NodePtr providers = top->Get("providers")) ReadProviders(*providers, content);
    if (reported_ > 0) return std::nullopt;
    return content;
  }

  std::vector<Diagnostic> TakeDiagnostics() {
    std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                       return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    if (reported_ > diagnostics_.size()) {
      diagnostics_.push_back(
          {file_, 0, 0, "",
           "and " + Plural(reported_ - diagnostics_.size(), "more problem") + " not shown"});
    }
    return std::move(diagnostics_);
  }

 private:
  void Report(const YamlNode& at, const std::string& path, std::string message) {
    ++reported_;
    if (diagnostics_.size() < limits_.max_diagnostics) {
      diagnostics_.push_back({file_, at.line, at.column, path, std::move(message)});
    }
  }

  // Checks that `node` is a mapping, that every key is known and appears once, and that the
  // required keys are there. Returns nullopt (after reporting) when `node` is not a mapping.
  std::optional<MapReader> ReadMap(const YamlNode& node, const std::string& path,
                                   std::span<const Field> fields) {
    if (node.kind != YamlNode::Kind::kMapping) {
      Report(node, path,
             "must be a mapping (key: value lines) with the keys " + JoinKeys(fields) + "; got " +
                 std::string(yaml::Describe(node.kind)));
      return std::nullopt;
    }
    MapReader reader;
    std::map<std::string, int> seen;  // key -> line of first occurrence
    for (const auto& [key, value] : node.entries) {
      if (key->kind != YamlNode::Kind::kScalar) {
        Report(*key, path,
               "a mapping key must be a plain name; got " + std::string(yaml::Describe(key->kind)));
        continue;
      }
      const std::string& name = key->value;
      const std::string key_path = IsPlainKey(name) ? Child(path, name) : path;
      const auto known = std::find_if(fields.begin(), fields.end(),
                                      [&](const Field& field) { return field.key == name; });
      if (known == fields.end()) {
        std::string message = "unknown key " + Quote(name);
        std::string_view suggestion;
        std::size_t best = 3;  // suggest only close misspellings
        for (const Field& field : fields) {
          const std::size_t distance = internal::EditDistance(name, field.key);
          if (distance < best) {
            best = distance;
            suggestion = field.key;
          }
        }
        if (!suggestion.empty()) message += " (did you mean '" + std::string(suggestion) + "'?)";
        message += "; allowed keys here: " + JoinKeys(fields);
        Report(*key, key_path, std::move(message));
        continue;
      }
      const auto [first, inserted] = seen.emplace(name, key->line);
      if (!inserted) {
        Report(*key, key_path,
               "key " + Quote(name) + " appears twice in this mapping (first at line " +
                   std::to_string(first->second) + "); give each key once");
        continue;
      }
      reader.Set(name, value.get());
    }
    for (const Field& field : fields) {
      if (field.required && seen.find(std::string(field.key)) == seen.end()) {
        Report(node, path, "missing required key '" + std::string(field.key) + "'");
      }
    }
    return reader;
  }

  // The text of a scalar, or nullopt after reporting what was there instead.
  std::optional<std::string> ReadScalar(const YamlNode& node, const std::string& path,
                                        std::string_view expected) {
    if (node.kind == YamlNode::Kind::kScalar) return node.value;
    Report(node, path,
           node.kind == YamlNode::Kind::kNull ? "has no value; expected " + std::string(expected)
                                              : "must be " + std::string(expected) + "; got " +
                                                    std::string(yaml::Describe(node.kind)));
    return std::nullopt;
  }

  std::optional<long long> ReadInt(const YamlNode& node, const std::string& path, IntRange range) {
    const std::string expected =
        "a whole number from " + std::to_string(range.min) + " to " + std::to_string(range.max);
    const auto text = ReadScalar(node, path, expected);
    if (!text) return std::nullopt;
    // Decimal digits only: no sign, no leading zero (YAML 1.1 reads 010 as octal 8), no 1e3.
    const bool digits_only =
        !text->empty() && text->size() <= 9 &&
        std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        !(text->size() > 1 && text->front() == '0');
    if (!digits_only) {
      Report(node, path, "must be " + expected + "; got " + Quote(*text));
      return std::nullopt;
    }
    const long long value = std::stoll(*text);
    if (value < range.min || value > range.max) {
      Report(node, path, "must be " + expected + "; got " + *text);
      return std::nullopt;
    }
    return value;
  }

  std::optional<seconds> ReadDuration(const YamlNode& node, const std::string& path,
                                      DurationRange range) {
    const std::string allowed =
        "from " + FormatDuration(range.min) + " to " + FormatDuration(range.max);
    const auto text = ReadScalar(node, path, "a duration " + allowed + ", such as 90s or 5m");
    if (!text) return std::nullopt;
    const std::optional<seconds> value = ParseDuration(*text);
    if (!value) {
      const bool bare_number =
          !text->empty() &&
          std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; });
      Report(node, path,
             bare_number ? Quote(*text) +
                               " has no unit; write a duration with units d, h, m or s, such as " +
                               text->substr(0, 9) + "s or 5m"
                         : Quote(*text) +
                               " is not a duration; write it like 90s, 5m, 24h or 1h30m "
                               "(units d, h, m, s, largest first)");
      return std::nullopt;
    }
    if (*value < range.min || *value > range.max) {
      Report(node, path, FormatDuration(*value) + " is outside the allowed range " + allowed);
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> ReadBool(const YamlNode& node, const std::string& path) {
    const auto text = ReadScalar(node, path, "true or false");
    if (!text) return std::nullopt;
    if (*text == "true") return true;
    if (*text == "false") return false;
    Report(node, path, "must be true or false; got " + Quote(*text));
    return std::nullopt;
  }

  void ReadVersion(const YamlNode& node, std::string& out) {
    const auto text = ReadScalar(node, "version", "a version such as 2025.06.1");
    if (!text) return;
    const bool ok = !text->empty() && text->size() <= kVersionMax &&
                    std::isalnum(static_cast<unsigned char>(text->front())) != 0 &&
                    std::all_of(text->begin(), text->end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' ||
                             c == '-' || c == '_' || c == '+';
                    });
    if (!ok) {
      Report(node, "version",
             "must be 1 to 64 letters, digits, '.', '-', '_' or '+', starting with a letter or "
             "digit (such as 2025.06.1); got " +
                 Quote(*text));
      return;
    }
    out = *text;
  }

  // One tightenable setting: its key, its safe range, and which direction is stricter.
  template <typename T, typename Range>
  void ReadLimit(const MapReader& map, std::string_view key, const std::string& path, Range range,
                 bool higher_is_stricter, T& out, const T* base,
                 std::optional<T> (Validator::*read)(const YamlNode&, const std::string&, Range),
                 const std::function<std::string(T)>& format) {
    NodePtr node = map.Get(key);
    if (node == nullptr) return;
    const std::string field_path = Child(path, key);
    const std::optional<T> value = (this->*read)(*node, field_path, range);
    if (!value) return;
    if (base != nullptr) {
      const bool looser = higher_is_stricter ? *value < *base : *value > *base;
      if (looser) {
        Report(*node, field_path,
               format(*value) + " loosens the policy default of " + format(*base) +
                   "; a provider may only tighten it (" + format(*base) +
                   (higher_is_stricter ? " or more)" : " or less)"));
        return;
      }
    }
    out = *value;
  }

  void ReadIntLimit(const MapReader& map, std::string_view key, const std::string& path,
                    IntRange range, bool higher_is_stricter, int& out, const int* base) {
    long long value = out;
    const long long base_value = base != nullptr ? *base : 0;
    ReadLimit<long long, IntRange>(map, key, path, range, higher_is_stricter, value,
                                   base != nullptr ? &base_value : nullptr, &Validator::ReadInt,
                                   [](long long v) { return std::to_string(v); });
    out = static_cast<int>(value);  // within an IntRange, which fits an int
  }

  void ReadDurationLimit(const MapReader& map, std::string_view key, const std::string& path,
                         DurationRange range, bool higher_is_stricter, seconds& out,
                         const seconds* base) {
    ReadLimit<seconds, DurationRange>(map, key, path, range, higher_is_stricter, out, base,
                                      &Validator::ReadDuration,
                                      [](seconds v) { return FormatDuration(v); });
  }

  // Reads `defaults` (base == nullptr) or a provider's `overrides` (base = the defaults: a
  // provider may only move a value in its stricter direction).
  void ReadLimits(const YamlNode& node, const std::string& path, Limits& out, const Limits* base) {
    const auto map = ReadMap(node, path, kLimitsFields);
    if (!map) return;
    if (NodePtr otp = map->Get("otp")) {
      const std::string otp_path = Child(path, "otp");
      if (const auto fields = ReadMap(*otp, otp_path, kOtpFields)) {
        ReadIntLimit(*fields, "digits", otp_path, kOtpDigits, true, out.otp.digits,
                     base ? &base->otp.digits : nullptr);
        ReadDurationLimit(*fields, "ttl", otp_path, kOtpTtl, false, out.otp.ttl,
                          base ? &base->otp.ttl : nullptr);
        ReadIntLimit(*fields, "max_attempts", otp_path, kOtpAttempts, false, out.otp.max_attempts,
                     base ? &base->otp.max_attempts : nullptr);
      }
    }
    if (NodePtr token = map->Get("token")) {
      const std::string token_path = Child(path, "token");
      if (const auto fields = ReadMap(*token, token_path, kTokenFields)) {
        ReadDurationLimit(*fields, "ttl", token_path, kTokenTtl, false, out.token.ttl,
                          base ? &base->token.ttl : nullptr);
        ReadIntLimit(*fields, "max_uses", token_path, kTokenUses, false, out.token.max_uses,
                     base ? &base->token.max_uses : nullptr);
      }
    }
    if (NodePtr limits = map->Get("limits")) {
      const std::string limits_path = Child(path, "limits");
      if (const auto fields = ReadMap(*limits, limits_path, kCnicFields)) {
        ReadIntLimit(*fields, "failures_per_cnic_per_day", limits_path, kFailuresPerDay, false,
                     out.cnic.failures_per_day, base ? &base->cnic.failures_per_day : nullptr);
        ReadIntLimit(*fields, "sms_per_cnic_per_hour", limits_path, kSmsPerHour, false,
                     out.cnic.sms_per_hour, base ? &base->cnic.sms_per_hour : nullptr);
        ReadDurationLimit(*fields, "number_change_cooling_off", limits_path, kCoolingOff, true,
                          out.cnic.number_change_cooling_off,
                          base ? &base->cnic.number_change_cooling_off : nullptr);
      }
    }
  }

  // A list, or nullptr after reporting. Lists longer than `max` are reported and cut.
  const YamlNode* ReadList(const YamlNode& node, const std::string& path, std::string_view what,
                           std::size_t max) {
    if (node.kind != YamlNode::Kind::kSequence) {
      Report(node, path,
             "must be a list of " + std::string(what) + "; got " +
                 std::string(yaml::Describe(node.kind)));
      return nullptr;
    }
    if (node.items.size() > max) {
      Report(node, path,
             "has " + std::to_string(node.items.size()) + " " + std::string(what) + "; at most " +
                 std::to_string(max) + " are allowed");
      return nullptr;
    }
    return &node;
  }

  // Where a provider's id and display name were written, for cross-provider checks.
  struct ProviderNodes {
    NodePtr id = nullptr;
    NodePtr display_name = nullptr;
    NodePtr legal_name = nullptr;  // controller.legal_name
  };

  struct SeenProvider {
    std::string path;
    int line;
  };

  static std::string Fold(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
  }

  void ReadProviders(const YamlNode& node, PolicyContent& content) {
    const YamlNode* list = ReadList(node, "providers", "providers", limits_.max_providers);
    if (list == nullptr) return;
    std::map<std::string, SeenProvider> ids;
    std::map<std::string, SeenProvider> display_names;  // folded to lower case
    std::map<std::string, SeenProvider> folded_ids;     // folded to lower case
    std::map<std::string, SeenProvider> legal_names;    // folded to lower case
    for (std::size_t i = 0; i < list->items.size(); ++i) {
      const YamlNode& item = *list->items[i];
      const std::string path = Index("providers", i);
      Provider provider;
      ProviderNodes nodes;
      if (!ReadProvider(item, path, content.defaults, provider, nodes)) continue;
      if (!provider.id.empty()) {
        const auto [first, inserted] = ids.emplace(provider.id, SeenProvider{path, item.line});
        if (!inserted) {
          Report(*nodes.id, Child(path, "id"),
                 "provider id " + Quote(provider.id) + " is already used by " + first->second.path +
                     " (line " + std::to_string(first->second.line) +
                     "); provider ids must be unique");
        }
      }
      // Citizens name providers in BLOCK and UNBLOCK by id or display name, case-blind: no
      // name may stand for two providers.
      const std::string folded_id = Fold(provider.id);
      const std::string folded_name = Fold(provider.display_name);
      if (!provider.id.empty()) {
        if (const auto other = display_names.find(folded_id); other != display_names.end()) {
          Report(*nodes.id, Child(path, "id"),
                 "provider id " + Quote(provider.id) + " is the display name of " +
                     other->second.path + " (line " + std::to_string(other->second.line) +
                     "); a citizen's BLOCK " + provider.id + " would be ambiguous");
        }
      }
      if (!provider.display_name.empty()) {
        if (const auto other = folded_ids.find(folded_name);
            other != folded_ids.end() && folded_name != folded_id) {
          Report(*nodes.display_name, Child(path, "display_name"),
                 "display name " + Quote(provider.display_name) + " is the id of " +
                     other->second.path + " (line " + std::to_string(other->second.line) +
                     "); a citizen's BLOCK " + provider.display_name + " would be ambiguous");
        }
        const auto [first, inserted] =
            display_names.emplace(folded_name, SeenProvider{path, item.line});
        if (!inserted) {
          Report(*nodes.display_name, Child(path, "display_name"),
                 "display name " + Quote(provider.display_name) + " is already used by " +
                     first->second.path +
                     "; citizens must be able to tell providers apart in their SMS");
        }
      }
      if (!provider.id.empty()) folded_ids.emplace(folded_id, SeenProvider{path, item.line});
      // A receipt names its controller by legal name: two providers may not share one, or a
      // receipt could not tell who holds the citizen's data.
      if (provider.controller && !provider.controller->legal_name.empty() && nodes.legal_name) {
        const auto [first, inserted] = legal_names.emplace(
            Fold(provider.controller->legal_name), SeenProvider{path, nodes.legal_name->line});
        if (!inserted) {
          Report(*nodes.legal_name, Child(Child(path, "controller"), "legal_name"),
                 "legal name " + Quote(provider.controller->legal_name) + " is already used by " +
                     first->second.path + " (line " + std::to_string(first->second.line) +
                     "); each controller must be told apart in its receipts");
        }
      }
      content.providers.push_back(std::move(provider));
    }
  }

  // Returns false when the provider is not even a mapping. Fields that fail are reported and
  // left at their defaults; the caller discards the whole policy if anything was reported.
  bool ReadProvider(const YamlNode& node, const std::string& path, const Limits& defaults,
                    Provider& provider, ProviderNodes& nodes) {
    const auto map = ReadMap(node, path, kProviderFields);
    if (!map) return false;
    provider.limits = defaults;
    nodes.id = map->Get("id");
    nodes.display_name = map->Get("display_name");
    if (NodePtr id = map->Get("id")) {
      if (const auto text = ReadScalar(*id, Child(path, "id"), "a provider id")) {
        if (internal::IsSlug(*text)) {
          provider.id = *text;
        } else {
          Report(*id, Child(path, "id"),
                 "provider id " + Quote(*text) +
                     " must be a slug: 1 to 64 lowercase letters, digits and single hyphens, "
                     "starting with a letter (such as demo-bank)");
        }
      }
    }
    if (NodePtr name = map->Get("display_name")) {
      const std::string name_path = Child(path, "display_name");
      if (const auto text = ReadScalar(*name, name_path, "the name shown in SMS")) {
        if (const auto problem = internal::CheckSmsText(*text, kDisplayNameMax)) {
          Report(*name, name_path,
                 "display name " + *problem + "; it goes into the citizen's SMS, so use at most " +
                     std::to_string(kDisplayNameMax) + " GSM-7 characters");
        } else {
          provider.display_name = *text;
        }
      }
    }
    if (NodePtr status = map->Get("status")) {
      if (const auto text = ReadScalar(*status, Child(path, "status"), "active or suspended")) {
        if (*text == "active") {
          provider.status = ProviderStatus::kActive;
        } else if (*text == "suspended") {
          provider.status = ProviderStatus::kSuspended;
        } else {
          Report(*status, Child(path, "status"),
                 "must be 'active' or 'suspended'; got " + Quote(*text));
        }
      }
    }
    ReadValidity(*map, path, provider);
    bool credentials_valid = true;
    if (NodePtr credentials = map->Get("credentials")) {
      credentials_valid = ReadCredentials(*credentials, Child(path, "credentials"), provider);
    }
    // Only when the list itself was fine: otherwise this would repeat its errors.
    if (provider.status == ProviderStatus::kActive && provider.credentials.empty() &&
        credentials_valid) {
      Report(node, path,
             "an active provider needs at least one credential (an API key hash or a client "
             "certificate fingerprint); suspend it or add one");
    }
    if (NodePtr purposes = map->Get("purposes")) {
      ReadPurposes(*purposes, Child(path, "purposes"), provider);
    }
    if (NodePtr rate = map->Get("rate_limit")) {
      const std::string rate_path = Child(path, "rate_limit");
      if (const auto fields = ReadMap(*rate, rate_path, kRateLimitFields)) {
        if (NodePtr rpm = fields->Get("requests_per_minute")) {
          if (auto v = ReadInt(*rpm, Child(rate_path, "requests_per_minute"), kRequestsPerMinute)) {
            provider.rate_limit.requests_per_minute = static_cast<std::uint32_t>(*v);
          }
        }
        if (NodePtr burst = fields->Get("burst")) {
          if (auto v = ReadInt(*burst, Child(rate_path, "burst"), kBurst)) {
            provider.rate_limit.burst = static_cast<std::uint32_t>(*v);
          }
        }
      }
    }
    if (NodePtr reveal = map->Get("reveal_enrolment_status")) {
      if (auto v = ReadBool(*reveal, Child(path, "reveal_enrolment_status"))) {
        provider.reveal_enrolment_status = *v;
      }
    }
    if (NodePtr overrides = map->Get("overrides")) {
      ReadLimits(*overrides, Child(path, "overrides"), provider.limits, &defaults);
    }
    if (NodePtr controller = map->Get("controller")) {
      ReadController(*controller, Child(path, "controller"), provider, &nodes.legal_name);
    }
    return true;
  }

  // The provider's details as data controller, written into every receipt it receives.
  void ReadController(const YamlNode& node, const std::string& path, Provider& provider,
                      NodePtr* legal_name_node) {
    const auto map = ReadMap(node, path, kControllerFields);
    if (!map) return;
    *legal_name_node = map->Get("legal_name");
    Controller controller;
    const auto read = [&](std::string_view key, std::string_view expected, auto check,
                          std::string& out) {
      NodePtr value = map->Get(key);
      if (value == nullptr) return;
      const std::string field_path = Child(path, key);
      const auto text = ReadScalar(*value, field_path, expected);
      if (!text) return;
      if (const auto problem = check(*text)) {
        Report(*value, field_path, Quote(*text) + " " + *problem);
      } else {
        out = *text;
      }
    };
    const auto line = [](std::size_t max) {
      return [max](std::string_view text) { return internal::CheckOneLine(text, max); };
    };
    read("legal_name", "the controller's registered name", line(kControllerNameMax),
         controller.legal_name);
    read("address", "a postal address on one line", line(kControllerAddressMax),
         controller.address);
    read("country", "an ISO 3166-1 alpha-2 country code such as PK", internal::CheckCountryCode,
         controller.country);
    read("contact", "a role or office such as Data Protection Officer", line(kControllerContactMax),
         controller.contact);
    read("email", "an e-mail address", internal::CheckEmail, controller.email);
    read("phone", "an international phone number", internal::CheckPhone, controller.phone);
    read("privacy_policy_url", "an https URL", internal::CheckHttpsUrl,
         controller.privacy_policy_url);
    provider.controller = std::move(controller);
  }

  void ReadValidity(const MapReader& map, const std::string& path, Provider& provider) {
    const auto read = [&](std::string_view key) -> std::optional<std::chrono::sys_seconds> {
      NodePtr node = map.Get(key);
      if (node == nullptr) return std::nullopt;
      const std::string field_path = Child(path, key);
      const auto text = ReadScalar(*node, field_path, "a UTC time such as 2025-01-31T00:00:00Z");
      if (!text) return std::nullopt;
      const auto time = internal::ParseTimestamp(*text);
      if (!time) {
        Report(*node, field_path,
               Quote(*text) +
                   " is not a UTC time; write it as YYYY-MM-DDTHH:MM:SSZ, such as "
                   "2025-01-31T00:00:00Z");
      }
      return time;
    };
    provider.valid_from = read("valid_from");
    provider.valid_until = read("valid_until");
    if (provider.valid_from && provider.valid_until &&
        *provider.valid_until <= *provider.valid_from) {
      Report(*map.Get("valid_until"), Child(path, "valid_until"),
             "must be later than valid_from (" + internal::FormatTimestamp(*provider.valid_from) +
                 "); the provider would never be valid");
    }
  }

  // Returns false if any problem was reported.
  bool ReadCredentials(const YamlNode& node, const std::string& path, Provider& provider) {
    const std::size_t before = reported_;
    const YamlNode* list =
        ReadList(node, path, "credentials", limits_.max_credentials_per_provider);
    if (list != nullptr) {
      for (std::size_t i = 0; i < list->items.size(); ++i) {
        const YamlNode& item = *list->items[i];
        const std::string item_path = Index(path, i);
        const auto map = ReadMap(item, item_path, kCredentialFields);
        if (!map) continue;
        Credential credential;
        bool ok = true;
        if (NodePtr type = map->Get("type")) {
          const auto text =
              ReadScalar(*type, Child(item_path, "type"), "api_key or client_certificate");
          if (text && *text == "api_key") {
            credential.type = CredentialType::kApiKey;
          } else if (text && *text == "client_certificate") {
            credential.type = CredentialType::kClientCertificate;
          } else {
            if (text) {
              Report(*type, Child(item_path, "type"),
                     "must be 'api_key' or 'client_certificate'; got " + Quote(*text));
            }
            ok = false;
          }
        } else {
          ok = false;
        }
        if (NodePtr hash = map->Get("sha256")) {
          ok = ReadCredentialHash(*hash, Child(item_path, "sha256"), credential) && ok;
          if (ok && rules_.refuse_published_demo_credentials &&
              credential.type == CredentialType::kApiKey &&
              credential.sha256_hex == HexEncode(internal::Sha256(kPublishedDemoApiKey))) {
            Report(*hash, Child(item_path, "sha256"),
                   "this is the hash of the public demo API key printed in the Ijazat "
                   "repository: anyone could use it. Give the provider a key of its own "
                   "(docs/policy.md), or on a development appliance set "
                   "development.allow_demo_credentials: true in ijazatd.yaml");
            ok = false;
          }
        } else {
          ok = false;
        }
        if (NodePtr label = map->Get("label")) {
          const std::string label_path = Child(item_path, "label");
          if (const auto text = ReadScalar(*label, label_path, "a short note for reviewers")) {
            const bool printable = text->size() <= kLabelMax &&
                                   std::all_of(text->begin(), text->end(),
                                               [](char c) { return c >= 0x20 && c < 0x7F; });
            if (printable) {
              credential.label = *text;
            } else {
              Report(
                  *label, label_path,
                  "must be at most " + std::to_string(kLabelMax) + " printable ASCII characters");
              ok = false;
            }
          } else {
            ok = false;
          }
        }
        if (!ok) continue;
        const std::string key =
            std::string(ToString(credential.type)) + ":" + credential.sha256_hex;
        const auto [first, inserted] =
            credentials_.emplace(key, SeenProvider{item_path, item.line});
        if (!inserted) {
          Report(*map->Get("sha256"), Child(item_path, "sha256"),
                 "this " + std::string(ToString(credential.type)) + " hash is already listed at " +
                     first->second.path + " (line " + std::to_string(first->second.line) +
                     "); a credential must identify exactly one provider, once");
          continue;
        }
        provider.credentials.push_back(std::move(credential));
      }
    }
    return reported_ == before;
  }

  bool ReadCredentialHash(const YamlNode& node, const std::string& path, Credential& credential) {
    const auto text = ReadScalar(node, path, "a SHA-256 as 64 hex digits");
    if (!text) return false;
    if (const auto hex = internal::NormaliseSha256Hex(*text)) {
      credential.sha256_hex = *hex;
      return true;
    }
    // Never echo the value: it may be a plaintext key pasted by mistake.
    const bool looks_like_key = text->rfind("ijz_", 0) == 0;
    Report(node, path,
           looks_like_key
               ? "this looks like a plaintext API key; a policy holds only the key's SHA-256 "
                 "(printf %s \"$KEY\" | sha256sum), never the key itself; this key must "
                 "now be treated as disclosed"
               : "must be a SHA-256 written as 64 hex digits (or 32 colon-separated pairs, as "
                 "openssl x509 -fingerprint -sha256 prints); got " +
                     std::to_string(text->size()) + " characters");
    return false;
  }

  void ReadPurposes(const YamlNode& node, const std::string& path, Provider& provider) {
    const YamlNode* list = ReadList(node, path, "purposes", limits_.max_purposes_per_provider);
    if (list == nullptr) return;
    if (list->items.empty()) {
      Report(node, path, "needs at least one purpose; a provider without purposes can do nothing");
      return;
    }
    std::map<std::string, std::string> ids;  // id -> path of first use
    for (std::size_t i = 0; i < list->items.size(); ++i) {
      const YamlNode& item = *list->items[i];
      const std::string item_path = Index(path, i);
      const auto map = ReadMap(item, item_path, kPurposeFields);
      if (!map) continue;
      Purpose purpose;
      if (NodePtr id = map->Get("id")) {
        if (const auto text = ReadScalar(*id, Child(item_path, "id"), "a purpose id")) {
          if (!internal::IsSlug(*text)) {
            Report(*id, Child(item_path, "id"),
                   "purpose id " + Quote(*text) +
                       " must be a slug: 1 to 64 lowercase letters, digits and single hyphens, "
                       "starting with a letter (such as account-opening)");
          } else if (const auto [first, inserted] = ids.emplace(*text, item_path); !inserted) {
            Report(*id, Child(item_path, "id"),
                   "purpose id " + Quote(*text) + " is already used by " + first->second +
                       "; purpose ids must be unique within a provider");
          } else {
            purpose.id = *text;
          }
        }
      }
      if (NodePtr sms = map->Get("sms_text")) {
        const std::string sms_path = Child(item_path, "sms_text");
        if (const auto text = ReadScalar(*sms, sms_path, "the purpose as the SMS names it")) {
          if (const auto problem = internal::CheckSmsText(*text, kSmsTextMax)) {
            Report(*sms, sms_path,
                   "SMS text " + *problem + "; it goes into the citizen's SMS, so use at most " +
                       std::to_string(kSmsTextMax) + " GSM-7 characters");
          } else {
            purpose.sms_text = *text;
          }
        }
      }
      if (NodePtr scopes = map->Get("scopes")) {
        ReadScopes(*scopes, Child(item_path, "scopes"), purpose);
      }
      provider.purposes.push_back(std::move(purpose));
    }
  }

  void ReadScopes(const YamlNode& node, const std::string& path, Purpose& purpose) {
    const YamlNode* list = ReadList(node, path, "scopes", AllScopes().size() * 2);
    if (list == nullptr) return;
    if (list->items.empty()) {
      Report(node, path, "needs at least one scope; allowed scopes: " + AllScopeNames());
      return;
    }
    for (std::size_t i = 0; i < list->items.size(); ++i) {
      const YamlNode& item = *list->items[i];
      const std::string item_path = Index(path, i);
      const auto text = ReadScalar(item, item_path, "a scope name");
      if (!text) continue;
      const std::optional<Scope> scope = ParseScope(*text);
      if (!scope) {
        std::string message = "unknown scope " + Quote(*text);
        for (Scope candidate : AllScopes()) {
          if (internal::EditDistance(*text, ScopeName(candidate)) <= 2) {
            message += " (did you mean '" + std::string(ScopeName(candidate)) + "'?)";
            break;
          }
        }
        Report(item, item_path, message + "; allowed scopes: " + AllScopeNames());
        continue;
      }
      if (purpose.Allows(*scope)) {
        Report(item, item_path, "scope " + Quote(*text) + " is listed twice; list each scope once");
        continue;
      }
      purpose.scopes.push_back(*scope);
    }
  }

  std::string file_;
  const LoaderLimits& limits_;
  const LoaderRules& rules_;
  std::vector<Diagnostic> diagnostics_;
  std::size_t reported_ = 0;
  std::map<std::string, SeenProvider> credentials_;  // "type:hash" -> first use
};

Error InvalidError(const std::vector<Diagnostic>& diagnostics) {
  std::string message;
  for (const Diagnostic& diagnostic : diagnostics) {
    if (!message.empty()) message += '\n';
    message += diagnostic.ToString();
  }
  return Error(ErrorCode::kInvalidArgument, std::move(message), "policy_invalid");
}

Error UnreadableError(const std::filesystem::path& path, ErrorCode code, const std::string& why,
                      std::vector<Diagnostic>* diagnostics) {
  Diagnostic diagnostic{path.string(), 0, 0, "", "cannot read the policy file: " + why};
  std::string message = diagnostic.ToString();
  if (diagnostics != nullptr) diagnostics->push_back(std::move(diagnostic));
  return Error(code, std::move(message), "policy_unreadable");
}

// Closes a file descriptor on every path out of LoadFile.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string Diagnostic::ToString() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  out += ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

Result<std::shared_ptr<const PolicySet>> PolicyLoader::LoadFile(
    const std::filesystem::path& path, std::vector<Diagnostic>* diagnostics) const {
  if (diagnostics != nullptr) diagnostics->clear();
  // O_NONBLOCK: opening a FIFO must not block the reload thread.
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    const int error = errno;
    const ErrorCode code = error == ENOENT || error == ENOTDIR ? ErrorCode::kNotFound
                           : error == EACCES || error == EPERM ? ErrorCode::kPermissionDenied
                                                               : ErrorCode::kUnavailable;
    return UnreadableError(path, code, std::strerror(error), diagnostics);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    return UnreadableError(path, ErrorCode::kUnavailable, std::strerror(errno), diagnostics);
  }
  if (!S_ISREG(info.st_mode)) {
    return UnreadableError(path, ErrorCode::kUnavailable, "it is not a regular file", diagnostics);
  }
  // Read at most one byte past the cap: enough to know the file is too large, even if it grows
  // while being read.
  std::string text;
  const std::size_t cap = limits_.max_file_bytes + 1;
  text.resize(
      std::min<std::size_t>(cap, static_cast<std::size_t>(std::max<off_t>(info.st_size, 0)) + 1));
  std::size_t filled = 0;
  while (filled < cap) {
    if (filled == text.size()) text.resize(std::min(cap, text.size() * 2 + 4096));
    const ssize_t n = ::read(fd.get(), text.data() + filled, text.size() - filled);
    if (n < 0) {
      if (errno == EINTR) continue;
      return UnreadableError(path, ErrorCode::kUnavailable, std::strerror(errno), diagnostics);
    }
    if (n == 0) break;
    filled += static_cast<std::size_t>(n);
  }
  text.resize(filled);
  return LoadString(text, path.string(), diagnostics);
}

Result<std::shared_ptr<const PolicySet>> PolicyLoader::LoadString(
    std::string_view text, std::string_view source_name,
    std::vector<Diagnostic>* diagnostics) const {
  if (diagnostics != nullptr) diagnostics->clear();
  const std::string file(source_name);
  std::vector<Diagnostic> found;
  const auto fail = [&]() -> Result<std::shared_ptr<const PolicySet>> {
    Error error = InvalidError(found);
    if (diagnostics != nullptr) *diagnostics = std::move(found);
    return error;
  };

  if (text.size() > limits_.max_file_bytes) {
    found.push_back({file, 0, 0, "",
                     "the file is larger than the " + std::to_string(limits_.max_file_bytes) +
                         "-byte limit for policy files"});
    return fail();
  }
  for (auto& problem : internal::ScreenText(text, limits_.max_diagnostics)) {
    found.push_back({file, problem.line, problem.column, "", std::move(problem.message)});
  }
  if (!found.empty()) return fail();

  const yaml::YamlParseResult parsed =
      yaml::ParseYaml(text, {limits_.max_depth, limits_.max_nodes});
  if (parsed.failed) {
    found.push_back({file, parsed.line, parsed.column, "", parsed.message});
    return fail();
  }
  if (!parsed.root || parsed.root->kind == YamlNode::Kind::kNull) {
    found.push_back({file, 1, 1, "",
                     "the policy file is empty; it needs at least the keys version and "
                     "providers (see docs/policy.md)"});
    return fail();
  }

  Validator validator(file, limits_, rules_);
  std::optional<PolicyContent> content = validator.Validate(*parsed.root);
  found = validator.TakeDiagnostics();
  if (!content || !found.empty()) {
    if (found.empty()) found.push_back({file, 0, 0, "", "the policy is invalid"});
    return fail();
  }
  return std::shared_ptr<const PolicySet>(
      std::make_shared<PolicySet>(PolicySet::ConstructionKey(), std::move(*content)));
}

}  // namespace ijazat::policy
