# SPDX-License-Identifier: LGPL-2.1-or-later
"""A private pcscd with a vpcd reader, and a tiny vpcd card.

pcscd always binds /run/pcscd/pcscd.comm, so each test runs its own pcscd in
a private mount namespace with the test's own folder bind-mounted there;
clients reach it at <directory>/run/pcscd.comm. (Not through
/proc/<pid>/root, as FACTS.md has it: the workers' Landlock domain may not
look into another process's root.) vpcd listens on a TCP port
(and port+1): a card "inserts" by connecting and "leaves" by closing.
"""

import ctypes
import os
import signal
import socket
import struct
import subprocess
import threading
import time

VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
ATR = bytes.fromhex("3B80800101")


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port_pair():
    """A port p with p and p+1 free (vpcd listens on both)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        if port < 65535 and _port_free(port) and _port_free(port + 1):
            return port
    raise RuntimeError("no free port pair")


def _port_listening(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        try:
            # Probing vpcd's second reader (port+1) would insert a card
            # there; probe with a bind test instead.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            return False
        except OSError:
            return True


class Pcscd:
    def __init__(self, directory):
        self.directory = directory
        self.confdir = os.path.join(directory, "reader.conf.d")
        os.makedirs(self.confdir, exist_ok=True)
        self.port = None
        self.proc = None
        self.log_path = os.path.join(directory, "pcscd.log")
        # A stable path for clients: a symlink to the namespaced socket, so
        # a restarted pcscd (another pid) can be reached at the same name.
        self.link = os.path.join(directory, "pcscd.comm")
        self.rundir = os.path.join(directory, "run")

    @property
    def socket_path(self):
        return os.path.join(self.rundir, "pcscd.comm")

    def start(self, port=None, timeout=10):
        self.port = port or self.port or free_port_pair()
        with open(os.path.join(self.confdir, "vpcd"), "w") as f:
            f.write(
                'FRIENDLYNAME "Virtual PCD"\n'
                f"DEVICENAME /dev/null:0x{self.port:X}\n"
                f"LIBPATH {VPCD_DRIVER}\n"
                f"CHANNELID 0x{self.port:X}\n"
            )
        # What a pcscd killed earlier left behind.
        os.makedirs(self.rundir, mode=0o755, exist_ok=True)
        for name in os.listdir(self.rundir):
            os.unlink(os.path.join(self.rundir, name))
        script = (
            f"mkdir -p /run/pcscd && mount --bind '{self.rundir}' /run/pcscd && "
            f"exec pcscd -f -c '{self.confdir}'"
        )
        self._log = open(self.log_path, "ab")
        # unshare execs without forking, so the child's pid is pcscd's.
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pcscd exited {self.proc.returncode}: {self.log()}")
            if os.path.exists(self.socket_path) and _port_listening(self.port):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"pcscd did not come up: {self.log()}")
        tmp = self.link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(self.socket_path, tmp)
        os.replace(tmp, self.link)
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._log.close()


class VpcdCard:
    """A card in vpcd's reader: connecting inserts it, close() removes it."""

    def __init__(self, port, atr=ATR):
        self.port = port
        self.atr = atr
        self.sock = None
        self.thread = None
        self.apdus = []

    def insert(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.connect(("127.0.0.1", self.port))
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        self.sock = s
        self.thread = threading.Thread(target=self._serve, args=(s,), daemon=True)
        self.thread.start()
        return self

    def _recv_exact(self, s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return buf

    def _send(self, s, payload):
        s.sendall(struct.pack(">H", len(payload)) + payload)

    def _serve(self, s):
        try:
            while True:
                (length,) = struct.unpack(">H", self._recv_exact(s, 2))
                msg = self._recv_exact(s, length) if length else b""
                if len(msg) == 1:
                    if msg[0] == 0x04:
                        self._send(s, self.atr)
                    # 0x00 power off, 0x01 power on, 0x02 reset: no reply
                else:
                    self.apdus.append(msg)
                    self._send(s, bytes.fromhex("6D00"))
        except (EOFError, OSError):
            pass

    def remove(self):
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        if self.thread is not None:
            self.thread.join(5)
            self.thread = None


# --- an independent PC/SC observer (libpcsclite through ctypes) -------------

SCARD_S_SUCCESS = 0
SCARD_SCOPE_SYSTEM = 2
SCARD_STATE_UNAWARE = 0
SCARD_STATE_PRESENT = 0x20
SCARD_E_TIMEOUT = 0x8010000A
INFINITE = 0xFFFFFFFF


class _ReaderState(ctypes.Structure):
    _fields_ = [
        ("szReader", ctypes.c_char_p),
        ("pvUserData", ctypes.c_void_p),
        ("dwCurrentState", ctypes.c_ulong),
        ("dwEventState", ctypes.c_ulong),
        ("cbAtr", ctypes.c_ulong),
        ("rgbAtr", ctypes.c_ubyte * 33),
    ]


def card_present(socket_path, reader_prefix=b"Virtual PCD 00 00", timeout=0.0):
    """Whether pcscd at socket_path sees a card in the first vpcd reader.

    Runs in a child process because libpcsclite reads PCSCLITE_CSOCK_NAME
    once per process."""
    code = f"""
import ctypes, sys
sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
from harness.pcsc import _probe
sys.exit(_probe({reader_prefix!r}, {timeout!r}))
"""
    r = subprocess.run(["/usr/bin/python3", "-c", code],
                       env=dict(os.environ, PCSCLITE_CSOCK_NAME=socket_path),
                       capture_output=True, text=True, timeout=timeout + 15)
    if r.returncode not in (0, 1):
        raise RuntimeError(f"pcsc probe failed: {r.returncode} {r.stderr}")
    return r.returncode == 0


def _open_reader(reader_prefix):
    """(library, context, reader state) for the first reader whose name
    starts with reader_prefix, or an exit code for _probe."""
    lib = ctypes.CDLL("libpcsclite.so.1")
    ctx = ctypes.c_long()
    rv = lib.SCardEstablishContext(SCARD_SCOPE_SYSTEM, None, None, ctypes.byref(ctx))
    if rv != SCARD_S_SUCCESS:
        return 3
    size = ctypes.c_ulong(0)
    lib.SCardListReaders(ctx, None, None, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    if lib.SCardListReaders(ctx, None, buf, ctypes.byref(size)) != SCARD_S_SUCCESS:
        return 4
    readers = [r for r in buf.raw.split(b"\0") if r]
    names = [r for r in readers if r.startswith(reader_prefix)]
    if not names:
        return 5
    st = _ReaderState()
    st.szReader = names[0]
    st.dwCurrentState = SCARD_STATE_UNAWARE
    lib.SCardGetStatusChange.argtypes = [ctypes.c_long, ctypes.c_ulong,
                                         ctypes.POINTER(_ReaderState), ctypes.c_ulong]
    return lib, ctx, st


def _probe(reader_prefix, timeout):
    opened = _open_reader(reader_prefix)
    if isinstance(opened, int):
        return opened
    lib, ctx, st = opened
    deadline = time.monotonic() + timeout
    while True:
        rv = lib.SCardGetStatusChange(ctx, 0, ctypes.byref(st), 1) & 0xFFFFFFFF
        if rv not in (SCARD_S_SUCCESS, SCARD_E_TIMEOUT):
            return 6
        if st.dwEventState & SCARD_STATE_PRESENT:
            return 0
        if time.monotonic() >= deadline:
            return 1
        time.sleep(0.05)


def observe(reader_prefix=b"Virtual PCD 00 00"):
    """Waits in SCardGetStatusChange(INFINITE) on the first vpcd reader and
    prints "<CLOCK_MONOTONIC ns> <dwEventState>" each time pcscd wakes it:
    an independent client's view of when a card event reached PC/SC
    clients (bench/service-bench.py). The first line is the state at start.
    Run it in a process of its own with PCSCLITE_CSOCK_NAME set."""
    opened = _open_reader(reader_prefix)
    if isinstance(opened, int):
        return opened
    lib, ctx, st = opened
    timeout = 0
    while True:
        rv = lib.SCardGetStatusChange(ctx, timeout, ctypes.byref(st), 1) & 0xFFFFFFFF
        now = time.monotonic_ns()
        if rv != SCARD_S_SUCCESS:
            print(f"{now} error 0x{rv:08X}", flush=True)
            return 6
        print(f"{now} {st.dwEventState}", flush=True)
        st.dwCurrentState = st.dwEventState
        timeout = INFINITE
