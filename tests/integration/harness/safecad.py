# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon, safectl and the per-test world they run in."""

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from gi.repository import GLib

from . import bus as busmod
from .pcsc import Pcscd, VpcdCard
from .softhsm import MODULE as SOFTHSM_MODULE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("SAFECAD_BUILD_DIR") or os.path.join(REPO, "build")
DAEMON = os.path.join(BUILD_DIR, "daemon", "safecad")
SAFECTL = os.path.join(BUILD_DIR, "client", "safectl")
LSAN_SUPP = os.path.join(REPO, "tests", "lsan.supp")

SANITIZER_ERRORS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

READY_TIMEOUT = 20  # sanitizers are slow
STOP_TIMEOUT = 5


def sanitizer_env():
    return {
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
        "LSAN_OPTIONS": f"suppressions={LSAN_SUPP}:print_suppressions=0",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }


def assert_sanitizer_clean(text, what):
    for marker in SANITIZER_ERRORS:
        assert marker not in text, f"{what}: sanitizer report ({marker!r}):\n{text}"


DEFAULT_PROFILE = """\
# SAFE-CA, as the tests' PKI makes it
[ca]
name = SAFE-CA
protocol = v1
url = http://127.0.0.1:1/activation/v1
issuers = {issuers}
support = 1900 6154 (T2–T6 8:00–17:00, T7 8:00–12:00)
[agency.tax]
name = Thuế điện tử (Tổng cục Thuế)
url = https://thuedientu.gdt.gov.vn
[agency.procurement]
name = Hệ thống mạng đấu thầu quốc gia
url = https://muasamcong.mpi.gov.vn
"""


def config_text(modules=(SOFTHSM_MODULE,)):
    return (
        "# safecad.conf for an integration test\n"
        "[pkcs11]\n"
        f"modules = {', '.join(modules)}\n"
        "[expiry]\n"
        "warn_days = 30,14,7,3,1\n"
        "[network]\n"
        "connect_timeout = 10\n"
        "timeout = 60\n"
    )


