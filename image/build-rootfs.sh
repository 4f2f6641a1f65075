#!/usr/bin/env bash
# The appliance's root file system: a minimal Debian 12 with the ijazat package and SoftHSM,
# built by mmdebstrap from Debian packages only.
#
#   usage: sudo image/build-rootfs.sh IJAZAT_DEB OUTPUT
#
# OUTPUT is a directory (made; must not exist or be empty) or, if it ends in .tar, a tarball
# (for `docker import`, machinectl import-tar, a VM image builder). The recipe:
#
#   - variant `essential`: only the Essential: yes packages of bookworm (dpkg, coreutils,
#     util-linux, ...), no apt, no init system: the service manager is the host's or the
#     image builder's business;
#   - plus IJAZAT_DEB (copied in and removed again by mmdebstrap's file-mirror-automount hook)
#     and what it depends on (apt resolves it from the mirror: Poco, yaml-cpp,
#     OpenSSL, SQLite, adduser), plus softhsm2 (the package only recommends it); nothing
#     recommended, no documentation or locales beyond what the packages need;
#   - sources: bookworm, bookworm-updates and bookworm-security from IJAZAT_DEBIAN_MIRROR
#     (default http://deb.debian.org/debian) and IJAZAT_DEBIAN_SECURITY_MIRROR (default
#     http://deb.debian.org/debian-security);
#   - root mode (run as root), so that the files keep their owners (the `ijazat` user that the
#     package's postinst creates, root:ijazat configuration).
#
# The package's postinst runs inside, as on a real install: the ijazat user, /var/lib/ijazat,
# the modes, the gateway secret. image/image-test.sh boots the appliance in the result.
set -euo pipefail

[ "$#" -eq 2 ] || { echo "usage: $0 IJAZAT_DEB OUTPUT_DIR|OUTPUT.tar" >&2; exit 2; }
deb=$(realpath "$1")
output=$2
[ -f "$deb" ] || { echo "build-rootfs: no package $1" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "build-rootfs: run as root (mmdebstrap --mode=root)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "build-rootfs: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 2; }

mirror=${IJAZAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${IJAZAT_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# Keep the image small: no manual pages, no documentation but copyright files, no locales.
dpkg_filters=(
  --dpkgopt=path-exclude=/usr/share/man/*
  --dpkgopt=path-exclude=/usr/share/locale/*
  --dpkgopt=path-include=/usr/share/locale/locale.alias
  --dpkgopt=path-exclude=/usr/share/doc/*
  --dpkgopt=path-include=/usr/share/doc/*/copyright
  --dpkgopt=path-include=/usr/share/doc/ijazat/*
  --dpkgopt=path-exclude=/usr/share/info/*
)

# shellcheck disable=SC2016  # the hook's "$1" is the rootfs, expanded by mmdebstrap's shell
mmdebstrap --mode=root --variant=essential --format="$([[ $output == *.tar ]] && echo tar || echo directory)" \
  --aptopt='APT::Install-Recommends "false"' \
  "${dpkg_filters[@]}" \
  --include="softhsm2,$deb" \
  --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  bookworm "$output" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main"
