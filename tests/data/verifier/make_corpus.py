#!/usr/bin/python3
"""Writes the seed corpus of verifier/fuzz/token_fuzzer.cc (tests/data/verifier/corpus/).

Run with Debian's python3 (python3-jwcrypto):  /usr/bin/python3 make_corpus.py KEY.json
KEY.json is a private P-256 JWK whose public half is kFuzzJwks in
verifier/fuzz/token_fuzz_target.h. The key used for the checked-in corpus was a throwaway and
is not kept: to change the corpus, make a new key (`make_corpus.py --new-key KEY.json`), paste
the printed JWKS into the harness and rerun. Files named valid_* must verify (the corpus test
checks that), so the fuzzer starts from tokens that reach the claims checks.
"""
import base64
import json
import os
import sys

from jwcrypto import jwk, jws

NOW = 1750000000
AUD = "fuzz-provider"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(key, header, payload):
    token = jws.JWS(payload.encode() if isinstance(payload, str) else payload)
    token.add_signature(key, None, json.dumps(header, separators=(",", ":")))
    return token.serialize(compact=True)


def consent(**overrides):
    claims = {
        "iss": "https://ijazat.nadra.example", "sub": b64(b"\x01" * 32), "aud": AUD,
        "iat": NOW - 100, "nbf": NOW - 100, "exp": NOW + 500, "jti": "c-fuzz-1",
        "amr": ["otp", "sms"], "purpose": "account-opening", "scopes": ["name", "photo"],
        "policy": {"version": "2025-01", "hash": "ab" * 32}, "max_uses": 1,
    }
    claims.update(overrides)
    return json.dumps({k: v for k, v in claims.items() if v is not None}, separators=(",", ":"))


def receipt():
    return json.dumps({
        "version": "KI-CR-v1.1.0", "jurisdiction": "PK", "consentTimestamp": NOW - 100,
        "collectionMethod": "SMS-OTP", "consentReceiptID": "c-fuzz-1", "language": "en",
        "piiPrincipalId": b64(b"\x01" * 32),
        "piiControllers": [{"piiController": "Fuzz Bank", "onBehalf": False, "contact": "DPO",
                            "address": {"streetAddress": "1 Street", "addressCountry": "PK"},
                            "email": "dpo@bank.example", "phone": "+92 21 0000000"}],
        "policyUrl": "https://bank.example/privacy",
        "services": [{"service": "Accounts", "purposes": [{
            "purpose": "Open an account", "purposeCategory": ["account-opening"],
            "consentType": "EXPLICIT", "piiCategory": ["name", "photo"], "primaryPurpose": True,
            "termination": "at exp", "thirdPartyDisclosure": False}]}],
        "sensitive": True, "spiCat": ["biometric"],
        "iss": "https://ijazat.nadra.example", "aud": AUD, "iat": NOW - 100, "jti": "c-fuzz-1",
    }, separators=(",", ":"))


def main():
    if sys.argv[1] == "--new-key":
        key = jwk.JWK.generate(kty="EC", crv="P-256")
        open(sys.argv[2], "w").write(key.export_private())
    else:
        key = jwk.JWK.from_json(open(sys.argv[1]).read())
    kid = key.thumbprint()
    public = json.loads(key.export_public())
    public.update({"kid": kid, "alg": "ES256", "use": "sig"})
    print(json.dumps({"keys": [public]}, separators=(",", ":")))

    token_header = {"alg": "ES256", "typ": "consent+jwt", "kid": kid}
    receipt_header = {"alg": "ES256", "typ": "consent-receipt+jwt", "kid": kid}
    valid = sign(key, token_header, consent())
    h, p, s = valid.split(".")
    seeds = {
        "valid_consent_token": valid,
        "valid_consent_token_aud_array": sign(key, token_header,
                                              consent(aud=["other", AUD])),
        "valid_receipt": sign(key, receipt_header, receipt()),
        "expired": sign(key, token_header, consent(exp=NOW - 120)),
        "missing_scopes": sign(key, token_header, consent(scopes=None)),
        "wrong_aud": sign(key, token_header, consent(aud="other")),
        "receipt_as_token": sign(key, receipt_header, consent()),
        "alg_none": b64(b'{"alg":"none","typ":"consent+jwt"}') + "." + p + ".",
        "alg_hs256": b64(json.dumps({"alg": "HS256", "typ": "consent+jwt", "kid": kid}).encode())
                     + "." + p + "." + s,
        "jku_header": b64(json.dumps({"alg": "ES256", "typ": "consent+jwt", "kid": kid,
                                      "jku": "https://evil.example/jwks"}).encode())
                      + "." + p + "." + s,
        "duplicate_alg": b64(b'{"alg":"ES256","alg":"none","typ":"consent+jwt"}') + "." + p
                         + "." + s,
        "unknown_kid": b64(b'{"alg":"ES256","typ":"consent+jwt","kid":"nope"}') + "." + p + "."
                       + s,
        "short_signature": h + "." + p + "." + s[:40],
        "four_parts": valid + ".x",
        "deep_header": b64(b"{" + b'"a":[' * 40 + b"]" * 40 + b"}") + "." + p + "." + s,
        "jwks_document": json.dumps({"keys": [public]}),
        "payload_consent": consent(),
        "payload_receipt": receipt(),
    }
    os.makedirs(OUT, exist_ok=True)
    for name, text in seeds.items():
        with open(os.path.join(OUT, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
