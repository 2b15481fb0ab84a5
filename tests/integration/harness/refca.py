# SPDX-License-Identifier: LGPL-2.1-or-later
"""The reference CA (tools/reference-ca) in a test: started on a free
loopback port with the session's test PKI as its CA, its admin API, the
daemon's configuration pointing at it, `safectl activate` with a PIN on a
file descriptor, and independent checks of what is on the token
(pkcs11-tool, openssl)."""

import base64
import ctypes
import datetime
import hashlib
import ipaddress
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .safecad import REPO, SAFECTL, assert_sanitizer_clean
from .softhsm import MODULE as SOFTHSM_MODULE

REFCA_DIR = os.path.join(REPO, "tools", "reference-ca")
REFCA = os.path.join(REFCA_DIR, "refca.py")
PYTHON = "/usr/bin/python3"

if REFCA_DIR not in sys.path:
    sys.path.insert(0, REFCA_DIR)

import refca_client  # noqa: E402
import refca_pki  # noqa: E402

SUPPORT = "1900 6154"
PROFILE = """\
# SAFE-CA, served by the reference CA of this test
[ca]
name = SAFE-CA
protocol = v1
url = {url}
issuers = {issuers}
support = 1900 6154 (T2–T6 8:00–17:00, T7 8:00–12:00)
[agency.tax]
name = Thuế điện tử (Tổng cục Thuế)
url = https://thuedientu.gdt.gov.vn
[agency.customs]
name = Hải quan điện tử (Tổng cục Hải quan)
url = https://pus.customs.gov.vn
[agency.procurement]
name = Hệ thống mạng đấu thầu quốc gia
url = https://muasamcong.mpi.gov.vn
"""
AGENCIES = ["tax", "customs", "procurement"]


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _die_with_parent():
    """In the child: SIGTERM when the test process dies (a killed pytest
    leaves no CA behind)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RefCA:
    """A running reference CA; the admin API's methods are on `.admin`,
    the most used ones here too."""

    def __init__(self, directory, pki=None, tls=None, port=0, extra_args=()):
        self.directory = directory
        self.state = os.path.join(directory, "state")
        os.makedirs(self.state, exist_ok=True)
        if pki is not None:
            for name, ca in (("root", pki.safe_root), ("issuing", pki.safe_issuing)):
                with open(os.path.join(self.state, name + ".pem"), "wb") as f:
                    f.write(ca.pem)
                with open(os.path.join(self.state, name + ".key"), "wb") as f:
                    f.write(_key_pem(ca.key))
        self.tls = tls
        self.port = port
        self.extra_args = list(extra_args)
        self.log_path = os.path.join(directory, "refca.log")
        self.proc = None
        self.url = None

    def start(self, timeout=15):
        argv = [PYTHON, REFCA, "--state", self.state, "--port", str(self.port), "--init"]
        if self.tls:
            argv += ["--tls", self.tls[0], self.tls[1]]
        argv += self.extra_args
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith(("http://", "https://")):
            self.kill()
            raise AssertionError(f"refca printed no URL within {timeout}s: {line!r}\n"
                                 f"{self.log()}")
        self.url = line
        self.port = int(re.search(r":(\d+)/", line).group(1))
        self.admin = refca_client.Admin(line, cafile=self.tls[2] if self.tls and
                                        len(self.tls) > 2 else None)
        self.issuers_pem = os.path.join(self.state, "issuers.pem")
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM; the server must exit 0."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("refca did not stop within 10 s of SIGTERM")
        self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    # --- the admin API ---------------------------------------------------
    def add_action(self, certificate=None, **fields):
        if hasattr(certificate, "cert"):  # a harness.pki.Issued
            certificate = certificate.cert
        return self.admin.add_action(certificate, **fields)

    def add_raw(self, entry, show_with=None):
        return self.admin.add_raw(entry, show_with)

    def fault(self, path, kind, count=1, seconds=None, **extra):
        return self.admin.fault(path, kind, count, seconds, **extra)

    def requests(self, endpoint=None, status=None):
        """The protocol requests received, optionally of one endpoint
        (pending, nonce, issue, confirm) and with one answer status."""
        out = []
        for r in self.admin.log():
            if endpoint is not None and r.get("endpoint") != endpoint:
                continue
            if status is not None and r.get("status") != status:
                continue
            out.append(r)
        return out

    def counts(self):
        counts = {}
        for r in self.admin.log():
            key = r.get("endpoint") or r["path"]
            counts[key] = counts.get(key, 0) + 1
        return counts


@pytest.fixture
def refca(world, pki):
    """A reference CA whose issuing CA is the session PKI's SAFE-CA, and a
    daemon configuration (profile, short network limits) pointing at it.
    The daemon is not started."""
    ca = RefCA(os.path.join(world.dir, "refca"), pki).start()
    try:
        configure(world, ca)
        yield ca
    finally:
        rc = ca.stop()
        print(f"----- refca log -----\n{ca.log()}")
    assert rc == 0, f"refca exited {rc}"


def configure(world, ca, connect_timeout=2, timeout=5, url=None, trust=None):
    """safecad.conf with short network limits, and the SAFE-CA profile
    pointing at the reference CA."""
    world.write_config(
        "# safecad.conf for an activation test\n"
        "[pkcs11]\n"
        f"modules = {SOFTHSM_MODULE}\n"
        "[expiry]\n"
        "warn_days = 30,14,7,3,1\n"
        "[network]\n"
        f"connect_timeout = {connect_timeout}\n"
        f"timeout = {timeout}\n")
    text = PROFILE.format(url=url or ca.url, issuers=ca.issuers_pem)
    if trust:
        text = text.replace("support = ", f"trust = {trust}\nsupport = ", 1)
    world.write_profile("safe-ca.conf", "SAFE-CA", None, text=text)


# --- safectl with a PIN on a descriptor ----------------------------------

def _pin_fd(pin):
    r, w = os.pipe()
    os.write(w, (pin + "\n").encode())
    os.close(w)
    return r


def activate_argv(token=None, action=None, pin_fd=None, extra=()):
    argv = [SAFECTL, "activate"]
    if token is not None:
        argv.append(token)
        if action is not None:
            argv.append(action)
    argv += ["--yes", "--pin-fd", str(pin_fd)]
    argv += list(extra)
    return argv


class Run:
    def __init__(self, argv, rc, out, err, seconds):
        self.argv = argv
        self.rc = rc
        self.out = out
        self.err = err
        self.seconds = seconds

    @property
    def text(self):
        return self.out + self.err

    def __repr__(self):
        return (f"`{' '.join(self.argv[1:])}` exited {self.rc} after {self.seconds:.1f}s\n"
                f"stdout: {self.out}\nstderr: {self.err}")


def start_activate(world, token=None, action=None, pin=None, extra=()):
    """Starts `safectl activate … --yes --pin-fd N`; returns (Popen, argv, t0)."""
    fd = _pin_fd(PIN if pin is None else pin)
    argv = activate_argv(token, action, fd, extra)
    try:
        proc = subprocess.Popen(argv, env=world.client_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(fd,), start_new_session=True)
    finally:
        os.close(fd)
    return proc, argv, time.monotonic()


def finish_activate(started, timeout=90):
    proc, argv, t0 = started
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"`{' '.join(argv[1:])}` did not end within {timeout}s: "
                             f"{out.decode(errors='replace')}{err.decode(errors='replace')}")
    run = Run(argv, proc.returncode, out.decode(errors="replace"),
              err.decode(errors="replace"), time.monotonic() - t0)
    assert_sanitizer_clean(run.err, "safectl activate")
    return run


def activate(world, token=None, action=None, pin=None, extra=(), timeout=90):
    return finish_activate(start_activate(world, token, action, pin, extra), timeout)


def safectl_json(world, *args):
    rc, out, err = world.safectl(*args, json_out=True)
    assert rc == 0, f"safectl --json {' '.join(args)} exited {rc}: {out}{err}"
    try:
        return json.loads(out)
    except ValueError as e:
        raise AssertionError(f"safectl --json {' '.join(args)} printed no JSON ({e}): {out!r}")


def check_rc(world, token=None, timeout=15):
    """`safectl check`: (rc, out, err). Exit 8 (busy) is retried: the
    daemon's own look-up at start may hold the token for a moment."""
    args = ["check"] + ([token] if token else [])
    deadline = time.monotonic() + timeout
    while True:
        rc, out, err = world.safectl(*args)
        if rc != 8 or time.monotonic() > deadline:
            return rc, out, err
        time.sleep(0.2)


