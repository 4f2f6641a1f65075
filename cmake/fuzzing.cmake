# libFuzzer harnesses (IJAZAT_BUILD_FUZZERS=ON, clang; the `fuzz` preset). Each harness is an
# executable named *_fuzzer in bin/, built by the `fuzzers` target; `make fuzz` runs them
# (tests/fuzz/run-fuzzers.sh). The same harness sources run their corpora in ordinary builds
# through the replay driver (tests/fuzz/CMakeLists.txt).
#
#   ijazat_add_fuzzer(NAME SOURCES <files> [INCLUDES <dirs>] [LIBRARIES <targets>])
if(IJAZAT_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "IJAZAT_BUILD_FUZZERS needs clang (CMAKE_CXX_COMPILER=clang++)")
  endif()
  add_custom_target(fuzzers)
endif()

function(ijazat_add_fuzzer name)
  cmake_parse_arguments(PARSE_ARGV 1 FUZZER "" "" "SOURCES;INCLUDES;LIBRARIES")
  add_executable(${name} ${FUZZER_SOURCES})
  target_include_directories(${name} PRIVATE ${FUZZER_INCLUDES})
  target_link_libraries(${name} PRIVATE ${FUZZER_LIBRARIES})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  add_dependencies(fuzzers ${name})
endfunction()
