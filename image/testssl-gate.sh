#!/usr/bin/env bash
# The TLS gate: testssl.sh against a real ijazatd, failing on any finding rated MEDIUM, HIGH or
# CRITICAL.
#
#   usage: image/testssl-gate.sh [BUILD_DIR]     (default build/dev; BUILD_DIR/bin holds ijazatd)
#
# ctest runs it with the label `tls` (`make test`; alone: ctest --preset dev -L tls). It takes
# a minute or two and needs no network: everything is on 127.0.0.1.
#
# It makes, in a temporary directory removed on exit: a throwaway SoftHSM token with every key
# (ijazat-provision, as scripts/local-token.sh does), a test CA and a server certificate as a
# public CA would issue it (EC P-256; 90 days, as testssl rates under 60 days left MEDIUM and
# a life over 825 days MEDIUM; SAN localhost and 127.0.0.1; key usage digitalSignature; extended
# key usage serverAuth; a CRL distribution point, without which testssl says HIGH), the gateway
# secret, the demo registry and the example policy. It starts ijazatd on a free loopback port
# (port 0 and --port-file), waits for /readyz, runs testssl.sh with the CA added to its trust
# stores, and judges testssl's JSON findings, not its exit status. The findings that fail the
# gate are printed; the full JSON is kept when the gate fails (IJAZAT_TESTSSL_KEEP=DIR keeps it
# always, in DIR).
#
# testssl.sh is Debian's package `testssl.sh` (3.0.8 in Debian 12; scripts/install-deps.sh).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$(cd "${1:-$repo/build/dev}" 2>/dev/null && pwd) || {
  echo "usage: $0 [BUILD_DIR]   (BUILD_DIR/bin holds ijazatd; default build/dev)" >&2
  exit 2
}
for tool in ijazatd ijazat-provision ijazat-registry; do
  [ -x "$build_dir/bin/$tool" ] || { echo "testssl-gate: no $build_dir/bin/$tool; build first" >&2; exit 2; }
done
testssl=$(command -v testssl || command -v testssl.sh || true)
[ -n "$testssl" ] || { echo "testssl-gate: testssl is missing (apt-get install testssl.sh)" >&2; exit 2; }
for tool in openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "testssl-gate: $tool is missing" >&2; exit 2; }
done

umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/ijazat-testssl.XXXXXX")
daemon_pid=""
keep=""
cleanup() {
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null
  fi
  if [ -n "$keep" ]; then
    mkdir -p "$keep" && cp "$work/testssl.json" "$work/testssl.log" "$work/ijazatd.log" "$keep/" 2>/dev/null
    echo "testssl-gate: testssl's JSON and log, and ijazatd's log, are in $keep"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- A throwaway SoftHSM token with every key -------------------------------------------------
mkdir -p "$work/tokens"
export SOFTHSM2_CONF=$work/softhsm2.conf
cat >"$SOFTHSM2_CONF" <<CONF
directories.tokendir = $work/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
openssl rand -hex 16 >"$work/so.pin"
openssl rand -hex 16 >"$work/user.pin"
provision() { "$build_dir/bin/ijazat-provision" --token ijazat-tls --pin-file "$work/user.pin" "$@"; }
provision init-token --label ijazat-tls --so-pin-file "$work/so.pin" >/dev/null
provision keygen --all >/dev/null

# --- TLS: a test CA, and the server's certificate as a public CA would issue it ---------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
  -subj "/CN=Ijazat TLS gate test CA" -keyout "$work/ca.key" -out "$work/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
cat >"$work/server.ext" <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
# Never fetched: testssl contacts no CRL or OCSP server without --phone-out.
crlDistributionPoints = URI:http://127.0.0.1/ijazat-test-ca.crl
EXT
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days 90 -sha256 -extfile "$work/server.ext" -out "$work/server.crt" 2>/dev/null

# --- The rest of the appliance's files, and ijazatd on a free loopback port -------------------
openssl rand -hex 24 >"$work/gateway.secret"
"$build_dir/bin/ijazat-registry" import --db "$work/registry.db" "$repo/appliance/demo/registry.csv" >/dev/null
"$build_dir/bin/ijazat-registry" import-subscribers --db "$work/registry.db" \
  "$repo/appliance/demo/subscribers.csv" >/dev/null
cp "$repo/policy/example/policy.yaml" "$work/policy.yaml"
cat >"$work/ijazatd.yaml" <<YAML
issuer: https://localhost
server: {listen: "127.0.0.1:0", threads: 8}
tls: {certificate: $work/server.crt, key: $work/server.key}
hsm: {module: /usr/lib/softhsm/libsofthsm2.so, token: ijazat-tls, pin_file: $work/user.pin}
store: {path: $work/ijazat.db}
registry: {path: $work/registry.db}
policy: $work/policy.yaml
sms: {short_code: "8009", inbound_secret_file: $work/gateway.secret, sender: file, file: $work/sms.jsonl}
receipt: {operator_name: TLS gate, operator_contact: tls@example.invalid, policy_url: https://localhost/policy}
log: {file: $work/ijazatd.log}
development: {allow_demo_credentials: true}   # the example policy's demo key
YAML
as_root=()
[ "$(id -u)" -ne 0 ] || as_root=(--allow-root)
"$build_dir/bin/ijazatd" --config "$work/ijazatd.yaml" --port-file "$work/port" "${as_root[@]}" \
  >"$work/ijazatd.out" 2>&1 &
daemon_pid=$!
port=""
for _ in $(seq 1 200); do
  if [ -s "$work/port" ]; then port=$(cat "$work/port"); break; fi
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "testssl-gate: ijazatd did not start:" >&2
  cat "$work/ijazatd.out" >&2
  exit 1
fi
ready=""
for _ in $(seq 1 100); do
  ready=$(curl -s --cacert "$work/ca.crt" "https://localhost:$port/readyz" || true)
  case $ready in *'"ready":true'*) break ;; esac
  sleep 0.1
done
case $ready in
  *'"ready":true'*) echo "testssl-gate: ijazatd ready on https://localhost:$port" ;;
  *) echo "testssl-gate: ijazatd never became ready: $ready" >&2; exit 1 ;;
