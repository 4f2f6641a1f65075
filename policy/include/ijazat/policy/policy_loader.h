// PolicyLoader: reads a policy file, validates all of it, and builds a PolicySet.
//
// The loader is the trust boundary for policy files. It assumes the file may be hostile or
// simply wrong, and its rule is that a mistake is never silently accepted:
//  - every problem is reported, not only the first, each with file:line:column, the path of
//    the offending value (providers[2].purposes[0].scopes[1]) and a sentence that says what
//    is wrong and what is allowed;
//  - unknown keys, duplicate keys, out-of-range values, duplicate ids and credentials,
//    unknown scopes, YAML tags and providers loosening a default are all errors;
//  - size, nesting depth, node count (after alias expansion) and list lengths are capped, the
//    text must be UTF-8 without tabs, control or bidirectional-override characters, so that
//    a hostile file gets a clear error quickly, never a crash or a hang.
//
// Errors: LoadFile/LoadString return
//  - reason "policy_unreadable" (kNotFound, kPermissionDenied or kUnavailable) when the file
//    cannot be read, or is not a regular file;
//  - reason "policy_invalid" (kInvalidArgument) when it can be read but is not a valid policy.
//    The message is every diagnostic, one "file:line:column: path: message" per line.
// When `diagnostics` is not null it receives the same problems as structured values (it is
// cleared first, and left empty on success).
//
// Thread safety: a PolicyLoader holds only its limits; Load* are const and may run
// concurrently. Nothing here throws; yaml-cpp's exceptions are caught inside.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ijazat/common/result.h"
#include "ijazat/policy/policy_set.h"

namespace ijazat::policy {

struct Diagnostic {
  std::string file;  // as given to the loader
  int line = 0;      // 1-based; 0 when the problem is not at one place (unreadable file)
  int column = 0;    // 1-based, in characters
  std::string path;  // "providers[2].purposes[0]"; empty for whole-document problems
  std::string message;

  // "file:line:column: path: message" (parts that are empty or zero are left out).
  std::string ToString() const;
};

// Caps that keep hostile input cheap. The defaults are far above any real policy.
struct LoaderLimits {
  std::size_t max_file_bytes = std::size_t{1024} * 1024;
  std::size_t max_depth = 16;       // nesting of mappings and sequences
  std::size_t max_nodes = 100'000;  // after alias expansion: defeats "billion laughs"
  std::size_t max_providers = 1000;
  std::size_t max_purposes_per_provider = 64;
  std::size_t max_credentials_per_provider = 16;
  std::size_t max_diagnostics = 100;  // later problems are summarised in one line
};

// The API key printed in this repository for the demo provider (policy/example/policy.yaml,
// the README): anyone can read it, so an appliance in service must never accept it.
inline constexpr std::string_view kPublishedDemoApiKey =
    "ijz_demo_0123456789abcdef0123456789abcdef";

// What a policy may hold beyond its own rules, set by the program that loads it.
struct LoaderRules {
  // A credential whose hash is that of kPublishedDemoApiKey is an error (at its line and
  // column). ijazatd sets it unless development.allow_demo_credentials is on.
  bool refuse_published_demo_credentials = false;
};

class PolicyLoader {
 public:
  explicit PolicyLoader(LoaderLimits limits = {}, LoaderRules rules = {})
      : limits_(limits), rules_(rules) {}

  Result<std::shared_ptr<const PolicySet>> LoadFile(
      const std::filesystem::path& path, std::vector<Diagnostic>* diagnostics = nullptr) const;

  // `source_name` is used as the file name in diagnostics.
  Result<std::shared_ptr<const PolicySet>> LoadString(
      std::string_view text, std::string_view source_name,
      std::vector<Diagnostic>* diagnostics = nullptr) const;

  const LoaderLimits& limits() const { return limits_; }
  const LoaderRules& rules() const { return rules_; }

 private:
  LoaderLimits limits_;
  LoaderRules rules_;
};

}  // namespace ijazat::policy
