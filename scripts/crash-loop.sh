#!/bin/sh
# Runs the crash-consistency test for N SIGKILL cycles (default 500): ijazatd is killed at
# seeded random moments while clients drive consent flows, and every acknowledged consent,
# issued token, the store's integrity and the SMS outbox are checked after each restart.
#
#   scripts/crash-loop.sh [N] [PRESET]     e.g. scripts/crash-loop.sh 500 dev
#
# Builds the test binary first when it is missing. Needs the same set-up as `make test`.
set -eu

cycles=${1:-500}
preset=${2:-${PRESET:-dev}}
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/$preset"
binary="$build/tests/appliance/appliance_tests"

case "$cycles" in
  '' | *[!0-9]*) echo "usage: $0 [CYCLES] [PRESET]" >&2; exit 2 ;;
esac

if [ ! -x "$binary" ]; then
  [ -d "$build" ] || cmake --preset "$preset" -S "$root"
  cmake --build "$build" --target appliance_tests ijazatd -j"$(nproc)"
fi
[ -x "$binary" ] || binary=$(find "$build" -name appliance_tests -type f -perm -u+x | head -n1)

echo "crash loop: $cycles SIGKILL cycles with $binary"
IJAZAT_CRASH_CYCLES=$cycles exec "$binary" \
  --gtest_filter='CrashConsistencyTest.*'
