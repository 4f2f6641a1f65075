#include "strict_json.h"

#include <set>
#include <string>
#include <vector>

namespace ijazat::verifier::internal {

using nlohmann::json;

Result<json> ParseStrictObject(std::string_view text, std::string_view what) {
  const auto malformed = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument, std::string(what) + " " + std::string(why),
                 "malformed");
  };
  // nlohmann skips a UTF-8 byte order mark and leading white space; a JOSE object starts at its
  // first byte.
  if (text.empty() || text.front() != '{') return malformed("is not a JSON object");

  std::vector<std::set<std::string, std::less<>>> members;
  bool duplicate = false;
  bool too_deep = false;
  const json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
    // `depth` counts the containers around the event; a container's own start and end events
    // come at its parent's depth, so an empty innermost container is counted here.
    const bool opens =
        event == json::parse_event_t::object_start || event == json::parse_event_t::array_start;
    if (depth + (opens ? 1 : 0) > kMaxJsonDepth) too_deep = true;
    switch (event) {
      case json::parse_event_t::object_start:
        members.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!members.empty()) members.pop_back();
        break;
      case json::parse_event_t::key:
        if (!members.empty() && parsed.is_string() &&
            !members.back().insert(parsed.get_ref<const std::string&>()).second) {
          duplicate = true;
        }
        break;
      default:
        break;
    }
    return true;
  };
  json value = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false,
                           /*ignore_comments=*/false);
  if (value.is_discarded()) return malformed("is not valid JSON");
  if (too_deep) return malformed("is nested too deeply");
  if (duplicate) return malformed("has a duplicate member name");
  if (!value.is_object()) return malformed("is not a JSON object");
  return value;
}

}  // namespace ijazat::verifier::internal
