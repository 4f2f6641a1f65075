#!/usr/bin/env bash
# Installs the Debian 12 packages Ijazat needs to build, test and run, and nothing else.
# Idempotent: packages already present are left alone, and apt is not touched at all when
# nothing is missing. Shared by `make run`, `make test` and `.ci/run`.
#
#   scripts/install-deps.sh          what building and `make test` need
#   scripts/install-deps.sh image    also what `make image-test` needs (mmdebstrap, lintian)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libssl-dev libpoco-dev libyaml-cpp-dev libsqlite3-dev nlohmann-json3-dev
  libp11-kit-dev softhsm2 opensc
  libgtest-dev libgmock-dev
  python3 python3-jwcrypto python3-jsonschema python3-yaml
  clang libclang-rt-14-dev
  openssl curl testssl.sh
  kannel kannel-extras
)
if [ "${1:-}" = image ]; then
  packages+=(mmdebstrap lintian)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
