#!/usr/bin/env python3
"""How a backend verifies a Gatehouse token with nothing but the tenant's JWKS (ES256, EdDSA or RS256).

    scripts/verify-with-jwks.py http://localhost:8080 "$TOKEN" [expected-audience]

Needs the `cryptography` package (pip install cryptography). Prints the verified claims, or exits 1.
"""
import base64, json, sys, time, urllib.request
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def public_key(jwk):
    if jwk["kty"] == "EC":
        x, y = (int.from_bytes(b64(jwk[k]), "big") for k in ("x", "y"))
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    if jwk["kty"] == "OKP":
        return ed25519.Ed25519PublicKey.from_public_bytes(b64(jwk["x"]))
    n, e = (int.from_bytes(b64(jwk[k]), "big") for k in ("n", "e"))
    return rsa.RSAPublicNumbers(e, n).public_key()


def verify(origin, token, audience=None):
    header_part, payload_part, signature_part = token.split(".")
    header, claims = json.loads(b64(header_part)), json.loads(b64(payload_part))
    keys = json.load(urllib.request.urlopen(origin + "/.well-known/jwks.json"))["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    if header["alg"] != jwk["alg"]:  # the key decides the algorithm, never the token
        raise InvalidSignature("algorithm mismatch")
    key, data, signature = public_key(jwk), f"{header_part}.{payload_part}".encode(), b64(signature_part)
    if jwk["alg"] == "ES256":
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    elif jwk["alg"] == "EdDSA":
        key.verify(signature, data)
    else:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    if claims["exp"] < time.time() - 30:
        raise InvalidSignature("expired")
    if audience and audience not in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"]):
        raise InvalidSignature("wrong audience")
    return claims


if __name__ == "__main__":
    try:
        print(json.dumps(verify(*sys.argv[1:4]), indent=2))
    except Exception as error:  # noqa: BLE001 - a demo: any failure means "not verified"
        print(f"not verified: {error!r}", file=sys.stderr)
        sys.exit(1)
