#!/usr/bin/env bash
# Drives one whole consent flow against the local appliance and prints each step:
# enrol by inbound SMS, ask for consent, read the code from the SMS sink, confirm, verify, and
# check the token's signature against the published JWKS with ijazat-verify. Starts the
# appliance for the demo if it is not running.
set -euo pipefail

build_dir=${1:-build/dev}
base=https://localhost:8443
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
# The text of the last SMS the sink holds for the citizen's number.
last_sms() {
  /usr/bin/python3 -c "import json,sys
texts=[m['text'] for m in map(json.loads, open('var/sms-outbox.jsonl')) if m['to']==sys.argv[1]]
print(texts[-1] if texts else '(no SMS)')" "$e164"
}

if ! curl "${curl_opts[@]}" --fail "$base/healthz" >/dev/null 2>&1; then
  step "Starting the appliance (make run was not running)"
  scripts/local-appliance.sh "$build_dir" >var/demo-appliance.out 2>&1 &
  started=$!
  trap '[ -n "$started" ] && kill "$started" 2>/dev/null; wait 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do
    curl "${curl_opts[@]}" --fail "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
fi

step "1. The citizen ($cnic, $phone) texts their CNIC to 8009 (the gateway posts it to the webhook)"
curl "${curl_opts[@]}" --fail -X POST "$base/v1/sms/inbound" \
  -H "X-Ijazat-Gateway-Secret: $(cat var/gateway.secret)" \
  --data-urlencode "from=$phone" --data-urlencode "to=8009" --data-urlencode "text=$cnic"
sleep 1
echo "SMS to the citizen: $(last_sms)"

step "2. Demo Bank asks for consent (CNIC, purpose, scopes)"
created=$(curl "${curl_opts[@]}" --fail -X POST "$base/v1/consents" \
  -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
  -d "{\"cnic\":\"$cnic\",\"purpose\":\"account-opening\",\"scopes\":[\"name\",\"date_of_birth\"]}")
echo "$created"
id=$(echo "$created" | json '["consent_id"]')

step "3. The citizen receives the code by SMS"
sleep 1
sms=$(last_sms)
echo "SMS: $sms"
code=$(echo "$sms" | sed -n 's/^Ijazat code \([0-9]*\):.*/\1/p')

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
