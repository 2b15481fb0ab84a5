#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Soak benchmark: does the daemon hold up under load?

One run, on a private system bus, with the integration tests' harness
(tests/integration/harness): the sanitizer build of safecad (ASan + UBSan,
leak detection on, tests/lsan.supp), SoftHSM tokens, its own pcscd with the
vpcd reader, dbusmock's polkitd, and the reference CA. Then, at once:

  - status load: bench/soak-client.c (C, sd-bus; compiled by this script)
    runs --clients threads, each with its own bus connection, making
    --calls calls in all: Properties.Get/GetAll on the token objects and
    the manager, ObjectManager.GetManagedObjects on /org/safecad, and every
    250th call a `safectl --json status` process;
  - token churn: every --churn-interval seconds a SoftHSM token is made
    and a vpcd card inserted, or the token deleted and the card removed,
    while a monitor on the bus checks that each insert gives exactly one
    TokenAdded for that serial and each removal one TokenRemoved;
  - activations: one token renews in a loop, run as an unprivileged user
    so that every activation goes through polkit: the reference CA queues a
    renewal of the token's current certificate, `safectl check`, `safectl
    activate --yes --pin-fd N`, the new certificate must be the token's
    current one, then `safectl agencies done` and `safectl remove-previous`
    keep the token's contents from growing.

The load starts once one churn cycle and one activation have completed, so
that what the daemon allocates once per code path is in the baseline.
Figures: calls, errors, lost signals, activations, the daemon's VmRSS after
the first 10 000 calls and after the last (goal: growth <= 256 KiB, taken
as the median of 10 samples a second over the last tenth of the calls
minus that over the tenth after the first 10 000), p50/p99 of the property
reads, and, after SIGTERM, its exit status and whether its log holds a
sanitizer report. A table, then one JSON line (the last line of stdout).

Exit status: 0 it ran and met every goal, 3 it ran and missed one, 1 it
could not run. Not part of `meson test`. See bench/README.md ("Soak").
"""

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS_DIR = os.path.join(REPO, "tests", "integration")

GOAL_RSS_GROWTH_KIB = 256
NOBODY = 65534
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
SIGNAL_TIMEOUT = 30.0       # an insert or removal must be reported within this
STABLE_TOKENS = 4           # tokens in from start to end, besides the activating one
AGENCIES = ("tax", "customs", "procurement")   # harness.refca's profile
KEY_SPECS = (
    {"generate": True, "type": "ec", "curve": "P-256"},
    {"generate": True, "type": "rsa", "bits": 2048},
)


class Stop(Exception):
    """SIGTERM or SIGHUP: unwind and clean up, as for Ctrl-C."""


class SoakError(Exception):
    """The soak could not run."""


def log(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def percentile(values, per_mille):
    """Nearest rank, as bench/prop-latency does."""
    if not values:
        return None
    v = sorted(values)
    rank = (len(v) * per_mille + 999) // 1000
    return v[max(rank, 1) - 1]


# ---------------------------------------------------------------- /proc

def proc_status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


ASAN_HEAP = (0x600000000000, 0x640000000000)      # ASan's primary allocator (x86_64)
ASAN_SHADOW = (0x7fff8000, 0x10007fff8000)        # low shadow .. high shadow (x86_64)


def rss_by_kind(pid):
    """Resident KiB of the daemon by kind of mapping (/proc/PID/smaps): ASan's
    heap, its shadow, other anonymous memory (thread stacks, ASan's own
    tables, large allocations), [heap], [stack], each mapped file."""
    kinds = collections.Counter()
    kind = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split(None, 1)[0]
                if "-" in head and not head.endswith(":"):
                    fields = line.split(None, 5)
                    start = int(fields[0].split("-")[0], 16)
                    name = fields[5].strip() if len(fields) > 5 else ""
                    if name.startswith("/"):
                        kind = os.path.basename(name)
                    elif name:
                        kind = name
                    elif ASAN_HEAP[0] <= start < ASAN_HEAP[1]:
                        kind = "ASan heap"
                    elif ASAN_SHADOW[0] <= start < ASAN_SHADOW[1]:
                        kind = "ASan shadow"
                    else:
                        kind = "other anonymous"
                elif head == "Rss:":
                    kinds[kind] += int(line.split()[1])
    except OSError:
        return None
    return dict(kinds)


def daemon_sample(pid):
    return {"rss_kib": proc_status(pid, "VmRSS"), "threads": proc_status(pid, "Threads"),
            "fds": proc_fds(pid), "rss_by_kind": rss_by_kind(pid)}


# ---------------------------------------------------------------- the bus monitor

class Monitor:
    """TokenAdded/TokenRemoved on the manager, from a connection of its own
    (a thread with its own GLib main context)."""

    def __init__(self, address, busmod):
        from gi.repository import Gio, GLib
        self._Gio, self._GLib = Gio, GLib
        self.busmod = busmod
        self.events = []            # (monotonic, member, path, serial)
        self.cond = threading.Condition()
        self._ready = threading.Event()
        self._error = None
        self._address = address
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise SoakError("the signal monitor did not start")
        if self._error:
            raise SoakError(f"the signal monitor could not connect: {self._error}")

    def _run(self):
        Gio, GLib = self._Gio, self._GLib
        ctx = GLib.MainContext()
        ctx.push_thread_default()
        try:
            self._conn = self.busmod.connect(self._address)
            for member in ("TokenAdded", "TokenRemoved"):
                self._conn.signal_subscribe(None, self.busmod.MANAGER_IFACE, member,
                                            self.busmod.MANAGER_PATH, None,
                                            Gio.DBusSignalFlags.NONE, self._on_signal, None)
            # A round trip: the match rules are in place when this returns.
            self._conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "GetId", None, None,
                                 Gio.DBusCallFlags.NONE, 5000, None)
            self._loop = GLib.MainLoop(ctx)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run()
        self._conn.close_sync(None)
        ctx.pop_thread_default()

    def _on_signal(self, conn, sender, path, iface, member, params, data):
        obj_path, serial = params.unpack()
        with self.cond:
            self.events.append((time.monotonic(), member, obj_path, serial))
            self.cond.notify_all()

    def wait(self, member, serial, since, timeout):
        """The first `member` signal for `serial` received at or after
        `since`; None after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events:
                    if ev[1] == member and ev[3] == serial and ev[0] >= since:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def counts(self):
        with self.cond:
            return collections.Counter((ev[1], ev[3]) for ev in self.events)

    def stop(self):
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.get_context().invoke_full(self._GLib.PRIORITY_DEFAULT, loop.quit)
            self._thread.join(5)


# ---------------------------------------------------------------- churn

class Churn(threading.Thread):
    """A token comes (SoftHSM token made, then a vpcd card inserted) and goes
    (token deleted, card removed), one every `interval` seconds."""

    def __init__(self, world, monitor, pool, interval, daemon_alive, VpcdCard):
        super().__init__(daemon=True, name="churn")
        self.world = world
        self.monitor = monitor
        self.pool = pool
        self.interval = interval
        self.daemon_alive = daemon_alive
        self.VpcdCard = VpcdCard
        self.stop_event = threading.Event()
        self.cycles = 0                 # insert + removal both done
        self.inserted = []              # serials
        self.removed = []
        self.add_latency = []           # s from the card's connect to TokenAdded
        self.remove_latency = []        # s from the card's close to TokenRemoved
        self.problems = []              # (serial, what)
        self.failure = None             # the thread could not go on
        self.delete_races = 0           # token folders removed by hand
        self.first_cycle = threading.Event()

    def _listed(self, serial):
        """Whether the manager's Tokens lists a token with this serial."""
        import harness.bus as busmod
        try:
            conn = self.world.bus.connection()
            for path in busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE,
                                            "Tokens"):
                if busmod.get_property(conn, path, busmod.TOKEN_IFACE, "Serial") == serial:
                    return True
        except Exception:  # noqa: BLE001 - a token leaving between the two calls
            pass
        return False

    def _delete(self, token):
        """softhsm2-util --delete-token. The daemon's SoftHSM may be writing in
        the token's folder at that moment (its lock file), and then the tool
        removes the files but not the folder: the folder goes by hand."""
        try:
            token.delete()
        except RuntimeError as e:
            m = re.search(r"Could not delete the directory: (\S+)", str(e))
            if not m or not m.group(1).startswith(self.world.softhsm.tokendir + "/"):
                raise
            shutil.rmtree(m.group(1), ignore_errors=True)
            self.world.softhsm.tokens.pop(token.label, None)
            self.delete_races += 1

    def run(self):
        n = 0
        try:
            while not self.stop_event.is_set() and self.daemon_alive():
                self._cycle(n)
                n += 1
        except Exception as e:  # noqa: BLE001 - reported in the figures
            self.failure = f"{type(e).__name__}: {e}"
            log(f"churn stopped: {self.failure}")
        finally:
            self.first_cycle.set()

    def _cycle(self, n):
        label = f"Soak Churn {n:05d}"
        # A module reload for any other reason (another card, a job's end)
        # may show the new token before its card is in: TokenAdded counts
        # from the moment the token is made, the latency from the insert.
        t_made = time.monotonic()
        token = self.world.softhsm.create_token(label)
        issued = self.pool[n % len(self.pool)]
        token.add_pair(issued, "c1", label="Churn")
        card = self.VpcdCard(self.world.pcscd.port)
        t_insert = time.monotonic()
        card.insert()
        self.inserted.append(token.serial)
        ev = self.monitor.wait("TokenAdded", token.serial, t_made,
                               SIGNAL_TIMEOUT + (t_insert - t_made))
        seen = ev is not None
        if ev is None:
            seen = self._listed(token.serial)
            self.problems.append((token.serial, f"no TokenAdded within {SIGNAL_TIMEOUT:.0f} s "
                                  "of the insert; " + (
                                      "the token is listed in Tokens (the signal is lost)"
                                      if seen else "the token is not listed in Tokens either "
                                      "(the daemon did not see it come)")))
        else:
            self.add_latency.append(max(0.0, ev[0] - t_insert))
        self.stop_event.wait(self.interval)
        t_deleted = time.monotonic()
        try:
            self._delete(token)
        finally:
            t_remove = time.monotonic()
            card.remove()
        self.removed.append(token.serial)
        # A token the daemon never showed has nothing to report leaving
        # (a stray TokenRemoved would still be counted at the end).
        ev = self.monitor.wait("TokenRemoved", token.serial, t_deleted,
                               (SIGNAL_TIMEOUT if seen else 1.0) + (t_remove - t_deleted))
        if ev is None and seen:
            self.problems.append((token.serial, "no TokenRemoved within "
                                  f"{SIGNAL_TIMEOUT:.0f} s; still listed in Tokens: "
                                  f"{self._listed(token.serial)}"))
        elif ev is not None:
            self.remove_latency.append(max(0.0, ev[0] - t_remove))
        self.cycles += 1
        self.first_cycle.set()
        self.stop_event.wait(self.interval)


# ---------------------------------------------------------------- activations

class Activations(threading.Thread):
    """One token renews in a loop: the CA queues a renewal of its current
    certificate; check; activate (as an unprivileged user, through polkit);
    the new certificate must be the current one; agencies done;
    remove-previous."""

    def __init__(self, world, ca, token, first_cert, safectl, pin, as_nobody, daemon_alive,
                 window):
        super().__init__(daemon=True, name="activations")
        self.world = world
        self.ca = ca
        self.token = token
        self.first_cert = first_cert
        self.safectl = safectl
        self.pin = pin
        self.as_nobody = as_nobody
        self.daemon_alive = daemon_alive
        self.window = window
        self.stop_event = threading.Event()
        self.done = 0                   # `safectl activate` runs that exited 0
        self.failed = 0                 # ... and that did not
        self.other_failures = 0         # check, status after, agencies, remove-previous
        self.cycles = 0                 # renewals through to remove-previous
        self.busy = 0                   # exit 8, retried
        self.seconds = []               # wall time of each successful `safectl activate`
        self.failures = []              # what went wrong, with the output
        self.failure = None
        self.first_done = threading.Event()
        self.current_serial = None

    def _run(self, args, pin=False, timeout=300):
        argv = [self.safectl] + list(args)
        if self.as_nobody:
            argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                    "--"] + argv
        fds = ()
        if pin:
            r, w = os.pipe()
            os.write(w, (self.pin + "\n").encode())
            os.close(w)
            fds = (r,)
            argv += ["--pin-fd", str(r)]
        try:
            t0 = time.monotonic()
            p = subprocess.run(argv, env=self.world.client_env(), pass_fds=fds,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=timeout)
            return p.returncode, p.stdout, p.stderr, time.monotonic() - t0
        except subprocess.TimeoutExpired as e:
            return -1, e.stdout or "", f"(no end within {timeout} s) {e.stderr or ''}", timeout
        finally:
            for fd in fds:
                os.close(fd)

    def _step(self, what, args, pin=False, retry_busy=True):
        deadline = time.monotonic() + 120
        while True:
            rc, out, err, secs = self._run(args, pin)
            for marker in SANITIZER_MARKERS:
                if marker in err:
                    self.failures.append(f"{what}: safectl sanitizer report: {err[-3000:]}")
                    return False, secs
            if rc == 8 and retry_busy and time.monotonic() < deadline:
                self.busy += 1
                time.sleep(0.5)
                continue
            if rc != 0:
                self.failures.append(f"{what} exited {rc} after {secs:.1f} s: "
                                     f"{(out + err).strip()[-2000:]}")
                return False, secs
            return True, secs

    def _view(self):
        """What status and pkcs11-tool (not logged in) show of the token."""
        from harness.refca import parse_objects
        from harness.softhsm import MODULE
        parts = []
        rc, out, err, _ = self._run(["--json", "status"])
        if rc == 0:
            for t in json.loads(out)["tokens"]:
                if t["serial"] == self.token.serial:
                    parts.append("status: " + "; ".join(
                        f"{c['serial']} key_id {c['key_id']} {c['not_before']}..{c['not_after']}"
                        + (" CURRENT" if c["current"] else "") for c in t["certificates"]))
        r = subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", self.token.label,
                            "--list-objects"], env=self.world.softhsm.env, capture_output=True,
                           text=True, timeout=60)
        parts.append("pkcs11-tool (no login): " + "; ".join(
            f"{o['kind']} id {o['id']}" for o in parse_objects(r.stdout)))
        return "\n    ".join(parts)

    def _current_serial(self):
        rc, out, err, _ = self._run(["--json", "status"])
        if rc != 0:
            return None
        for t in json.loads(out)["tokens"]:
            if t["serial"] == self.token.serial:
                current = [c["serial"] for c in t["certificates"] if c["current"]]
                return current[0] if len(current) == 1 else None
        return None

    def _delete(self, token):
        """softhsm2-util --delete-token. The daemon's SoftHSM may be writing in
        the token's folder at that moment (its lock file), and then the tool
        removes the files but not the folder: the folder goes by hand."""
        try:
            token.delete()
        except RuntimeError as e:
            m = re.search(r"Could not delete the directory: (\S+)", str(e))
            if not m or not m.group(1).startswith(self.world.softhsm.tokendir + "/"):
                raise
            shutil.rmtree(m.group(1), ignore_errors=True)
            self.world.softhsm.tokens.pop(token.label, None)
            self.delete_races += 1

    def run(self):
        n = 0
        try:
            while not self.stop_event.is_set() and self.daemon_alive():
                self._cycle(n)
                n += 1
                self.first_done.set()
        except Exception as e:  # noqa: BLE001 - reported in the figures
            self.failure = f"{type(e).__name__}: {e}"
            log(f"activations stopped: {self.failure}")
        finally:
            self.first_done.set()

    def _cycle(self, n):
        serial = self.token.serial
        key = KEY_SPECS[n % len(KEY_SPECS)]
        # Each renewal ends an hour after the one before: two renewals in the
        # same second would otherwise tie, and the daemon rightly takes the
        # greater serial as current (PRODUCT.md), not the newer certificate.
        fields = dict(type="renew", key=key, message=f"Soak renewal {n}",
                      **self.window(365 + (n + 1) / 24))
        if n == 0:
            action = self.ca.admin.add_action(self.first_cert.cert, **fields)
        else:
            action = self.ca.admin.add_action(replaces_serial=self.current_serial, **fields)
        action_id = action["id"]
        ok, _ = self._step(f"#{n} check", ["check", serial])
        if not ok:
            self.other_failures += 1
            self._abandon(action_id)
            return
        for attempt in range(2):
            # A second time: an interrupted activation continues where it
            # stopped (each failed run counts).
            ok, secs = self._step(f"#{n} activate {action_id} ({key['type']})"
                                  + (" again" if attempt else ""),
                                  ["activate", serial, action_id, "--yes"], pin=True)
            if ok:
                break
            self.failed += 1
        if not ok:
            self._abandon(action_id)
            return
        self.done += 1
        self.seconds.append(secs)
        issued = self.ca.admin.action(action_id).get("issued") or {}
        current = self._current_serial()
        if not issued.get("serial") or current != issued["serial"]:
            # Does the daemon's view catch up, and when?
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10 and current != issued.get("serial"):
                time.sleep(0.2)
                current = self._current_serial()
            self.other_failures += 1
            late = (f"it shows it {time.monotonic() - t0:.1f} s later"
                    if current == issued.get("serial") else "still not 10 s later")
            self.failures.append(f"#{n} right after `safectl activate` exited 0 for "
                                 f"{action_id}, status showed another certificate as "
                                 f"current than the one the CA issued ({issued.get('serial')});"
                                 f" {late}. The token then:\n    {self._view()}")
            if current != issued.get("serial"):
                self.current_serial = current or self.current_serial
                return
        self.current_serial = current
        ok, _ = self._step(f"#{n} agencies done", ["agencies", "done", *AGENCIES,
                                                   "--action", action_id])
        if ok:
            ok, _ = self._step(f"#{n} remove-previous", ["remove-previous", serial, "--yes"],
                               pin=True)
        if not ok:
            self.other_failures += 1
            return
        self.cycles += 1

    def _abandon(self, action_id):
        """Withdraws the action, so that the next cycle starts afresh from
        the token's current certificate."""
        try:
            self.ca.admin.withdraw(action_id)
        except Exception:  # noqa: BLE001 - best effort
            pass
        current = self._current_serial()
        if current:
            self.current_serial = current


# ---------------------------------------------------------------- set-up helpers

def check_tools(build_dir):
    missing = [t for t in ("dbus-daemon", "softhsm2-util", "pkcs11-tool", "unshare", "mount",
                           "gcc", "pkg-config", "setpriv", "busctl")
               if shutil.which(t) is None]
    if shutil.which("pcscd") is None and not os.path.exists("/usr/sbin/pcscd"):
        missing.append("pcscd")
    if missing:
        raise SoakError(f"not installed: {', '.join(missing)} (tools/install-deps.sh)")
    if not os.path.exists("/usr/lib/pcsc/drivers/serial/libifdvpcd.so"):
        raise SoakError("vsmartcard-vpcd is not installed (tools/install-deps.sh)")
    r = subprocess.run(["/usr/bin/python3", "-c", "import dbusmock"], capture_output=True)
    if r.returncode != 0:
        raise SoakError("python3-dbusmock is not installed (tools/install-deps.sh)")
    for binary in ("daemon/safecad", "client/safectl"):
        path = os.path.join(build_dir, binary)
        if not os.access(path, os.X_OK):
            raise SoakError(f"{path} is missing: build it first (bench/README.md, Soak)")
    ldd = subprocess.run(["ldd", os.path.join(build_dir, "daemon", "safecad")],
                         capture_output=True, text=True).stdout
    sanitized = "libasan" in ldd and "libubsan" in ldd
    if not sanitized:
        log(f"warning: {build_dir} is not a sanitizer build (meson setup DIR -Dbuildtype=debug "
            "-Db_sanitize=address,undefined -Db_lundef=false): no sanitizer check, the RSS "
            "figures are the plain daemon's")
    if os.path.exists(os.path.join(build_dir, "build.ninja")) and shutil.which("ninja"):
        r = subprocess.run(["ninja", "-C", build_dir, "-n", "daemon/safecad",
                            "client/safectl"], capture_output=True, text=True)
        if r.returncode == 0 and "no work to do" not in r.stdout:
            log(f"warning: {build_dir} is not up to date with the sources; soaking the "
                "binaries as they are")
    return sanitized


def build_client(directory):
    src = os.path.join(REPO, "bench", "soak-client.c")
    out = os.path.join(directory, "soak-client")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libsystemd", "jansson"],
                           capture_output=True, text=True)
    if flags.returncode != 0:
        raise SoakError(f"pkg-config libsystemd jansson: {flags.stderr.strip()}")
    r = subprocess.run(["gcc", "-O2", "-std=gnu11", "-Wall", "-pthread", "-o", out, src]
                       + flags.stdout.split(), capture_output=True, text=True)
    if r.returncode != 0:
        raise SoakError(f"compiling {src} failed:\n{r.stderr}")
    return out


def start_polkit(world, procs):
    import harness.bus as busmod
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=world.bus.address)
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--system", "--template",
                             "polkitd"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(world.dir, "polkitd.log"), "wb"),
                            stdin=subprocess.DEVNULL, start_new_session=True)
    procs.append(("polkitd (dbusmock)", proc))
    conn = world.bus.connection()
    deadline = time.monotonic() + 20
    while not busmod.name_has_owner(conn, "org.freedesktop.PolicyKit1"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SoakError("dbusmock's polkitd did not come up on the bus")
        time.sleep(0.05)
    actions = ["org.safecad.activate", "org.safecad.manage", "org.safecad.export"]
    subprocess.run(["busctl", f"--address={world.bus.address}", "call",
                    "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                    "org.freedesktop.DBus.Mock", "SetAllowed", "as", str(len(actions)),
                    *actions], check=True, capture_output=True)
    # The unprivileged user must reach the bus socket.
    for path in (os.path.dirname(world.dir), world.dir, os.path.dirname(world.bus.socket)):
        os.chmod(path, 0o755)


def stop_proc(name, proc, timeout=10):
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return proc.wait()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log(f"{name} (pid {proc.pid}) ignored SIGTERM, killing it")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait(5)


def daemon_stacks(pid):
    """Where each of the daemon's threads waits (/proc), and their
    backtraces when gdb is installed."""
    lines = []
    try:
        for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            base = f"/proc/{pid}/task/{tid}"
            try:
                with open(base + "/comm") as f:
                    comm = f.read().strip()
                with open(base + "/wchan") as f:
                    wchan = f.read().strip()
            except OSError:
                continue
            lines.append(f"thread {tid} ({comm}): waits in {wchan or '-'}")
    except OSError:
        return "(the daemon is gone)"
    if shutil.which("gdb"):
        try:
            r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 25"],
                               capture_output=True, text=True, timeout=120)
            lines += [line for line in r.stdout.splitlines()
                      if line.startswith(("Thread ", "#"))]
        except (OSError, subprocess.SubprocessError) as e:
            lines.append(f"(gdb failed: {e})")
    return "\n".join(lines)


def heap_probe(pid, sanitized, read_log):
    """The daemon's live heap in KiB, read with gdb (None without gdb): with
    ASan its own count of the bytes the program holds (no quarantine,
    redzones or caches); without, glibc's "in use bytes" of every arena
    (malloc_stats(), which prints to the daemon's stderr, its log). Steadier
    than VmRSS for telling the daemon's growth from the allocator's."""
    if not shutil.which("gdb"):
        return None
    if sanitized:
        calls = ["call (unsigned long) __sanitizer_get_current_allocated_bytes()",
                 "call (unsigned long) __sanitizer_get_heap_size()"]
    else:
        calls = ["call (void) malloc_stats()"]
    argv = ["gdb", "-nx", "-p", str(pid), "-batch"]
    for c in calls:
        argv += ["-ex", c]
    before = len(read_log())
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, DEBUGINFOD_URLS=""))
    except (OSError, subprocess.SubprocessError):
        return None
    if sanitized:
        values = re.findall(r"^\$\d+ = (\d+)$", r.stdout, re.M)
        if len(values) != 2:
            return None
        return {"allocated": int(values[0]) // 1024, "heap": int(values[1]) // 1024}
    text = read_log()[before:]
    m = re.search(r"Total \(incl\. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)",
                  text)
    if not m:
        return None
    return {"allocated": int(m.group(2)) // 1024, "heap": int(m.group(1)) // 1024}


def rss_trend(series):
    """Least-squares slope of VmRSS over time, and what it amounts to over
    the sampled window: a leak climbs steadily, allocator noise does not."""
    n = len(series)
    if n < 10:
        return None
    t0 = series[0][0]
    xs = [t - t0 for t, _ in series]
    ys = [kib for _, kib in series]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx   # KiB per second
    return {"samples": n, "seconds": round(xs[-1], 1),
            "kib_per_minute": round(slope * 60, 1),
            "kib_over_window": round(slope * xs[-1]), "min_kib": min(ys), "max_kib": max(ys)}


def growth_by_kind(before, after):
    """The kinds of mapping whose resident size changed, largest change first."""
    a = (before or {}).get("rss_by_kind") or {}
    b = (after or {}).get("rss_by_kind") or {}
    diff = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}
    return dict(sorted(((k, v) for k, v in diff.items() if v), key=lambda kv: -abs(kv[1])))


def suppressed_leaks(text):
    """LeakSanitizer's "Suppressions used" table at exit (print_suppressions=1):
    {template: [count, bytes]} of leaks tests/lsan.supp let through."""
    out = {}
    block = text.split("Suppressions used:", 1)
    if len(block) < 2:
        return out
    for line in block[1].splitlines()[2:]:
        m = re.match(r"\s*(\d+)\s+(\d+)\s+(\S+)", line)
        if not m:
            break
        out[m.group(3)] = [int(m.group(1)), int(m.group(2))]
    return out


def sanitizer_excerpt(text):
    """The first sanitizer report in `text`, shortened."""
    for marker in SANITIZER_MARKERS:
        i = text.find(marker)
        if i >= 0:
            start = text.rfind("\n", 0, max(0, i - 200)) + 1
            return text[start:start + 4000]
    return None


def notable_log_lines(text, limit=15):
    """The daemon's warning and error lines, counted after numbers and
    serials are masked."""
    counts = collections.Counter()
    first = {}
    for line in text.splitlines():
        if not re.search(r"warn|error|fail|cannot|could not", line, re.I):
            continue
        key = re.sub(r"[0-9a-f]{6,}|\d+", "#", line)
        counts[key] += 1
        first.setdefault(key, line)
    return [(n, first[k]) for k, n in counts.most_common(limit)]


# ---------------------------------------------------------------- report

def fmt_kib(kib):
    return "n/a" if kib is None else f"{kib} KiB"


def print_table(rows):
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'figure'.ljust(w0)}  {'value'.ljust(w1)}  goal")
    print(f"{'-' * w0}  {'-' * w1}  ----")
    for name, value, goal in rows:
        print(f"{name.ljust(w0)}  {value.ljust(w1)}  {goal}")


# ---------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(
        description="safecad soak: status load, token churn and activations at once, on the "
                    "sanitizer build; see bench/README.md (Soak).")
    p.add_argument("--calls", type=int, help="status calls in all (default 100000; "
                   "--quick: 6000)")
    p.add_argument("--clients", type=int, help="concurrent clients (default 16; --quick: 4)")
    p.add_argument("--churn-interval", type=float, help="seconds a churned token stays in, "
                   "and out (default 3; --quick: 1)")
    p.add_argument("--build-dir",
                   default=os.environ.get("SAFECAD_BUILD_DIR")
                   or os.path.join(REPO, "build-soak"),
                   help="meson build folder of the sanitizer build ($SAFECAD_BUILD_DIR, default "
                        "<repo>/build-soak)")
    p.add_argument("--quarantine-mb", type=int, default=0,
                   help="ASan's quarantine of freed memory, MiB (default 0: freed memory is "
                        "reused at once, so VmRSS follows what the daemon holds; ASan's own "
                        "default, 256, catches more use-after-free but then VmRSS grows "
                        "until the quarantine is full and the RSS goal says nothing)")
    p.add_argument("--asan-options", default="",
                   help="more ASAN_OPTIONS for the daemon, appended (a:b=c)")
    p.add_argument("--module", metavar="PATH",
                   help="the PKCS#11 module the daemon loads instead of SoftHSM itself (one that "
                        "forwards to SoftHSM, to look at what the token calls return)")
    p.add_argument("--daemon-env", action="append", default=[], metavar="NAME=VALUE",
                   help="one more variable in the daemon's environment (repeatable), e.g. "
                        "MALLOC_ARENA_MAX=1 to look at glibc's arenas on a plain build")
    p.add_argument("--safectl-every", type=int, default=250,
                   help="one call in N is a `safectl --json status` run (default 250)")
    p.add_argument("--stall-seconds", type=int, default=120,
                   help="stop the load and take the daemon's stacks when no hundredth of the "
                        "calls ends for this long (default 120)")
    p.add_argument("--activate-as-root", action="store_true",
                   help="run the activation loop as root (polkit is then skipped)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary folder (daemon, pcscd, CA logs) and print its path")
    p.add_argument("--quick", action="store_true",
                   help="a small run for trying it (6000 calls, 4 clients, churn every 1 s)")
    args = p.parse_args()
    if args.calls is None:
        args.calls = 6000 if args.quick else 100000
    if args.clients is None:
        args.clients = 4 if args.quick else 16
    if args.churn_interval is None:
        args.churn_interval = 1.0 if args.quick else 3.0
    if args.calls < 100 or args.clients < 1 or args.churn_interval < 0:
        p.error("--calls must be at least 100, --clients at least 1, --churn-interval >= 0")
    for item in args.daemon_env:
        if "=" not in item or not item.split("=", 1)[0]:
            p.error(f"--daemon-env wants NAME=VALUE, not {item!r}")
    args.build_dir = os.path.abspath(args.build_dir)
    # After the first 10 000 calls (a tenth of a smaller run).
    args.baseline_at = min(10000, args.calls // 10)
    args.rss_every = max(args.calls // 10, 1)
    return args


def main():
    args = parse_args()
    # The harness reads the build folder when it is imported.
    os.environ["SAFECAD_BUILD_DIR"] = args.build_dir
    sys.path.insert(0, HARNESS_DIR)
    try:
        args.sanitized = check_tools(args.build_dir)
    except SoakError as e:
        log(str(e))
        return 1
    import harness.bus as busmod
    from harness.pcsc import VpcdCard
    from harness.pki import PKI
    from harness.refca import PIN, RefCA, configure, window
    from harness.safecad import LSAN_SUPP, SAFECTL, World

    def on_signal(signum, frame):
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    directory = tempfile.mkdtemp(prefix="safecad-soak.")
    procs = []
    world = ca = monitor = churn = acts = daemon = client = None
    figures = None
    try:
        client_bin = build_client(directory)
        log("making the PKI, the bus, pcscd, the reference CA")
        pki = PKI(os.path.join(directory, "pki"))
        world = World(os.path.join(directory, "w"), pki)
        world.start_pcscd()
        ca = RefCA(os.path.join(directory, "refca"), pki, extra_args=["--quiet"]).start()
        configure(world, ca, connect_timeout=10, timeout=60)
        if args.module:
            conf = os.path.join(world.confdir, "safecad.conf")
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(re.sub(r"^modules = .*$", f"modules = {args.module}", text, flags=re.M))
        if not args.activate_as_root:
            start_polkit(world, procs)

        log(f"making {STABLE_TOKENS} tokens, the activating token and the churn pool")
        stable = []
        for i in range(STABLE_TOKENS):
            t = world.softhsm.create_token(f"Soak Stable {i + 1}")
            t.add_pair(pki.issue(days_left=10 + 40 * i), "01")
            stable.append(t)
        act_token = world.softhsm.create_token("Soak Activate", pin=PIN)
        act_cert = pki.issue(days_left=20)
        act_token.add_pair(act_cert, "01")
        pool = [pki.issue(days_left=60 + i) for i in range(4)]

        asan = (f"detect_leaks=1:abort_on_error=0:quarantine_size_mb={args.quarantine_mb}"
                + (f":{args.asan_options}" if args.asan_options else ""))
        log(f"starting {os.path.join(args.build_dir, 'daemon', 'safecad')} "
            f"(ASAN_OPTIONS={asan})")
        extra_env = dict(item.split("=", 1) for item in args.daemon_env)
        daemon = world.start_daemon(ASAN_OPTIONS=asan, LSAN_OPTIONS=(
            f"suppressions={LSAN_SUPP}:print_suppressions=1"), **extra_env)
        daemon.checked = True           # stopped and checked here, not by the teardown
        # Nobody else reads NOTIFY_SOCKET after READY=1; its queue is short
        # (net.unix.max_dgram_qlen, 10 here) and a full one blocks the
        # daemon's sd_notify() calls, so drain it the whole time.
        notify_stop = threading.Event()
        notify_messages = []

        def drain_notify():
            sock = daemon.notify
            sock.settimeout(0.2)
            while not notify_stop.is_set():
                try:
                    notify_messages.append(sock.recv(4096).decode(errors="replace"))
                except socket.timeout:
                    continue
                except OSError:
                    break

        notify_thread = threading.Thread(target=drain_notify, daemon=True, name="notify")
        notify_thread.start()
        conn = world.bus.connection()
        paths = busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "Tokens")
        by_serial = {busmod.get_property(conn, p, busmod.TOKEN_IFACE, "Serial"): p
                     for p in paths}
        want = [t.serial for t in stable] + [act_token.serial]
        if sorted(by_serial) != sorted(want):
            raise SoakError(f"the daemon lists {sorted(by_serial)}, expected {sorted(want)}")
        stable_paths = [by_serial[s] for s in want]

        def daemon_alive():
            return daemon.proc.poll() is None

        monitor = Monitor(world.bus.address, busmod)
        churn = Churn(world, monitor, pool, args.churn_interval, daemon_alive, VpcdCard)
        acts = Activations(world, ca, act_token, act_cert, SAFECTL, PIN,
                           not args.activate_as_root, daemon_alive, window)
        churn.start()
        acts.start()
        log("warming up: one churn cycle and one activation")
        if not churn.first_cycle.wait(3 * SIGNAL_TIMEOUT) or not acts.first_done.wait(600):
            raise SoakError("the warm-up (one churn cycle, one activation) did not end")
        if not daemon_alive():
            raise SoakError(f"the daemon exited {daemon.proc.returncode} during the warm-up:"
                            f"\n{daemon.log()[-5000:]}")

        log(f"load: {args.calls} calls from {args.clients} clients")
        t_load = time.monotonic()
        client = subprocess.Popen(
            [client_bin, "--calls", str(args.calls), "--clients", str(args.clients),
             "--stable", ",".join(stable_paths), "--safectl", SAFECTL,
             "--safectl-every", str(args.safectl_every), "--rss-pid", str(daemon.pid),
             "--rss-at", str(args.baseline_at), "--rss-every", str(args.rss_every)],
            env=world.client_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=open(os.path.join(directory, "soak-client.log"), "wb"), text=True,
            start_new_session=True)
        procs.append(("soak-client", client))
        rss = {}                        # calls -> KiB
        baseline = None
        result = None
        progress = {"calls": 0, "at": time.monotonic()}
        stall = {}

        def watchdog():
            while client.poll() is None:
                time.sleep(1)
                quiet = time.monotonic() - progress["at"]
                if quiet > args.stall_seconds and not stall:
                    stall["after_calls"] = progress["calls"]
                    stall["seconds"] = round(quiet)
                    log(f"no progress for {quiet:.0f} s after {progress['calls']} calls: the "
                        "daemon looks stuck; taking its stacks and stopping the load")
                    stall["stacks"] = daemon_stacks(daemon.pid)
                    try:
                        client.send_signal(signal.SIGUSR1)
                    except ProcessLookupError:
                        pass

        threading.Thread(target=watchdog, daemon=True, name="watchdog").start()
        # VmRSS ten times a second, for the trend between the two samples.
        rss_series = []                 # (monotonic, calls done, KiB), from the baseline on
        trend_stop = threading.Event()

        def sample_rss():
            while not trend_stop.wait(0.1):
                if baseline is not None:
                    kib = proc_status(daemon.pid, "VmRSS")
                    if kib is not None:
                        rss_series.append((time.monotonic(), progress["calls"], kib))

        threading.Thread(target=sample_rss, daemon=True, name="rss").start()
        for line in client.stdout:
            parts = line.split(" ", 1)
            if parts[0] == "progress":
                progress["calls"] = int(parts[1])
                progress["at"] = time.monotonic()
            elif parts[0] == "rss":
                calls, kib = (int(x) for x in parts[1].split())
                rss[calls] = kib
                if calls == args.baseline_at and baseline is None:
                    baseline = daemon_sample(daemon.pid)
                    baseline["rss_kib"] = kib
                    baseline["heap"] = heap_probe(daemon.pid, args.sanitized, daemon.log)
                log(f"{calls}/{args.calls} calls, {time.monotonic() - t_load:.0f} s, daemon "
                    f"VmRSS {kib} KiB; churn cycles {churn.cycles}, activations {acts.done} "
                    f"done, {acts.failed} failed")
            elif parts[0] == "result":
                result = json.loads(parts[1])
        client.wait()
        trend_stop.set()
        load_seconds = time.monotonic() - t_load
        at_last = daemon_sample(daemon.pid)
        at_last["rss_kib"] = rss.get(args.calls, at_last["rss_kib"])
        at_last["heap"] = heap_probe(daemon.pid, args.sanitized, daemon.log)
        if result is None:
            raise SoakError(f"soak-client exited {client.returncode} without a result; see "
                            f"{os.path.join(directory, 'soak-client.log')}")

        log("load done; letting the churn and the activation loop finish their cycle")
        churn.stop_event.set()
        acts.stop_event.set()
        churn.join(3 * SIGNAL_TIMEOUT + 30)
        acts.join(360)
        time.sleep(2)
        settled = daemon_sample(daemon.pid) if daemon_alive() else {}
        if settled:
            settled["heap"] = heap_probe(daemon.pid, args.sanitized, daemon.log)

        # Signals, per serial: every insert one TokenAdded, every removal
        # one TokenRemoved, nothing for a token that stayed.
        time.sleep(1)
        counts = monitor.counts()
        lost_added = sum(1 for s in churn.inserted if counts[("TokenAdded", s)] == 0)
        # A token whose arrival was never reported has no removal to report.
        lost_removed = sum(1 for s in churn.removed if counts[("TokenAdded", s)] > 0
                           and counts[("TokenRemoved", s)] == 0)
        extra = sum(max(0, counts[("TokenAdded", s)] - 1) for s in churn.inserted) + \
            sum(max(0, counts[("TokenRemoved", s)] - 1) for s in churn.removed) + \
            sum(1 for s in churn.removed if counts[("TokenAdded", s)] == 0
                and counts[("TokenRemoved", s)] > 0)
        churned = set(churn.inserted)
        stray = sum(n for (member, s), n in counts.items() if s not in churned)

        # The end: what status shows, then SIGTERM.
        final_serials = None
        if daemon_alive():
            rc, out, err = world.safectl("status", json_out=True, check_clean=False)
            if rc == 0:
                final_serials = sorted(t["serial"] for t in json.loads(out)["tokens"])
        t_stop = time.monotonic()
        exit_code = None
        if daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGTERM)
            try:
                exit_code = daemon.proc.wait(120)
            except subprocess.TimeoutExpired:
                daemon.kill()
                exit_code = "no exit within 120 s of SIGTERM (killed)"
        else:
            exit_code = f"died during the run ({daemon.proc.returncode})"
        stop_seconds = time.monotonic() - t_stop
        notify_stop.set()
        notify_thread.join(5)
        daemon.close()
        dlog = daemon.log()
        excerpt = sanitizer_excerpt(dlog)
        client_log = open(os.path.join(directory, "soak-client.log"), errors="replace").read()

        reads = result["property_reads_us"]
        gmo = result["ops"]["GetManagedObjects"]["latency"]
        sctl = result["ops"]["safectl --json status"]["latency"]
        # The same, less at the mercy of one instant: the median of the 10 Hz
        # samples over the tenth of the calls after the baseline, and over
        # the last tenth (a job under way adds a megabyte or so for a while).
        tenth = max(args.calls // 10, 1)
        first = [kib for _, c, kib in rss_series if c < args.baseline_at + tenth]
        last = [kib for _, c, kib in rss_series if c >= args.calls - tenth]
        windows = None
        if first and last:
            windows = {"first_median_kib": percentile(first, 500),
                       "last_median_kib": percentile(last, 500),
                       "first_samples": len(first), "last_samples": len(last),
                       "calls": [[args.baseline_at, args.baseline_at + tenth],
                                 [args.calls - tenth, args.calls]]}
            windows["growth_kib"] = windows["last_median_kib"] - windows["first_median_kib"]
        growth = (at_last["rss_kib"] - baseline["rss_kib"]) if baseline and \
            at_last.get("rss_kib") is not None else None
        figures = {
            "calls": result["calls"],
            "calls_asked": args.calls,
            "build": args.build_dir,
            "sanitizer_build": args.sanitized,
            "clients": args.clients,
            "errors": result["errors"],
            "vanished": result["vanished"],
            "load_seconds": round(load_seconds, 1),
            "calls_per_second": round(result["calls"] / result["seconds"], 1),
            "safectl_status_runs": result["ops"]["safectl --json status"]["calls"],
            "churn_cycles": churn.cycles,
            "tokens_inserted": len(churn.inserted),
            "tokens_removed": len(churn.removed),
            "lost_token_added": lost_added,
            "lost_token_removed": lost_removed,
            "extra_token_signals": extra,
            "stray_token_signals": stray,
            "churn_problems": [f"{s}: {w}" for s, w in churn.problems],
            "churn_delete_races": churn.delete_races,
            "token_added_latency_s": {"p50": percentile(churn.add_latency, 500),
                                      "max": max(churn.add_latency, default=None)},
            "token_removed_latency_s": {"p50": percentile(churn.remove_latency, 500),
                                        "max": max(churn.remove_latency, default=None)},
            "activations_done": acts.done,
            "activations_failed": acts.failed,
            "activation_other_failures": acts.other_failures,
            "activation_cycles": acts.cycles,
            "activations_busy_retries": acts.busy,
            "activation_seconds": {"p50": percentile(acts.seconds, 500),
                                   "max": max(acts.seconds, default=None)},
            "activation_failures": acts.failures[:10],
            "activations_as": "root" if args.activate_as_root else "nobody (polkit)",
            "rss_kib_after_baseline": baseline["rss_kib"] if baseline else None,
            "baseline_calls": args.baseline_at,
            "rss_kib_at_last_call": at_last.get("rss_kib"),
            "rss_kib_settled": settled.get("rss_kib"),
            "rss_growth_kib": growth,
            "rss_kib_by_calls": {str(k): v for k, v in sorted(rss.items())},
            "threads": [baseline and baseline["threads"], at_last.get("threads"),
                        settled.get("threads")],
            "fds": [baseline and baseline["fds"], at_last.get("fds"), settled.get("fds")],
            "property_reads_us": reads,
            "get_managed_objects_us": gmo,
            "safectl_status_ms": sctl,
            "error_names": result["error_names"],
            "errors_first": result["errors_kept"][:5],
            "final_tokens_ok": final_serials == sorted(
                [t.serial for t in stable] + [act_token.serial]),
            "daemon_exit": exit_code,
            "daemon_stop_seconds": round(stop_seconds, 2),
            "sanitizer_clean": excerpt is None if args.sanitized else None,
            "leaks_suppressed": suppressed_leaks(dlog),
            "quarantine_mb": args.quarantine_mb,
            "thread_failures": [f for f in (churn.failure, acts.failure) if f],
            "rss_growth_by_kind_kib": growth_by_kind(baseline, at_last),
            "rss_trend": rss_trend([(t, kib) for t, _, kib in rss_series]),
            "rss_windows": windows,
            "rss_growth_goal_kib": windows["growth_kib"] if windows else growth,
            "stalled": stall or None,
            "heap_kib": {"baseline": baseline and baseline.get("heap"),
                         "last_call": at_last.get("heap"), "settled": settled.get("heap")},
            "notify_messages": len(notify_messages),
        }
        if "ERROR: AddressSanitizer" in client_log:
            figures["thread_failures"].append("soak-client itself reported a sanitizer error")
    except KeyboardInterrupt:
        log("interrupted, cleaning up")
        return 130
    except Stop as e:
        log(f"{e}, cleaning up")
        return 143
    except (SoakError, AssertionError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"could not run: {e}")
        if daemon is not None:
            log(f"daemon log (tail):\n{daemon.log()[-4000:]}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for t in (churn, acts):
            if t is not None:
                t.stop_event.set()
        for name, proc in reversed(procs):
            stop_proc(name, proc)
        if monitor is not None:
            monitor.stop()
        if daemon is not None and daemon.proc.poll() is None:
            daemon.kill()
        if world is not None:
            world.teardown()
        if ca is not None:
            try:
                ca.stop()
            except AssertionError:
                ca.kill()
        if args.keep:
            log(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return report(args, figures, dlog, excerpt)


def report(args, f, dlog, excerpt):
    goals = {
        "errors": f["errors"] == 0,
        "signals": (f["lost_token_added"] == 0 and f["lost_token_removed"] == 0
                    and f["extra_token_signals"] == 0 and f["stray_token_signals"] == 0
                    and not f["churn_problems"]),
        "activations": (f["activations_failed"] == 0 and f["activations_done"] > 0
                        and f["activation_other_failures"] == 0),
        "rss": f["rss_growth_goal_kib"] is not None
               and f["rss_growth_goal_kib"] <= GOAL_RSS_GROWTH_KIB,
        "exit": f["daemon_exit"] == 0,
        "sanitizers": f["sanitizer_clean"] is not False,
        "final": f["final_tokens_ok"] and not f["thread_failures"],
        "no stall": not f["stalled"],
    }
    f["goals_met"] = all(goals.values())
    f["goals_missed"] = [k for k, ok in goals.items() if not ok]

    def mark(ok):
        return "ok" if ok else "MISSED"

    r = f["property_reads_us"]
    g = f["get_managed_objects_us"]
    s = f["safectl_status_ms"]
    al = f["token_added_latency_s"]
    rl = f["token_removed_latency_s"]
    ac = f["activation_seconds"]

    def sec(v):
        return "n/a" if v is None else f"{v:.2f} s"

    print()
    print(f"safecad soak: {f['calls']} calls from {f['clients']} clients in "
          f"{f['load_seconds']} s ({f['calls_per_second']}/s), churn every "
          f"{args.churn_interval:g} s, activations as {f['activations_as']}, "
          + (f"ASan quarantine {f['quarantine_mb']} MiB" if f["sanitizer_build"]
             else "a build WITHOUT sanitizers"))
    print()
    print_table([
        ("calls done", f"{f['calls']} ({f['safectl_status_runs']} safectl --json status)",
         "" if f["calls"] == f["calls_asked"] else f"of {f['calls_asked']}: STOPPED EARLY"),
        ("errors (D-Bus errors, safectl exit != 0)", str(f["errors"]),
         f"0: {mark(goals['errors'])}"),
        ("  calls on a token just removed (tolerated)", str(f["vanished"]), ""),
        ("churn: tokens inserted / removed", f"{f['tokens_inserted']} / {f['tokens_removed']}",
         f"(token folders removed by hand: {f['churn_delete_races']})"
         if f["churn_delete_races"] else ""),
        ("lost TokenAdded / TokenRemoved",
         f"{f['lost_token_added']} / {f['lost_token_removed']}", f"0: {mark(goals['signals'])}"),
        ("  duplicate / stray token signals",
         f"{f['extra_token_signals']} / {f['stray_token_signals']}", "0"),
        ("  insert -> TokenAdded p50 / max", f"{sec(al['p50'])} / {sec(al['max'])}", ""),
        ("  removal -> TokenRemoved p50 / max", f"{sec(rl['p50'])} / {sec(rl['max'])}", ""),
        ("activations done / failed", f"{f['activations_done']} / {f['activations_failed']}",
         f"failed 0: {mark(goals['activations'])}"),
        ("  renewal cycles complete / other steps failed",
         f"{f['activation_cycles']} / {f['activation_other_failures']}",
         "(check, status, agencies, remove-previous) 0"),
        ("  safectl activate p50 / max", f"{sec(ac['p50'])} / {sec(ac['max'])}",
         f"(busy retries {f['activations_busy_retries']})"),
        (f"daemon VmRSS after {f['baseline_calls']} calls",
         fmt_kib(f["rss_kib_after_baseline"]), ""),
        ("daemon VmRSS after the last call", fmt_kib(f["rss_kib_at_last_call"]), ""),
        ("  growth between these two samples", fmt_kib(f["rss_growth_kib"]), ""),
        ("RSS growth (medians: last 10% of calls - 10% after baseline)" if f["rss_windows"]
         else "RSS growth (too few samples for medians: the two samples)",
         fmt_kib(f["rss_growth_goal_kib"]) + (
             f" ({f['rss_windows']['first_median_kib']} -> "
             f"{f['rss_windows']['last_median_kib']})" if f["rss_windows"] else ""),
         f"<= {GOAL_RSS_GROWTH_KIB} KiB: {mark(goals['rss'])}"),
        ("  VmRSS settled (loops stopped, 2 s)", fmt_kib(f["rss_kib_settled"]), ""),
        ("  live heap (" + ("ASan" if args.sanitized else "glibc")
         + ", via gdb): baseline / last call / settled",
         " / ".join("n/a" if not x else f"{x['allocated']} KiB" for x in (
             f["heap_kib"]["baseline"], f["heap_kib"]["last_call"], f["heap_kib"]["settled"])),
         ""),
        ("  threads / fds: baseline, last call, settled",
         f"{f['threads']} / {f['fds']}", ""),
        ("property reads p50 / p99 / max",
         f"{r.get('p50', 0):.0f} / {r.get('p99', 0):.0f} / {r.get('max', 0):.0f} µs "
         f"({r.get('count', 0)})", ""),
        ("  GetManagedObjects p50 / p99",
         f"{g.get('p50', 0):.0f} / {g.get('p99', 0):.0f} µs ({g.get('count', 0)})", ""),
        ("  safectl --json status p50 / p99",
         f"{s.get('p50', 0):.0f} / {s.get('p99', 0):.0f} ms ({s.get('count', 0)})", ""),
        ("daemon exit on SIGTERM", f"{f['daemon_exit']} after {f['daemon_stop_seconds']} s",
         f"0: {mark(goals['exit'])}"),
        ("sanitizer reports in the daemon's log",
         {True: "none", False: "YES", None: "n/a (not a sanitizer build)"}[f["sanitizer_clean"]],
         f"none: {mark(goals['sanitizers'])}"),
        ("status at the end lists the tokens that stayed", str(f["final_tokens_ok"]),
         f"{mark(goals['final'])}"),
    ])
    print()
    tr = f["rss_trend"]
    if tr:
        print(f"VmRSS from the baseline to the last call, {tr['samples']} samples over "
              f"{tr['seconds']} s: {tr['min_kib']}..{tr['max_kib']} KiB, least-squares trend "
              f"{tr['kib_per_minute']:+} KiB/min ({tr['kib_over_window']:+d} KiB over the window)")
    if f["rss_growth_by_kind_kib"]:
        print("RSS growth from the baseline to the last call, by mapping (KiB): " + ", ".join(
            f"{k} {v:+d}" for k, v in list(f["rss_growth_by_kind_kib"].items())[:8]))
    print("daemon VmRSS by calls done: " + ", ".join(
        f"{k}: {v}" for k, v in f["rss_kib_by_calls"].items()) + " (KiB)")
    if f["error_names"]:
        print("errors by name: " + ", ".join(f"{k} x{v}" for k, v in f["error_names"].items()))
        for e in f["errors_first"]:
            print(f"  {e['op']} {e['path']}: {e['what']} {e.get('name') or ''} "
                  f"{(e.get('message') or '')[:300]}")
    for p in f["churn_problems"][:10]:
        print(f"churn: {p}")
    for p in f["activation_failures"]:
        print(f"activation: {p}")
    for p in f["thread_failures"]:
        print(f"stopped early: {p}")
    if f["stalled"]:
        print(f"the load stalled after {f['stalled']['after_calls']} calls (nothing for "
              f"{f['stalled']['seconds']} s); the daemon's threads then:")
        print(f["stalled"]["stacks"])
    if excerpt:
        print("sanitizer report in the daemon's log:")
        print(excerpt)
    if f["leaks_suppressed"]:
        print("leaks at exit that tests/lsan.supp suppresses (third-party libraries): " + ", ".join(
            f"{k} {c} allocations {b} bytes" for k, (c, b) in f["leaks_suppressed"].items()))
    lines = notable_log_lines(dlog)
    if lines:
        print("the daemon's warning/error lines (count, first seen):")
        for n, line in lines:
            print(f"  {n:6d}  {line[:200]}")
    if f["goals_missed"]:
        print("goals missed: " + ", ".join(f["goals_missed"]))
    print(json.dumps(f, ensure_ascii=False, sort_keys=True))
    return 0 if f["goals_met"] else 3


if __name__ == "__main__":
    sys.exit(main())
