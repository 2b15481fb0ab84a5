# SPDX-License-Identifier: LGPL-2.1-or-later
"""JWS in flattened JSON serialization (RFC 7515 §7.2.2), as protocol-v1.md
uses it: RS256 (PKCS#1 v1.5) and ES256 (raw R||S, RFC 7518 §3.4), the
signer's certificate in `x5c`. Both sides: the server verifies, the tests'
and the demo's client sign."""

import base64
import binascii
import json
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class JWSError(Exception):
    """`code` is the protocol's problem code: malformed or badSignature."""

    def __init__(self, code, detail):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text, what):
    """base64url without padding, nothing else (protocol-v1.md)."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise JWSError("malformed", f"{what} is not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_object(data, what):
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise JWSError("malformed", f"{what} is not JSON") from None
    if not isinstance(obj, dict):
        raise JWSError("malformed", f"{what} is not a JSON object")
    return obj


class JWS:
    """A parsed, not yet verified JWS."""

    def __init__(self, body):
        obj = _json_object(body, "the body")
        for member in ("protected", "payload", "signature"):
            if not isinstance(obj.get(member), str):
                raise JWSError("malformed", f"the JWS has no {member!r} string")
        if "header" in obj:
            raise JWSError("malformed", "an unprotected header is not part of the contract")
        self.protected_b64 = obj["protected"]
        self.payload_b64 = obj["payload"]
        self.header = _json_object(b64url_decode(obj["protected"], "protected"),
                                   "the protected header")
        self.payload_bytes = b64url_decode(obj["payload"], "payload")
        self.signature = b64url_decode(obj["signature"], "signature")

    @property
    def nonce(self):
        nonce = self.header.get("nonce")
        return nonce if isinstance(nonce, str) else None

    def check_header(self):
        """The members the contract asks for; returns the x5c[0] certificate."""
        h = self.header
        if "crit" in h:
            raise JWSError("malformed", "the header must not carry crit")
        if h.get("alg") not in ("RS256", "ES256"):
            raise JWSError("malformed", f"alg {h.get('alg')!r} is not RS256 or ES256")
        for member in ("nonce", "url"):
            if not isinstance(h.get(member), str) or not h[member]:
                raise JWSError("malformed", f"the header has no {member!r} string")
        x5c = h.get("x5c")
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise JWSError("malformed", "the header has no x5c array of certificates")
        try:
            der = base64.b64decode(x5c[0], validate=True)
        except (binascii.Error, ValueError):
            raise JWSError("malformed", "x5c[0] is not standard base64") from None
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise JWSError("malformed", "x5c[0] is not a DER certificate") from None
        self.x5c_der = der
        return cert

    def verify(self, cert):
        """Raises JWSError(badSignature) unless the signature verifies with
        the certificate's key under the header's alg."""
        signing_input = (self.protected_b64 + "." + self.payload_b64).encode()
        key = cert.public_key()
        alg = self.header.get("alg")
        try:
            if alg == "RS256":
                if not isinstance(key, rsa.RSAPublicKey):
                    raise InvalidSignature()
                key.verify(self.signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "ES256":
                if (not isinstance(key, ec.EllipticCurvePublicKey)
                        or key.curve.name != "secp256r1" or len(self.signature) != 64):
                    raise InvalidSignature()
                r = int.from_bytes(self.signature[:32], "big")
                s = int.from_bytes(self.signature[32:], "big")
                key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
            else:
                raise InvalidSignature()
        except InvalidSignature:
            raise JWSError("badSignature",
                           f"the {alg} signature does not verify with x5c[0]'s key") from None

    def payload(self):
        return _json_object(self.payload_bytes, "the payload")


def alg_for(private_key):
    return "RS256" if isinstance(private_key, rsa.RSAPrivateKey) else "ES256"


def sign(private_key, cert, nonce, url, payload, alg=None, extra_header=None):
    """A flattened JWS body (bytes) as the daemon sends it. `payload` is a
    dict (or bytes, sent as they are)."""
    header = {"alg": alg or alg_for(private_key),
              "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
              "nonce": nonce, "url": url}
    header.update(extra_header or {})
    protected = b64url(json.dumps(header).encode())
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    payload_b64 = b64url(payload)
    signing_input = (protected + "." + payload_b64).encode()
    if isinstance(private_key, rsa.RSAPrivateKey):
        signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return json.dumps({"protected": protected, "payload": payload_b64,
                       "signature": b64url(signature)}).encode()
