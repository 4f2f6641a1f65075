#!/usr/bin/python3
# Verifies an Ijazat consent token or receipt with python3-jwcrypto, following the steps of
# docs/consent-token.md.  usage: verify.py JWKS_FILE PROVIDER_ID UNIX_TIME TYP < TOKEN
# where TYP is consent+jwt or consent-receipt+jwt. Exit 0 and the claims, or 1 and the reason.
import json
import sys

from jwcrypto import jwk, jws
from jwcrypto.common import base64url_decode

LEEWAY = 60
REQUIRED = {
    "consent+jwt": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "amr", "purpose",
                    "scopes", "policy", "max_uses"],
    "consent-receipt+jwt": ["version", "jurisdiction", "consentTimestamp", "collectionMethod",
                            "consentReceiptID", "language", "piiPrincipalId", "piiControllers",
                            "policyUrl", "services", "sensitive", "spiCat", "iss", "aud", "iat",
                            "jti"],
}


def reject(reason):
    print("rejected:", reason)
    sys.exit(1)


def no_duplicates(pairs):
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def json_object(data):
    value = json.loads(data, object_pairs_hook=no_duplicates)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


jwks_file, audience, now, typ = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
token = sys.stdin.read().strip()
if len(token) > 16384 or token.count(".") != 2 or "=" in token:
    reject("malformed")
try:
    header = json_object(base64url_decode(token.split(".")[0]))
except ValueError:
    reject("malformed")
if header.get("alg") != "ES256":
    reject("alg_not_allowed")
if set(header) - {"alg", "typ", "kid"}:
    reject("forbidden_header")
if header.get("typ") != typ:
    reject("wrong_typ")
key = jwk.JWKSet.from_json(open(jwks_file).read()).get_key(header.get("kid"))
if key is None:
    reject("unknown_kid")
signed = jws.JWS()
try:
    signed.deserialize(token)
    signed.verify(key, alg="ES256")
except Exception:
    reject("bad_signature")
try:
    claims = json_object(signed.payload)
except ValueError:
    reject("malformed")
if any(name not in claims for name in REQUIRED[typ]):
    reject("missing_claim")
audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
if audience not in audiences:
    reject("wrong_audience")
if typ == "consent+jwt" and now - LEEWAY >= claims["exp"]:
    reject("expired")
if (typ == "consent+jwt" and now + LEEWAY < claims["nbf"]) or now + LEEWAY < claims["iat"]:
    reject("not_yet_valid")
print(json.dumps(claims, indent=2))
