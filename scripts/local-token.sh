#!/usr/bin/env bash
# Provisions the local development token that `make run` uses, under ./var/hsm:
# a SoftHSM configuration, random SO and user PINs in mode-0600 files, a token labelled
# ijazat-dev with every key. The first run creates it; later runs reuse it and only add keys
# that are missing. Then it audits the keys and shows them with the JWKS.
set -euo pipefail

build_dir=${1:-build/dev}
provision="$build_dir/bin/ijazat-provision"
hsm_dir=var/hsm
token=ijazat-dev

umask 077
mkdir -p "$hsm_dir/tokens"
export SOFTHSM2_CONF="$PWD/$hsm_dir/softhsm2.conf"
if [ ! -f "$SOFTHSM2_CONF" ]; then
  cat >"$SOFTHSM2_CONF" <<CONF
# SoftHSM configuration of the local development token (made by scripts/local-token.sh).
directories.tokendir = $PWD/$hsm_dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi
for pin in so user; do
  [ -f "$hsm_dir/$pin.pin" ] || openssl rand -hex 16 >"$hsm_dir/$pin.pin"
done

common=(--token "$token" --pin-file "$hsm_dir/user.pin")
if ! "$provision" tokens | grep -q "^$token "; then
  "$provision" "${common[@]}" init-token --label "$token" --so-pin-file "$hsm_dir/so.pin"
fi
"$provision" "${common[@]}" keygen --all
"$provision" "${common[@]}" check

echo
echo "Local SoftHSM token \"$token\" (configuration $SOFTHSM2_CONF; PINs in $hsm_dir/*.pin)"
echo
"$provision" "${common[@]}" list | grep -v '^    '
echo
echo "JWKS (what providers use to verify consent tokens and receipts):"
"$provision" "${common[@]}" jwks
echo
echo "More: $provision --help   (from this directory, --dev selects this token)"
