#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Activation benchmark: a full safecad activation against the same protocol
steps done by hand with pkcs11-tool, openssl (pkcs11 engine) and curl, in one
run, against the same reference CA, on the same kind of token.

Each round queues a fresh renewal (new RSA 2048 key on the token) for each
method and times it end to end:

  safecad   `safectl activate TOKEN ACTION --yes --pin-fd N`, wall clock,
            the daemon already running with the token and the CA's action
            queued. Breakdown: key generation = the C_GenerateKeyPair call
            inside the daemon; CA = the round trips of its requests at a
            forwarding proxy in front of the reference CA (see Proxy; the
            CA's own request log is shown beside it); overhead = total -
            key generation - CA. The progress signals (ActivationProgress)
            split the rest into steps.
  by hand   curl POST /pending; pkcs11-tool --keypairgen (new CKA_ID);
            openssl req -new with the pkcs11 engine (subject from the
            action, -utf8, SHA-256); curl GET /nonce; the issue JWS signed
            on the token with the old key (pkcs11-tool --sign -m
            SHA256-RSA-PKCS; an EC key signs the hash the script made, -m
            ECDSA); curl POST issue; openssl x509 (serial of the
            new certificate); pkcs11-tool --write-object; curl GET /nonce;
            the confirm JWS signed with the new key; curl POST confirm.
            Total = the sum of those subprocesses' wall times; key
            generation = the pkcs11-tool --keypairgen call; CA = the curl
            calls. The base64/JSON glue runs inside this script and is not
            counted (a shell script or a Python helper per step would add
            its own start-up cost), nor is any check of the certificate (the
            daemon checks four things before it writes): both make "by
            hand" look faster than it is, so the ratio is a conservative one.

Both methods talk to the token through bench/p11-timing.c, a pass-through
PKCS#11 module in front of SoftHSM that notes how long C_Initialize,
C_Login, C_GenerateKeyPair, C_Sign and C_CreateObject take.

Then the CMP rows (--skip-cmp leaves them out), with a second daemon whose
profile is protocol = cmp, against the CMP test CA (tests/cmp-ca):

  safecad   `safectl activate TOKEN cmp-... --yes --pin-fd N`.
  by hand   pkcs11-tool --keypairgen; openssl cmp -cmd kur with the pkcs11
            engine (-key the old key, -newkey the new one, both pkcs11:
            URIs; the certConf is sent); pkcs11-tool --write-object.

Targets (issue 3): safecad's total <= 0.5 x by hand's; safecad's own
overhead <= 50 ms.

Usage:  bench/activation-bench.py [--rounds 5] [--build-dir DIR] [--keep]
Run by hand (see bench/README.md); it is not part of `meson test`. It exits 0
when it ran, 1 when it could not, and, with --check, 3 when safecad misses a
target. Everything it starts runs in its own process group in a temporary
folder, and is stopped and removed at the end, also on Ctrl-C or SIGTERM.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import benchlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
REFCA_DIR = os.path.join(REPO, "tools", "reference-ca")
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "12345678"
PIN = "246810"
SUBJECT = [["C", "VN"], ["ST", "Hà Nội"], ["L", "Cầu Giấy"],
           ["O", "CÔNG TY TNHH THƯƠNG MẠI VÀ DỊCH VỤ AN PHÁT"],
           ["CN", "CÔNG TY TNHH THƯƠNG MẠI VÀ DỊCH VỤ AN PHÁT"],
           ["UID", "MST:0101234567"]]
KEY_SPEC = {"generate": True, "type": "rsa", "bits": 2048}
# pkcs11-tool --key-type names of the CA's EC curves.
EC_CURVES = {"P-256": "prime256v1", "P-384": "secp384r1", "P-521": "secp521r1"}
JWS_ALG = {"rsa": "RS256", "ec": "ES256"}

SAFECAD_NAME = "org.safecad.Manager1"
SAFECAD_MANAGER = "/org/safecad/Manager1"
TOKEN_IFACE = "org.safecad.Token1"
STEPS = ("accepted", "logged-in", "key-ready", "csr-sent", "issued", "verified", "written",
         "confirmed")
GENERATING = re.compile(r"^Generating a \S+ key on token (\S+) for action (\S+)\.")

TARGET_RATIO = 0.5
TARGET_OVERHEAD_MS = 50.0

sys.path.insert(0, REFCA_DIR)


# bench/status-bench.py's helpers (process groups, the private bus, errors),
# shared rather than copied.
sb = benchlib.load("status-bench")
BenchError, Stop, Processes, log, run, start_bus, tail = (
    sb.BenchError, sb.Stop, sb.Processes, sb.log, sb.run, sb.start_bus, sb.tail)


def ms(ns):
    return ns / 1e6


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


# ---------------------------------------------------------------- helpers

def build_shim(directory):
    """bench/p11-timing.c as a shared object (not built by meson)."""
    out = os.path.join(directory, "p11-timing.so")
    flags = run(["pkg-config", "--cflags", "p11-kit-1"], os.environ,
                "pkg-config p11-kit-1").split()
    run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra"] + flags
        + [os.path.join(REPO, "bench", "p11-timing.c"), "-o", out, "-ldl", "-lpthread"],
        os.environ, "compiling bench/p11-timing.c")
    return out


class P11Log:
    """The records bench/p11-timing.so appends to one file."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def read_new(self):
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                text = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) == 5:
                out.append({"fn": fields[0], "pid": int(fields[1]), "start": int(fields[2]),
                            "end": int(fields[3]), "rv": int(fields[4])})
        return out


def overlap(a0, a1, b0, b1):
    return max(0, min(a1, b1) - max(a0, b0))


class Signals:
    """Every org.safecad.Token1 signal on the bus, with its arrival time
    (CLOCK_MONOTONIC ns), caught by a thread with its own GLib context."""

    def __init__(self, address, interface=TOKEN_IFACE):
        from gi.repository import Gio, GLib
        self.interface = interface
        self.Gio, self.GLib = Gio, GLib
        self.events = []
        self.lock = threading.Lock()
        self.error = None
        self.loop = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(address, ready), daemon=True)
        self.thread.start()
        if not ready.wait(10) or self.error:
            raise BenchError(f"cannot listen on the bus: {self.error}")

    def _run(self, address, ready):
        Gio, GLib = self.Gio, self.GLib
        ctx = GLib.MainContext()
        ctx.push_thread_default()
        try:
            conn = connect(address)
            conn.signal_subscribe(None, self.interface, None, None, None,
                                  Gio.DBusSignalFlags.NONE, self._on_signal, None)
            # A round trip: the match rule is in place before we go on.
            conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetId", None, None,
                           Gio.DBusCallFlags.NONE, 5000, None)
            self.loop = GLib.MainLoop(ctx)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            self.error = e
            ready.set()
            return
        ready.set()
        self.loop.run()
        conn.close_sync(None)

    def _on_signal(self, conn, sender, path, iface, member, params, data):
        now = time.monotonic_ns()
        with self.lock:
            self.events.append((now, member, params.unpack()))

    def between(self, t0, t1):
        with self.lock:
            return [e for e in self.events if t0 <= e[0] <= t1]

    def stop(self):
        if self.loop is not None:
            self.loop.get_context().invoke_full(self.GLib.PRIORITY_DEFAULT, self.loop.quit)
            self.thread.join(5)


def connect(address):
    from gi.repository import Gio
    return Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)


def get_property(conn, path, iface, name):
    from gi.repository import Gio, GLib
    reply = conn.call_sync(SAFECAD_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                           GLib.Variant("(ss)", (iface, name)), GLib.VariantType("(v)"),
                           Gio.DBusCallFlags.NO_AUTO_START, 10000, None)
    return reply.unpack()[0]


class DaemonLog:
    """The daemon's stderr, each line stamped (CLOCK_MONOTONIC ns) as it
    arrives, and copied to a file."""

    def __init__(self, stream, path):
        self.lines = []
        self.lock = threading.Lock()
        self.file = open(path, "w", encoding="utf-8", errors="replace")
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            now = time.monotonic_ns()
            line = raw.decode(errors="replace").rstrip("\n")
            with self.lock:
                self.lines.append((now, line))
            self.file.write(line + "\n")
            self.file.flush()
        self.file.close()

    def between(self, t0, t1):
        with self.lock:
            return [(t, line) for t, line in self.lines if t0 <= t <= t1]


# ---------------------------------------------------------------- the CA

class Proxy:
    """A forwarding HTTP/1.1 proxy in front of the reference CA: both methods
    talk to it, and it notes when it had each whole request and when it had
    the CA's whole answer (CLOCK_MONOTONIC ns): the CA's time as a client
    sees it, without the client's own share.

    Each request goes to the CA on a fresh connection, and each answer goes
    back in one write with TCP_NODELAY. The reference CA (Python's
    http.server) sends an answer's headers and body in two writes without
    TCP_NODELAY: on a connection that is kept alive, the body then waits for
    the client's delayed ACK, about 40 ms each time. A client that reuses
    its connection, as the daemon does, would be charged that stall as its
    own time; a real CA's server does not behave so."""

    def __init__(self, upstream):
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}{u.path}"
        self.records = []
        self.lock = threading.Lock()
        self.seen = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_message(sock, buf):
        """(head bytes, body bytes, rest of buf) of one HTTP message, or None
        at end of stream."""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        head += b"\r\n\r\n"
        m = re.search(rb"^content-length:\s*(\d+)", head, re.I | re.M)
        if re.search(rb"^transfer-encoding:\s*chunked", head, re.I | re.M):
            raise OSError("chunked messages are not handled by the bench proxy")
        return head, buf, int(m.group(1)) if m else 0

    @staticmethod
    def _read_body(sock, buf, length):
        while len(buf) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("the peer closed in the middle of a body")
            buf += chunk
        return buf[:length], buf[length:]

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                message = self._read_message(conn, buf)
                if message is None:
                    return
                head, buf, length = message
                if re.search(rb"^expect:\s*100-continue", head, re.I | re.M):
                    head = re.sub(rb"(?im)^expect:[^\r\n]*\r\n", b"", head)
                    if len(buf) < length:
                        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, buf = self._read_body(conn, buf, length)
                start = time.monotonic_ns()
                answer = self._forward(head + body, head.split(b" ", 1)[0] == b"HEAD")
                end = time.monotonic_ns()
                conn.sendall(answer)
                request_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
                with self.lock:
                    self.records.append({"seq": len(self.records) + 1, "start": start,
                                         "end": end, "request": request_line,
                                         "status": answer.split(b" ", 2)[1].decode()})
                if re.search(rb"^connection:\s*close", head, re.I | re.M):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _forward(self, request, head_only):
        with socket.create_connection(self.upstream, timeout=60) as up:
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up.sendall(request)
            message = self._read_message(up, b"")
            if message is None:
                raise OSError("the CA closed without answering")
            head, buf, length = message
            status = head.split(b" ", 2)[1]
            if head_only or status in (b"204", b"304"):
                length = 0
            body, _ = self._read_body(up, buf, length)
            return head + body

    def new_records(self):
        with self.lock:
            new = [r for r in self.records if r["seq"] > self.seen]
            self.seen = len(self.records)
        return new

    def count(self):
        with self.lock:
            return len(self.records)

    def close(self):
        self.listener.close()