esac

# --- testssl.sh ------------------------------------------------------------------------------
# The checks that rate the server: protocols (-p), cipher categories (-s), forward secrecy (-f),
# server preferences (-P), server defaults and the certificate (-S), HTTP headers (-h) and
# every vulnerability (-U). Left out, for time: each cipher one by one (-e: the categories and
# -f already list what is offered) and client simulation (-c: informational). --nodns none and
# --ip keep it off DNS; without --phone-out it fetches no CRL and asks no OCSP responder.
# --warnings batch: no questions. The exit status is not used: it counts findings of every
# severity.
started=$(date +%s)
set +e
(cd "$work" && "$testssl" --quiet --color 0 --warnings batch --nodns none --ip 127.0.0.1 \
  -p -s -f -P -S -h -U \
  --openssl-timeout 10 --add-ca "$work/ca.crt" --jsonfile "$work/testssl.json" \
  "https://localhost:$port" >"$work/testssl.log" 2>&1)
testssl_status=$?
set -e
elapsed=$(($(date +%s) - started))
echo "testssl-gate: testssl finished in ${elapsed}s (exit status $testssl_status, not used)"

set +e
python3 - "$work/testssl.json" <<'PY'
import collections, json, sys

try:
    with open(sys.argv[1]) as f:
        findings = json.load(f)
except (OSError, ValueError) as e:
    print(f"testssl-gate: no usable JSON from testssl: {e}")
    sys.exit(1)

counts = collections.Counter(f.get("severity", "?") for f in findings)
order = ["OK", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL"]
print("testssl-gate: findings by severity: " +
      ", ".join(f"{s} {counts[s]}" for s in order + sorted(set(counts) - set(order)) if counts[s]))

problems = []
# The scan must have happened: a connection, a certificate, protocols, the vulnerabilities.
ids = {f.get("id", "") for f in findings}
for needed in ("TLS1_2", "TLS1_3", "cert_chain_of_trust", "cert_trust", "heartbleed", "HSTS_time"):
    if not any(i == needed or i.startswith(needed + " ") for i in ids):
        problems.append(f"(missing) {needed}: testssl did not report it; the scan is incomplete")
# A run that testssl itself could not complete is a failure, whatever the findings.
for f in findings:
    if f.get("severity") == "FATAL" or f.get("id") == "scanProblem":
        problems.append(f"{f.get('severity')} {f.get('id')}: {f.get('finding')}")
for f in findings:
    if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL"):
        problems.append(f"{f['severity']} {f.get('id')}: {f.get('finding')}")

if problems:
    print(f"testssl-gate: FAIL, {len(problems)} finding(s) at MEDIUM or above (or a broken scan):")
    for p in problems:
        print("  " + p)
    sys.exit(1)
print("testssl-gate: ok, nothing at MEDIUM or above")
PY
verdict=$?
set -e
if [ "$verdict" -ne 0 ]; then
  keep=${IJAZAT_TESTSSL_KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/ijazat-testssl-failed.XXXXXX")}
  exit 1
fi
keep=${IJAZAT_TESTSSL_KEEP:-}
