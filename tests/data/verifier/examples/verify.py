#!/usr/bin/python3
# Verifies an Ijazat consent token or receipt with python3-jwcrypto, following the steps of
# docs/consent-token.md.  usage: verify.py JWKS_FILE PROVIDER_ID UNIX_TIME TYP < TOKEN
# where TYP is consent+jwt or consent-receipt+jwt. Exit 0 and the claims, or 1 and the reason.
import json
import re
import sys

from jwcrypto import jwk, jws
from jwcrypto.common import base64url_decode

LEEWAY = 60
MAX_DATE = 253402300799
MAX_DEPTH = 16


def reject(reason, detail=""):
    print("rejected:", reason + (": " + detail if detail else ""))
    sys.exit(1)


def no_duplicates(pairs):
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def no_constants(name):
    raise ValueError("NaN and Infinity are not JSON")


# Nesting of the JSON text, strings skipped: counted before parsing, so that no input makes
# the parser recurse deeply.
def too_deep(text):
    level, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            level += 1
            if level > MAX_DEPTH:
                return True
        elif char in "]}":
            level -= 1
    return False


def no_surrogates(value):
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate (\ud800) raises UnicodeEncodeError
    elif isinstance(value, dict):
        for name, item in value.items():
            no_surrogates(name)
            no_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            no_surrogates(item)


# Step 2 and 8: one JSON object from its first byte, UTF-8, no duplicate member names, nesting
# at most 16 deep.
def json_object(data):
    text = data.decode("utf-8")  # strict: invalid UTF-8 raises UnicodeDecodeError
    if not text.startswith("{"):
        raise ValueError("not an object at the first byte")
    if too_deep(text):
        raise ValueError("nested too deeply")
    value = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    no_surrogates(value)
    return value


# Step 9: each claim is present ("missing_claim") and has its JSON type and range ("malformed").
def get(obj, name, path=""):
    if name not in obj:
        reject("missing_claim", path + name)
    return obj[name]


def text(obj, name, path=""):
    value = get(obj, name, path)
    if not isinstance(value, str) or not value:
        reject("malformed", path + name + " must be a non-empty string")
    return value


def constant(obj, name, expected, path=""):
    if text(obj, name, path) != expected:
        reject("malformed", path + name + ' must be "' + expected + '"')


def integer(obj, name, low, high, path=""):
    value = get(obj, name, path)
    if type(value) is not int or not low <= value <= high:  # bool is not an int here
        reject("malformed", path + name + " must be an integer from %d to %d" % (low, high))
    return value


def boolean(obj, name, path=""):
    if type(get(obj, name, path)) is not bool:
        reject("malformed", path + name + " must be true or false")


def strings(obj, name, allow_empty, path=""):
    value = get(obj, name, path)
    if not isinstance(value, list) or not (value or allow_empty) or \
            not all(isinstance(item, str) for item in value):
        reject("malformed", path + name + " must be a non-empty array of strings")
    return value


def objects(obj, name, path=""):
    value = get(obj, name, path)
    if not isinstance(value, list) or not value or not all(isinstance(o, dict) for o in value):
        reject("malformed", path + name + " must be a non-empty array of objects")
    return value


def optional_text(obj, name, path):
    if name in obj and not isinstance(obj[name], str):
        reject("malformed", path + name + " must be a string")


