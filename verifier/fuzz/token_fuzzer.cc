// libFuzzer harness for consent token and receipt verification, JWKS parsing and the claims
// readers. Build: CXX=clang++ cmake -B build/fuzz -DIJAZAT_BUILD_FUZZERS=ON
// -DIJAZAT_BUILD_TESTS=OFF -DIJAZAT_BUILD_BENCH=OFF && cmake --build build/fuzz --target
// token_fuzzer Run:   build/fuzz/bin/token_fuzzer -max_len=17000 CORPUS_DIR
// tests/data/verifier/corpus
#include <cstddef>
#include <cstdint>

#include "token_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ijazat::verifier::fuzz::RunTokenFuzzInput(data, size);
  return 0;
}
