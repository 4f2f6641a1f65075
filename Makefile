# Ijazat: the two commands a newcomer needs are `make run` and `make test`.
#
#   make run     install what is missing, build, provision the local SoftHSM token, start the
#                appliance on https://localhost:8443 (server.listen in appliance/etc/ijazatd.yaml)
#   make demo    one whole consent flow against it, step by step
#   make test    install what is missing, build, run every test
#   make bench   release build, then the benchmarks
#   make package the Debian package (see docs/operations.md)
#   make image-test  the package in a fresh Debian 12 rootfs (mmdebstrap), booted to /readyz
#   make format  clang-format every C++ file;  make lint  clang-tidy over the sources
#   make fuzz    build the libFuzzer harnesses (preset fuzz) and run each for FUZZ_SECONDS
#                (default 600); FUZZ_MERGE=1 merges new inputs into the checked-in corpora,
#                FUZZERS="config_fuzzer ..." picks harnesses (docs/testing.md)
#
# PRESET selects a CMake preset from CMakePresets.json (dev, ci, release, asan, tsan).

MAKEFLAGS += --no-print-directory

PRESET ?= dev
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
CXX_SOURCES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null)

.PHONY: all deps configure build test run demo bench package image-test format lint clean fuzz

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@ctest --preset $(PRESET) -j $(JOBS)

run: build
	@scripts/local-token.sh $(BUILD_DIR)
	@scripts/local-appliance.sh $(BUILD_DIR)

demo: build
	@scripts/local-token.sh $(BUILD_DIR) >/dev/null
	@scripts/demo.sh $(BUILD_DIR)

bench:
	@$(MAKE) --no-print-directory build PRESET=release
	@build/release/bin/hsm_bench --seconds 3 --json build/release/hsm_bench.json
	@build/release/bin/flow_bench --clients 50 --seconds 10 --open-fraction 0.7 \
	  --json build/release/flow_bench.json

# The Debian package (build/release/ijazat_*.deb): binaries, systemd unit, config, docs.
package: deps
	@cmake --preset release -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
	@cmake --build build/release -j $(JOBS)
	@cd build/release && cpack

# Opt-in (not part of `make test`): needs root and the Debian mirror. The package is built as
# image/Dockerfile builds it (release, without tests and benchmarks, in build/image), checked
# with lintian, installed with softhsm2 into a minimal bookworm rootfs (image/build-rootfs.sh),
# provisioned and started there until GET /readyz says ready (image/image-test.sh).
image-test:
	@scripts/install-deps.sh image
	@cmake --preset release -B build/image -DIJAZAT_BUILD_TESTS=OFF -DIJAZAT_BUILD_BENCH=OFF \
	  -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
	@cmake --build build/image -j $(JOBS)
	@rm -f build/image/ijazat_*.deb && cd build/image && cpack >/dev/null
	@lintian --fail-on error build/image/ijazat_*.deb
	@image/image-test.sh build/image/ijazat_*.deb

FUZZ_SECONDS ?= 600
FUZZ_MERGE ?= 0

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS) --target fuzzers
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_MERGE=$(FUZZ_MERGE) FUZZERS="$(FUZZERS)" \
	  tests/fuzz/run-fuzzers.sh build/fuzz

format:
	@clang-format -i $(CXX_SOURCES)

lint: configure
	@run-clang-tidy -quiet -p $(BUILD_DIR) '^$(CURDIR)/(common|hsm|policy|provisioning|verifier|appliance)/' >/dev/null 2>&1 \
	  || run-clang-tidy -p $(BUILD_DIR) '^$(CURDIR)/(common|hsm|policy|provisioning|verifier|appliance)/'

clean:
	@rm -rf build