class Daemon:
    def __init__(self, world, env, log_path):
        self.world = world
        self.env = env
        self.log_path = log_path
        self.notify_path = os.path.join(world.dir, "notify")
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        env = dict(env, NOTIFY_SOCKET=self.notify_path)
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [DAEMON], env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log, cwd=world.dir, start_new_session=True,
        )
        self.pid = self.proc.pid
        self.checked = False
        self.notifications = []

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        self.notify.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                msg = self.notify.recv(4096).decode(errors="replace")
                self.notifications.append(msg)
                if "READY=1" in msg.split("\n"):
                    self._drain()
                    return self
            except socket.timeout:
                pass
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"safecad exited {self.proc.returncode} before READY=1:\n{self.log()}")
        raise AssertionError(f"safecad sent no READY=1 within {timeout}s:\n{self.log()}")

    def _drain(self):
        """Keeps reading the notify socket, as systemd does: the daemon
        sends STATUS= at every change of its token list, and a full socket
        would block it."""
        sock = self.notify
        self._draining = True

        def run():
            sock.settimeout(0.2)
            while self._draining:
                try:
                    msg = sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    return
                self.notifications.append(msg.decode(errors="replace"))
        self._drainer = threading.Thread(target=run, daemon=True)
        self._drainer.start()

    def wait_exit(self, timeout=READY_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"safecad did not exit within {timeout}s:\n{self.log()}")

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM; the daemon must exit 0, promptly and sanitizer-clean.
        Returns the seconds it took."""
        self.checked = True
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"safecad did not exit within {timeout}s of SIGTERM:\n{self.log()}")
        took = time.monotonic() - t0
        self.close()
        log = self.log()
        assert self.proc.returncode == 0, f"safecad exited {self.proc.returncode}:\n{log}"
        assert_sanitizer_clean(log, "safecad")
        return took

    def close(self):
        drainer = getattr(self, "_drainer", None)
        if drainer:
            self._draining = False
            drainer.join(5)
        self.notify.close()
        if not self._log.closed:
            self._log.close()

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def context_switches(self):
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            except FileNotFoundError:
                pass
        return total


class Watch:
    """`safectl [--json] watch`, read line by line in a thread."""

    def __init__(self, world, json_mode=True):
        argv = [SAFECTL] + (["--json"] if json_mode else []) + ["watch"]
        self.json_mode = json_mode
        self.proc = subprocess.Popen(
            argv, env=world.client_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        self.lines = queue.Queue()
        self.all_lines = []
        self.pending = []
        threading.Thread(target=self._read, daemon=True).start()
        self._wait_connected(world)

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.all_lines.append(line)
            self.lines.put(line)

    def _wait_connected(self, world):
        """Until safectl has a connection on the bus (then a little longer
        for its match rules): nothing tells when it listens."""
        conn = world.bus.connection()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"safectl watch exited {self.proc.returncode}: {self.proc.stderr.read()}")
            names = conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                   "org.freedesktop.DBus", "ListNames", None, None, 0, 5000,
                                   None).unpack()[0]
            for n in names:
                if not n.startswith(":"):
                    continue
                try:
                    pid = conn.call_sync(
                        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "GetConnectionUnixProcessID", GLib.Variant("(s)", (n,)), None, 0, 5000,
                        None).unpack()[0]
                except GLib.Error:
                    continue
                if pid == self.proc.pid:
                    time.sleep(0.5)
                    return
            time.sleep(0.05)
        raise AssertionError("safectl watch did not connect to the bus within 10 s")

    def wait_for(self, match, timeout=10):
        """The first line for which match(line) is true."""
        deadline = time.monotonic() + timeout
        for i, line in enumerate(self.pending):
            if match(line):
                return self.pending.pop(i)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"safectl watch: no matching line in {timeout}s; "
                                   f"lines so far: {self.all_lines}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if match(line):
                return line
            self.pending.append(line)

    def wait_event(self, event, serial, timeout=10):
        def match(line):
            try:
                obj = json.loads(line)
            except ValueError:
                return False
            return obj.get("event") == event and obj.get("serial") == serial
        return json.loads(self.wait_for(match, timeout))

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        err = self.proc.stderr.read().decode(errors="replace")
        assert_sanitizer_clean(err, "safectl watch")
        return err


class World:
    """Everything one test runs in: a folder, a private bus, a SoftHSM
    token folder, optionally a pcscd, the daemon's configuration."""

    def __init__(self, directory, pki):
        from .softhsm import SoftHSM

        self.dir = directory
        self.pki = pki
        self.confdir = os.path.join(directory, "conf")
        self.statedir = os.path.join(directory, "state")
        self.datadir = os.path.join(REPO, "data")
        os.makedirs(os.path.join(self.confdir, "ca.d"))
        os.makedirs(self.statedir)
        self.bus = busmod.Bus(os.path.join(directory, "bus"))
        self.softhsm = SoftHSM(os.path.join(directory, "hsm"))
        self.pcscd = None
        self.pcsc_socket = os.path.join(directory, "no-pcscd", "pcscd.comm")
        self.daemons = []
        self.watches = []
        self.listeners = []
        self.cards = []
        self.write_config()
        self.write_profile("safe-ca.conf", "SAFE-CA", pki.safe_issuers_pem)

    # --- configuration ---------------------------------------------------
    def write_config(self, text=None, modules=(SOFTHSM_MODULE,)):
        path = os.path.join(self.confdir, "safecad.conf")
        with open(path, "w") as f:
            f.write(text if text is not None else config_text(modules))
        return path

    def write_profile(self, filename, name, issuers_pem, folder=None, text=None):
        """A CA profile; the issuers file is copied beside it and named
        relatively, as PRODUCT.md allows."""
        folder = folder or os.path.join(self.confdir, "ca.d")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, filename)
        if text is None:
            issuers_name = os.path.splitext(filename)[0] + "-issuers.pem"
            shutil.copy(issuers_pem, os.path.join(folder, issuers_name))
            text = DEFAULT_PROFILE.format(issuers=issuers_name).replace(
                "name = SAFE-CA", f"name = {name}", 1)
        with open(path, "w" if isinstance(text, str) else "wb") as f:
            f.write(text)
        return path

    # --- pcscd and cards ---------------------------------------------------
    def start_pcscd(self):
        self.pcscd = Pcscd(os.path.join(self.dir, "pcsc")).start()
        self.pcsc_socket = self.pcscd.link
        return self.pcscd

    def insert_card(self):
        card = VpcdCard(self.pcscd.port).insert()
        self.cards.append(card)
        return card

    # --- processes -------------------------------------------------------
    def base_env(self):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "LANG": "C.UTF-8",
            # Far from UTC, as for Vietnamese users: a stray use of local
            # time in days_left or the RFC 3339 times shows.
            "TZ": os.environ.get("TZ", "Asia/Ho_Chi_Minh"),
            "DBUS_SYSTEM_BUS_ADDRESS": self.bus.address,
            "SOFTHSM2_CONF": self.softhsm.conf,
            "PCSCLITE_CSOCK_NAME": self.pcsc_socket,
        }
        env.update(sanitizer_env())
        return env

    def daemon_env(self, **extra):
        env = self.base_env()
        env.update({
            "CONFIGURATION_DIRECTORY": self.confdir,
            "STATE_DIRECTORY": self.statedir,
            "SAFECAD_DATADIR": self.datadir,
        })
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def client_env(self):
        return self.base_env()

    def start_daemon(self, wait=True, **extra_env):
        if not os.access(DAEMON, os.X_OK):
            raise AssertionError(f"{DAEMON} is missing: build safecad first "
                                 "(SAFECAD_BUILD_DIR names the build folder)")
        log = os.path.join(self.dir, f"safecad-{len(self.daemons)}.log")
        d = Daemon(self, self.daemon_env(**extra_env), log)
        self.daemons.append(d)
        if wait:
            d.wait_ready()
            conn = self.bus.connection()
            assert busmod.name_has_owner(conn), "READY=1 sent before owning the bus name"
        return d

    def safectl(self, *args, json_out=False, timeout=30, check_clean=True):
        if not os.access(SAFECTL, os.X_OK):
            raise AssertionError(f"{SAFECTL} is missing: build safectl first")
        argv = [SAFECTL] + (["--json"] if json_out else []) + list(args)
        r = subprocess.run(argv, env=self.client_env(), capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        out = r.stdout.decode(errors="replace")
        err = r.stderr.decode(errors="replace")
        if check_clean:
            assert_sanitizer_clean(err, f"safectl {' '.join(args)}")
        return r.returncode, out, err

    def status(self):
        rc, out, err = self.safectl("status", json_out=True)
        assert rc == 0, f"safectl --json status exited {rc}: {out}{err}"
        try:
            obj = json.loads(out)
        except ValueError as e:
            raise AssertionError(f"safectl --json status printed no JSON ({e}): {out!r}")
        assert isinstance(obj, dict) and isinstance(obj.get("tokens"), list), obj
        return obj["tokens"]

    def watch(self, json_mode=True):
        w = Watch(self, json_mode)
        self.watches.append(w)
        return w

    def listener(self):
        listener = busmod.SignalListener(self.bus.address)
        self.listeners.append(listener)
        return listener

    def rescan(self):
        busmod.rescan(self.bus.connection())

    # --- teardown --------------------------------------------------------
    def teardown(self):
        """Stops everything; returns the problems found (daemon exit code,
        sanitizer reports) for the fixture to fail on."""
        problems = []
        for w in self.watches:
            try:
                w.stop()
            except AssertionError as e:
                problems.append(str(e))
        for listener in self.listeners:
            listener.stop()
        for d in self.daemons:
            if d.checked:
                continue
            try:
                d.stop()
            except AssertionError as e:
                problems.append(str(e))
            finally:
                d.kill()
                d.close()
        for c in self.cards:
            try:
                c.remove()
            except AssertionError as e:
                problems.append(str(e))
        if self.pcscd:
            self.pcscd.stop()
        self.bus.stop()
        return problems


def find_token(tokens, serial):
    found = [t for t in tokens if t.get("serial") == serial]
    assert len(found) == 1, f"token {serial} listed {len(found)} times in {tokens}"
    return found[0]


def child_pids(pid):
    """The running processes whose parent is pid (the daemon's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def wait_until(predicate, timeout=10, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def lines_matching(text, *words):
    return [line for line in text.splitlines()
            if all(re.search(w, line, re.I) for w in words)]
