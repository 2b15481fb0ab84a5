#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The reference CA: the server side of docs/protocol.md (activation
protocol v1), for the tests and the demo. Loopback only.

    refca.py --state DIR --port N [--host 127.0.0.1] [--tls CERT KEY] [--init]

--init makes a CA in DIR when there is none ("SAFE-CA Root CA" and the
issuing CA "SAFE-CA SHA-256 2020"); DIR/issuers.pem is what a daemon's CA
profile names as `issuers`. --port 0 picks a free port. The first line on
stdout, once the server listens, is its base URL
(http://127.0.0.1:N/activation/v1); then one line per request on stderr.

Protocol endpoints, under /activation/v1:
  POST /pending                 pending actions for the certificates sent
  GET  /nonce                   204 and a Replay-Nonce
  POST /actions/{id}/issue      JWS{csr}, signed with the replaced cert's key
  POST /actions/{id}/confirm    JWS{installed_serial, keep_previous}, signed
                                with the new certificate's key
Admin API for tests and the demo, under /_admin (loopback callers only;
not in the request log):
  POST   /_admin/actions        queue an action (see Admin.actions below)
  GET    /_admin/actions        every action with its state
  DELETE /_admin/actions/{id}   withdraw one (it leaves /pending, issue 404s)
  POST   /_admin/register       {certificate: PEM}: a certificate this CA
                                issued outside the server (test PKI)
  POST   /_admin/enroll         issue a token's first certificate
  POST   /_admin/faults         queue faults for the next matching requests
  GET    /_admin/faults         the faults still queued
  GET    /_admin/log            every protocol request received
  GET    /_admin/ca             the CA certificates and the issuers file
  POST   /_admin/reset          forget actions, faults, log, nonces
SIGTERM or SIGINT stops the server (exit 0).
"""

import argparse
import datetime
import http.server
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.x509.name import _ASN1Type  # noqa: E402

import refca_pki as pkimod  # noqa: E402
from refca_jws import JWS, JWSError, b64url_decode  # noqa: E402

BASE_PATH = "/activation/v1"
MAX_REQUEST = 64 * 1024          # protocol-v1.md: servers may refuse more
DRAIN_LIMIT = 4 * 1024 * 1024    # read at most this much of a refused body
OVERSIZE = 1024 * 1024 + 64 * 1024  # over the client's 1 MiB cap
HUGE_HEADER = 1024 * 1024           # one header line; libcurl stops at 100 KiB
NONCE_LIFETIME = 600             # the contract: at least 5 minutes
ID_CHARS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SHA256_RSA = "1.2.840.113549.1.1.11"
SHA256_ECDSA = "1.2.840.10045.4.3.2"

PROBLEM_STATUS = {
    "badNonce": 400, "malformed": 400, "badSignature": 401, "unauthorized": 403,
    "notFound": 404, "alreadyIssued": 409, "badCSR": 422, "rateLimited": 429,
    "serverInternal": 500,
}
PROBLEM_TITLE = {
    "badNonce": "Nonce unknown or used",
    "malformed": "Malformed request",
    "badSignature": "Signature does not verify",
    "unauthorized": "Not authorized for this action",
    "notFound": "No such action",
    "alreadyIssued": "Already issued for another key",
    "badCSR": "Certificate request refused",
    "rateLimited": "Too many requests",
    "serverInternal": "Internal error",
}

FAULT_PATHS = {"pending", "nonce", "issue", "confirm"}
FAULT_KINDS = {
    "status500", "malformed_json", "oversize", "slow", "accepted", "bad_nonce",
    "rate_limited", "wrong_subject", "wrong_key", "untrusted_issuer", "outside_window",
    "cut_short", "hang", "dribble", "edge_window", "retyped_subject", "huge_header",
}
# Kinds that answer instead of the CA (nothing is processed).
REPLACING = {"status500", "malformed_json", "accepted", "bad_nonce", "rate_limited", "hang"}
# Kinds that make /issue return a 200 certificate that is wrong (or, for
# edge_window and retyped_subject, unusual but right: that one is then the
# certificate issued for the action; the wrong ones are not).
CERT_FAULTS = {"wrong_subject", "wrong_key", "untrusted_issuer", "outside_window",
               "edge_window", "retyped_subject"}
RIGHT_VARIANTS = {"edge_window", "retyped_subject"}


class Problem(Exception):
    def __init__(self, code, detail, headers=None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}


class Answer:
    """What a handler sends: status, headers, body bytes."""

    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if content_type:
            self.headers["Content-Type"] = content_type

    @classmethod
    def json(cls, status, obj, headers=None):
        return cls(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json",
                   headers)

    @classmethod
    def problem(cls, code, detail, headers=None):
        status = PROBLEM_STATUS[code]
        body = {"type": f"urn:safeca:{code}", "title": PROBLEM_TITLE[code], "detail": detail,
                "status": status}
        return cls(status, json.dumps(body, ensure_ascii=False).encode(),
                   "application/problem+json", headers)


def _now():
    return time.time()


class CA:
    """Everything the server knows, behind one lock."""

    def __init__(self, directory, init):
        self.directory = directory
        self.pki = pkimod.PKI(directory, init=init)
        self.lock = threading.RLock()
        self.state_path = os.path.join(directory, "state.json")
        self.certs = {}          # serial hex -> x509.Certificate this CA issued
        self.items = []          # actions and raw entries, in the CA's order
        self.nonces = {}         # nonce -> expiry
        self.log = []
        self.faults = []
        self.seq = 0
        self.wakeup = threading.Event()   # ends `hang` faults
        self._load()

    # --- persistence -------------------------------------------------------
    def _load(self):
        try:
            with open(self.state_path, encoding="utf-8") as f:
                saved = json.load(f)
        except FileNotFoundError:
            return
        for text in saved.get("certificates", []):
            cert = x509.load_pem_x509_certificate(text.encode())
            self.certs[pkimod.serial_hex(cert)] = cert
        self.items = saved.get("items", [])

    def save(self):
        saved = {"certificates": [pkimod.pem(c) for c in self.certs.values()],
                 "items": self.items}
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(saved, f, ensure_ascii=False, indent=1)
        os.replace(tmp, self.state_path)

    # --- lookups -------------------------------------------------------------
    def action(self, action_id):
        for item in self.items:
            if item["kind"] == "action" and item["entry"]["id"] == action_id:
                return item
        return None

    def register(self, cert):
        if not self.pki.signed_by_issuing(cert):
            raise ValueError("the certificate was not signed by this CA's issuing CA")
        self.certs[pkimod.serial_hex(cert)] = cert

    def new_nonce(self):
        nonce = secrets.token_urlsafe(18)
        now = _now()
        self.nonces = {n: t for n, t in self.nonces.items() if t > now}
        self.nonces[nonce] = now + NONCE_LIFETIME
        return nonce

    def consume_nonce(self, nonce):
        expiry = self.nonces.pop(nonce, None)
        return expiry is not None and expiry > _now()

    def take_fault(self, path, action_id=None):
        for fault in self.faults:
            if fault["path"] != path:
                continue
            if fault.get("action") and fault["action"] != action_id:
                continue
            fault["count"] -= 1
            if fault["count"] <= 0:
                self.faults.remove(fault)
            return dict(fault)
        return None


def _wrong_subject(subject, variant):
    """A subject that differs from `subject` (x509.Name) in one value."""
    rdns = [list(rdn) for rdn in subject.rdns]
    target = None
    for i, rdn in enumerate(rdns):
        if rdn[0].oid == x509.NameOID.COMMON_NAME:
            target = i
    if target is None:
        target = len(rdns) - 1
    attr = rdns[target][0]
    value = attr.value
    if variant == "nfd":
        changed = unicodedata.normalize("NFD", value)
        if changed == value:
            changed = value + "\u0301"
    else:
        changed = value[:-1] if len(value) > 1 else value + "X"
    rdns[target] = [x509.NameAttribute(attr.oid, changed, attr._type)]
    return x509.Name([x509.RelativeDistinguishedName(r) for r in rdns])


def _retyped_subject(subject):
    """The same values in other ASN.1 string types: equal by value."""
    rdns = []
    for rdn in subject.rdns:
        attrs = []
        for attr in rdn:
            if attr._type == _ASN1Type.UTF8String:
                new_type = _ASN1Type.BMPString
            elif attr._type == _ASN1Type.PrintableString:
                new_type = _ASN1Type.UTF8String
            else:
                new_type = attr._type
            attrs.append(x509.NameAttribute(attr.oid, attr.value, new_type))
        rdns.append(x509.RelativeDistinguishedName(attrs))
    return x509.Name(rdns)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this a kept-alive
    # client waits for its delayed ACK (~40 ms) before it sees the body.
    disable_nagle_algorithm = True
    server_version = "safeca-refca/1"
    timeout = 120  # an idle keep-alive connection is closed after this

    ca: CA = None       # set on the subclass the server makes
    scheme = "http"
    quiet = False

    # --- plumbing ------------------------------------------------------------
    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("refca: %s %s\n" % (self.address_string(), fmt % args))

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(self.timeout)

    def _read_body(self):
        """The body, or raises Problem(malformed) when it is over
        MAX_REQUEST (after draining it, so the client reads the answer)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            length = int(length)
        except ValueError:
            self.close_connection = True
            raise Problem("malformed", "bad Content-Length") from None
        if length > MAX_REQUEST:
            self._drain(length)
            raise Problem("malformed", f"request body of {length} bytes is over "
                                       f"{MAX_REQUEST} bytes")
        return self.rfile.read(length)

    def _drain(self, length):
        if length > DRAIN_LIMIT:
            self.close_connection = True
            return
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)

    def _read_chunked(self):
        body = b""
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise Problem("malformed", "bad chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                break
            if len(body) + size > MAX_REQUEST:
                self.close_connection = True
                raise Problem("malformed", f"request body is over {MAX_REQUEST} bytes")
            body += self.rfile.read(size)
            self.rfile.readline(1024)
        return body

    def _send(self, answer, fault=None):
        """Sends an Answer, shaped by a fault (oversize, huge_header, cut_short,
        dribble)."""
        body = answer.body
        kind = fault["kind"] if fault else None
        status = answer.status
        headers = dict(answer.headers)
        if kind == "oversize":
            if status == 204:
                status = 200
                headers["Content-Type"] = "application/json"
                obj = {}
            else:
                try:
                    obj = json.loads(body.decode()) if body else {}
                except ValueError:
                    obj = {}
            if not isinstance(obj, dict):
                obj = {"answer": obj}
            obj["padding"] = "x" * OVERSIZE
            body = json.dumps(obj, ensure_ascii=False).encode()
        if kind == "huge_header":
            headers["X-Padding"] = "x" * HUGE_HEADER
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-store")
        if kind == "cut_short":
            self.send_header("Content-Length", str(len(body) + 1000))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return
        if status != 204 or body:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if kind == "dribble":
            interval = float(fault.get("seconds") or 1)
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                if self.ca.wakeup.wait(interval):
                    break
            self.close_connection = True
            return
        if body:
            self.wfile.write(body)

    def _is_loopback_peer(self):
        try:
            return ipaddress.ip_address(self.client_address[0].split("%")[0]).is_loopback
        except ValueError:
            return False

    def request_url(self):
        """The URL the client sent the request to, as the JWS `url` must be."""
        return f"{self.scheme}://{self.headers.get('Host', '')}{self.path}"

    # --- dispatch ------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_PUT(self):
        self._dispatch("PUT")

    def _dispatch(self, method):
        path = self.path.split("?", 1)[0]
        if path.startswith("/_admin/") or path == "/_admin":
            self._admin(method, path)
            return
        entry = {"method": method, "path": self.path, "status": None, "endpoint": None,
                 "t_start": _now(), "t_end": None, "fault": None, "problem": None,
                 "content_type": self.headers.get("Content-Type")}
        with self.ca.lock:
            self.ca.seq += 1
            entry["seq"] = self.ca.seq
            self.ca.log.append(entry)
        answer, fault = None, None
        try:
            answer, fault = self._protocol(method, path, entry)
        except Problem as p:
            answer = Answer.problem(p.code, p.detail, p.headers)
        except Exception as e:  # noqa: BLE001 - a bug here is the CA failing
            answer = Answer.problem("serverInternal", f"{type(e).__name__}: {e}")
            sys.stderr.write(f"refca: internal error: {e!r}\n")
        if answer is not None and answer.headers.get("Content-Type") == \
                "application/problem+json":
            try:
                entry["problem"] = json.loads(answer.body)["type"].split(":")[-1]
            except (ValueError, KeyError):
                pass
        entry["status"] = answer.status if answer is not None else None
        try:
            if answer is not None:
                self._send(answer, fault)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
            entry["client_gone"] = True
        entry["t_end"] = _now()

    # --- the protocol --------------------------------------------------------
    def _protocol(self, method, path, entry):
        if not path.startswith(BASE_PATH + "/"):
            self._read_body_quietly()
            raise Problem("notFound", f"no such resource: {path}")
        rest = path[len(BASE_PATH):]
        m = re.match(r"^/actions/([^/]+)/(issue|confirm)$", rest)
        if rest == "/pending":
            endpoint, action_id = "pending", None
        elif rest == "/nonce":
            endpoint, action_id = "nonce", None
        elif m:
            endpoint, action_id = m.group(2), m.group(1)
        else:
            self._read_body_quietly()
            raise Problem("notFound", f"no such resource: {path}")
        entry["endpoint"] = endpoint
        if action_id is not None:
            entry["action"] = action_id
        want = "GET" if endpoint == "nonce" else "POST"
        if method != want:
            self._read_body_quietly()
            raise Problem("malformed", f"{endpoint} takes {want}, not {method}")

        body = self._read_body() if want == "POST" else b""
        entry["body_bytes"] = len(body)
        with self.ca.lock:
            fault = self.ca.take_fault(endpoint, action_id)
        if fault:
            entry["fault"] = fault["kind"]
        jws = None
        if endpoint in ("issue", "confirm"):
            try:
                jws = JWS(body)
                entry["jws_header"] = jws.header
            except JWSError:
                jws = None
        if fault and fault["kind"] in REPLACING:
            if jws is not None and endpoint == "issue":
                self._note_csr(jws, entry)
            if jws is not None and jws.nonce:
                entry["nonce"] = jws.nonce
                with self.ca.lock:
                    self.ca.consume_nonce(jws.nonce)
            return self._replacing_fault(fault, endpoint), None
        if fault and fault["kind"] == "slow":
            self.ca.wakeup.wait(float(fault.get("seconds") or 10))

        if endpoint == "nonce":
            with self.ca.lock:
                nonce = self.ca.new_nonce()
            entry["nonce"] = nonce
            return Answer(204, headers={"Replay-Nonce": nonce}), fault
        if endpoint == "pending":
            return self._pending(body, entry), fault
        try:
            if jws is None:
                JWS(body)  # raises the precise JWSError
            cert = self._check_jws(jws, body, entry)
            if endpoint == "issue":
                return self._issue(action_id, jws, cert, entry, fault), fault
            return self._confirm(action_id, jws, cert, entry), fault
        except JWSError as e:
            raise Problem(e.code, e.detail) from None

    def _read_body_quietly(self):
        try:
            self._read_body()
        except Problem:
            pass

    @staticmethod
    def _note_csr(jws, entry):
        """Logs the CSR's key of a request a fault answers (best effort)."""
        try:
            csr = x509.load_der_x509_csr(b64url_decode(jws.payload().get("csr"), "csr"))
            entry["csr_key_sha256"] = pkimod.key_sha256(csr.public_key())
            entry["csr_subject"] = pkimod.name_pairs(csr.subject)
        except (JWSError, ValueError, TypeError):
            pass

    def _replacing_fault(self, fault, endpoint):
        kind = fault["kind"]
        seconds = fault.get("seconds")
        if kind == "status500":
            return Answer.problem("serverInternal", "the CA failed (fault injected)")
        if kind == "malformed_json":
            if endpoint == "nonce":
                return Answer(200, b"", "application/json")  # no Replay-Nonce
            return Answer(200, b'{"pending": [ {"id": "r-1", "type": ', "application/json")
        if kind == "bad_nonce":
            return Answer.problem("badNonce", "nonce unknown or used (fault injected)")
        if kind == "rate_limited":
            s = int(seconds if seconds is not None else 1)
            return Answer.problem("rateLimited", "slow down (fault injected)",
                                  {"Retry-After": str(s)})
        if kind == "accepted":
            s = int(seconds if seconds is not None else 1)
            body_s = fault.get("body_seconds", s)
            headers = {} if fault.get("no_header") else {"Retry-After": str(s)}
            return Answer.json(202, {"retry_after": body_s}, headers)
        if kind == "hang":
            self.ca.wakeup.wait(float(seconds or 60))
            self.close_connection = True
            return None
        raise AssertionError(kind)

    def _pending(self, body, entry):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise Problem("malformed", f"Content-Type {ctype!r} is not application/json")
        try:
            req = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Problem("malformed", "the body is not JSON") from None
        entry["request"] = req
        if not isinstance(req, dict) or not isinstance(req.get("token_serial"), str):
            raise Problem("malformed", "the body needs a token_serial string")
        certs = req.get("certificates")
        if not isinstance(certs, list):
            raise Problem("malformed", "the body needs a certificates array")
        matched = []
        notes = []
        with self.ca.lock:
            for c in certs:
                if (not isinstance(c, dict) or not isinstance(c.get("serial"), str)
                        or not isinstance(c.get("issuer"), list)
                        or not isinstance(c.get("sha256"), str)):
                    raise Problem("malformed", "each certificate needs serial, issuer, sha256")
                serial = c["serial"].lower()
                known = self.ca.certs.get(serial)
                if known is None:
                    notes.append(f"{serial}: not issued by this CA")
                    continue
                if c["issuer"] != self.ca.pki.issuer_pairs:
                    notes.append(f"{serial}: issuer differs")
                    continue
                if c["sha256"].lower() != pkimod.cert_sha256(known):
                    notes.append(f"{serial}: sha256 differs")
                    continue
                matched.append(serial)
            pending = []
            for item in self.ca.items:
                if item["kind"] == "raw":
                    show = item.get("show_with")
                    if show is None or show.lower() in matched:
                        pending.append(item["entry"])
                elif (item["state"] in ("queued", "issued")
                      and item["entry"]["replaces"].lower() in matched):
                    pending.append(item["entry"])
        entry["matched"] = matched
        entry["notes"] = notes
        entry["answer_ids"] = [p.get("id") for p in pending]
        return Answer.json(200, {"pending": pending})

    def _check_jws(self, jws, body, entry):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        nonce = jws.nonce
        if nonce is not None:
            with self.ca.lock:
                fresh = self.ca.consume_nonce(nonce)
            entry["nonce"] = nonce
            if not fresh:
                raise Problem("badNonce", "the nonce is unknown, expired or used")
        if ctype != "application/jose+json":
            raise Problem("malformed", f"Content-Type {ctype!r} is not application/jose+json")
        cert = jws.check_header()
        url = self.request_url()
        if jws.header["url"] != url:
            raise Problem("malformed",
                          f"the JWS url {jws.header['url']!r} is not the request URL {url!r}")
        jws.verify(cert)
        entry["x5c_serial"] = pkimod.serial_hex(cert)
        return cert

    def _issue(self, action_id, jws, cert, entry, fault):
        with self.ca.lock:
            item = self.ca.action(action_id)
            if item is None or item["state"] == "withdrawn":
                raise Problem("notFound", f"no action {action_id}")
            action = item["entry"]
            replaced = self.ca.certs.get(action["replaces"].lower())
        if replaced is None or jws.x5c_der != replaced.public_bytes(
                serialization.Encoding.DER):
            raise Problem("unauthorized",
                          f"x5c[0] is not the certificate action {action_id} replaces")
        payload = jws.payload()
        entry["payload_members"] = sorted(payload)
        try:
            der = b64url_decode(payload.get("csr"), "csr")
        except JWSError as e:
            raise Problem("malformed", e.detail) from None
        try:
            csr = x509.load_der_x509_csr(der)
        except ValueError:
            raise Problem("malformed", "csr is not a DER PKCS#10 request") from None
        public_key = csr.public_key()
        key_hash = pkimod.key_sha256(public_key)
        entry["csr_key_sha256"] = key_hash
        entry["csr_subject"] = pkimod.name_pairs(csr.subject)
        if not csr.is_signature_valid:
            raise Problem("badCSR", "the request's signature does not verify")
        if csr.signature_algorithm_oid.dotted_string not in (SHA256_RSA, SHA256_ECDSA):
            raise Problem("badCSR", "the request is not signed with SHA-256 "
                                    f"({csr.signature_algorithm_oid.dotted_string})")
        if pkimod.name_pairs(csr.subject) != action["subject"]:
            raise Problem("badCSR", "the request's subject "
                                    f"{pkimod.name_pairs(csr.subject)} is not the action's "
                                    f"{action['subject']}")
        wrong_types = pkimod.wrong_string_types(csr.subject)
        if wrong_types:
            raise Problem("badCSR", "subject string types differ from the contract: "
                          + ", ".join(f"{a} is {t}" for a, t in wrong_types))
        key = action.get("key") or {}
        replaced_spki = pkimod.spki_der(replaced.public_key())
        if key.get("generate") is True:
            reason = pkimod.key_matches(public_key, key)
            if reason:
                raise Problem("badCSR", reason)
            if pkimod.spki_der(public_key) == replaced_spki:
                raise Problem("badCSR", "the action asks for a new key, "
                                        "not the replaced certificate's")
        elif pkimod.spki_der(public_key) != replaced_spki:
            raise Problem("badCSR", "the action certifies the replaced certificate's key "
                                    "again; the request carries another key")
        not_before = pkimod.parse_time(action["not_before"])
        not_after = pkimod.parse_time(action["not_after"])
        with self.ca.lock:
            issued = item.get("issued")
            if issued and issued["key_sha256"] != key_hash:
                raise Problem("alreadyIssued",
                              f"action {action_id} was issued for another key")
            if issued:
                new = x509.load_pem_x509_certificate(issued["certificate"].encode())
                entry["again"] = True
            else:
                if fault and fault["kind"] in RIGHT_VARIANTS:
                    # Unusual but right: this is the certificate issued.
                    new, _ = self._faulty_cert(fault, csr, public_key, not_before, not_after)
                    fault = None
                else:
                    new = self.ca.pki.issue(csr.subject, public_key, not_before, not_after)
                self.ca.certs[pkimod.serial_hex(new)] = new
                item["issued"] = {"key_sha256": key_hash, "certificate": pkimod.pem(new),
                                  "serial": pkimod.serial_hex(new)}
                if item["state"] == "queued":
                    item["state"] = "issued"
                self.ca.save()
        entry["issued_serial"] = pkimod.serial_hex(new)
        chain = [pkimod.pem(self.ca.pki.issuing)]
        if fault and fault["kind"] in CERT_FAULTS:
            new, chain = self._faulty_cert(fault, csr, public_key, not_before, not_after)
            entry["returned_serial"] = pkimod.serial_hex(new)
        return Answer.json(200, {"certificate": pkimod.pem(new), "chain": chain})

    def _faulty_cert(self, fault, csr, public_key, not_before, not_after):
        pki = self.ca.pki
        kind = fault["kind"]
        chain = [pkimod.pem(pki.issuing)]
        subject = csr.subject
        if kind == "wrong_key":
            public_key = pkimod.fresh_key_like(public_key).public_key()
        elif kind == "wrong_subject":
            subject = _wrong_subject(subject, fault.get("variant"))
        elif kind == "retyped_subject":
            subject = _retyped_subject(subject)
        elif kind == "outside_window":
            not_after = not_after + datetime.timedelta(hours=25)
        elif kind == "edge_window":
            not_before = not_before - datetime.timedelta(hours=24)
            not_after = not_after + datetime.timedelta(hours=24)
        impostor = kind == "untrusted_issuer"
        if impostor:
            chain = [pkimod.pem(pki.impostor)]
        new = pki.issue(subject, public_key, not_before, not_after, impostor=impostor)
        return new, chain

    def _confirm(self, action_id, jws, cert, entry):
        with self.ca.lock:
            item = self.ca.action(action_id)
            if item is None or item["state"] == "withdrawn":
                raise Problem("notFound", f"no action {action_id}")
            issued = item.get("issued")
        if not issued or jws.x5c_der != x509.load_pem_x509_certificate(
                issued["certificate"].encode()).public_bytes(serialization.Encoding.DER):
            raise Problem("unauthorized",
                          f"x5c[0] is not the certificate issued for action {action_id}")
        payload = jws.payload()
        entry["payload"] = payload
        installed = payload.get("installed_serial")
        keep = payload.get("keep_previous")
        if not isinstance(installed, str):
            raise Problem("malformed", "installed_serial must be a string")
        if not isinstance(keep, bool):
            raise Problem("malformed", "keep_previous (true or false) is required")
        if installed.lower() != pkimod.serial_hex(cert):
            raise Problem("malformed", f"installed_serial {installed} is not x5c[0]'s serial "
                                       f"{pkimod.serial_hex(cert)}")
        with self.ca.lock:
            entry["again"] = item["state"] == "completed"
            item["state"] = "completed"
            item["keep_previous"] = keep
            item["confirmed_serial"] = installed.lower()
            self.ca.save()
        return Answer.json(200, {"status": "completed"})

    # --- admin ---------------------------------------------------------------
    def _admin(self, method, path):
        try:
            if not self._is_loopback_peer():
                self._read_body_quietly()
                raise Problem("unauthorized", "the admin API answers loopback callers only")
            body = self._read_body() if method in ("POST", "PUT") else b""
            req = {}
            if body:
                try:
                    req = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise Problem("malformed", "the body is not JSON") from None
            answer = Admin(self.ca, self).route(method, path, req)
        except Problem as p:
            answer = Answer.problem(p.code, p.detail)
        except (ValueError, KeyError, TypeError) as e:
            answer = Answer.problem("malformed", f"{type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - answer rather than drop the connection
            answer = Answer.problem("serverInternal", f"{type(e).__name__}: {e}")
        try:
            self._send(answer)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Admin:
    def __init__(self, ca, handler):
        self.ca = ca
        self.handler = handler

    def route(self, method, path, req):
        parts = path.strip("/").split("/")[1:]
        if parts == ["actions"] and method == "POST":
            return Answer.json(200, self.add_action(req))
        if parts == ["actions"] and method == "GET":
            with self.ca.lock:
                return Answer.json(200, {"actions": json.loads(json.dumps(self.ca.items))})
        if len(parts) == 2 and parts[0] == "actions" and method == "DELETE":
            return Answer.json(200, self.withdraw(parts[1]))
        if parts == ["register"] and method == "POST":
            cert = x509.load_pem_x509_certificate(req["certificate"].encode())
            with self.ca.lock:
                self.ca.register(cert)
                self.ca.save()
            return Answer.json(200, {"serial": pkimod.serial_hex(cert)})
        if parts == ["enroll"] and method == "POST":
            return Answer.json(200, self.enroll(req))
        if parts == ["faults"] and method == "POST":
            return Answer.json(200, self.add_faults(req))
        if parts == ["faults"] and method == "GET":
            with self.ca.lock:
                return Answer.json(200, {"faults": list(self.ca.faults)})
        if parts == ["log"] and method == "GET":
            with self.ca.lock:
                return Answer.json(200, {"requests": json.loads(json.dumps(self.ca.log))})
        if parts == ["ca"] and method == "GET":
            pki = self.ca.pki
            return Answer.json(200, {"issuers_pem": os.path.abspath(pki.issuers_pem),
                                     "root": pkimod.pem(pki.root),
                                     "issuing": pkimod.pem(pki.issuing),
                                     "impostor": pkimod.pem(pki.impostor),
                                     "issuer": pki.issuer_pairs})
        if parts == ["reset"] and method == "POST":
            with self.ca.lock:
                self.ca.wakeup.set()
                self.ca.items = []
                self.ca.faults = []
                self.ca.log = []
                self.ca.nonces = {}
                self.ca.save()
                self.ca.wakeup = threading.Event()
            return Answer.json(200, {"reset": True})
        raise Problem("notFound", f"no admin resource {method} {path}")

    def add_action(self, req):
        """{certificate (PEM, registers it) | replaces_serial, type="renew",
        subject (default: the replaced certificate's), not_before (default
        now), not_after (default now + 365 d), key (default RSA 2048,
        generate), message, id, extra: {members added to the entry as they
        are}} -> the entry. {raw: {...}, show_with: serial} queues an entry
        exactly as given (for contract-breaking entries), listed whenever
        the client sends `show_with` (or always)."""
        if "raw" in req:
            item = {"kind": "raw", "entry": req["raw"], "show_with": req.get("show_with")}
            with self.ca.lock:
                self.ca.items.append(item)
                self.ca.save()
            return item["entry"]
        with self.ca.lock:
            if req.get("certificate"):
                cert = x509.load_pem_x509_certificate(req["certificate"].encode())
                self.ca.register(cert)
                serial = pkimod.serial_hex(cert)
            else:
                serial = str(req["replaces_serial"]).lower()
                cert = self.ca.certs.get(serial)
                if cert is None:
                    raise Problem("notFound", f"this CA issued no certificate {serial}")
            kind = req.get("type", "renew")
            action_id = req.get("id") or f"{'c' if kind == 'change' else 'r'}-" \
                                          f"{secrets.token_hex(4)}"
            if self.ca.action(action_id) is not None:
                raise Problem("malformed", f"action {action_id} exists")
            now = pkimod.utcnow()
            entry = {
                "id": action_id,
                "type": kind,
                "replaces": serial,
                "subject": req.get("subject") or pkimod.name_pairs(cert.subject),
                "not_before": req.get("not_before") or pkimod.rfc3339(now),
                "not_after": req.get("not_after") or pkimod.rfc3339(
                    now + datetime.timedelta(days=365)),
                "key": req.get("key") or {"generate": True, "type": "rsa", "bits": 2048},
            }
            pkimod.make_name(entry["subject"])
            pkimod.parse_time(entry["not_before"])
            pkimod.parse_time(entry["not_after"])
            if req.get("message") is not None:
                entry["message"] = req["message"]
            entry.update(req.get("extra") or {})
            self.ca.items.append({"kind": "action", "entry": entry, "state": "queued",
                                  "issued": None, "keep_previous": None})
            self.ca.save()
        return entry

    def withdraw(self, action_id):
        with self.ca.lock:
            item = self.ca.action(action_id)
            if item is None:
                raise Problem("notFound", f"no action {action_id}")
            item["state"] = "withdrawn"
            self.ca.save()
            return item

    def enroll(self, req):
        """{public_key: PEM, subject: pairs, not_before, not_after, serial
        (hex, optional)} -> {certificate, serial, chain}."""
        public_key = serialization.load_pem_public_key(req["public_key"].encode())
        now = pkimod.utcnow()
        subject = req.get("subject") or [
            ["C", "VN"], ["ST", "Hà Nội"], ["L", "Quận Cầu Giấy"],
            ["O", "CÔNG TY TNHH AN PHÁT"], ["CN", "CÔNG TY TNHH AN PHÁT"],
            ["UID", "MST:0101234567"]]
        not_before = pkimod.parse_time(req["not_before"]) if req.get("not_before") else \
            now - datetime.timedelta(days=345)
        not_after = pkimod.parse_time(req["not_after"]) if req.get("not_after") else \
            now + datetime.timedelta(days=20)
        serial = int(req["serial"], 16) if req.get("serial") else None
        cert = self.ca.pki.issue(subject, public_key, not_before, not_after, serial=serial)
        with self.ca.lock:
            self.ca.certs[pkimod.serial_hex(cert)] = cert
            self.ca.save()
        return {"certificate": pkimod.pem(cert), "serial": pkimod.serial_hex(cert),
                "chain": [pkimod.pem(self.ca.pki.issuing)]}

    def add_faults(self, req):
        """{path, kind, count=1, seconds, action, ...} or {faults: [...]}."""
        faults = req.get("faults") if isinstance(req.get("faults"), list) else [req]
        for fault in faults:
            if fault.get("path") not in FAULT_PATHS:
                raise Problem("malformed", f"fault path must be one of {sorted(FAULT_PATHS)}")
            if fault.get("kind") not in FAULT_KINDS:
                raise Problem("malformed", f"fault kind must be one of {sorted(FAULT_KINDS)}")
            if fault["kind"] in CERT_FAULTS and fault["path"] != "issue":
                raise Problem("malformed", f"{fault['kind']} applies to issue only")
        with self.ca.lock:
            for fault in faults:
                f = dict(fault)
                f["count"] = int(f.get("count", 1))
                self.ca.faults.append(f)
            return {"faults": list(self.ca.faults)}


def _is_loopback_host(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(ca, host, port, tls=None, quiet=False):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(http.server.ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 64

    handler = type("BoundHandler", (Handler,), {
        "ca": ca, "scheme": "https" if tls else "http", "quiet": quiet})
    server = Server((host, port), handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    return server


def base_url(server, host, tls):
    port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}{BASE_PATH}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", required=True, help="the CA's folder (keys, state)")
    parser.add_argument("--port", type=int, required=True, help="TCP port; 0 picks one")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"),
                        help="serve HTTPS with this certificate (PEM) and key")
    parser.add_argument("--init", action="store_true", help="make a CA in --state if absent")
    parser.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    args = parser.parse_args(argv)
    if not _is_loopback_host(args.host):
        parser.error(f"--host {args.host}: the reference CA serves loopback only")
    try:
        ca = CA(args.state, args.init)
    except (FileNotFoundError, ValueError) as e:
        print(f"refca: {e}", file=sys.stderr)
        return 2
    host = "127.0.0.1" if args.host == "localhost" else args.host
    server = make_server(ca, host, args.port, args.tls, args.quiet)

    def stop(signum, frame):
        ca.wakeup.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(base_url(server, host, args.tls), flush=True)
    server.serve_forever(poll_interval=0.5)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
