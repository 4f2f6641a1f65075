// Replays a libFuzzer corpus through a harness in an ordinary (non-fuzzer) build: every file
// named on the command line, or found in a folder named there, goes once through
// LLVMFuzzerTestOneInput. A harness reports a broken invariant by crashing, so a crash fails
// the test; so does a missing path, an empty corpus or a harness that returns non-zero.
//
//   replay_<harness> [--min-inputs N] PATH...
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool Replay(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    return false;
  }
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Named before it runs: when the harness crashes, the last line names the input.
  std::cerr << "replay " << path.string() << " (" << data.size() << " bytes)\n";
  if (LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()) !=
      0) {
    std::cerr << "the harness returned non-zero for " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t min_inputs = 1;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--min-inputs" && i + 1 < argc) {
      min_inputs = std::strtoul(argv[++i], nullptr, 10);
      continue;
    }
    const std::filesystem::path path(arg);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else if (std::filesystem::is_regular_file(path, ec)) {
      files.push_back(path);
    } else {
      std::cerr << "no such corpus file or folder: " << path << "\n";
      return 2;
    }
  }
  bool ok = true;
  for (const auto& file : files) ok = Replay(file) && ok;
  std::cout << "replayed " << files.size() << " inputs\n";
  if (files.size() < min_inputs) {
    std::cerr << "expected at least " << min_inputs << " inputs\n";
    return 1;
  }
  return ok ? 0 : 1;
}
