#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ijazat::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ijazat-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path TempDir::WriteFile(std::string_view name, std::string_view content,
                                         std::filesystem::perms perms) const {
  const auto file = path_ / name;
  std::filesystem::create_directories(file.parent_path());
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << content;
  }
  std::filesystem::permissions(file, perms);
  return file;
}

std::string ReadFileOrDie(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::filesystem::path TestDataPath(std::string_view relative) {
  const char* root = std::getenv("IJAZAT_TEST_DATA");
  return std::filesystem::path(root != nullptr ? root : IJAZAT_TEST_DATA_DIR) / relative;
}

std::string BinaryPath(std::string_view program) {
  const char* root = std::getenv("IJAZAT_BINARY_DIR");
  return (std::filesystem::path(root != nullptr ? root : IJAZAT_BUILD_DIR) / "bin" / program)
      .string();
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  const std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace ijazat::testing
