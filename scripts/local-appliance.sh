#!/usr/bin/env bash
# Prepares and starts the local appliance that `make run` runs: TLS material, the SMS gateway
# secret and the demo identity registry under ./var (first run only), then ijazatd with
# appliance/etc/ijazatd.yaml, on the port its server.listen names (8443 as shipped; with port
# 0, a free one), written to var/ijazatd.port once it serves. Assumes scripts/local-token.sh ran.
set -euo pipefail

build_dir=${1:-build/dev}
config=appliance/etc/ijazatd.yaml
umask 077
mkdir -p var/tls
# SoftHSM finds the local token through its configuration (scripts/local-token.sh wrote it).
export SOFTHSM2_CONF="$PWD/var/hsm/softhsm2.conf"

if [ ! -f var/tls/server.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout var/tls/server.key -out var/tls/server.crt 2>/dev/null
fi
if [ ! -f var/tls/client-ca.key ]; then
  # A CA for providers' client certificates, and one demo client certificate.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=Ijazat demo client CA" -keyout var/tls/client-ca.key -out var/tls/client-ca.crt \
    2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=demo-client" \
    -keyout var/tls/demo-client.key -out var/tls/demo-client.csr 2>/dev/null
  openssl x509 -req -in var/tls/demo-client.csr -CA var/tls/client-ca.crt \
    -CAkey var/tls/client-ca.key -CAcreateserial -days 825 -out var/tls/demo-client.crt 2>/dev/null
  rm -f var/tls/demo-client.csr
fi
[ -f var/gateway.secret ] || openssl rand -hex 24 >var/gateway.secret
if [ ! -f var/registry.db ]; then
  "$build_dir/bin/ijazat-registry" import --db var/registry.db appliance/demo/registry.csv
fi
# The demo's subscriber records (each citizen's number, as scripts/demo.sh derives it): only
# numbers they bind to a CNIC may enrol it (sms.enrolment: authority, the default).
"$build_dir/bin/ijazat-registry" import-subscribers --db var/registry.db \
  appliance/demo/subscribers.csv >/dev/null
# ijazatd refuses to serve as root unless told: allowed here, for a development machine only.
as_root=()
[ "$(id -u)" -ne 0 ] || as_root=(--allow-root)
# Every check the start runs, so that a problem is named before the banner.
"$build_dir/bin/ijazatd" --check-config "$config" "${as_root[@]}" >/dev/null

listen=$(sed -n 's/^  listen: *"\{0,1\}\([^" #]*\).*/\1/p' "$config")
port=${listen##*:}
if [ "$port" = 0 ]; then where="a free port (written to var/ijazatd.port)"; else where="https://localhost:$port"; fi
rm -f var/ijazatd.port
cat <<MSG

Ijazat is starting on $where (self-signed certificate: var/tls/server.crt)

  Demo provider:    demo-bank, API key ijz_demo_0123456789abcdef0123456789abcdef
                    (public demo key, from policy/example/policy.yaml)
  SMS sent:         var/sms-outbox.jsonl (one JSON object per message; holds demo codes)
  SMS gateway:      POST /v1/sms/inbound with header X-Ijazat-Gateway-Secret: \$(cat var/gateway.secret)
  Logs:             var/ijazatd.log
  Walkthrough:      make demo (in another terminal), or the curl steps in the README

Stop with Ctrl-C.
MSG
exec "$build_dir/bin/ijazatd" --config "$config" --port-file var/ijazatd.port "${as_root[@]}"