class CA:
    def __init__(self, procs, directory, key_spec=KEY_SPEC):
        """The CA queues renewals to a new key as key_spec says."""
        import refca_client
        self.key_spec = key_spec
        state = os.path.join(directory, "refca")
        self.log_path = os.path.join(directory, "refca.log")
        with open(self.log_path, "wb") as log_file:
            self.proc = procs.start("refca", [PYTHON, os.path.join(REFCA_DIR, "refca.py"),
                                              "--state", state, "--port", "0", "--init"],
                                    stdout=subprocess.PIPE, stderr=log_file)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            raise BenchError(f"the reference CA printed no URL: {line!r}\n{tail(self.log_path)}")
        self.direct_url = line
        self.proxy = Proxy(line)
        self.url = self.proxy.url  # what both methods talk to
        self.issuers = os.path.join(state, "issuers.pem")
        self.admin = refca_client.Admin(line)
        self.seen = 0

    def mark(self):
        """Forget what came before: the next new_* calls return what follows."""
        self.new_requests()
        self.proxy.new_records()

    def new_requests(self):
        """Protocol requests the CA logged since the last call (its own
        handling time: t_end - t_start)."""
        entries = self.admin.log()
        new = [e for e in entries if e["seq"] > self.seen]
        if entries:
            self.seen = max(self.seen, max(e["seq"] for e in entries))
        return new

    def queue(self, replaces, round_no):
        now = utcnow()
        return self.admin.add_action(
            replaces_serial=replaces, type="renew", not_before=rfc3339(now),
            not_after=rfc3339(now + datetime.timedelta(days=730 + round_no)),
            key=self.key_spec)

    def issued_pem(self, action_id):
        return self.admin.action(action_id)["issued"]["certificate"]


def cert_facts(pem):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    import refca_pki
    cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    return {"serial": refca_pki.serial_hex(cert), "sha256": cert.fingerprint(hashes.SHA256()).hex(),
            "issuer": refca_pki.name_pairs(cert.issuer), "der": der}


def make_token(env, ca, directory, label):
    """A SoftHSM token with an RSA 2048 key (CKA_ID 01) and the certificate
    the CA (the reference CA, or a CmpPki) issued for it, 12 days before it
    expires."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN,
         "--so-pin", SO_PIN], env, "softhsm2-util --init-token")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = utcnow()
    not_before, not_after = now - datetime.timedelta(days=353), now + datetime.timedelta(days=12)
    if isinstance(ca, CmpPki):
        answer = {"certificate": ca.issue(key.public_key(), not_before, not_after)}
    else:
        _, answer = ca.admin.enroll(key.public_key(), subject=SUBJECT,
                                    not_before=rfc3339(not_before),
                                    not_after=rfc3339(not_after))
    key_path = os.path.join(directory, f"{label}-old.key")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    run(["softhsm2-util", "--import", key_path, "--token", label, "--label", f"{label} 2025",
         "--id", "01", "--pin", PIN], env, "softhsm2-util --import")
    os.unlink(key_path)
    facts = cert_facts(answer["certificate"])
    der_path = os.path.join(directory, f"{label}-old.der")
    with open(der_path, "wb") as f:
        f.write(facts["der"])
    run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", label, "--login",
         "--pin", PIN, "--write-object", der_path, "--type", "cert", "--id", "01",
         "--label", f"{label} 2025"], env, "pkcs11-tool --write-object")
    out = run(["softhsm2-util", "--show-slots"], env, "softhsm2-util --show-slots")
    serial = None
    for block in re.split(r"\n(?=Slot \d+)", out):
        m_label = re.search(r"^\s*Label:[ \t]*(.*)$", block, re.M)
        m_serial = re.search(r"^\s*Serial number:[ \t]*(.*)$", block, re.M)
        if m_label and m_serial and m_label.group(1).strip() == label:
            serial = m_serial.group(1).strip()
    if not serial:
        raise BenchError(f"token {label} not found after making it:\n{out}")
    return {"label": label, "serial": serial, "pem": answer["certificate"], "key_id": "01",
            "key_type": "rsa",
            "facts": facts}


# ---------------------------------------------------------------- safecad

def v1_profile(ca):
    return ("[ca]\nname = SAFE-CA\nprotocol = v1\n"
            f"url = {ca.url}\nissuers = {ca.issuers}\n"
            "support = 1900 6154 (T2–T6 8:00–17:00, T7 8:00–12:00)\n"
            "[agency.tax]\nname = Thuế điện tử (Tổng cục Thuế)\n"
            "url = https://thuedientu.gdt.gov.vn\n")


class Safecad:
    def __init__(self, procs, directory, env, build_dir, shim, profile, name="safecad"):
        self.binary = os.path.join(build_dir, "daemon", "safecad")
        self.safectl = os.path.join(build_dir, "client", "safectl")
        for b in (self.binary, self.safectl):
            if not os.access(b, os.X_OK):
                raise BenchError(f"{b} is missing: build first (ninja -C {build_dir})")
        config = os.path.join(directory, f"{name}-config")
        os.makedirs(os.path.join(config, "ca.d"))
        state = os.path.join(directory, f"{name}-state")
        os.makedirs(state)
        with open(os.path.join(config, "safecad.conf"), "w") as f:
            f.write("# safecad.conf for the activation benchmark\n"
                    f"[pkcs11]\nmodules = {shim}\n")
        with open(os.path.join(config, "ca.d", "safe-ca.conf"), "w") as f:
            f.write(profile)
        self.p11 = P11Log(os.path.join(directory, f"p11-{name}.log"))
        notify_path = os.path.join(directory, f"{name}.notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        self.env = dict(env, CONFIGURATION_DIRECTORY=config, STATE_DIRECTORY=state,
                        SAFECAD_DATADIR=os.path.join(REPO, "data"),
                        PCSCLITE_CSOCK_NAME=os.path.join(directory, "no-pcscd", "pcscd.comm"),
                        P11_TIMING_LOG=self.p11.path, P11_TIMING_MODULE=SOFTHSM_MODULE)
        self.log_path = os.path.join(directory, f"{name}.log")
        self.proc = procs.start(name, [self.binary],
                                env=dict(self.env, NOTIFY_SOCKET=notify_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                cwd=directory)
        self.log = DaemonLog(self.proc.stderr, self.log_path)
        self.conn = None
        self.built = datetime.datetime.fromtimestamp(os.path.getmtime(self.binary)).astimezone()

    def wait_ready(self):
        self.notify.settimeout(0.1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"safecad exited with {self.proc.returncode}:\n"
                                 f"{tail(self.log_path)}")
            try:
                if "READY=1" in self.notify.recv(4096).decode(errors="replace").split("\n"):
                    self.conn = connect(self.env["DBUS_SYSTEM_BUS_ADDRESS"])
                    return
            except socket.timeout:
                pass
        raise BenchError(f"safecad sent no READY=1 within 60 s:\n{tail(self.log_path)}")

    def token_path(self, serial=None):
        """The token's object: the only one, or the one with that serial."""
        paths = [str(p) for p in get_property(self.conn, SAFECAD_MANAGER, SAFECAD_NAME,
                                              "Tokens")]
        if serial is not None:
            paths = [p for p in paths
                     if str(get_property(self.conn, p, TOKEN_IFACE, "Serial")) == serial]
        if len(paths) != 1:
            raise BenchError(f"safecad lists {len(paths)} tokens, not 1: {paths}")
        return paths[0]

    def wait_settled(self, path, sha256, ca, timeout=30):
        """Until the token shows `sha256` as its current certificate, is not
        busy, and the CA (None: none to watch) has seen no request from the
        daemon for 0.3 s."""
        deadline = time.monotonic() + timeout
        quiet_since, seen = time.monotonic(), None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"safecad exited with {self.proc.returncode}:\n"
                                 f"{tail(self.log_path)}")
            current = str(get_property(self.conn, path, TOKEN_IFACE, "CurrentCertificate"))
            busy = bool(get_property(self.conn, path, TOKEN_IFACE, "Busy"))
            count = ca.proxy.count() if ca else 0
            if count != seen:
                seen, quiet_since = count, time.monotonic()
            if (current.lower() == sha256 and not busy
                    and time.monotonic() - quiet_since >= 0.3):
                return
            time.sleep(0.05)
        raise BenchError(f"safecad did not settle on certificate {sha256} within {timeout} s:\n"
                         f"{tail(self.log_path)}")

    def version(self):
        try:
            return str(get_property(self.conn, SAFECAD_MANAGER, SAFECAD_NAME, "Version"))
        except Exception:  # noqa: BLE001 - informational only
            return "?"


