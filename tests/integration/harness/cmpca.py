# SPDX-License-Identifier: LGPL-2.1-or-later
"""The CMP test CA (tests/cmp-ca/cmp-test-ca.c) in a test.

    with CmpCA(directory, pki, poll_count=2, check_after=1) as ca:
        ... a client talks to ca.url, trusting ca.server_cert_path ...
        assert ca.types() == ["kur", "pollReq", "pollReq", "certConf"]

The CA issues from the session PKI's SAFE-CA issuing CA and signs its
answers with a server certificate that CA issued. Options are the
program's flags with '_' for '-': True adds a flag, None or False leaves it
out, anything else is its value; `reject` also takes PKIFailureInfo names
(["badPOP", "badCertTemplate"]); `faults` takes fault flag names
(["wrong-key", "no-recip-nonce"]).
"""

import json
import os
import select
import signal
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .pki import new_key
from .safecad import BUILD_DIR, assert_sanitizer_clean, sanitizer_env

CMP_TEST_CA = os.path.join(BUILD_DIR, "tests", "cmp-ca", "cmp-test-ca")

# PKIFailureInfo bit numbers (RFC 4210 section 5.2.3).
FAILURE_BITS = {
    name: bit for bit, name in enumerate([
        "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId",
        "badDataFormat", "wrongAuthority", "incorrectData", "missingTimeStamp",
        "badPOP", "certRevoked", "certConfirmed", "wrongIntegrity",
        "badRecipientNonce", "timeNotAvailable", "unacceptedPolicy",
        "unacceptedExtension", "addInfoNotAvailable", "badSenderNonce",
        "badCertTemplate", "signerNotTrusted", "transactionIdInUse",
        "unsupportedVersion", "notAuthorized", "systemUnavail", "systemFailure",
        "duplicateCertReq",
    ])
}

FAULTS = ("hang", "close", "unprotected", "wrong-key", "wrong-recip-nonce",
          "no-recip-nonce", "wrong-transaction-id", "no-transaction-id",
          "wrong-cert-req-id")

SERVER_SUBJECT = [("C", "VN"), ("O", "CÔNG TY CỔ PHẦN SAFE-CA"), ("CN", "SAFE-CA CMP")]


def failure_bits(names):
    """PKIFailureInfo names (or an int) as the bit mask --reject takes."""
    if isinstance(names, int):
        return names
    if isinstance(names, str):
        names = [names]
    mask = 0
    for name in names:
        mask |= 1 << FAILURE_BITS[name]
    return mask


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Message:
    """One recorded CMP message: its number (the exchange), direction
    ("request" or "response"), body type ("kur", "kup", ...), DER file and
    the exchange's log entry."""

    def __init__(self, number, direction, type, path, exchange):
        self.number = number
        self.direction = direction
        self.type = type
        self.path = path
        self.exchange = exchange

    @property
    def der(self):
        with open(self.path, "rb") as f:
            return f.read()

    def __repr__(self):
        return f"<Message #{self.number} {self.direction} {self.type}>"


class CmpCA:
    """A running cmp-test-ca on 127.0.0.1 (a port of its choice).

    Attributes once started: url (http://127.0.0.1:PORT/pkix/), port,
    ca_cert_path (the issuing CA), issuers_path (issuing CA + root, PEM),
    server_cert_path and server_key_path (what answers are signed with),
    record_dir (DER files and log.jsonl), log_path (its stderr).
    """

    def __init__(self, directory, pki, faults=(), **options):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.pki = pki
        self.ca_cert_path = self._write("ca.pem", pki.safe_issuing.pem)
        self.ca_key_path = self._write("ca.key", _pem_key(pki.safe_issuing.key))
        self.issuers_path = self._write("issuers.pem", pki.safe_issuing.pem + pki.safe_root.pem)
        server = pki.issue(days_left=365, subject=SERVER_SUBJECT,
                           key=new_key(options.pop("server_key_kind", "rsa")))
        self.server_cert = server.cert
        self.server_cert_path = self._write("server.pem", server.pem)
        self.server_key_path = self._write("server.key", server.key_pkcs8_pem)
        self.record_dir = os.path.join(directory, "record")
        self.log_path = os.path.join(directory, "cmp-test-ca.log")
        self.options = dict(options)
        self.faults = list(faults)
        self.proc = None
        self.port = None
        self.url = None

    def _write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def argv(self):
        argv = [CMP_TEST_CA, "--ca-cert", self.ca_cert_path, "--ca-key", self.ca_key_path,
                "--server-cert", self.server_cert_path, "--server-key", self.server_key_path,
                "--chain", self.issuers_path, "--trusted", self.issuers_path,
                "--record", self.record_dir]
        for name, value in self.options.items():
            if value is None or value is False:
                continue
            flag = "--" + name.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif name == "reject":
                argv += [flag, str(failure_bits(value))]
            else:
                argv += [flag, str(value)]
        for fault in self.faults:
            assert fault in FAULTS, f"unknown fault {fault!r}"
            argv.append("--" + fault)
        return argv

    def start(self, timeout=15):
        """Starts the CA and waits for its port; returns self."""
        env = dict(os.environ, **sanitizer_env())
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._log, env=env,
                                     start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            self.kill()
            raise AssertionError(f"cmp-test-ca printed no port within {timeout}s: "
                                 f"{line!r}\n{self.log()}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}/pkix/"
        return self

    def log(self):
        """What the CA wrote on stderr."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM; asserts that the CA exits 0 with a sanitizer-clean log."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
                raise AssertionError("cmp-test-ca did not stop within 10 s of SIGTERM")
        proc.stdout.close()
        self._log.close()
        text = self.log()
        assert_sanitizer_clean(text, "cmp-test-ca")
        assert proc.returncode == 0, f"cmp-test-ca exited {proc.returncode}:\n{text}"

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.stop()
        else:
            self.kill()
        return False

    # --- what the client sent ---------------------------------------------
    def exchanges(self):
        """The log: one dict per HTTP exchange, in order (see cmp-test-ca.c's
        exchange_write: request, response, faults, issued_serial, cert_conf,
        implicit_confirm_granted, ...)."""
        try:
            with open(os.path.join(self.record_dir, "log.jsonl")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def types(self):
        """The body types of the requests received, in order."""
        return [e["request"] for e in self.exchanges()]

    def messages(self):
        """Every recorded request and answer, in order, as Message."""
        out = []
        for e in self.exchanges():
            for direction in ("request", "response"):
                if e.get(f"{direction}_file"):
                    out.append(Message(e["n"], direction, e[direction],
                                       os.path.join(self.record_dir, e[f"{direction}_file"]), e))
        return out

    def cert_confs(self):
        """The cert_conf entries of the certConf requests, in order."""
        return [e["cert_conf"] for e in self.exchanges() if e.get("cert_conf")]

    def issued(self):
        """The certificates issued, in order (cryptography x509)."""
        out = []
        for e in self.exchanges():
            if e.get("issued_file"):
                with open(os.path.join(self.record_dir, e["issued_file"]), "rb") as f:
                    out.append(x509.load_der_x509_certificate(f.read()))
        return out
