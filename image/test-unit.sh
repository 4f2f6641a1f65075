#!/usr/bin/env bash
# Proves that ijazatd serves under the restrictions of image/systemd/ijazatd.service.
#
#   usage: sudo image/test-unit.sh [BUILD_DIR]      (from the repository root; default build/release)
#
# It provisions a throwaway SoftHSM token (as scripts/local-token.sh does, in a temporary
# directory), TLS material, the gateway secret and the demo registry, then starts the
# appliance from BUILD_DIR/bin and drives it: /healthz, /readyz (must say ready: HSM, store and
# registry reachable), /metrics, the JWKS, one whole consent flow (enrol by SMS, consent, code
# from the SMS sink, confirm), SIGHUP (policy reloaded), SIGTERM (clean exit 0). Nothing on the
# host is left behind.
#
# Two modes, chosen by what PID 1 is:
#  - systemd: the real unit file, with its paths renamed so it cannot touch an installed
#    appliance (ijazat-unit-test.service, /var/lib/ijazat-unit-test, a temporary service user),
#    started by systemd with every setting it has: seccomp filter, PrivateUsers, credentials...
#  - anything else (containers, CI VMs): the unit's main restrictions, emulated with
#    unshare(1) and setpriv(1) around the packaged configuration (image/etc/ijazatd.yaml with
#    only the listen address changed), at the packaged paths:
#      ProtectSystem=strict     every mount read-only; only /var/lib/ijazat writable
#      ProtectHome, PrivateTmp  empty /home, /root, /tmp, /var/tmp
#      PrivateDevices           a /dev with null, zero, full, random, urandom, tty and shm only
#      ProtectProc=invisible, ProcSubset=pid
#      LoadCredential           the PIN and the gateway secret in /run/credentials/ijazatd.service
#      User=, no capabilities (bounding, inheritable, ambient), NoNewPrivileges, UMask=0077,
#      LimitCORE=0, an unprivileged uid without a home or a login
#    and checks from inside the sandbox that the service user can write nowhere but its state
#    directory and cannot read the PIN file. Not emulated (systemd alone applies them):
#    SystemCallFilter, MemoryDenyWriteExecute, RestrictAddressFamilies, RestrictNamespaces,
#    PrivateUsers, DevicePolicy, IPAddress*; `systemd-analyze security` scores them offline.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$(cd "${1:-$repo/build/release}" 2>/dev/null && pwd) || {
  echo "usage: sudo $0 [BUILD_DIR]   (BUILD_DIR/bin holds ijazatd; default build/release)" >&2
  exit 2
}
unit_file=$repo/image/systemd/ijazatd.service
config_src=$repo/image/etc/ijazatd.yaml
policy_src=$repo/policy/example/policy.yaml
registry_csv=$repo/appliance/demo/registry.csv
key=ijz_demo_0123456789abcdef0123456789abcdef # the public demo key of policy/example
cnic=35202-1234567-1
phone=03001234567

for tool in ijazatd ijazat-provision ijazat-registry; do
  [ -x "$build_dir/bin/$tool" ] || { echo "test-unit: no $build_dir/bin/$tool; build first" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "test-unit: run as root (it makes namespaces or a unit)" >&2; exit 2; }
for tool in openssl curl python3 unshare setpriv; do
  command -v "$tool" >/dev/null || { echo "test-unit: $tool is missing" >&2; exit 2; }
done

pid1=$(ps -p 1 -o comm= || true)
if [ "$pid1" = systemd ] && [ -d /run/systemd/system ]; then mode=systemd; else mode=emulated; fi

failures=0
pass() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

umask 022
# In systemd mode the service must see the work directory: PrivateTmp hides /tmp.
if [ "$mode" = systemd ]; then work_base=/var/lib; else work_base=/tmp; fi
work=$(mktemp -d "$work_base/ijz-unit-test-work.XXXXXX") # a name that no path rewrite below matches
chmod 0755 "$work"
daemon_pid=""
test_user=""
made_user=""
unit_name=ijazat-unit-test.service

