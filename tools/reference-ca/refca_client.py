# SPDX-License-Identifier: LGPL-2.1-or-later
"""Clients of the reference CA, in Python: its admin API (for tests and the
demo) and a minimal protocol-v1 client (for the server's self-test and for
doing an activation's CA steps by hand)."""

import http.client
import json
import ssl
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

import refca_jws
import refca_pki


class HTTPError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body


def _connection(base_url, timeout, cafile=None):
    u = urllib.parse.urlsplit(base_url)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=cafile)
        return http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def request(base_url, method, path, body=None, content_type="application/json",
            headers=None, timeout=30, cafile=None):
    """(status, headers dict (lower-case names), body bytes). `path` is
    appended to the origin of base_url when it starts with "/_admin",
    else to base_url itself."""
    u = urllib.parse.urlsplit(base_url)
    full = path if path.startswith("/_admin") else u.path.rstrip("/") + path
    conn = _connection(base_url, timeout, cafile)
    try:
        h = dict(headers or {})
        if body is not None:
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
            h.setdefault("Content-Type", content_type)
        conn.request(method, full, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


class Admin:
    """The /_admin API of a running reference CA."""

    def __init__(self, base_url, cafile=None):
        self.base_url = base_url
        self.cafile = cafile

    def call(self, method, path, body=None):
        status, _, data = request(self.base_url, method, "/_admin/" + path, body,
                                  cafile=self.cafile)
        obj = json.loads(data) if data else None
        if status != 200:
            raise HTTPError(status, obj)
        return obj

    def add_action(self, certificate=None, **fields):
        """Queues an action; `certificate` (an x509.Certificate or PEM)
        registers the replaced certificate. Returns the entry /pending
        lists."""
        body = dict(fields)
        if certificate is not None:
            body["certificate"] = _pem(certificate)
        return self.call("POST", "actions", body)

    def add_raw(self, entry, show_with=None):
        return self.call("POST", "actions", {"raw": entry, "show_with": show_with})

    def actions(self):
        return self.call("GET", "actions")["actions"]

    def action(self, action_id):
        for item in self.actions():
            if item["kind"] == "action" and item["entry"]["id"] == action_id:
                return item
        raise KeyError(action_id)

    def withdraw(self, action_id):
        return self.call("DELETE", f"actions/{action_id}")

    def register(self, certificate):
        return self.call("POST", "register", {"certificate": _pem(certificate)})

    def enroll(self, public_key, subject=None, not_before=None, not_after=None, serial=None):
        """A first certificate for `public_key` (a key object or PEM);
        returns (x509.Certificate, the answer)."""
        if not isinstance(public_key, (str, bytes)):
            public_key = public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        if isinstance(public_key, bytes):
            public_key = public_key.decode()
        body = {"public_key": public_key}
        for name, value in (("subject", subject), ("not_before", not_before),
                            ("not_after", not_after), ("serial", serial)):
            if value is not None:
                body[name] = value
        answer = self.call("POST", "enroll", body)
        return x509.load_pem_x509_certificate(answer["certificate"].encode()), answer

    def fault(self, path, kind, count=1, seconds=None, **extra):
        body = {"path": path, "kind": kind, "count": count}
        if seconds is not None:
            body["seconds"] = seconds
        body.update(extra)
        return self.call("POST", "faults", body)["faults"]

    def faults(self):
        return self.call("GET", "faults")["faults"]

    def log(self):
        return self.call("GET", "log")["requests"]

    def ca(self):
        return self.call("GET", "ca")

    def reset(self):
        return self.call("POST", "reset", {})


def _pem(certificate):
    if isinstance(certificate, x509.Certificate):
        return refca_pki.pem(certificate)
    if isinstance(certificate, bytes):
        return certificate.decode()
    return certificate


def cert_entry(cert):
    """A /pending `certificates` member for a certificate."""
    return {"serial": refca_pki.serial_hex(cert), "issuer": refca_pki.name_pairs(cert.issuer),
            "sha256": refca_pki.cert_sha256(cert)}


def make_csr(private_key, subject_pairs):
    """A PKCS#10 request (DER) with the contract's string types."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(refca_pki.make_name(subject_pairs))
           .sign(private_key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER)


class Client:
    """The CA half of an activation, as the daemon does it."""

    def __init__(self, base_url, cafile=None, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.cafile = cafile
        self.timeout = timeout

    def _request(self, method, path, body=None, content_type="application/json"):
        return request(self.base_url, method, path, body, content_type,
                       timeout=self.timeout, cafile=self.cafile)

    def pending(self, token_serial, certs):
        status, headers, data = self._request("POST", "/pending", {
            "token_serial": token_serial, "certificates": [cert_entry(c) for c in certs]})
        return status, headers, data

    def nonce(self):
        status, headers, _ = self._request("GET", "/nonce")
        if status != 204 or "replay-nonce" not in headers:
            raise HTTPError(status, headers)
        return headers["replay-nonce"]

    def signed(self, path, private_key, cert, payload, nonce=None, url=None, **kw):
        """POSTs a JWS; returns (status, headers, body bytes)."""
        nonce = nonce if nonce is not None else self.nonce()
        url = url if url is not None else self.base_url + path
        body = refca_jws.sign(private_key, cert, nonce, url, payload, **kw)
        return self._request("POST", path, body, "application/jose+json")

    def issue(self, action_id, private_key, cert, csr_der, **kw):
        return self.signed(f"/actions/{action_id}/issue", private_key, cert,
                           {"csr": refca_jws.b64url(csr_der)}, **kw)

    def confirm(self, action_id, private_key, cert, installed_serial=None, keep_previous=True,
                **kw):
        payload = {"installed_serial": installed_serial or refca_pki.serial_hex(cert),
                   "keep_previous": keep_previous}
        return self.signed(f"/actions/{action_id}/confirm", private_key, cert, payload, **kw)