def check(world, token=None):
    """`safectl check`, which must exit 0."""
    rc, out, err = check_rc(world, token)
    assert rc == 0, f"safectl check exited {rc}: {out}{err}"
    return out + err


# --- what is on the token, seen by pkcs11-tool -----------------------------

def parse_objects(listing):
    """pkcs11-tool --list-objects output as [{kind, header, label, id, …}]."""
    objects = []
    current = None
    for line in listing.splitlines():
        if not line.strip():
            continue
        if not line.startswith((" ", "\t")):
            kind = line.split(" Object")[0].strip().lower()
            current = {"kind": {"certificate": "cert", "private key": "privkey",
                                "public key": "pubkey"}.get(kind, kind), "header": line}
            objects.append(current)
            continue
        if current is None:
            continue
        m = re.match(r"\s+([A-Za-z ]+):\s*(.*)$", line)
        if m:
            current[m.group(1).strip().lower()] = m.group(2).strip()
    for o in objects:
        o["id"] = o.get("id", "").lower()
        o["access_flags"] = [a.strip() for a in o.get("access", "").split(",") if a.strip()]
    return objects


def p11(token, *args, login=True, check=True):
    argv = ["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", token.label]
    if login:
        argv += ["--login", "--pin", token.pin]
    argv += list(args)
    r = subprocess.run(argv, env=token.factory.env, capture_output=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv!r} failed ({r.returncode}): "
                             f"{r.stdout.decode(errors='replace')}"
                             f"{r.stderr.decode(errors='replace')}")
    return r