def run_safecad(sc, token, ca, signals, round_no):
    action = ca.queue(token["facts"]["serial"], round_no)
    action_id = action["id"]
    ca.mark()
    sc.p11.read_new()
    read_fd, write_fd = os.pipe()
    os.write(write_fd, (PIN + "\n").encode())
    os.close(write_fd)
    argv = [sc.safectl, "activate", token["serial"], action_id, "--yes", "--pin-fd",
            str(read_fd)]
    offset = time.time_ns() - time.monotonic_ns()  # the CA logs wall-clock times
    t0 = time.monotonic_ns()
    result = subprocess.run(argv, env=sc.env, stdin=subprocess.DEVNULL, capture_output=True,
                            pass_fds=(read_fd,), text=True)
    t1 = time.monotonic_ns()
    os.close(read_fd)
    if result.returncode != 0:
        raise BenchError(f"safectl activate exited {result.returncode}:\n{result.stdout}"
                         f"{result.stderr}\nthe daemon's log:\n{tail(sc.log_path)}")
    new_pem = ca.issued_pem(action_id)
    facts = cert_facts(new_pem)
    sc.wait_settled(token["path"], facts["sha256"], ca)

    during, after = [], []
    for e in ca.proxy.new_records():
        (during if t0 <= e["start"] and e["end"] <= t1 else after).append(e)
    handled = ca.new_requests()
    # The daemon's log file holds its own calls and its workers' (they run
    # the token work, each a process of its own); by hand has a file apart.
    records = sc.p11.read_new()
    in_window = [r for r in records if t0 <= r["start"] <= t1]
    keygen = sum(r["end"] - r["start"] for r in in_window if r["fn"] == "C_GenerateKeyPair")
    ca_ns = sum(e["end"] - e["start"] for e in during)

    marks = [("start", t0)]
    for t, member, args in signals.between(t0, t1):
        if member == "ActivationProgress" and args[0] == action_id and args[1] in STEPS:
            marks.append((args[1], t))
        elif member == "ActivationFinished" and args[0] == action_id:
            marks.append(("finished", t))
    for t, line in sc.log.between(t0, t1):
        m = GENERATING.match(line)
        if m and m.group(2) == action_id:
            marks.append(("generating", t))
    # The two /pending requests (safectl's Check, then Activate's own)
    # split the first steps. Later requests are not used as marks: the
    # signals reach us a millisecond or more after the step (the daemon's
    # main loop, the bus, this script's threads), which would shuffle them.
    pendings = [e for e in during if endpoint(e) == "POST pending"]
    for k, e in enumerate(pendings, 1):
        marks.append((f"pending {k} sent" if len(pendings) > 1 else "pending sent",
                      e["start"]))
    marks.append(("exit", t1))
    marks.sort(key=lambda mark: mark[1])
    intervals = []
    for (a_name, a), (b_name, b) in zip(marks, marks[1:]):
        intervals.append({
            "name": f"{a_name} → {b_name}", "ns": b - a,
            "ca": sum(overlap(e["start"], e["end"], a, b) for e in during),
            "token": sum(overlap(r["start"], r["end"], a, b) for r in in_window),
        })
    token.update(pem=new_pem, facts=facts)
    total = t1 - t0
    token_ns = sum(r["end"] - r["start"] for r in in_window)
    return {"total": total, "keygen": keygen, "ca": ca_ns, "overhead": total - keygen - ca_ns,
            "own": total - token_ns - ca_ns, "p11": in_window, "exchanges": during, "after": after, "intervals": intervals,
            "marks": marks, "action": action_id, "serial": facts["serial"],
            "ca_handling": sum(int((e["t_end"] - e["t_start"]) * 1e9) for e in handled
                               if t0 <= int(e["t_start"] * 1e9) - offset <= t1),
            "endpoints": [e.get("endpoint") for e in handled]}


def for_scale(sc, directory, env):
    """Figures that explain the overhead: safectl's own start, a status
    round trip, and one journal-style save on the state folder's file
    system (the daemon journals every step that way)."""
    def timed(argv, times=5):
        out = []
        for _ in range(times):
            t0 = time.monotonic_ns()
            r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)
            out.append(time.monotonic_ns() - t0)
            if r.returncode != 0:
                raise BenchError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr!r}")
        return out

    saves = []
    folder = os.path.join(directory, "fsync-probe")
    os.makedirs(folder)
    text = b"x" * 2500
    for _ in range(10):
        time.sleep(0.02)
        t0 = time.monotonic_ns()
        tmp, final = os.path.join(folder, "j.json.tmp"), os.path.join(folder, "j.json")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, text)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, final)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        saves.append(time.monotonic_ns() - t0)
    return {"true": timed(["/bin/true"]), "version": timed([sc.safectl, "--version"]),
            "status": timed([sc.safectl, "status"]), "save": saves}


# ---------------------------------------------------------------- by hand

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem_to_der(pem):
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)


def subj_arg(pairs):
    """`openssl req -subj` text for subject pairs: /type=value, with / + and
    \\ escaped."""
    out = []
    for attribute, value in pairs:
        escaped = re.sub(r"([\\/+])", r"\\\1", value)
        out.append(f"/{attribute}={escaped}")
    return "".join(out)


def parse_x509_text(text):
    """What `openssl x509 -noout -serial -fingerprint -sha256 -issuer
    -nameopt sname,sep_multiline,utf8` printed, as /pending wants it."""
    facts = {"issuer": []}
    in_issuer = False
    for line in text.splitlines():
        if line.startswith("serial="):
            facts["serial"] = line.split("=", 1)[1].strip().lower().lstrip("0") or "0"
        elif "Fingerprint=" in line:
            facts["sha256"] = line.split("=", 1)[1].strip().replace(":", "").lower()
        elif line.startswith("issuer="):
            in_issuer = True
        elif in_issuer and line.startswith("    "):
            attribute, _, value = line.strip().partition("=")
            facts["issuer"].append([attribute, value])
    return facts


