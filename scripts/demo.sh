#!/usr/bin/env bash
# Drives one whole consent flow against the local appliance and prints each step:
# enrol by inbound SMS, ask for consent, read the code from the SMS sink, confirm, verify, and
# check the token's signature against the published JWKS with ijazat-verify. Starts the
# appliance for the demo if it is not running.
set -euo pipefail

build_dir=${1:-build/dev}
# The appliance of `make run` writes its port to var/ijazatd.port; before it runs, the port of
# its configuration's server.listen.
config=appliance/etc/ijazatd.yaml
listen=$(sed -n 's/^  listen: *"\{0,1\}\([^" #]*\).*/\1/p' "$config")
port_of() {
  if [ -s var/ijazatd.port ]; then cat var/ijazatd.port; else echo "${listen##*:}"; fi
}
base=https://localhost:$(port_of)
key=ijz_demo_0123456789abcdef0123456789abcdef
# A citizen of the demo registry with "valid" status, picked at random (each run counts
# against one citizen's SMS caps, so runs spread over many), texting from the mobile number
# the registry recorded for them at CNIC registration: by default only a number bound to the
# CNIC by an authority (that record, or the operators' subscriber records) can enrol it.
read -r cnic e164 < <(/usr/bin/python3 -c "import csv,random
rows=[r for r in csv.DictReader(open('appliance/demo/registry.csv')) if r['cnic_status']=='valid' and r['msisdn']]
r=random.choice(rows); print(r['cnic'], r['msisdn'])")
phone=0${e164:3}
curl_opts=(--silent --show-error --cacert var/tls/server.crt)
started=""

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# The text of the last SMS the sink holds for the citizen's number, among the lines after the
# first $1 (default: all of them).
last_sms() {
  /usr/bin/python3 -c "import json,sys
lines=open('var/sms-outbox.jsonl').readlines()[int(sys.argv[2]):]
texts=[m['text'] for m in map(json.loads, lines) if m['to']==sys.argv[1]]
print(texts[-1] if texts else '(no SMS)')" "$e164" "${1:-0}"
}
sms_lines() { if [ -f var/sms-outbox.jsonl ]; then wc -l <var/sms-outbox.jsonl; else echo 0; fi; }

if ! curl "${curl_opts[@]}" --fail "$base/healthz" >/dev/null 2>&1; then
  step "Starting the appliance (make run was not running)"
  rm -f var/ijazatd.port
  scripts/local-appliance.sh "$build_dir" >var/demo-appliance.out 2>&1 &
  started=$!
  trap '[ -n "$started" ] && kill "$started" 2>/dev/null; wait 2>/dev/null || true' EXIT
  up=""
  for _ in $(seq 1 100); do
    if [ -s var/ijazatd.port ]; then
      base=https://localhost:$(port_of)
      if curl "${curl_opts[@]}" --fail "$base/healthz" >/dev/null 2>&1; then up=1; break; fi
    fi
    kill -0 "$started" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$up" ]; then
    # The exit trap stops it if it is still running (it did not answer in 20 s).
    echo "demo: the appliance did not start; its output (var/demo-appliance.out):" >&2
    tail -n 20 var/demo-appliance.out >&2
    exit 1
  fi
fi

step "1. The citizen ($cnic, $phone) texts their CNIC to 8009 (the gateway posts it to the webhook)"
curl "${curl_opts[@]}" --fail -X POST "$base/v1/sms/inbound" \
  -H "X-Ijazat-Gateway-Secret: $(cat var/gateway.secret)" \
  --data-urlencode "from=$phone" --data-urlencode "to=8009" --data-urlencode "text=$cnic"
sleep 1
echo "SMS to the citizen: $(last_sms)"

step "2. Demo Bank asks for consent (CNIC, purpose, scopes)"
sent_before=$(sms_lines)
created=$(curl "${curl_opts[@]}" --fail -X POST "$base/v1/consents" \
  -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
  -d "{\"cnic\":\"$cnic\",\"purpose\":\"account-opening\",\"scopes\":[\"name\",\"date_of_birth\"]}")
echo "$created"
id=$(echo "$created" | json '["consent_id"]')

step "3. The citizen receives the code by SMS"
sleep 1
sms=$(last_sms "$sent_before")
echo "SMS: $sms"
code=$(echo "$sms" | sed -n 's/^Ijazat code \([0-9]*\):.*/\1/p')
if [ -z "$code" ]; then
  echo "demo: no code reached $phone. The SMS caps against SMS pumping stop codes to one" >&2
  echo "  number or citizen within the hour (appliance/etc/ijazatd.yaml sms.caps, and the" >&2
  echo "  policy's limits.sms_per_cnic_per_hour); the bank's answer does not tell, by design." >&2
  echo "  var/ijazatd.log has the sms.cap_hit line. Run again (another citizen is picked), wait" >&2
  echo "  an hour, or start afresh: stop make run, rm -rf var, make run." >&2
  exit 1
fi

step "4. Demo Bank relays the code"
granted=$(curl "${curl_opts[@]}" --fail -X POST "$base/v1/consents/$id/confirm" \
  -H "Authorization: Bearer $key" -H "Content-Type: application/json" -d "{\"otp\":\"$code\"}")
echo "$granted" | /usr/bin/python3 -m json.tool
token=$(echo "$granted" | json '["consent_token"]')

step "5. Demo Bank verifies the CNIC with the token"
curl "${curl_opts[@]}" --fail -X POST "$base/v1/verifications" \
  -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
  -d "{\"consent_token\":\"$token\"}" | /usr/bin/python3 -m json.tool

step "6. Anyone checks the token offline against the published JWKS"
curl "${curl_opts[@]}" --fail "$base/.well-known/jwks.json" >var/demo-jwks.json
echo "$token" | "$build_dir/bin/ijazat-verify" --jwks var/demo-jwks.json --aud demo-bank - \
  | /usr/bin/python3 -m json.tool
echo
echo "Verified consent $id."