def objects(token, login=True):
    r = p11(token, "--list-objects", login=login)
    return parse_objects(r.stdout.decode(errors="replace"))


def read_cert(token, obj):
    path = token.factory._tmpfile(f"read-{obj['id']}.der", b"")
    args = ["--read-object", "--type", "cert", "--id", obj["id"], "-o", path]
    if obj.get("label"):
        args += ["--label", obj["label"]]
    p11(token, *args, login=False)
    with open(path, "rb") as f:
        return x509.load_der_x509_certificate(f.read())


def certificates(token):
    """[(object, x509.Certificate)] for every certificate on the token."""
    return [(o, read_cert(token, o)) for o in objects(token, login=False) if o["kind"] == "cert"]


def snapshot(token):
    """Everything pkcs11-tool shows (logged in), and the DER of every
    certificate: equal snapshots mean an unchanged token."""
    listing = p11(token, "--list-objects").stdout.decode(errors="replace")
    ders = sorted((o["id"], o.get("label"), c.public_bytes(serialization.Encoding.DER))
                  for o, c in certificates(token))
    return {"listing": listing, "certificates": ders}


def assert_unchanged(token, before):
    after = snapshot(token)
    assert after["certificates"] == before["certificates"], \
        "the token's certificates changed"
    assert after["listing"] == before["listing"], (
        f"the token's objects changed:\n--- before\n{before['listing']}\n--- after\n"
        f"{after['listing']}")