class ByHand:
    """The steps as a script with standard tools does them. Each tool runs
    as a subprocess and is timed alone; the glue between them runs here."""

    def __init__(self, directory, env, shim, ca, token):
        self.dir = os.path.join(directory, "by-hand")
        os.makedirs(self.dir)
        self.env = dict(env, PKCS11_MODULE_PATH=shim, P11_TIMING_MODULE=SOFTHSM_MODULE)
        self.shim = shim
        self.ca = ca
        self.token = token
        self.base = ca.url.rstrip("/")

    def p11(self, *args):
        return ["pkcs11-tool", "--module", self.shim, "--token-label", self.token["label"],
                "--login", "--pin", PIN] + list(args)

    def path(self, name):
        return os.path.join(self.dir, name)

    def run_round(self, round_no):
        action = self.ca.queue(self.token["facts"]["serial"], round_no)
        self.ca.mark()
        steps = []
        glue_ns = 0
        p11_log = P11Log(self.path(f"p11-round{round_no}.log"))
        env = dict(self.env, P11_TIMING_LOG=p11_log.path)

        def step(name, kind, argv, ok=lambda r: r.returncode == 0):
            t0 = time.monotonic_ns()
            r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)
            t1 = time.monotonic_ns()
            if not ok(r):
                raise BenchError(f"by hand, {name}: {' '.join(argv)} exited {r.returncode}:\n"
                                 f"{r.stdout.decode(errors='replace')}"
                                 f"{r.stderr.decode(errors='replace')}")
            steps.append({"name": name, "kind": kind, "tool": os.path.basename(argv[0]),
                          "t0": t0, "t1": t1, "ns": t1 - t0})
            return r.stdout.decode(errors="replace")

        def glue(fn, *args):
            nonlocal glue_ns
            t0 = time.monotonic_ns()
            out = fn(*args)
            glue_ns += time.monotonic_ns() - t0
            return out

        def write(name, data):
            with open(self.path(name), "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())
            return self.path(name)

        def curl_json(name, url, body_file, content_type, want):
            out_file = self.path(re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") + ".out")
            code = step(name, "ca", ["curl", "-sS", "-o", out_file, "-w", "%{http_code}",
                                     "-H", f"Content-Type: {content_type}",
                                     "--data-binary", "@" + body_file, url])
            with open(out_file, "rb") as f:
                answer = f.read()
            if code.strip() != str(want):
                raise BenchError(f"by hand, {name}: HTTP {code}: {answer[:400]!r}")
            return json.loads(answer)

        def nonce(name):
            headers = step(name, "ca", ["curl", "-sS", "-o", "/dev/null", "-D", "-",
                                        self.base + "/nonce"])
            m = re.search(r"^replay-nonce:\s*(\S+)", headers, re.I | re.M)
            if not m:
                raise BenchError(f"by hand, {name}: no Replay-Nonce in {headers!r}")
            return m.group(1)

        def signing_input(cert_der, key_type, nonce_value, url, payload):
            header = {"alg": JWS_ALG[key_type], "x5c": [base64.b64encode(cert_der).decode()],
                      "nonce": nonce_value, "url": url}
            protected = b64url(json.dumps(header).encode())
            payload_b64 = b64url(json.dumps(payload).encode())
            return protected, payload_b64

        def jws_body(protected, payload_b64, signature_file):
            with open(signature_file, "rb") as f:
                signature = f.read()
            return json.dumps({"protected": protected, "payload": payload_b64,
                               "signature": b64url(signature)})

        old = self.token["facts"]
        old_der = old["der"]
        # 1. Pending actions for the certificate on the token.
        body = glue(lambda: json.dumps({
            "token_serial": self.token["serial"],
            "certificates": [{"serial": old["serial"], "issuer": old["issuer"],
                              "sha256": old["sha256"]}]}, ensure_ascii=False))
        pending = curl_json("curl POST /pending", self.base + "/pending",
                            write("pending.json", body), "application/json", 200)
        entry = glue(lambda: [p for p in pending["pending"] if p["id"] == action["id"]])
        if not entry:
            raise BenchError(f"by hand: /pending does not list {action['id']}: {pending}")
        entry = entry[0]
        action_id = entry["id"]
        def sign(name, key_type, key_id, tbs_text, out):
            """SoftHSM has no CKM_ECDSA_SHA256: for an EC key the glue
            hashes and the token signs the hash (CKM_ECDSA, r || s as JWS
            wants it)."""
            if key_type == "rsa":
                mechanism, data = "SHA256-RSA-PKCS", tbs_text.encode()
            else:
                mechanism, data = "ECDSA", glue(lambda: hashlib.sha256(tbs_text.encode()).digest())
            step(name, "token", self.p11("--sign", "-m", mechanism, "--id", key_id,
                                         "-i", write(out + ".in", data), "-o", self.path(out)))

        # 2. A new key on the token, with a fresh CKA_ID.
        new_id = glue(lambda: secrets.token_hex(8))
        new_key = entry["key"]
        key_type = (f"rsa:{new_key['bits']}" if new_key["type"] == "rsa"
                    else f"EC:{EC_CURVES[new_key['curve']]}")
        step("pkcs11-tool --keypairgen", "keygen",
             self.p11("--keypairgen", "--key-type", key_type,
                      "--id", new_id, "--label", f"by hand {action_id}"))
        # 3. The request, signed on the token with the new key.
        uri = glue(lambda: "pkcs11:token={};id={};type=private;pin-value={}".format(
            urllib.parse.quote(self.token["label"]),
            "".join(f"%{new_id[i:i + 2]}" for i in range(0, len(new_id), 2)), PIN))
        csr_file = self.path("csr.der")
        step("openssl req -new (engine)", "token",
             ["openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine", "-key", uri,
              "-subj", glue(subj_arg, entry["subject"]), "-utf8", "-sha256", "-outform", "DER",
              "-out", csr_file])
        # 4. Issue: a nonce, the JWS signed with the old key, the POST.
        url = f"{self.base}/actions/{action_id}/issue"
        value = nonce("curl GET /nonce (issue)")
        with open(csr_file, "rb") as f:
            csr = f.read()
        old_type = self.token["key_type"]
        protected, payload_b64 = glue(signing_input, old_der, old_type, value, url,
                                      {"csr": b64url(csr)})
        sign("pkcs11-tool --sign (old key)", old_type, self.token["key_id"],
             f"{protected}.{payload_b64}", "issue.sig")
        issued = curl_json("curl POST issue", url,
                           write("issue.json", glue(jws_body, protected, payload_b64,
                                                    self.path("issue.sig"))),
                           "application/jose+json", 200)
        new_pem = issued["certificate"]
        new_der = glue(pem_to_der, new_pem)
        write("new.pem", new_pem)
        write("new.der", new_der)
        # 5. Its serial (for confirm, and the next /pending), then onto the token.
        text = step("openssl x509 (new certificate)", "other",
                    ["openssl", "x509", "-in", self.path("new.pem"), "-noout", "-serial",
                     "-fingerprint", "-sha256", "-issuer", "-nameopt",
                     "sname,sep_multiline,utf8"])
        facts = glue(parse_x509_text, text)
        facts["der"] = new_der
        step("pkcs11-tool --write-object", "token",
             self.p11("--write-object", self.path("new.der"), "--type", "cert", "--id", new_id,
                      "--label", f"by hand {facts['serial']}"))
        # 6. Confirm, signed with the new key.
        url = f"{self.base}/actions/{action_id}/confirm"
        value = nonce("curl GET /nonce (confirm)")
        protected, payload_b64 = glue(signing_input, new_der, new_key["type"], value, url,
                                      {"installed_serial": facts["serial"],
                                       "keep_previous": True})
        sign("pkcs11-tool --sign (new key)", new_key["type"], new_id,
             f"{protected}.{payload_b64}", "confirm.sig")
        answer = curl_json("curl POST confirm", url,
                           write("confirm.json", glue(jws_body, protected, payload_b64,
                                                      self.path("confirm.sig"))),
                           "application/jose+json", 200)
        if answer.get("status") != "completed":
            raise BenchError(f"by hand: confirm answered {answer}")

        self.token.update(pem=new_pem, facts=facts, key_id=new_id, key_type=new_key["type"])
        t0, t1 = steps[0]["t0"], steps[-1]["t1"]
        records = p11_log.read_new()
        for s in steps:
            s["token_ns"] = sum(r["end"] - r["start"] for r in records
                                if s["t0"] <= r["start"] <= s["t1"])
            s["keygen_ns"] = sum(r["end"] - r["start"] for r in records
                                 if s["t0"] <= r["start"] <= s["t1"]
                                 and r["fn"] == "C_GenerateKeyPair")
        exchanges = self.ca.proxy.new_records()
        for s in steps:
            s["server_ns"] = sum(e["end"] - e["start"] for e in exchanges
                                 if s["t0"] <= e["start"] and e["end"] <= s["t1"])
        handled = self.ca.new_requests()
        total = sum(s["ns"] for s in steps)
        keygen = sum(s["ns"] for s in steps if s["kind"] == "keygen")
        ca_ns = sum(s["ns"] for s in steps if s["kind"] == "ca")
        return {"total": total, "keygen": keygen, "ca": ca_ns,
                "overhead": total - keygen - ca_ns, "steps": steps, "glue": glue_ns,
                "elapsed": t1 - t0, "exchanges": exchanges,
                "keygen_token": sum(s["keygen_ns"] for s in steps),
                "ca_server": sum(s["server_ns"] for s in steps),
                "ca_handling": sum(int((e["t_end"] - e["t_start"]) * 1e9) for e in handled),
                "action": action_id, "serial": facts["serial"]}


# ---------------------------------------------------------------- report

def versions(sc):
    def dpkg(package):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "?"

    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True)
            return (r.stdout or r.stderr).splitlines()[0].strip()
        except (OSError, IndexError):
            return "?"

    return [
        f"safecad {sc.version()} ({sc.binary}, built {sc.built:%Y-%m-%d %H:%M:%S})",
        f"pkcs11-tool: OpenSC {dpkg('opensc')} (Debian package opensc)",
        f"openssl: {first_line(['openssl', 'version'])}; pkcs11 engine: "
        f"libengine-pkcs11-openssl {dpkg('libengine-pkcs11-openssl')} (libp11 "
        f"{dpkg('libp11-3')})",
        f"curl: {first_line(['curl', '--version'])}",
        f"SoftHSM: softhsm2 {dpkg('softhsm2')}; token access through bench/p11-timing.so",
        f"reference CA: tools/reference-ca/refca.py on {first_line([PYTHON, '--version'])}, "
        f"python3-cryptography {dpkg('python3-cryptography')}",
        f"kernel {os.uname().release}, {os.cpu_count()} CPUs",
    ]


def p50(values):
    return statistics.median(values) if values else None


def fmt(ns, digits=0):
    return "n/a" if ns is None else f"{ms(ns):.{digits}f} ms"


def spread(values, digits=0):
    if not values:
        return "n/a"
    return (f"{ms(p50(values)):.{digits}f} ({ms(min(values)):.{digits}f}–"
            f"{ms(max(values)):.{digits}f})")


def table(headers, rows, align=None):
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    align = align or ["<"] + [">"] * (len(headers) - 1)
    print(" | ".join(f"{h:{a}{w}}" for h, a, w in zip(headers, align, widths)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(f"{str(c):{a}{w}}" for c, a, w in zip(row, align, widths)).rstrip())


def verdict(ok):
    return "yes" if ok else "NO"


def endpoint(exchange):
    """"POST issue" for "POST /activation/v1/actions/r-1/issue HTTP/1.1"."""
    parts = exchange["request"].split(" ")
    path = urllib.parse.urlsplit(parts[1]).path if len(parts) > 1 else ""
    return f"{parts[0]} {path.rstrip('/').rsplit('/', 1)[-1]}"


def report(args, sc_runs, bh_runs, version_lines, order, scale):
    n = len(sc_runs)
    print()
    print(f"safecad activation benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %z}"
          f", {n} round{'s' if n != 1 else ''} (renewal, new RSA 2048 key on a SoftHSM token)")
    print("  the reference CA on loopback (plain http) behind the bench's timing proxy; one "
          "private bus;")
    print(f"  one token per method; the methods alternate who goes first ({order}).")
    for line in version_lines:
        print("  " + line)
    print()
    print("times in ms, p50 (min–max) over the rounds")

    def col(runs, key):
        return [r[key] for r in runs]

    table(("method", "total", "key generation", "CA", "overhead"), [
        ("safecad (safectl activate)", spread(col(sc_runs, "total")),
         spread(col(sc_runs, "keygen")), spread(col(sc_runs, "ca"), 1),
         spread(col(sc_runs, "overhead"), 1)),
        ("by hand (sum of the tools' wall times)", spread(col(bh_runs, "total")),
         spread(col(bh_runs, "keygen")), spread(col(bh_runs, "ca"), 1),
         spread(col(bh_runs, "overhead"), 1)),
    ])
    print("  safecad: key generation = the C_GenerateKeyPair call inside the daemon; CA = the "
          "round trips of its")
    print("  requests at the proxy (request in → the CA's whole answer back); overhead = total - "
          "both.")
    print("  by hand: key generation = the whole pkcs11-tool --keypairgen run; CA = the whole curl "
          "runs;")
    print("  overhead = the other tool runs (openssl req, pkcs11-tool --sign and "
          "--write-object, openssl x509).")
    print()

    ratio = p50(col(sc_runs, "total")) / p50(col(bh_runs, "total"))
    sc_ex = [r["total"] - r["keygen"] for r in sc_runs]
    bh_ex = [r["total"] - r["keygen_token"] for r in bh_runs]
    ratio_ex = p50(sc_ex) / p50(bh_ex)
    per_round = [s["total"] / b["total"] for s, b in zip(sc_runs, bh_runs)]
    over_p50 = ms(p50(col(sc_runs, "overhead")))
    over_max = ms(max(col(sc_runs, "overhead")))
    table(("target", "measured", "target", "ok?"), [
        ("total, safecad / by hand (p50 / p50)", f"{ratio:.2f}", f"<= {TARGET_RATIO}",
         verdict(ratio <= TARGET_RATIO)),
        ("  per round", " ".join(f"{r:.2f}" for r in per_round), "", ""),
        ("safecad overhead, p50", f"{over_p50:.1f} ms", f"<= {TARGET_OVERHEAD_MS:.0f} ms",
         verdict(over_p50 <= TARGET_OVERHEAD_MS)),
        ("safecad overhead, worst round", f"{over_max:.1f} ms",
         f"<= {TARGET_OVERHEAD_MS:.0f} ms", verdict(over_max <= TARGET_OVERHEAD_MS)),
        ("(info) safecad overhead without its other token calls, p50",
         f"{ms(p50(col(sc_runs, 'own'))):.1f} ms", "", ""),
        ("(info) ratio without C_GenerateKeyPair (p50 / p50)", f"{ratio_ex:.2f}", "", ""),
        ("  safecad / by hand, total - C_GenerateKeyPair",
         f"{ms(p50(sc_ex)):.0f} / {ms(p50(bh_ex)):.0f} ms", "", ""),
    ])
    print()

    print("per round (ms)")
    rows = []
    for i, (s, b) in enumerate(zip(sc_runs, bh_runs), 1):
        rows.append((i, f"{ms(s['total']):.0f}", f"{ms(s['keygen']):.0f}", f"{ms(s['ca']):.1f}",
                     f"{ms(s['overhead']):.1f}", f"{ms(b['total']):.0f}",
                     f"{ms(b['keygen']):.0f}", f"{ms(b['keygen_token']):.0f}",
                     f"{ms(b['ca']):.0f}", f"{ms(b['ca_server']):.1f}",
                     f"{ms(b['overhead']):.0f}", f"{s['total'] / b['total']:.2f}"))
    table(("round", "safecad", "keygen", "CA", "overhead", "by hand", "keygen run",
           "C_GenerateKeyPair", "curl runs", "CA at proxy", "other tools", "ratio"), rows)
    print("  CA's own handling time (its request log), p50 per activation: safecad "
          f"{ms(p50(col(sc_runs, 'ca_handling'))):.1f} ms, by hand "
          f"{ms(p50(col(bh_runs, 'ca_handling'))):.1f} ms (the rest of the CA column is "
          "connection, parsing, proxy)")
    print()

    print("safecad, where the time goes (p50 over the rounds, ms). Marks: the ActivationProgress "
          "signals as this")
    print("script received them (a millisecond or more after the step), 'pending N sent' = the "
          "proxy got the")
    print("daemon's Nth /pending, 'generating' = its \"Generating a rsa key\" log line, "
          "'finished' = ActivationFinished.")
    print("CA = round trips at the proxy; token = C_Login, C_GenerateKeyPair, C_Sign, "
          "C_CreateObject, C_Initialize;")
    print("rest = the daemon and safectl themselves (other PKCS#11 calls, journal writes, D-Bus, "
          "HTTP client).")
    names = []
    for r in sc_runs:
        for iv in r["intervals"]:
            if iv["name"] not in names:
                names.append(iv["name"])
    rows = []
    for name in names:
        ivs = [iv for r in sc_runs for iv in r["intervals"] if iv["name"] == name]
        rest = [iv["ns"] - iv["ca"] - iv["token"] for iv in ivs]
        rows.append((name, f"{ms(p50([iv['ns'] for iv in ivs])):.1f}",
                     f"{ms(p50([iv['ca'] for iv in ivs])):.1f}",
                     f"{ms(p50([iv['token'] for iv in ivs])):.1f}",
                     f"{ms(p50(rest)):.1f}", f"{ms(max(rest)):.1f}",
                     f"{len(ivs)}/{n}" if len(ivs) != n else ""))
    table(("interval", "p50", "CA", "token", "rest", "rest max", "rounds"), rows)
    seen_steps = {name for r in sc_runs for name, _ in r["marks"]}
    missing = [step for step in STEPS if step not in seen_steps]
    if missing:
        print("  never received: ActivationProgress " + ", ".join(missing))
    counts = {}
    for r in sc_runs:
        for e in r["exchanges"]:
            counts[endpoint(e)] = counts.get(endpoint(e), 0) + 1
    print("  CA requests per activation: " + ", ".join(
        f"{k} x{v / n:g}" for k, v in counts.items()))
    after = [e for r in sc_runs for e in r["after"]]
    if after:
        kinds = {}
        for e in after:
            kinds[endpoint(e)] = kinds.get(endpoint(e), 0) + 1
        print(f"  after safectl returned, the daemon sent {len(after)} more request(s) in "
              "all rounds: " + ", ".join(f"{k} x{v}" for k, v in kinds.items())
              + " (not counted)")
    print(f"  for scale: a process start (/bin/true from this script) {spread(scale['true'], 1)} ms, "
          f"safectl --version {spread(scale['version'], 1)} ms,")
    print(f"  safectl status {spread(scale['status'], 1)} ms; one journal-style save (write, fsync, "
          f"rename, fsync folder)")
    print(f"  on the state folder's file system {spread(scale['save'], 1)} ms; the daemon makes "
          "11 per activation (7 steps, the new key's id, 2 history updates, the removal)")
    token_calls = {}
    for r in sc_runs:
        for rec in r["p11"]:
            token_calls.setdefault(rec["fn"], []).append(rec["end"] - rec["start"])
    print("  token calls per activation (p50 of each): " + ", ".join(
        f"{fn} x{len(v) / n:g} {ms(p50(v)):.1f} ms" for fn, v in token_calls.items()))
    print()

    print("by hand, step by step (p50 over the rounds, ms; token = the same C_* calls inside "
          "the tool,")
    print("CA = the round trip at the proxy of the request curl sent; rest = process start, "
          "libraries, module")
    print("load and the tool's own work)")
    rows = []
    for i, first in enumerate(bh_runs[0]["steps"]):
        steps = [r["steps"][i] for r in bh_runs]
        rows.append((first["name"], f"{ms(p50([s['ns'] for s in steps])):.1f}",
                     f"{ms(p50([s['token_ns'] for s in steps])):.1f}",
                     f"{ms(p50([s['server_ns'] for s in steps])):.1f}",
                     f"{ms(p50([s['ns'] - s['token_ns'] - s['server_ns'] for s in steps])):.1f}"))
    rows.append(("sum = by hand total", f"{ms(p50(col(bh_runs, 'total'))):.1f}", "", "", ""))
    table(("step", "wall", "token", "CA", "rest"), rows)
    print(f"  glue in this script (base64, JSON; not counted): p50 "
          f"{ms(p50(col(bh_runs, 'glue'))):.2f} ms per round; end to end with the glue and "
          f"file writes: p50 {ms(p50(col(bh_runs, 'elapsed'))):.0f} ms")
    print()
    return ratio, over_p50, over_max


def explain(missed, sc_runs, bh_runs, scale):
    """The big contributors, from the figures above."""
    print()
    print("Targets missed: " + ", ".join(missed) + ". The big contributors (p50):")
    sc_total = p50([r["total"] for r in sc_runs])
    bh_total = p50([r["total"] for r in bh_runs])
    sc_gen = p50([r["keygen"] for r in sc_runs])
    bh_gen = p50([r["keygen_token"] for r in bh_runs])
    if "ratio" in missed:
        bh_rest = p50([sum(s["ns"] - s["token_ns"] - s["server_ns"] for s in r["steps"])
                       for r in bh_runs])
        print(f"  ratio: C_GenerateKeyPair is {ms(sc_gen):.0f} of safecad's {ms(sc_total):.0f} ms "
              f"and {ms(bh_gen):.0f} of by hand's {ms(bh_total):.0f} ms:")
        print("    the same work on the token for both, random in length (prime search), that "
              "no client can shorten;")
        print(f"    by hand's own cost around it is {ms(bh_rest):.0f} ms of process starts, "
              "libraries and module loads")
        print(f"    ({len(bh_runs[0]['steps'])} tool runs; a bare process start is "
              f"{ms(p50(scale['true'])):.1f} ms here). The ratio without key generation is "
              f"{p50([r['total'] - r['keygen'] for r in sc_runs]) / p50([r['total'] - r['keygen_token'] for r in bh_runs]):.2f}.")
    if "overhead" in missed:
        other_token = p50([sum(rec["end"] - rec["start"] for rec in r["p11"]
                               if rec["fn"] != "C_GenerateKeyPair") for r in sc_runs])
        print(f"  overhead {ms(p50([r['overhead'] for r in sc_runs])):.1f} ms: token calls "
              f"other than key generation {ms(other_token):.1f} ms (counted as overhead by "
              "the definition);")
        rests = {}
        for r in sc_runs:
            for iv in r["intervals"]:
                rests.setdefault(iv["name"], []).append(iv["ns"] - iv["ca"] - iv["token"])
        top = sorted(((p50(v), k) for k, v in rests.items() if len(v) == len(sc_runs)),
                     reverse=True)[:4]
        print("    the largest 'rest' intervals: " + ", ".join(
            f"{k} {ms(v):.1f}" for v, k in top) + " ms;")
        print(f"    safectl's own start is about {ms(p50(scale['version'])):.1f} ms "
              f"(--version; a bare process start {ms(p50(scale['true'])):.1f} ms), 11 "
              f"journal-style saves about {11 * ms(p50(scale['save'])):.0f} ms on this disk.")


# ---------------------------------------------------------------- CMP

# The CMP test CA issues for 365 days: a profile that offers renewal that
# far ahead offers each round's new certificate again.
CMP_RENEW_DAYS = 400


class CmpPki:
    """An issuing CA for the CMP test CA (tests/cmp-ca), its server
    certificate for the answers' protection, as files."""

    def __init__(self, directory):
        from cryptography.hazmat.primitives.asymmetric import rsa
        self.dir = os.path.join(directory, "cmp-pki")
        os.makedirs(self.dir)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = utcnow()
        self.cert = self._cert(self.key.public_key(), [["C", "VN"], ["CN", "SAFE-CA CMP bench"]],
                               now - datetime.timedelta(days=1),
                               now + datetime.timedelta(days=3650), ca=True)
        server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server = self._cert(server_key.public_key(), [["C", "VN"], ["CN", "SAFE-CA CMP"]],
                            now - datetime.timedelta(days=1), now + datetime.timedelta(days=365))
        self.ca_path = self._write("ca.pem", self._pem(self.cert))
        self.ca_key_path = self._write("ca.key", self._key_pem(self.key))
        self.server_path = self._write("server.pem", self._pem(server))
        self.server_key_path = self._write("server.key", self._key_pem(server_key))

    @staticmethod
    def _pem(cert):
        from cryptography.hazmat.primitives import serialization
        return cert.public_bytes(serialization.Encoding.PEM)

    @staticmethod
    def _key_pem(key):
        from cryptography.hazmat.primitives import serialization
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def _write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _cert(self, public_key, subject, not_before, not_after, ca=False):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        oids = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
                "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
                "CN": NameOID.COMMON_NAME, "UID": NameOID.USER_ID}
        name = x509.Name([x509.NameAttribute(oids[a], v) for a, v in subject])
        issuer = name if ca else self.cert.subject
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        # OpenSSL's CMP server finds the signer by these key identifiers.
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=False, content_commitment=False,
                              key_encipherment=False, data_encipherment=False,
                              key_agreement=False, key_cert_sign=True, crl_sign=True,
                              encipher_only=False, decipher_only=False), critical=True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                            critical=False)
        else:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, public_key, not_before, not_after):
        """A certificate of SUBJECT for public_key, as PEM text."""
        return self._pem(self._cert(public_key, SUBJECT, not_before, not_after)).decode()