cleanup() {
  set +e
  if [ "$mode" = systemd ]; then
    systemctl stop "$unit_name" 2>/dev/null
    rm -f "/run/systemd/system/$unit_name"
    systemctl daemon-reload
    rm -rf /var/lib/ijazat-unit-test /var/lib/private/ijazat-unit-test
  elif [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null
  fi
  [ -n "$made_user" ] && userdel "$made_user" 2>/dev/null
  [ -n "$made_user" ] && groupdel "$made_user" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "test-unit: mode $mode (PID 1 is ${pid1:-unknown}); binaries from $build_dir/bin; work dir $work"

# --- Layout ---------------------------------------------------------------------------------
# $work/etc      becomes /etc/ijazat         (emulated)  or is used in place (systemd)
# $work/state    becomes /var/lib/ijazat     (emulated)  or /var/lib/ijazat-unit-test
# $work/creds    the credentials: hsm-pin, gateway-secret
# $work/bin      the programs, as they would be in /usr/sbin
etc=$work/etc
state=$work/state
creds=$work/creds
mkdir -p "$etc/tls" "$state/softhsm/tokens" "$creds" "$work/bin" "$work/provision"
cp "$build_dir/bin/ijazatd" "$work/bin/ijazatd"

if [ "$mode" = systemd ]; then
  if getent passwd ijazat >/dev/null && ! systemctl is-active --quiet ijazatd.service; then
    test_user=ijazat
  else
    made_user=ijazat-unit-test
    test_user=$made_user
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$test_user"
  fi
  uid=$(id -u "$test_user")
  gid=$(id -g "$test_user")
  conf_path=$etc                                  # where the service sees its configuration
  state_path=/var/lib/ijazat-unit-test
  cred_path=/run/credentials/$unit_name
else
  # An unused uid and gid, without a passwd entry: nothing on the host changes.
  uid=""
  for candidate in $(seq 61900 61999); do
    if ! getent passwd "$candidate" >/dev/null && ! getent group "$candidate" >/dev/null; then
      uid=$candidate
      break
    fi
  done
  [ -n "$uid" ] || { echo "test-unit: no free uid in 61900-61999" >&2; exit 1; }
  gid=$uid
  conf_path=/etc/ijazat
  state_path=/var/lib/ijazat
  cred_path=/run/credentials/ijazatd.service
fi

# --- Provision a SoftHSM token labelled "ijazat" (scripts/local-token.sh's steps) ------------
umask 077
openssl rand -hex 16 >"$work/provision/so.pin"
openssl rand -hex 16 >"$creds/hsm-pin"
openssl rand -hex 24 >"$creds/gateway-secret"
cat >"$work/provision/softhsm2.conf" <<CONF
directories.tokendir = $state/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
provision() {
  SOFTHSM2_CONF=$work/provision/softhsm2.conf "$build_dir/bin/ijazat-provision" \
    --token ijazat --pin-file "$creds/hsm-pin" "$@"
}
provision init-token --label ijazat --so-pin-file "$work/provision/so.pin" >/dev/null
provision keygen --all >/dev/null
provision check >/dev/null
pass "provisioned SoftHSM token \"ijazat\" with every key (ijazat-provision check: ok)"

# The service's SoftHSM configuration: the packaged one when the build made it.
if [ "$mode" = emulated ] && [ -f "$build_dir/image/softhsm2.conf" ]; then
  cp "$build_dir/image/softhsm2.conf" "$etc/softhsm2.conf"
else
  printf 'directories.tokendir = %s/softhsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$state_path" >"$etc/softhsm2.conf"
fi

# --- TLS, registry, configuration -----------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$etc/tls/server.key" \
  -out "$etc/tls/server.crt" 2>/dev/null
"$build_dir/bin/ijazat-registry" import --db "$state/registry.db" "$registry_csv" >/dev/null
"$build_dir/bin/ijazat-registry" import-subscribers --db "$state/registry.db" \
  "$(dirname "$registry_csv")/subscribers.csv" >/dev/null
cp "$policy_src" "$etc/policy.yaml"
# The packaged configuration; only the listen address changes (a free port, on loopback), and
# in systemd mode the paths, to the test unit's.
sed -e 's|^\(  listen:\).*|\1 127.0.0.1:0|' \
  -e "s|/etc/ijazat|$conf_path|g" -e "s|/var/lib/ijazat|$state_path|g" \
  -e "s|/run/credentials/ijazatd.service|$cred_path|g" "$config_src" >"$etc/ijazatd.yaml"
# The flow below uses the example policy's public demo key, which the packaged configuration
# refuses (the package ships a policy with no provider).
printf 'development: {allow_demo_credentials: true}\n' >>"$etc/ijazatd.yaml"
# Syntax and values only: the files are not the service's yet (the start below runs every check).
check "the packaged configuration passes ijazatd --check-config --syntax-only" \
  "$build_dir/bin/ijazatd" --check-config "$config_src" --syntax-only >/dev/null
check "the test configuration passes ijazatd --check-config --syntax-only" \
  "$build_dir/bin/ijazatd" --check-config "$etc/ijazatd.yaml" --syntax-only >/dev/null

# Owners and modes as the package's postinst sets them.
chown -R "$uid:$gid" "$state"
chmod 0750 "$state"
chown root:"$gid" "$etc" "$etc/tls" "$etc"/*.yaml "$etc/softhsm2.conf" "$etc/tls/server.key"
chmod 0750 "$etc" "$etc/tls"
chmod 0640 "$etc"/*.yaml "$etc/softhsm2.conf" "$etc/tls/server.key"
chmod 0644 "$etc/tls/server.crt"
cp "$creds/hsm-pin" "$etc/hsm-pin"              # the root-only original (mode 0600)
cp "$creds/gateway-secret" "$etc/gateway.secret"
umask 022

log=$work/ijazatd.log
port_file=$state/port

# --- Start ----------------------------------------------------------------------------------
if [ "$mode" = systemd ]; then
  sed -e "s|^User=ijazat$|User=$test_user|" -e "s|^Group=ijazat$|Group=$test_user|" \
    -e "s|/etc/ijazat/|$etc/|g" -e "s|^ConfigurationDirectory.*||" \
    -e "s|^StateDirectory=ijazat$|StateDirectory=ijazat-unit-test|" \
    -e "s|/var/lib/ijazat|$state_path|g" -e "s|/usr/sbin/ijazatd|$work/bin/ijazatd|g" \
    -e "s|^\(ExecStart=.*\)$|\1 --port-file $state_path/port|" \
    "$unit_file" >"/run/systemd/system/$unit_name"
  rm -rf "$state_path"
  cp -a "$state" "$state_path"
  port_file=$state_path/port
  systemctl daemon-reload
  check "systemd started $unit_name (the unit file, renamed)" systemctl start "$unit_name"
else
  # Mount namespace of the service: the packaged paths exist only in it (overlays), every
  # mount is read-only, then the writable and private mounts are put on top.
  mkdir -p "$work/ovl"/{etc,varlib,usrsbin}/{upper,work}
  cp -a "$etc" "$work/ovl/etc/upper/ijazat"
  mkdir "$work/ovl/varlib/upper/ijazat" "$work/dev"
  # A directory the service user owns outside its state directory: only the read-only mount
  # keeps it from writing there.
  install -d -o "$uid" -g "$gid" -m 0700 "$work/ovl/etc/upper/ijazat-probe"
  cp -a "$work/bin/ijazatd" "$work/ovl/usrsbin/upper/ijazatd"
  sandbox=$work/sandbox.sh
  cat >"$sandbox" <<'SANDBOX'
set -eu
work=$1 uid=$2 gid=$3
mount() { command mount --no-mtab "$@"; } # no userspace mount table: / becomes read-only
ovl() { mount -t overlay overlay -o "lowerdir=$1,upperdir=$work/ovl/$2/upper,workdir=$work/ovl/$2/work" "$1"; }
ovl /etc etc
ovl /var/lib varlib
ovl /usr/sbin usrsbin
# ProtectSystem=strict: every mount read-only (remounted one by one, innermost last).
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r m; do
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
# StateDirectory=ijazat (the only writable place)
mount --bind "$work/state" /var/lib/ijazat
mount -o remount,bind,rw,nosuid,nodev /var/lib/ijazat # a bind inherits the source's ro
# LoadCredential=: a private, read-only tmpfs owned by the service user
mount -t tmpfs -o mode=0755,nosuid,nodev,noexec tmpfs /run
mkdir -p /run/credentials/ijazatd.service
cp "$work/creds/hsm-pin" "$work/creds/gateway-secret" /run/credentials/ijazatd.service/
chown -R "$uid:$gid" /run/credentials/ijazatd.service
chmod 0400 /run/credentials/ijazatd.service/*
chmod 0500 /run/credentials/ijazatd.service
mount -o remount,ro /run
# PrivateDevices=yes ($work/dev was made before / became read-only)
mount -t tmpfs -o mode=0755,nosuid,noexec tmpfs "$work/dev"
for d in null zero full random urandom tty; do
  touch "$work/dev/$d"
  mount --bind "/dev/$d" "$work/dev/$d"
done
mkdir "$work/dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev,noexec tmpfs "$work/dev/shm"
mount --move "$work/dev" /dev
# ProtectProc=invisible, ProcSubset=pid
mount -t proc -o nosuid,nodev,noexec,hidepid=invisible,subset=pid proc /proc
# ProtectHome=yes, PrivateTmp=yes (last: $work is under /tmp)
for d in /home /root /run/user /tmp /var/tmp; do
  [ -d "$d" ] && mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$d"
done
mount -o remount,ro,bind /home 2>/dev/null || true
mount -o remount,ro,bind /root 2>/dev/null || true
as_service() {
  setpriv --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs \
    --inh-caps=-all --ambient-caps=-all --bounding-set=-all --reset-env -- "$@"
}
# Probes, as the service user, of what it may and may not do.
probe() { # probe EXPECT(ok|denied) WHAT COMMAND...
  expect=$1 what=$2
  shift 2
  if as_service sh -c "$*" >/dev/null 2>&1; then got=ok; else got=denied; fi
  if [ "$got" = "$expect" ]; then echo "  ok    sandbox: $what"; else echo "  FAIL  sandbox: $what (got $got)"; fi
}
probe ok "the state directory is writable" "touch /var/lib/ijazat/probe && rm /var/lib/ijazat/probe"
probe denied "/etc/ijazat is read-only" "touch /etc/ijazat/probe"
probe denied "its own directory outside the state directory is read-only" "touch /etc/ijazat-probe/x"
probe ok "... which it can read (the denial is the read-only mount)" "ls /etc/ijazat-probe"
probe denied "/usr is read-only" "touch /usr/probe"
probe denied "/var/lib outside the state directory is read-only" "touch /var/lib/probe"
probe denied "the root-only PIN file is unreadable" "cat /etc/ijazat/hsm-pin"
probe ok "the PIN credential is readable" "cat /run/credentials/ijazatd.service/hsm-pin"
probe denied "the credentials are read-only" "touch /run/credentials/ijazatd.service/probe"
probe ok "the configuration is readable" "cat /etc/ijazat/ijazatd.yaml /etc/ijazat/tls/server.key"
probe denied "no block devices in /dev" "ls /dev/vda"
probe denied "other processes are invisible in /proc" "test -e /proc/1/status"
probe denied "/proc/sys is hidden" "test -e /proc/sys/kernel"
probe denied "no capabilities" "grep -q '^CapEff:.*[1-9a-f]' /proc/self/status"
probe ok "no_new_privs is set" "grep -q '^NoNewPrivs:.*1' /proc/self/status"
probe denied "/tmp is private" "ls /tmp/ijz-unit-test-work.*"
cd /var/lib/ijazat
ulimit -c 0
umask 0077
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs \
  --inh-caps=-all --ambient-caps=-all --bounding-set=-all --reset-env -- \
  env SOFTHSM2_CONF=/etc/ijazat/softhsm2.conf \
  /usr/sbin/ijazatd --config /etc/ijazat/ijazatd.yaml --port-file /var/lib/ijazat/port
SANDBOX
  # The overlay upper for /etc needs the modes above; the state dir is bound, not copied.
  chown root:"$gid" "$work/ovl/etc/upper/ijazat"
  # unshare execs bash, whose last command execs ijazatd: $! is the daemon.
  unshare --mount --propagation private bash "$sandbox" "$work" "$uid" "$gid" >"$work/probes" 2>"$log" &
  daemon_pid=$!
fi

for _ in $(seq 1 100); do
  [ -s "$port_file" ] && break
  if [ "$mode" = emulated ] && ! kill -0 "$daemon_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ ! -s "$port_file" ]; then
  echo "test-unit: the appliance did not start; its log:" >&2
  if [ "$mode" = systemd ]; then journalctl -u "$unit_name" --no-pager -n 30 >&2; else cat "$log" >&2; fi
  exit 1
fi
port=$(tr -d '\n' <"$port_file")
if [ "$mode" = emulated ]; then
  cat "$work/probes"
  failures=$((failures + $(grep -c FAIL "$work/probes" || true)))
  status=/proc/$daemon_pid/status
  check "ijazatd runs as uid $uid" grep -Eq "^Uid:[[:space:]]+${uid}[[:space:]]+${uid}" "$status"
  check "ijazatd has no capabilities (effective, permitted, bounding)" \
    bash -c "grep -E '^Cap(Eff|Prm|Bnd|Amb):' $status | grep -vq '0000000000000000' && exit 1 || exit 0"
  check "ijazatd has no_new_privs" grep -Eq '^NoNewPrivs:[[:space:]]+1' "$status"
else
  daemon_pid=$(systemctl show -p MainPID --value "$unit_name")
fi

base=https://localhost:$port
curl_opts=(--silent --show-error --max-time 10 --cacert "$etc/tls/server.crt" --resolve "localhost:$port:127.0.0.1")

# --- Serve ----------------------------------------------------------------------------------
check "/healthz answers 200" curl "${curl_opts[@]}" --fail -o /dev/null "$base/healthz"
ready=$(curl "${curl_opts[@]}" -w ' %{http_code}' "$base/readyz" || true)
check "/readyz answers 200 ready (HSM, store, registry): $ready" \
  bash -c "[[ '$ready' == *'\"ready\":true'*' 200' ]]"
check "/metrics has ijazat_http_requests_total" \
  bash -c "curl ${curl_opts[*]} --fail '$base/metrics' | grep -q '^ijazat_http_requests_total'"
check "/.well-known/jwks.json has a key" \
  bash -c "curl ${curl_opts[*]} --fail '$base/.well-known/jwks.json' | grep -q '\"kty\":\"EC\"'"

secret=$(cat "$creds/gateway-secret")
outbox=$state_path/sms-outbox.jsonl
[ "$mode" = emulated ] && outbox=$state/sms-outbox.jsonl
check "an inbound SMS enrols a citizen" curl "${curl_opts[@]}" --fail -o /dev/null -X POST \
  "$base/v1/sms/inbound" -H "X-Ijazat-Gateway-Secret: $secret" \
  --data-urlencode "from=$phone" --data-urlencode "to=8009" --data-urlencode "text=$cnic"
created=$(curl "${curl_opts[@]}" --fail -X POST "$base/v1/consents" -H "Authorization: Bearer $key" \
  -H "Content-Type: application/json" \
  -d "{\"cnic\":\"$cnic\",\"purpose\":\"account-opening\",\"scopes\":[\"name\"]}" || true)
id=$(echo "$created" | json '["consent_id"]' 2>/dev/null || true)
check "a provider's consent request is accepted (consent $id)" test -n "$id"
code=""
for _ in $(seq 1 50); do
  code=$(grep -o 'Ijazat code [0-9]*' "$outbox" 2>/dev/null | tail -n 1 | grep -o '[0-9]*$' || true)
  [ -n "$code" ] && break
  sleep 0.1
done
check "the one-time code was written to the SMS sink in the state directory" test -n "$code"
granted=$(curl "${curl_opts[@]}" --fail -X POST "$base/v1/consents/$id/confirm" \
  -H "Authorization: Bearer $key" -H "Content-Type: application/json" -d "{\"otp\":\"$code\"}" || true)
check "the code confirms the consent and a signed token comes back" \
  bash -c "[[ '$granted' == *'\"consent_token\":\"ey'* ]]"

# --- Reload and stop ------------------------------------------------------------------------
journal() {
  if [ "$mode" = systemd ]; then journalctl -u "$unit_name" --no-pager -o cat; else cat "$log"; fi
}
if [ "$mode" = systemd ]; then systemctl reload "$unit_name"; else kill -HUP "$daemon_pid"; fi
for _ in $(seq 1 50); do journal | grep -q '"event":"policy.reloaded"' && break; sleep 0.1; done
if journal | grep -q '"event":"policy.reloaded"'; then pass "SIGHUP reloads the policy"; else fail "SIGHUP reloads the policy"; fi
if [ "$mode" = systemd ]; then
  systemctl stop "$unit_name"
  result=$(systemctl show -p Result --value "$unit_name")
  check "SIGTERM: the service stopped cleanly (Result=$result)" test "$result" = success
else
  kill -TERM "$daemon_pid"
  for _ in $(seq 1 150); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
  check "SIGTERM: ijazatd drained and exited" bash -c "! kill -0 $daemon_pid 2>/dev/null"
  check "the log says appliance.stopped" grep -q '"event":"appliance.stopped"' "$log"
fi

if command -v systemd-analyze >/dev/null; then
  score=$(systemd-analyze security --offline=true "$unit_file" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  check "systemd-analyze security: exposure $score (at most 1.5)" \
    bash -c "[ -n '$score' ] && awk 'BEGIN { exit !($score <= 1.5) }'"
fi

echo
if [ "$failures" -eq 0 ]; then
  echo "test-unit: PASS ($mode mode)"
else
  echo "test-unit: FAIL: $failures check(s) failed ($mode mode); ijazatd's log: the lines above and"
  journal | tail -n 20
  exit 1
fi
