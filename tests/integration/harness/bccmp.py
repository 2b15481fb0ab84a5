# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Bouncy Castle CMP responder (tests/cmp-bc/CmpResponder.java) in a
test: compiled with javac once per source version into a cache folder,
started on a free loopback port with the session PKI's issuing CA as its CA
and a server certificate of its own, stopped with SIGTERM. What it received
is in its record folder: each request's DER, the DER of its answer, and one
JSON line per request in log.jsonl."""

import ctypes
import datetime
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from .cmpmsg import cert_responses
from .safecad import BUILD_DIR, REPO

SOURCE = os.path.join(REPO, "tests", "cmp-bc", "CmpResponder.java")
JARS = [os.path.join("/usr/share/java", name) for name in ("bcprov.jar", "bcpkix.jar", "bcutil.jar")]
# A small heap and the quick JIT: it answers a few requests per test on a
# machine whose cores other tests share.
JAVA_OPTIONS = ["-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx128m"]
SERVER_SUBJECT = [("C", "VN"), ("O", "CÔNG TY CỔ PHẦN SAFE-CA"), ("CN", "SAFE-CA CMP RA")]


class Unavailable(Exception):
    """java, javac or the Bouncy Castle jars are not installed."""


def classpath():
    jars = [jar for jar in JARS if os.path.exists(jar)]
    if not any(jar.endswith("bcpkix.jar") for jar in jars):
        raise Unavailable("Bouncy Castle's bcpkix.jar is not installed (libbcpkix-java)")
    return jars


def compiled():
    """The folder holding CmpResponder's classes, compiled on first use and
    kept per source hash (in the build folder when there is one)."""
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed (default-jdk-headless)")
    jars = classpath()
    with open(SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    if os.path.isdir(BUILD_DIR):
        cache = os.path.join(BUILD_DIR, "cmp-bc", digest)
    else:
        cache = os.path.join(tempfile.gettempdir(), "safecad-cmp-bc", digest)
    if os.path.exists(os.path.join(cache, "CmpResponder.class")):
        return cache
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=digest + ".", dir=os.path.dirname(cache))
    try:
        r = subprocess.run(["javac", "-Xlint:all,-path", "-cp", ":".join(jars),
                            "-d", staging, SOURCE],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"javac CmpResponder.java failed:\n{r.stdout}{r.stderr}")
        try:
            os.rename(staging, cache)
        except OSError:
            pass  # compiled at the same time by another test process
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


def _die_with_parent():
    """In the child: SIGTERM when the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _server_certificate(pki, key):
    """The responder's own signing certificate, issued by SAFE-CA's issuing
    CA: digitalSignature, with a key identifier for the senderKID."""
    issuer = pki.safe_issuing
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in (
        (NameOID.COUNTRY_NAME, SERVER_SUBJECT[0][1]),
        (NameOID.ORGANIZATION_NAME, SERVER_SUBJECT[1][1]),
        (NameOID.COMMON_NAME, SERVER_SUBJECT[2][1]))])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )


class BcResponder:
    """A CMP responder on Bouncy Castle whose CA is `pki`'s SAFE-CA issuing
    CA. Options (all off by default):

    days            validity of the certificates it issues (365)
    grant_implicit  grant implicitConfirm when a request asks for it
    reject          failInfo names (or bit numbers): answer every ir/cr/kur
                    with status rejection and these failInfo bits
    status_string   the statusString of that rejection
    poll            answer `waiting`, and the certificate on the poll-th pollReq
    check_after     the checkAfter seconds of each pollRep (1)
    wrong_nonce     every answer's recipNonce is random, not the request's
                    senderNonce
    unprotected     answers carry no protection
    server_key      "rsa" or "ec": the key type of its signing certificate
    """

    def __init__(self, directory, pki, days=365, grant_implicit=False, reject=None,
                 status_string=None, poll=0, check_after=1, wrong_nonce=False,
                 unprotected=False, server_key="rsa"):
        self.directory = directory
        self.pki = pki
        self.record_dir = os.path.join(directory, "record")
        self.log_path = os.path.join(self.record_dir, "log.jsonl")
        self.output_path = os.path.join(directory, "responder.out")
        self.port_file = os.path.join(directory, "port")
        os.makedirs(directory, exist_ok=True)

        self.ca_cert_path = self._write("ca.pem", pki.safe_issuing.pem)
        self.ca_key_path = self._write("ca.key", _pem_key(pki.safe_issuing.key))
        self.root_cert_path = self._write("root.pem", pki.safe_root.pem)
        self.chain_path = self._write("chain.pem", pki.safe_issuing.pem + pki.safe_root.pem)
        # What a client trusts: the same issuing CA and root.
        self.issuers_path = self.chain_path
        self.server_key = pki.key(server_key)
        self.server_cert = _server_certificate(pki, self.server_key)
        self.server_cert_path = self._write(
            "server.pem", self.server_cert.public_bytes(serialization.Encoding.PEM))
        self.server_key_path = self._write("server.key", _pem_key(self.server_key))

        self.argv_options = ["--days", str(days), "--check-after", str(check_after)]
        if grant_implicit:
            self.argv_options.append("--grant-implicit")
        if reject:
            names = [reject] if isinstance(reject, (str, int)) else list(reject)
            self.argv_options += ["--reject", ",".join(str(n) for n in names)]
        if status_string is not None:
            self.argv_options += ["--status-string", status_string]
        if poll:
            self.argv_options += ["--poll", str(poll)]
        if wrong_nonce:
            self.argv_options.append("--wrong-nonce")
        if unprotected:
            self.argv_options.append("--unprotected")
        self.proc = None
        self.port = None
        self.url = None

    def _write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def start(self, timeout=60):
        """Compiles if needed, starts, and returns once it listens."""
        classes = compiled()
        argv = ["java", *JAVA_OPTIONS, "-cp", ":".join([classes, *classpath()]), "CmpResponder",
                "--ca-cert", self.ca_cert_path, "--ca-key", self.ca_key_path,
                "--server-cert", self.server_cert_path, "--server-key", self.server_key_path,
                "--chain", self.chain_path, "--port-file", self.port_file,
                "--record", self.record_dir, *self.argv_options]
        self._output = open(self.output_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._output,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                self._output.close()
                raise AssertionError(f"the CMP responder exited {self.proc.returncode}:\n"
                                     f"{self.output()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"the CMP responder did not listen within {timeout}s:\n"
                                     f"{self.output()}")
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.url = f"http://127.0.0.1:{self.port}/pkix/"
        return self

    def stop(self):
        """SIGTERM; returns its exit status, 0 when SIGTERM ended it cleanly
        (the JVM's own status for that is 143)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("the CMP responder did not stop within 10 s of SIGTERM")
        self._output.close()
        return 0 if self.proc.returncode in (143, -signal.SIGTERM) else self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        if self.proc is not None:
            self._output.close()

    def output(self):
        """What the JVM wrote (nothing, unless something went wrong)."""
        try:
            with open(self.output_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log(self):
        """One dict per request received, in order."""
        try:
            with open(self.log_path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def post(self, der, content_type="application/pkixcmp", method="POST"):
        """Sends raw bytes as a client would; returns (HTTP status, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, "/pkix/", body=der, headers={"Content-Type": content_type})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def request_der(self, entry):
        """The DER of the request a log entry describes."""
        with open(os.path.join(self.record_dir, entry["file"]), "rb") as f:
            return f.read()

    def answer_der(self, entry):
        """The DER of the answer to the request a log entry describes."""
        stem, _ = os.path.splitext(entry["file"])
        with open(os.path.join(self.record_dir, stem + "-answer.der"), "rb") as f:
            return f.read()

    def issued(self):
        """The certificates its answers delivered, in order (cryptography x509)."""
        out = []
        for entry in self.log():
            if entry["answer"] in ("ip", "cp", "kup"):
                out += [cert for _, _, cert in cert_responses(self.answer_der(entry)) if cert]
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        rc = self.stop()
        if exc[0] is None:
            assert rc == 0, f"the CMP responder exited {rc}:\n{self.output()}"
