# SPDX-License-Identifier: LGPL-2.1-or-later
"""`openssl cmp` in tests: its mock server (MockServer), its client
(openssl_cmp) and FACTS.md's recipe for a mock answer that carries a new
key (recertify).

OpenSSL 3.0's mock server answers with -rsp_cert verbatim; for a kur the
request's oldCertID must name -rsp_cert's issuer and serial. It needs a
fixed port (it listens on all interfaces): MockServer picks a free one.
"""

import datetime
import os
import signal
import socket
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

OPENSSL = "openssl"


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl_cmp(*args, timeout=30):
    """Runs `openssl cmp ARGS`; returns the CompletedProcess (text)."""
    return subprocess.run([OPENSSL, "cmp", *map(str, args)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def public_key_pem(key_path, out_path):
    """Writes the public half of a PEM private key; returns out_path."""
    subprocess.run([OPENSSL, "pkey", "-in", key_path, "-pubout", "-out", out_path],
                   capture_output=True, check=True)
    return out_path


def recertify(old_cert, new_public_key, ca_cert, ca_key, out_path, days=365):
    """A mock -rsp_cert for a new key, after FACTS.md's recipe (`openssl
    x509 -force_pubkey new.pub -set_serial <old serial>`): the old
    certificate's subject, serial and extensions, `new_public_key` (PEM
    file), signed by the CA (PEM files). Returns out_path.

    Made with python3-cryptography: OpenSSL 3.0's `openssl x509 -CA`
    refuses an input certificate that is not self-signed ("Error with
    certificate to be certified - should be self-signed")."""
    def load(path):
        with open(path, "rb") as f:
            return f.read()
    old = x509.load_pem_x509_certificate(load(old_cert))
    ca = x509.load_pem_x509_certificate(load(ca_cert))
    signer = serialization.load_pem_private_key(load(ca_key), password=None)
    public_key = serialization.load_pem_public_key(load(new_public_key))
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(old.subject)
               .issuer_name(ca.subject)
               .public_key(public_key)
               .serial_number(old.serial_number)
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(days=days)))
    for extension in old.extensions:
        if not isinstance(extension.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(extension.value, extension.critical)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                                    critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    with open(out_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return out_path


class MockServer:
    """`openssl cmp -port N` on a free port, as a context manager.

    srv_cert/srv_key protect its answers; srv_trusted (PEM) verifies
    signature-protected requests. The other keywords are the mock's own
    options without the dash: rsp_cert, rsp_extracerts, rsp_capubs,
    pkistatus, failure, failurebits, statusstring, send_error,
    send_unprotected, poll_count, check_after, grant_implicitconf,
    accept_unprotected, ... (True adds a flag, None/False leaves it out).
    Attributes once started: port, url (http://127.0.0.1:PORT/pkix/).
    """

    def __init__(self, directory, srv_cert, srv_key, srv_trusted=None, **options):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.log_path = os.path.join(directory, "mock-server.log")
        self.argv = [OPENSSL, "cmp", "-port", None, "-srv_cert", srv_cert, "-srv_key", srv_key]
        if srv_trusted:
            self.argv += ["-srv_trusted", srv_trusted]
        for name, value in options.items():
            if value is None or value is False:
                continue
            self.argv.append("-" + name)
            if value is not True:
                self.argv.append(str(value))
        self.proc = None
        self.port = None
        self.url = None

    def start(self, timeout=10):
        """Starts the mock and waits until it accepts connections."""
        self.port = free_port()
        self.argv[3] = str(self.port)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"openssl cmp -port exited {self.proc.returncode}:\n"
                                     f"{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"openssl cmp -port did not listen within "
                                         f"{timeout}s:\n{self.log()}")
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}/pkix/"
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        self._log.close()

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()
        return False