class CmpCA:
    """tests/cmp-ca/cmp-test-ca on loopback, issuing from a CmpPki."""

    def __init__(self, procs, directory, build_dir, pki):
        binary = os.path.join(build_dir, "tests", "cmp-ca", "cmp-test-ca")
        if not os.access(binary, os.X_OK):
            raise BenchError(f"{binary} is missing: build first (ninja -C {build_dir})")
        self.log_path = os.path.join(directory, "cmp-test-ca.log")
        with open(self.log_path, "wb") as log_file:
            self.proc = procs.start(
                "cmp-test-ca", [binary, "--ca-cert", pki.ca_path, "--ca-key", pki.ca_key_path,
                                "--server-cert", pki.server_path,
                                "--server-key", pki.server_key_path, "--chain", pki.ca_path,
                                "--trusted", pki.ca_path],
                stdout=subprocess.PIPE, stderr=log_file)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            raise BenchError(f"cmp-test-ca printed no port: {line!r}\n{tail(self.log_path)}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}/pkix/"

    def profile(self, pki):
        return ("[ca]\nname = SAFE-CA CMP\nprotocol = cmp\n"
                f"url = {self.url}\nissuers = {pki.ca_path}\n"
                f"renew_days = {CMP_RENEW_DAYS}\nsupport = 1900 6154\n"
                "[agency.tax]\nname = Thuế điện tử (Tổng cục Thuế)\n"
                "url = https://thuedientu.gdt.gov.vn\n")


def cmp_action_id(sha256):
    """The action safecad offers for the certificate (ca-cmp.c)."""
    return "cmp-" + sha256[:32]


def run_safecad_cmp(sc, token):
    """One `safectl activate` of the CMP renewal offered for the token's
    current certificate; waits until the daemon shows the new one."""
    old_sha = token["facts"]["sha256"]
    # The test CA issues until now + 365 days, to the second, and safecad
    # refuses a certificate that does not end later than the current one
    # (check 4). Two rounds within one second would issue the same end:
    # wait, outside the timing, for the clock to pass the last issue's second.
    last = token.get("issued_wall")
    while last is not None and int(time.time()) <= int(last):
        time.sleep(0.05)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, (PIN + "\n").encode())
    os.close(write_fd)
    sc.p11.read_new()
    argv = [sc.safectl, "activate", token["serial"], cmp_action_id(old_sha), "--yes",
            "--pin-fd", str(read_fd)]
    t0 = time.monotonic_ns()
    result = subprocess.run(argv, env=sc.env, stdin=subprocess.DEVNULL, capture_output=True,
                            pass_fds=(read_fd,), text=True)
    t1 = time.monotonic_ns()
    token["issued_wall"] = time.time()
    os.close(read_fd)
    if result.returncode != 0:
        raise BenchError(f"safectl activate (CMP) exited {result.returncode}:\n{result.stdout}"
                         f"{result.stderr}\nthe daemon's log:\n{tail(sc.log_path)}")
    deadline = time.monotonic() + 30
    while True:
        current = str(get_property(sc.conn, token["path"], TOKEN_IFACE,
                                   "CurrentCertificate")).lower()
        if (current != old_sha and
                not bool(get_property(sc.conn, token["path"], TOKEN_IFACE, "Busy"))):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"safecad shows no new certificate after the CMP activation:\n"
                             f"{tail(sc.log_path)}")
        time.sleep(0.05)
    token["facts"] = {"sha256": current}
    records = [r for r in sc.p11.read_new() if t0 <= r["start"] <= t1]
    keygen = sum(r["end"] - r["start"] for r in records if r["fn"] == "C_GenerateKeyPair")
    return {"total": t1 - t0, "keygen": keygen}


