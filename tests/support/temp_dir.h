// A private temporary directory for one test, removed with everything in it on destruction.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace ijazat::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `content` to path()/name with the given permissions and returns the full path.
  std::filesystem::path WriteFile(
      std::string_view name, std::string_view content,
      std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write) const;

 private:
  std::filesystem::path path_;
};

// Reads a whole file; fails the current test if it cannot.
std::string ReadFileOrDie(const std::filesystem::path& path);

// Path of a file in tests/data.
std::filesystem::path TestDataPath(std::string_view relative);

// Path of a program built by this project ("ijazat-provision" -> <build>/bin/ijazat-provision).
std::string BinaryPath(std::string_view program);

// Runs a shell command, returning its exit status and everything it wrote to stdout and stderr.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

}  // namespace ijazat::testing