def sign_and_verify(token, key_id, cert):
    """Signs with the private key `key_id` on the token and verifies with
    the certificate's public key: a working certificate and key. (SoftHSM
    has no ECDSA-SHA256: EC keys sign a SHA-256 digest with CKM_ECDSA.)"""
    tbs = os.urandom(64)
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = token.factory._tmpfile("tbs.bin", tbs)
        mechanism = ["-m", "SHA256-RSA-PKCS"]
    else:
        data = token.factory._tmpfile("tbs.sha256", hashlib.sha256(tbs).digest())
        mechanism = ["-m", "ECDSA", "--signature-format", "openssl"]
    sig = data + ".sig"
    p11(token, "--sign", "--id", key_id, *mechanism, "--input-file", data,
        "--output-file", sig)
    with open(sig, "rb") as f:
        signature = f.read()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, tbs, padding.PKCS1v15(), hashes.SHA256())
        else:
            public.verify(signature, tbs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AssertionError(f"the key {key_id} on {token} does not match certificate "
                             f"{cert.serial_number:x}") from None


def working_pairs(token):
    """The (key id, certificate) pairs on the token whose key signs and
    whose certificate verifies that signature."""
    objs = objects(token)
    key_ids = {o["id"] for o in objs if o["kind"] == "privkey"}
    pairs = []
    for o, cert in certificates(token):
        if o["id"] in key_ids:
            try:
                sign_and_verify(token, o["id"], cert)
            except AssertionError:
                continue
            pairs.append((o["id"], cert))
    return pairs


def openssl_verify(pki, cert, directory):
    """`openssl verify -CAfile root -untrusted issuing` on the certificate."""
    root = os.path.join(directory, "verify-root.pem")
    issuing = os.path.join(directory, "verify-issuing.pem")
    leaf = os.path.join(directory, "verify-leaf.pem")
    for path, data in ((root, pki.safe_root.pem), (issuing, pki.safe_issuing.pem),
                       (leaf, cert.public_bytes(serialization.Encoding.PEM))):
        with open(path, "wb") as f:
            f.write(data)
    argv = ["openssl", "verify", "-CAfile", root, "-untrusted", issuing]
    nb = cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    if nb > datetime.datetime.now(datetime.timezone.utc):
        argv += ["-attime", str(int(nb.timestamp()) + 1)]
    r = subprocess.run(argv + [leaf], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and ": OK" in r.stdout, \
        f"openssl verify failed: {r.stdout}{r.stderr}"


def key_sha256(cert_or_key):
    key = cert_or_key.public_key() if hasattr(cert_or_key, "public_key") else cert_or_key
    return refca_pki.key_sha256(key)


def serial_hex(cert):
    return format(cert.serial_number, "x")


def pem_to_cert(text):
    return x509.load_pem_x509_certificate(text.encode() if isinstance(text, str) else text)


def der_b64(cert):
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


# --- a token ready for an activation --------------------------------------

PIN = "Pin-8f3kq2"


def token_with_pair(world, pki, label="An Phat 01", key_kind="rsa", key_id="01",
                    days_left=20.0, subject=None, pin=PIN):
    """A SoftHSM token holding one SAFE-CA certificate and its key (CKA_ID
    `key_id`); returns (token, harness.pki.Issued)."""
    token = world.softhsm.create_token(label, pin=pin)
    kwargs = {"subject": subject} if subject is not None else {}
    issued = pki.issue(days_left=days_left, key_kind=key_kind, **kwargs)
    token.add_pair(issued, key_id)
    return token, issued


def window(days=365, starts=0):
    """An action's not_before/not_after, starting `starts` days from now."""
    now = refca_pki.utcnow()
    start = now + datetime.timedelta(days=starts)
    return {"not_before": refca_pki.rfc3339(start),
            "not_after": refca_pki.rfc3339(start + datetime.timedelta(days=days))}


def stopped_by_crash(daemon, timeout=30):
    """Waits for a daemon that killed itself (SAFECAD_TEST_CRASH_AT) and
    keeps the world's teardown from expecting a clean exit."""
    try:
        rc = daemon.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        daemon.kill()
        raise AssertionError(f"safecad did not stop within {timeout}s:\n{daemon.log()}")
    daemon.checked = True
    daemon.close()
    return rc


def find_cert(token, serial):
    for o, c in certificates(token):
        if serial_hex(c) == serial:
            return o, c
    raise AssertionError(f"certificate {serial} is not on {token}: "
                         f"{[serial_hex(c) for _, c in certificates(token)]}")


def private_keys(token):
    return [o for o in objects(token) if o["kind"] == "privkey"]


def tls_files(directory):
    """A TLS server certificate for 127.0.0.1 from a throwaway "API CA",
    and that CA's certificate; plus an unrelated CA that trusts nothing of
    it. Returns (cert, key, api_ca, unrelated_ca) paths."""
    os.makedirs(directory, exist_ok=True)
    now = refca_pki.utcnow()
    paths = []
    cas = []
    for cn in ("SAFE-CA API Root", "Unrelated Root"):
        key = ec.generate_private_key(ec.SECP256R1())
        name = refca_pki.make_name([["C", "VN"], ["CN", cn]])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        cas.append((key, cert))
    api_key, api_ca = cas[0]
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(refca_pki.make_name([["CN", "127.0.0.1"]]))
              .issuer_name(api_ca.subject).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName(
                  [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                   x509.DNSName("localhost")]), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .sign(api_key, hashes.SHA256()))
    for name, data in (("server.pem", server.public_bytes(serialization.Encoding.PEM)),
                       ("server.key", _key_pem(key)),
                       ("api-ca.pem", api_ca.public_bytes(serialization.Encoding.PEM)),
                       ("unrelated-ca.pem", cas[1][1].public_bytes(serialization.Encoding.PEM))):
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return tuple(paths)


def renewed(world, pki, refca):
    """A token renewed by safectl, safecad running: the history has its
    Step 3 list. Returns (token, the replaced certificate, the history
    entry)."""
    token, old = token_with_pair(world, pki, days_left=20)
    action = refca.add_action(old, type="renew", **window(365))
    world.start_daemon()
    check(world, token.serial)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    return token, old, safectl_json(world, "history")["activations"][0]


def done_agencies(world):
    """The agencies ticked in the latest activation of the history."""
    entry = safectl_json(world, "history")["activations"][0]
    return {a["id"] for a in entry["agencies"] if a["done"]}