class ByHandCmp:
    """The same renewal with standard tools: pkcs11-tool --keypairgen, then
    `openssl cmp -cmd kur` with the pkcs11 engine (the request protected
    with the old key, the proof of possession by the new one, both on the
    token; the certConf sent), then pkcs11-tool --write-object."""

    def __init__(self, directory, env, shim, ca, pki, token):
        self.dir = os.path.join(directory, "by-hand-cmp")
        os.makedirs(self.dir)
        self.env = dict(env, PKCS11_MODULE_PATH=shim, P11_TIMING_MODULE=SOFTHSM_MODULE,
                        P11_TIMING_LOG=os.path.join(self.dir, "p11.log"))
        self.shim = shim
        self.ca = ca
        self.pki = pki
        self.token = token
        self.old_pem = token["pem"]
        self.old_id = token["key_id"]

    def path(self, name):
        return os.path.join(self.dir, name)

    def uri(self, key_id):
        return "pkcs11:token={};id={};type=private;pin-value={}".format(
            urllib.parse.quote(self.token["label"]),
            "".join(f"%{key_id[i:i + 2]}" for i in range(0, len(key_id), 2)), PIN)

    def run_round(self, round_no):
        steps = []

        def step(name, argv):
            t0 = time.monotonic_ns()
            r = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL, capture_output=True)
            steps.append((name, time.monotonic_ns() - t0))
            if r.returncode != 0:
                raise BenchError(f"by hand (CMP), {name}: {' '.join(argv)} exited "
                                 f"{r.returncode}:\n{r.stdout.decode(errors='replace')}"
                                 f"{r.stderr.decode(errors='replace')}")

        p11 = ["pkcs11-tool", "--module", self.shim, "--token-label", self.token["label"],
               "--login", "--pin", PIN]
        old_path = self.path(f"old-{round_no}.pem")
        with open(old_path, "w") as f:
            f.write(self.old_pem)
        new_id = secrets.token_hex(8)
        new_path = self.path(f"new-{round_no}.pem")
        step("pkcs11-tool --keypairgen", p11 + ["--keypairgen", "--key-type", "rsa:2048",
                                                "--id", new_id, "--label", f"kur {round_no}"])
        step("openssl cmp -cmd kur (engine)",
             ["openssl", "cmp", "-engine", "pkcs11", "-keyform", "ENGINE", "-cmd", "kur",
              "-server", f"127.0.0.1:{self.ca.port}", "-path", "pkix/",
              "-trusted", self.pki.ca_path, "-cert", old_path, "-key", self.uri(self.old_id),
              "-newkey", self.uri(new_id), "-certout", new_path])
        with open(new_path) as f:
            new_pem = f.read()
        der_path = self.path(f"new-{round_no}.der")
        with open(der_path, "wb") as f:
            f.write(pem_to_der(new_pem))
        step("pkcs11-tool --write-object", p11 + ["--write-object", der_path, "--type", "cert",
                                                  "--id", new_id, "--label", f"kur {round_no}"])
        self.old_pem, self.old_id = new_pem, new_id
        return {"total": sum(ns for _, ns in steps), "keygen": steps[0][1], "steps": steps}