def audiences(claims):
    aud = get(claims, "aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return aud
    reject("malformed", "aud must be a string or an array of strings")


def check_token(claims):
    for name in ("iss", "sub"):
        text(claims, name)
    audiences(claims)
    for name in ("iat", "nbf", "exp"):
        integer(claims, name, 0, MAX_DATE)
    text(claims, "jti")
    strings(claims, "amr", False)
    text(claims, "purpose")
    strings(claims, "scopes", False)
    policy = get(claims, "policy")
    if not isinstance(policy, dict):
        reject("malformed", "policy must be an object")
    text(policy, "version", "policy.")
    if not re.fullmatch(r"[0-9a-f]{64}", text(policy, "hash", "policy.")):
        reject("malformed", "policy.hash must be 64 lowercase hex digits")
    integer(claims, "max_uses", 1, 2**31 - 1)


def check_receipt(claims):
    constant(claims, "version", "KI-CR-v1.1.0")
    constant(claims, "jurisdiction", "PK")
    integer(claims, "consentTimestamp", 0, MAX_DATE)
    constant(claims, "collectionMethod", "SMS-OTP")
    receipt_id = text(claims, "consentReceiptID")
    text(claims, "language")
    text(claims, "piiPrincipalId")
    for i, controller in enumerate(objects(claims, "piiControllers")):
        path = "piiControllers[%d]." % i
        text(controller, "piiController", path)
        if "onBehalf" in controller:
            boolean(controller, "onBehalf", path)
        text(controller, "contact", path)
        if "address" in controller:
            address = controller["address"]
            if not isinstance(address, dict):
                reject("malformed", path + "address must be an object")
            for name in ("streetAddress", "addressCountry"):
                optional_text(address, name, path + "address.")
        for name in ("email", "phone", "piiControllerUrl"):
            optional_text(controller, name, path)
    text(claims, "policyUrl")
    for i, service in enumerate(objects(claims, "services")):
        path = "services[%d]." % i
        text(service, "service", path)
        for j, purpose in enumerate(objects(service, "purposes", path)):
            at = path + "purposes[%d]." % j
            text(purpose, "purpose", at)
            strings(purpose, "purposeCategory", False, at)
            constant(purpose, "consentType", "EXPLICIT", at)
            strings(purpose, "piiCategory", False, at)
            boolean(purpose, "primaryPurpose", at)
            text(purpose, "termination", at)
            boolean(purpose, "thirdPartyDisclosure", at)
            optional_text(purpose, "thirdPartyName", at)
    boolean(claims, "sensitive")
    strings(claims, "spiCat", True)
    text(claims, "iss")
    audiences(claims)
    integer(claims, "iat", 0, MAX_DATE)
    if receipt_id != text(claims, "jti"):
        reject("malformed", "consentReceiptID must equal jti")


if len(sys.argv) != 5 or not sys.argv[3].isdigit() or \
        sys.argv[4] not in ("consent+jwt", "consent-receipt+jwt"):
    print("usage: verify.py JWKS_FILE PROVIDER_ID UNIX_TIME consent+jwt|consent-receipt+jwt "
          "< TOKEN", file=sys.stderr)
    sys.exit(2)
jwks_file, audience, now, typ = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
token = sys.stdin.read().strip()
if len(token) > 16384 or token.count(".") != 2 or "=" in token:
    reject("malformed")
try:
    header = json_object(base64url_decode(token.split(".")[0]))
except ValueError:  # UnicodeError and binascii.Error are ValueErrors too
    reject("malformed")
if not isinstance(header.get("alg"), str):
    reject("malformed", "the header has no alg")
if header["alg"] != "ES256":
    reject("alg_not_allowed")
if set(header) - {"alg", "typ", "kid"}:
    reject("forbidden_header")
if header.get("typ") != typ:
    reject("wrong_typ")
if not isinstance(header.get("kid"), str) or not header["kid"]:
    reject("malformed", "the header has no kid")
key = jwk.JWKSet.from_json(open(jwks_file).read()).get_key(header["kid"])
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
check_token(claims) if typ == "consent+jwt" else check_receipt(claims)
if audience not in audiences(claims):
    reject("wrong_audience")
if typ == "consent+jwt" and now - LEEWAY >= claims["exp"]:
    reject("expired")
if (typ == "consent+jwt" and now + LEEWAY < claims["nbf"]) or now + LEEWAY < claims["iat"]:
    reject("not_yet_valid")
print(json.dumps(claims, indent=2))
