#include "canonical.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "timestamp.h"

namespace ijazat::policy::internal {
namespace {

// Writes compact JSON. Object keys must be written in ascending bytewise order: the writer
// checks it, because a key out of order would silently change every policy hash.
class JsonWriter {
 public:
  void BeginObject() { Open('{', true); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('[', false); }
  void EndArray() { Close(']'); }

  void Key(std::string_view key) {
    Level& level = stack_.back();
    if (!level.object || (!level.first && key <= level.last_key)) std::abort();
    Separator();
    level.last_key = std::string(key);
    WriteString(key);
    out_ += ':';
    pending_value_ = true;
  }

  void String(std::string_view value) {
    Separator();
    WriteString(value);
  }
  void Number(long long value) {
    Separator();
    out_ += std::to_string(value);
  }
  void Bool(bool value) {
    Separator();
    out_ += value ? "true" : "false";
  }
  void Null() {
    Separator();
    out_ += "null";
  }

  std::string Take() { return std::move(out_); }

 private:
  struct Level {
    bool object = false;
    bool first = true;
    std::string last_key;
  };

  void Open(char bracket, bool object) {
    Separator();
    out_ += bracket;
    stack_.push_back({object, true, {}});
  }
  void Close(char bracket) {
    stack_.pop_back();
    out_ += bracket;
  }

  // Emits the comma between members or elements; a value right after its key needs none.
  void Separator() {
    if (pending_value_) {
      pending_value_ = false;
      return;
    }
    if (stack_.empty()) return;
    Level& level = stack_.back();
    if (!level.first) out_ += ',';
    level.first = false;
  }

  void WriteString(std::string_view text) {
    out_ += '"';
    for (char c : text) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += c;
      } else if (byte < 0x20) {
        std::array<char, 8> buffer{};
        std::snprintf(buffer.data(), buffer.size(), "\\u%04x", byte);
        out_ += buffer.data();
      } else {
        out_ += c;  // the loader only accepts valid UTF-8
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<Level> stack_;
  bool pending_value_ = false;
};

void WriteLimits(JsonWriter& json, const Limits& limits) {
  json.BeginObject();
  json.Key("limits");
  json.BeginObject();
  json.Key("failures_per_cnic_per_day");
  json.Number(limits.cnic.failures_per_day);
  json.Key("number_change_cooling_off");
  json.Number(limits.cnic.number_change_cooling_off.count());
  json.Key("sms_per_cnic_per_hour");
  json.Number(limits.cnic.sms_per_hour);
  json.EndObject();
  json.Key("otp");
  json.BeginObject();
  json.Key("digits");
  json.Number(limits.otp.digits);
  json.Key("max_attempts");
  json.Number(limits.otp.max_attempts);
  json.Key("ttl");
  json.Number(limits.otp.ttl.count());
  json.EndObject();
  json.Key("token");
  json.BeginObject();
  json.Key("max_uses");
  json.Number(limits.token.max_uses);
  json.Key("ttl");
  json.Number(limits.token.ttl.count());
  json.EndObject();
  json.EndObject();
}

void WriteTime(JsonWriter& json, const std::optional<std::chrono::sys_seconds>& time) {
  if (time) {
    json.String(FormatTimestamp(*time));
  } else {
    json.Null();
  }
}

void WriteProvider(JsonWriter& json, const Provider& provider) {
  json.BeginObject();
  // Only when present, so that the hash of a policy without controller details is what it
  // was before the section existed.
  if (provider.controller) {
    const Controller& c = *provider.controller;
    json.Key("controller");
    json.BeginObject();
    for (const auto& [key, value] :
         {std::pair<const char*, const std::string*>{"address", &c.address},
          {"contact", &c.contact},
          {"country", &c.country},
          {"email", &c.email},
          {"legal_name", &c.legal_name},
          {"phone", &c.phone},
          {"privacy_policy_url", &c.privacy_policy_url}}) {
      json.Key(key);
      json.String(*value);
    }
    json.EndObject();
  }
  json.Key("credentials");
  json.BeginArray();
  for (const Credential& credential : provider.credentials) {
    json.BeginObject();
    json.Key("label");
    json.String(credential.label);
    json.Key("sha256");
    json.String(credential.sha256_hex);
    json.Key("type");
    json.String(ToString(credential.type));
    json.EndObject();
  }
  json.EndArray();
  json.Key("display_name");
  json.String(provider.display_name);
  json.Key("id");
  json.String(provider.id);
  json.Key("limits");
  WriteLimits(json, provider.limits);
  json.Key("purposes");
  json.BeginArray();
  for (const Purpose& purpose : provider.purposes) {
    json.BeginObject();
    json.Key("id");
    json.String(purpose.id);
    json.Key("scopes");
    json.BeginArray();
    for (Scope scope : purpose.scopes) json.String(ScopeName(scope));
    json.EndArray();
    json.Key("sms_text");
    json.String(purpose.sms_text);
    json.EndObject();
  }
  json.EndArray();
  json.Key("rate_limit");
  json.BeginObject();
  json.Key("burst");
  json.Number(provider.rate_limit.burst);
  json.Key("requests_per_minute");
  json.Number(provider.rate_limit.requests_per_minute);
  json.EndObject();
  json.Key("reveal_enrolment_status");
  json.Bool(provider.reveal_enrolment_status);
  json.Key("status");
  json.String(ToString(provider.status));
  json.Key("valid_from");
  WriteTime(json, provider.valid_from);
  json.Key("valid_until");
  WriteTime(json, provider.valid_until);
  json.EndObject();
}

}  // namespace

std::string CanonicalForm(const PolicyContent& content) {
  JsonWriter json;
  json.BeginObject();
  json.Key("defaults");
  WriteLimits(json, content.defaults);
  json.Key("format");
  json.String("ijazat-policy-canonical/1");
  json.Key("providers");
  json.BeginArray();
  for (const Provider& provider : content.providers) WriteProvider(json, provider);
  json.EndArray();
  json.Key("version");
  json.String(content.version);
  json.EndObject();
  return json.Take();
}

}  // namespace ijazat::policy::internal