def cmp_rounds(args, procs, directory, env, shim, first):
    """The CMP rows: a daemon of its own (the first one stopped: one owner
    of the bus name), its token and the by-hand token made before it starts
    (SoftHSM reads its token folder at C_Initialize only, and the daemon
    only lists tokens whose certificate a profile knows)."""
    procs.stop(first.proc)
    first.notify.close()
    pki = CmpPki(directory)
    ca = CmpCA(procs, directory, args.build_dir, pki)
    sc_token = make_token(env, pki, directory, "safecad-cmp")
    bh_token = make_token(env, pki, directory, "byhand-cmp")
    log("starting safecad again with a CMP profile")
    sc = Safecad(procs, directory, env, args.build_dir, shim, ca.profile(pki),
                 name="safecad-cmp")
    try:
        sc.wait_ready()
        sc_token["path"] = sc.token_path(sc_token["serial"])
        sc.wait_settled(sc_token["path"], sc_token["facts"]["sha256"], None)
        by_hand = ByHandCmp(directory, env, shim, ca, pki, bh_token)
        sc_runs, bh_runs = [], []
        for i in range(args.rounds):
            order = ("safecad", "by hand") if i % 2 == 0 else ("by hand", "safecad")
            for method in order:
                log(f"CMP round {i + 1}/{args.rounds}: {method}")
                if method == "safecad":
                    sc_runs.append(run_safecad_cmp(sc, sc_token))
                else:
                    bh_runs.append(by_hand.run_round(i))
                time.sleep(0.2)
        for runs, token in ((sc_runs, sc_token), (bh_runs, bh_token)):
            out = run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label",
                       token["label"], "--login", "--pin", PIN, "--list-objects", "--type",
                       "cert"], env, "pkcs11-tool --list-objects")
            runs[-1]["certificates"] = out.count("Certificate Object")
    finally:
        sc.notify.close()
    return sc_runs, bh_runs


