// The one YAML reader of Ijazat: a small document tree built from yaml-cpp's parser events,
// with hostile-input caps, shared by the provider policy and ijazatd.yaml.
//
// Why not YAML::Load: it gives no way to see duplicate keys (the last one silently wins), to
// bound alias expansion before walking it, or to stop deep nesting early. Building our own
// tree from events does all three, and keeps yaml-cpp out of every other file: this library
// links it privately, and nothing else includes it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ijazat::yaml {

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMapping };
  Kind kind = Kind::kNull;
  int line = 0;                                        // 1-based
  int column = 0;                                      // 1-based
  std::string value;                                   // kScalar only
  std::vector<std::shared_ptr<const YamlNode>> items;  // kSequence only
  std::vector<std::pair<std::shared_ptr<const YamlNode>, std::shared_ptr<const YamlNode>>>
      entries;  // kMapping only, in file order, duplicates kept (the reader reports them)
};

std::string_view Describe(YamlNode::Kind kind);  // "a mapping", "a list", "text", "nothing"

struct YamlLimits {
  std::size_t max_depth = 16;
  std::size_t max_nodes = 100'000;
};

struct YamlParseResult {
  std::shared_ptr<const YamlNode> root;  // null when the stream holds no document or failed
  bool failed = false;
  int line = 0;  // of the failure
  int column = 0;
  std::string message;
};

// Parses exactly one document. Never throws.
YamlParseResult ParseYaml(std::string_view text, const YamlLimits& limits);

}  // namespace ijazat::yaml
