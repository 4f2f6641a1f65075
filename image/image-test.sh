#!/usr/bin/env bash
# The image test: the appliance booted in a fresh Debian 12 root file system.
#
#   usage: sudo image/image-test.sh IJAZAT_DEB        (`make image-test` builds the package first)
#
# 1. image/build-rootfs.sh builds a minimal bookworm rootfs with mmdebstrap (Debian packages
#    only: the Essential set, the ijazat package and its dependencies, softhsm2).
# 2. It is provisioned as docs/operations.md says, inside the rootfs, as the `ijazat` user:
#    a SoftHSM token with every key (ijazat-provision), the demo registry (ijazat-registry),
#    a TLS certificate, and the PIN and gateway secret where the unit's LoadCredential= puts
#    them (/run/credentials/ijazatd.service/, owned by ijazat, mode 0400).
# 3. ijazatd starts inside it with the packaged configuration (only server.listen changed, to
#    a free loopback port): in its own mount namespace, chrooted, as `ijazat` with no
#    capabilities and no_new_privs; /proc and /dev are mounted for it alone. (No init system
#    in the rootfs and none needed: image/test-unit.sh covers the systemd unit itself.)
# 4. GET /readyz must answer {"ready":true} (HSM, store and registry reachable); SIGTERM must
#    stop it with status 0.
# Then everything is removed (IJAZAT_IMAGE_KEEP=1 keeps the rootfs). Prints the figures: time
# to build the rootfs, its size, time from start to ready.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then echo "usage: $0 IJAZAT_DEB" >&2; exit 2; fi
deb=$(realpath "$1")
[ "$(id -u)" -eq 0 ] || { echo "image-test: run as root (mmdebstrap, chroot, namespaces)" >&2; exit 2; }
for tool in mmdebstrap unshare chroot openssl curl; do
  command -v "$tool" >/dev/null || { echo "image-test: $tool is missing" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/var/tmp}/ijazat-image-test.XXXXXX")