def report_cmp(sc_v1, sc_runs, bh_runs):
    print("CMP certificate key update (kur) against the CMP test CA (tests/cmp-ca, plain http "
          "on loopback),")
    print("new RSA 2048 key on a SoftHSM token; times in ms, p50 (min–max) over the rounds")
    table(("method", "total", "key generation", "rest"), [
        ("safecad, protocol = v1 (the rows above)", spread([r["total"] for r in sc_v1]),
         spread([r["keygen"] for r in sc_v1]),
         spread([r["total"] - r["keygen"] for r in sc_v1], 1)),
        ("safecad, protocol = cmp (safectl activate)", spread([r["total"] for r in sc_runs]),
         spread([r["keygen"] for r in sc_runs]),
         spread([r["total"] - r["keygen"] for r in sc_runs], 1)),
        ("by hand (keypairgen, openssl cmp kur, write)", spread([r["total"] for r in bh_runs]),
         spread([r["keygen"] for r in bh_runs]),
         spread([r["total"] - r["keygen"] for r in bh_runs], 1)),
    ])
    print("  safecad: key generation = the C_GenerateKeyPair call inside the daemon; by hand: "
          "the whole")
    print("  pkcs11-tool --keypairgen run. by hand's steps, p50: " + ", ".join(
        f"{name} {ms(p50([r['steps'][i][1] for r in bh_runs])):.0f}"
        for i, (name, _) in enumerate(bh_runs[0]["steps"])) + " ms")
    ratio = p50([r["total"] for r in sc_runs]) / p50([r["total"] for r in bh_runs])
    print(f"  ratio safecad (cmp) / by hand, p50 / p50: {ratio:.2f}")
    print(f"  check: certificates on the CMP tokens afterwards: safecad "
          f"{sc_runs[-1]['certificates']}, by hand {bh_runs[-1]['certificates']} "
          f"(1 + {len(sc_runs)} each expected)")
    print()


# ---------------------------------------------------------------- main

def check_build(build_dir):
    if shutil.which("ninja") and os.path.exists(os.path.join(build_dir, "build.ninja")):
        r = subprocess.run(["ninja", "-C", build_dir, "-n"], capture_output=True, text=True)
        if r.returncode == 0 and "no work to do" not in r.stdout:
            log(f"warning: {build_dir} is not up to date with the sources "
                f"(ninja -C {build_dir} would rebuild); measuring the binaries as they are")


def main():
    parser = argparse.ArgumentParser(
        description="safecad activation against the same steps by hand (pkcs11-tool, openssl, "
                    "curl).")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--skip-cmp", action="store_true",
                        help="leave out the CMP rows (safecad and openssl cmp against the CMP "
                             "test CA)")
    benchlib.add_common_options(parser)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    for tool in ("dbus-daemon", "softhsm2-util", "pkcs11-tool", "openssl", "curl", "gcc",
                 "pkg-config"):
        if shutil.which(tool) is None:
            log(f"{tool} is not installed (tools/install-deps.sh installs it)")
            return 1
    check_build(args.build_dir)

    def on_signal(signum, frame):
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    directory = tempfile.mkdtemp(prefix="safecad-activation-bench.")
    procs = Processes()
    signals = None
    sc = None
    ca = None
    sc_runs, bh_runs = [], []
    try:
        env = dict(os.environ)
        for variable in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                         "LISTEN_PID", "INVOCATION_ID", "JOURNAL_STREAM", "OPENSSL_CONF",
                         "PKCS11_MODULE_PATH", "P11_TIMING_LOG", "SAFECAD_LOG_LEVEL"):
            env.pop(variable, None)
        token_dir = os.path.join(directory, "tokens")
        os.makedirs(token_dir)
        softhsm_conf = os.path.join(directory, "softhsm2.conf")
        with open(softhsm_conf, "w") as f:
            f.write(f"directories.tokendir = {token_dir}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
        env["SOFTHSM2_CONF"] = softhsm_conf
        shim = build_shim(directory)

        log("starting the reference CA")
        ca = CA(procs, directory)
        log("making the daemon's token (key and certificate from the CA)")
        sc_token = make_token(env, ca, directory, "safecad")
        env["DBUS_SYSTEM_BUS_ADDRESS"] = start_bus(procs, directory)
        signals = Signals(env["DBUS_SYSTEM_BUS_ADDRESS"])
        log(f"starting {os.path.join(args.build_dir, 'daemon', 'safecad')}")
        sc = Safecad(procs, directory, env, args.build_dir, shim, v1_profile(ca))
        sc.wait_ready()
        sc_token["path"] = sc.token_path()
        sc.wait_settled(sc_token["path"], sc_token["facts"]["sha256"], ca)
        # Made after the daemon started: SoftHSM reads its token folder at
        # C_Initialize only, so the daemon never sees this one.
        log("making the by-hand token")
        bh_token = make_token(env, ca, directory, "byhand")
        by_hand = ByHand(directory, env, shim, ca, bh_token)
        scale = for_scale(sc, directory, sc.env)
        ca.mark()
        sc.p11.read_new()

        for i in range(args.rounds):
            order = ("safecad", "by hand") if i % 2 == 0 else ("by hand", "safecad")
            for method in order:
                log(f"round {i + 1}/{args.rounds}: {method}")
                if method == "safecad":
                    sc_runs.append(run_safecad(sc, sc_token, ca, signals, i))
                else:
                    bh_runs.append(by_hand.run_round(i))
                time.sleep(0.2)

        # What both left on their tokens, read back independently.
        objects = {}
        for label in ("safecad", "byhand"):
            out = run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", label,
                       "--login", "--pin", PIN, "--list-objects", "--type", "cert"], env,
                      "pkcs11-tool --list-objects")
            objects[label] = out.count("Certificate Object")
        states = [item["state"] for item in ca.admin.actions() if item["kind"] == "action"]
        version_lines = versions(sc)
        daemon_warnings = [line for _, line in sc.log.lines
                           if re.search(r"warn|fail|error", line, re.I)]
        if not args.skip_cmp:
            cmp_sc_runs, cmp_bh_runs = cmp_rounds(args, procs, directory, env, shim, sc)
    except KeyboardInterrupt:
        log("interrupted, cleaning up")
        return 130
    except Stop as e:
        log(f"{e}, cleaning up")
        return 143
    except BenchError as e:
        log(str(e))
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if signals is not None:
            signals.stop()
            if args.keep:
                with open(os.path.join(directory, "signals.log"), "w") as f:
                    for t, member, values in signals.events:
                        f.write(f"{t} {member} {json.dumps(values, ensure_ascii=False)}\n")
        procs.stop_all()
        if ca is not None:
            ca.proxy.close()
        if sc is not None:
            sc.notify.close()
        if args.keep:
            log(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    ratio, over_p50, over_max = report(args, sc_runs, bh_runs, version_lines,
                                       "odd rounds: safecad first", scale)
    if not args.skip_cmp:
        report_cmp(sc_runs, cmp_sc_runs, cmp_bh_runs)
    print(f"check: certificates on the tokens afterwards: safecad {objects['safecad']}, "
          f"by hand {objects['byhand']} (1 + {args.rounds} each expected); CA actions: "
          + ", ".join(f"{s} {states.count(s)}" for s in sorted(set(states))))
    if daemon_warnings:
        print("safecad logged:")
        for line in daemon_warnings[:20]:
            print("  " + line)
    missed = []
    if ratio > TARGET_RATIO:
        missed.append("ratio")
    if over_p50 > TARGET_OVERHEAD_MS:
        missed.append("overhead")
    if missed:
        explain(missed, sc_runs, bh_runs, scale)
    if args.check and missed:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
