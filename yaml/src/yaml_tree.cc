#include "ijazat/yaml/yaml_tree.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <exception>
#include <map>
#include <new>
#include <sstream>

namespace ijazat::yaml {
namespace {

// Thrown from inside the event handler to stop yaml-cpp as soon as a cap is hit; caught in
// ParseYaml.
class TreeError : public std::exception {
 public:
  TreeError(const YAML::Mark& mark, std::string message)
      : line_(mark.line + 1), column_(mark.column + 1), message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  int line() const { return line_; }
  int column() const { return column_; }

 private:
  int line_;
  int column_;
  std::string message_;
};

// Node with bookkeeping used only while building.
struct BuildNode {
  std::shared_ptr<const YamlNode> node;
  std::size_t expanded_size = 1;  // nodes this one stands for once aliases are expanded
};

class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(const YamlLimits& limits) : limits_(limits) {}

  std::shared_ptr<const YamlNode> root() const { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto node = NewNode(mark, YamlNode::Kind::kNull);
    // yaml-cpp places an empty value ("digits:") at the start of the next token, often on
    // the next line; the key it belongs to is where a reader will look.
    if (!stack_.empty() && stack_.back().pending_key) {
      node->line = stack_.back().pending_key->line;
      node->column = stack_.back().pending_key->column;
    }
    Finish({node, 1}, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    const auto found = anchors_.find(anchor);
    if (found == anchors_.end()) throw TreeError(mark, "alias to an unknown anchor");
    if (!found->second.complete) {
      throw TreeError(mark, "an alias refers to a mapping or list that contains it");
    }
    Count(mark, found->second.expanded_size);
    Attach(mark, {found->second.node, found->second.expanded_size});
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    CheckTag(mark, tag);
    auto node = NewNode(mark, YamlNode::Kind::kScalar);
    node->value = value;
    Finish({node, 1}, anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, tag, anchor, YamlNode::Kind::kSequence);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, tag, anchor, YamlNode::Kind::kMapping);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    std::shared_ptr<YamlNode> node;  // the container being filled
    std::size_t expanded_size = 1;
    YAML::Mark mark;
    YAML::anchor_t anchor = 0;
    std::shared_ptr<const YamlNode> pending_key;
  };
  struct Anchored {
    std::shared_ptr<const YamlNode> node;
    std::size_t expanded_size = 0;
    bool complete = false;
  };

  std::shared_ptr<YamlNode> NewNode(const YAML::Mark& mark, YamlNode::Kind kind) {
    Count(mark, 1);
    auto node = std::make_shared<YamlNode>();
    node->kind = kind;
    node->line = mark.line + 1;
    node->column = mark.column + 1;
    return node;
  }

  // Every node counts once per time it appears after alias expansion, so the running total
  // is the size of the fully expanded document.
  void Count(const YAML::Mark& mark, std::size_t nodes) {
    if (nodes > limits_.max_nodes || expanded_total_ > limits_.max_nodes - nodes) {
      throw TreeError(mark, "the document has more than " + std::to_string(limits_.max_nodes) +
                                " values once anchors and aliases are expanded");
    }
    expanded_total_ += nodes;
  }

  static void CheckTag(const YAML::Mark& mark, const std::string& tag) {
    // yaml-cpp reports "?" for untagged plain nodes and "!" for quoted scalars.
    if (!tag.empty() && tag != "?" && tag != "!") {
      throw TreeError(
          mark, "YAML tags (here '" + tag.substr(0, 40) + "') are not allowed; write plain values");
    }
  }

  void Open(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
            YamlNode::Kind kind) {
    CheckTag(mark, tag);
    if (stack_.size() + 1 > limits_.max_depth) {
      throw TreeError(mark, "mappings and lists are nested more than " +
                                std::to_string(limits_.max_depth) + " levels deep");
    }
    Frame frame;
    frame.node = NewNode(mark, kind);
    frame.mark = mark;
    frame.anchor = anchor;
    // Registered before its content so that an alias inside it is seen as recursive.
    if (anchor != 0) anchors_[anchor] = {frame.node, 0, false};
    stack_.push_back(std::move(frame));
  }

  void Close() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    if (frame.pending_key) throw TreeError(frame.mark, "a mapping key has no value");
    Finish({frame.node, frame.expanded_size}, frame.anchor);
  }

  void Finish(const BuildNode& build, YAML::anchor_t anchor) {
    if (anchor != 0) anchors_[anchor] = {build.node, build.expanded_size, true};
    Attach({}, build);
  }

  void Attach(const YAML::Mark&, const BuildNode& build) {
    if (stack_.empty()) {
      root_ = build.node;
      return;
    }
    Frame& parent = stack_.back();
    parent.expanded_size += build.expanded_size;
    if (parent.node->kind == YamlNode::Kind::kSequence) {
      parent.node->items.push_back(build.node);
    } else if (!parent.pending_key) {
      parent.pending_key = build.node;
    } else {
      parent.node->entries.emplace_back(std::move(parent.pending_key), build.node);
      parent.pending_key.reset();
    }
  }

  const YamlLimits& limits_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Anchored> anchors_;
  std::shared_ptr<const YamlNode> root_;
  std::size_t expanded_total_ = 0;
};

// Used for any document after the first: its mere presence is the error.
class SecondDocumentHandler : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    throw TreeError(mark,
                    "a second YAML document starts here; the file must hold exactly one "
                    "document (remove the extra '---')");
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

YamlParseResult Failure(int line, int column, std::string message) {
  YamlParseResult result;
  result.failed = true;
  result.line = line;
  result.column = column;
  result.message = std::move(message);
  return result;
}

}  // namespace

std::string_view Describe(YamlNode::Kind kind) {
  switch (kind) {
    case YamlNode::Kind::kNull:
      return "nothing";
    case YamlNode::Kind::kScalar:
      return "a single value";
    case YamlNode::Kind::kSequence:
      return "a list";
    case YamlNode::Kind::kMapping:
      return "a mapping";
  }
  return "something else";
}

YamlParseResult ParseYaml(std::string_view text, const YamlLimits& limits) {
  try {
    std::istringstream stream{std::string(text)};
    YAML::Parser parser(stream);
    TreeBuilder builder(limits);
    if (!parser.HandleNextDocument(builder)) return {};
    SecondDocumentHandler second;
    parser.HandleNextDocument(second);
    YamlParseResult result;
    result.root = builder.root();
    return result;
  } catch (const TreeError& error) {
    return Failure(error.line(), error.column(), error.what());
  } catch (const YAML::Exception& error) {
    // Marks may be null for errors yaml-cpp cannot place.
    const int line = error.mark.is_null() ? 0 : error.mark.line + 1;
    const int column = error.mark.is_null() ? 0 : error.mark.column + 1;
    return Failure(line, column, "YAML syntax error: " + error.msg);
  } catch (const std::bad_alloc&) {
    return Failure(0, 0, "the document is too large to parse");
  } catch (const std::exception& error) {
    return Failure(0, 0, std::string("the YAML parser failed: ") + error.what());
  }
}

}  // namespace ijazat::yaml