root=$work/rootfs
daemon_pid=""
cleanup() {
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null
  fi
  if [ -n "${IJAZAT_IMAGE_KEEP:-}" ]; then
    echo "image-test: kept $root"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
in_root() { chroot "$root" "$@"; }
as_ijazat() { chroot "$root" runuser -u ijazat -- "$@"; }

# --- 1. The rootfs -----------------------------------------------------------------------------
echo "image-test: building the rootfs with mmdebstrap (bookworm, $(basename "$deb"), softhsm2)"
t0=$(date +%s)
"$repo/image/build-rootfs.sh" "$deb" "$root" >"$work/mmdebstrap.log" 2>&1 || {
  tail -n 30 "$work/mmdebstrap.log" >&2
  echo "image-test: mmdebstrap failed (log above)" >&2
  exit 1
}
build_seconds=$(($(date +%s) - t0))
rootfs_size=$(du -sh --one-file-system "$root" | cut -f1)
# shellcheck disable=SC2016  # dpkg-query's ${field} syntax, not the shell's
packages=$(in_root dpkg-query -W -f='${binary:Package}\n' | wc -l)
echo "image-test: rootfs built in ${build_seconds}s: $rootfs_size, $packages packages"
for p in ijazat softhsm2; do
  # shellcheck disable=SC2016  # dpkg-query's ${field} syntax
  [ "$(in_root dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] ||
    { echo "image-test: $p is not installed in the rootfs" >&2; exit 1; }
done
in_root getent passwd ijazat >/dev/null || { echo "image-test: the postinst made no ijazat user" >&2; exit 1; }

# --- 2. Provisioning, as docs/operations.md ------------------------------------------------------
creds=/run/credentials/ijazatd.service
install -d -m 0755 "$root/run/credentials"
install -d -m 0500 "$root$creds"
so_pin=/var/lib/ijazat/so.pin # the SO PIN, for init-token only
(umask 077 && openssl rand -hex 16 >"$root$creds/hsm-pin" && openssl rand -hex 16 >"$root$so_pin")
cp "$root/etc/ijazat/gateway.secret" "$root$creds/gateway-secret"
in_root chown -R ijazat:ijazat "$creds" "$so_pin"
in_root chmod 0400 "$creds/hsm-pin" "$creds/gateway-secret"
hsm() {
  chroot "$root" runuser -u ijazat -- env SOFTHSM2_CONF=/etc/ijazat/softhsm2.conf \
    ijazat-provision --token ijazat --pin-file "$creds/hsm-pin" "$@"
}
hsm init-token --label ijazat --so-pin-file "$so_pin" >/dev/null
rm -f "$root$so_pin"
hsm keygen --all >/dev/null
hsm check >/dev/null
echo "image-test: SoftHSM token \"ijazat\" provisioned inside the rootfs (ijazat-provision check: ok)"
as_ijazat ijazat-registry import --db /var/lib/ijazat/registry.db /usr/share/ijazat/registry.csv >/dev/null
as_ijazat ijazat-registry import-subscribers --db /var/lib/ijazat/registry.db \
  /usr/share/ijazat/subscribers.csv >/dev/null
(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$root/etc/ijazat/tls/server.key" -out "$root/etc/ijazat/tls/server.crt" 2>/dev/null)
in_root chown root:ijazat /etc/ijazat/tls/server.key /etc/ijazat/tls/server.crt
in_root chmod 0640 /etc/ijazat/tls/server.key
in_root chmod 0644 /etc/ijazat/tls/server.crt
sed -i 's|^  listen: .*|  listen: 127.0.0.1:0|' "$root/etc/ijazat/ijazatd.yaml"
# Every check the start runs, as the service user with the service's environment.
chroot "$root" runuser -u ijazat -- env SOFTHSM2_CONF=/etc/ijazat/softhsm2.conf \
  ijazatd --check-config /etc/ijazat/ijazatd.yaml >/dev/null

# --- 3. Start it inside -------------------------------------------------------------------------
# Every exec keeps the pid: $! is ijazatd's, for SIGTERM. The mount namespace (its /proc and
# /dev) goes away with it.
t1=$(date +%s%N)
# shellcheck disable=SC2016  # expanded by the inner shell
unshare --mount --propagation private -- /bin/sh -c '
  root=$1
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  exec chroot "$root" setpriv --reuid=ijazat --regid=ijazat --init-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all -- \
    env -i SOFTHSM2_CONF=/etc/ijazat/softhsm2.conf PATH=/usr/sbin:/usr/bin \
    /usr/sbin/ijazatd --config /etc/ijazat/ijazatd.yaml --port-file /var/lib/ijazat/port
' sh "$root" >"$work/ijazatd.log" 2>&1 &
daemon_pid=$!

# --- 4. Ready? ---------------------------------------------------------------------------------
port=""
for _ in $(seq 1 300); do
  [ -s "$root/var/lib/ijazat/port" ] && { port=$(cat "$root/var/lib/ijazat/port"); break; }
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/ijazatd.log" >&2; echo "image-test: ijazatd did not start" >&2; exit 1; }
ready=""
for _ in $(seq 1 300); do
  ready=$(curl -s --cacert "$root/etc/ijazat/tls/server.crt" "https://localhost:$port/readyz" || true)
  case $ready in *'"ready":true'*) break ;; esac
  sleep 0.1
done
ready_ms=$((($(date +%s%N) - t1) / 1000000))
case $ready in
  *'"ready":true'*) echo "image-test: GET /readyz -> $ready (${ready_ms} ms after start)" ;;
  *) cat "$work/ijazatd.log" >&2; echo "image-test: not ready: $ready" >&2; exit 1 ;;
esac
uid=$(ps -o uid= -p "$daemon_pid" | tr -d ' ')
[ "$uid" = "$(in_root id -u ijazat)" ] || { echo "image-test: ijazatd runs as uid $uid, not ijazat" >&2; exit 1; }

kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=""
[ "$status" -eq 0 ] || { cat "$work/ijazatd.log" >&2; echo "image-test: ijazatd exited with $status" >&2; exit 1; }
echo "image-test: ok: rootfs ${rootfs_size} (${packages} packages) built in ${build_seconds}s;" \
  "ready ${ready_ms} ms after start; SIGTERM -> exit 0"
