#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Status benchmark: safecad against certmonger, in one run, on one private bus.

For each daemon it prints
  - idle RSS (VmRSS of the whole process, after start-up has settled);
  - wake-ups while idle: context switches (voluntary + involuntary, summed
    over every thread, from /proc/PID/task/*/status) over an idle window
    (default 60 s) with every token in;
  - status round-trip latency: p50/p99/max of 10 000 property reads
    (org.freedesktop.DBus.Properties.Get), round-robin over 32 objects,
    timed one by one by bench/prop-latency (C, sd-bus);
and checks safecad against the project's targets: 0 idle wake-ups,
RSS <= 0.6 x certmonger's, p99 <= 1 ms.

The two daemons run side by side on the same private system-type bus and
hold the same 32 certificates: safecad reads them from 32 SoftHSM tokens
(key and certificate on each), certmonger tracks the same certificate and
key files (`getcert start-tracking`, file storage, no CA, no network). Both
idle in the same window; the latency runs come one after the other
(safecad first), so they do not share the CPU.

Usage:  bench/status-bench.py [--idle 60] [--reads 10000] [--tokens 32]
Run by hand (see the README's bench section); it never fails a build. It
exits 0 when the benchmark ran, 1 when it could not run, and, with
--check, 3 when safecad misses a target. Everything it starts runs in its
own process group in a temporary folder, and is stopped and removed at
the end, also on Ctrl-C or SIGTERM.
"""

import argparse
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "12345678"
USER_PIN = "1234"

SAFECAD_NAME = "org.safecad.Manager1"
SAFECAD_MANAGER = "/org/safecad/Manager1"
SAFECAD_TOKEN_IFACE = "org.safecad.Token1"
CERTMONGER_NAME = "org.fedorahosted.certmonger"
CERTMONGER_PATH = "/org/fedorahosted/certmonger"
CERTMONGER_REQUEST_IFACE = "org.fedorahosted.certmonger.request"

TARGET_RSS_RATIO = 0.6
TARGET_P99_US = 1000.0
TARGET_IDLE_WAKEUPS = 0

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


# Shared with the other bench scripts, which take them from here or there.
from benchlib import BenchError, Stop, log  # noqa: E402


class Processes:
    """Every process the benchmark starts, each in its own process group."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.procs.append((name, proc))
        return proc

    def stop(self, proc):
        """Stops one process started here, with its process group."""
        for name, started in self.procs:
            if started is proc:
                self._stop(name, proc)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self):
        for name, proc in reversed(self.procs):
            self._stop(name, proc)
        self.procs.clear()

    @staticmethod
    def _stop(name, proc):
        if proc.poll() is not None:
            return
        # The group is the one start() made for this process: its own
        # helpers (certmonger forks some) go with it.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {proc.pid}) ignored SIGTERM, killing it")
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)


def run(argv, env, what):
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"{what} failed ({result.returncode}): {' '.join(argv)}\n"
                         f"{result.stdout}{result.stderr}")
    return result.stdout


# ---------------------------------------------------------------- material

def make_certificates(directory, count):
    """A bench CA and COUNT key/certificate pairs it signed, as files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "safecad bench"),
        x509.NameAttribute(NameOID.COMMON_NAME, "safecad bench CA"),
    ])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))

    pairs = []
    for i in range(1, count + 1):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest.hex()
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Công ty Bench {i}"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Bench token {i}"),
        ])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=300))
            .not_valid_after(now + datetime.timedelta(days=30 + i))
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        base = os.path.join(directory, f"tok{i}")
        with open(base + ".key", "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(base + ".pem", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(base + ".der", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.DER))
        pairs.append({"label": f"tok{i}", "key": base + ".key", "pem": base + ".pem",
                      "der": base + ".der", "id": key_id})
    return pairs


def make_tokens(env, pairs):
    for pair in pairs:
        run(["softhsm2-util", "--init-token", "--free", "--label", pair["label"],
             "--so-pin", SO_PIN, "--pin", USER_PIN], env, "softhsm2-util --init-token")
        run(["softhsm2-util", "--import", pair["key"], "--token", pair["label"],
             "--label", pair["label"] + " key", "--id", pair["id"], "--pin", USER_PIN],
            env, "softhsm2-util --import")
        run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", pair["label"],
             "--login", "--pin", USER_PIN, "--write-object", pair["der"], "--type", "cert",
             "--id", pair["id"], "--label", pair["label"] + " cert"],
            env, "pkcs11-tool --write-object")


# ---------------------------------------------------------------- the bus

def start_bus(procs, directory):
    config = os.path.join(directory, "bus.conf")
    with open(config, "w") as f:
        f.write(BUS_CONFIG.format(socket=os.path.join(directory, "bus.sock")))
    proc = procs.start("dbus-daemon", ["dbus-daemon", "--config-file=" + config,
                                       "--print-address", "--nofork"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = proc.stdout.readline().strip()
    if not address:
        raise BenchError("dbus-daemon printed no address")
    return address


class Bus:
    """A short-lived client connection of the script's own (dbus-python).
    Closed before the idle window, so that nothing of ours is on the bus then."""

    def __init__(self, address):
        import dbus
        self.dbus = dbus
        self.conn = dbus.bus.BusConnection(address)

    def has_owner(self, name):
        return bool(self.conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "NameHasOwner", "s", (name,)))

    def get(self, name, path, interface, prop):
        return self.conn.call_blocking(name, path, "org.freedesktop.DBus.Properties", "Get",
                                       "ss", (interface, prop), timeout=10)

    def call(self, name, path, interface, method):
        return self.conn.call_blocking(name, path, interface, method, "", (), timeout=10)

    def close(self):
        self.conn.close()


def wait_for(what, predicate, timeout, proc=None, log_path=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: the daemon exited with {proc.returncode}"
                             + (f"; its log:\n{tail(log_path)}" if log_path else ""))
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise BenchError(f"{what}: not within {timeout} s"
                     + (f"; the daemon's log:\n{tail(log_path)}" if log_path else ""))


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- daemons

def start_certmonger(procs, directory, env, pairs):
    cm_dir = os.path.join(directory, "certmonger")
    dirs = {}
    for name in ("requests", "cas", "local-ca", "tmp", "config"):
        dirs[name] = os.path.join(cm_dir, name)
        os.makedirs(dirs[name])
    # An empty configuration file: certmonger complains on every helper
    # run when there is none.
    open(os.path.join(dirs["config"], "certmonger.conf"), "w").close()
    env = dict(env,
               CERTMONGER_REQUESTS_DIR=dirs["requests"],
               CERTMONGER_CAS_DIR=dirs["cas"],
               CERTMONGER_LOCAL_CA_DIR=dirs["local-ca"],
               CERTMONGER_TMPDIR=dirs["tmp"],
               CERTMONGER_CONFIG_DIR=dirs["config"],
               CERTMONGER_SYSTEM_LOCK_FILE=os.path.join(cm_dir, "lock"))
    log_path = os.path.join(directory, "certmonger.log")
    with open(log_path, "wb") as log_file:
        proc = procs.start("certmonger", ["certmonger", "-S", "-n"], env=env,
                           stdout=log_file, stderr=log_file, cwd=directory)

    bus = Bus(env["DBUS_SYSTEM_BUS_ADDRESS"])
    try:
        wait_for("certmonger on the bus", lambda: bus.has_owner(CERTMONGER_NAME), 30,
                 proc, log_path)
    finally:
        bus.close()
    paths = track_certificates(env, pairs, len(pairs), proc, log_path)
    return proc, paths, log_path


def track_certificates(env, pairs, expected, proc, log_path):
    """`getcert start-tracking` of each pair, then wait until certmonger
    has `expected` requests in all, every one MONITORING; their paths."""
    bus = Bus(env["DBUS_SYSTEM_BUS_ADDRESS"])
    try:
        for pair in pairs:
            run(["getcert", "start-tracking", "-S", "-I", pair["label"],
                 "-f", pair["pem"], "-k", pair["key"]], env, "getcert start-tracking")

        def all_monitoring():
            paths = [str(p) for p in bus.call(CERTMONGER_NAME, CERTMONGER_PATH,
                                              CERTMONGER_NAME, "get_requests")]
            states = [str(bus.get(CERTMONGER_NAME, p, CERTMONGER_REQUEST_IFACE, "status"))
                      for p in paths]
            if len(paths) == expected and all(s == "MONITORING" for s in states):
                return paths
            return None

        return wait_for(f"certmonger monitoring {expected} requests", all_monitoring, 60,
                        proc, log_path)
    finally:
        bus.close()


def start_safecad(procs, directory, env, binary, count, pcsc_socket=None):
    """safecad with COUNT SoftHSM tokens; hotplug only when pcsc_socket
    names a pcscd's socket."""
    config_dir = os.path.join(directory, "safecad-config")
    state_dir = os.path.join(directory, "safecad-state")
    os.makedirs(config_dir)
    os.makedirs(state_dir)
    with open(os.path.join(config_dir, "safecad.conf"), "w") as f:
        f.write("# safecad.conf for the benchmark\n"
                "[pkcs11]\n"
                f"modules = {SOFTHSM_MODULE}\n")
    notify_path = os.path.join(directory, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.setblocking(False)
    env = dict(env,
               CONFIGURATION_DIRECTORY=config_dir,
               STATE_DIRECTORY=state_dir,
               SAFECAD_DATADIR=os.path.join(REPO, "data"),
               # No pcscd by default: hotplug is off, tokens are found at
               # start. The idle figure is then the daemon's own, without
               # the watcher.
               PCSCLITE_CSOCK_NAME=pcsc_socket or os.path.join(directory, "no-pcscd",
                                                               "pcscd.comm"),
               NOTIFY_SOCKET=notify_path)
    log_path = os.path.join(directory, "safecad.log")
    with open(log_path, "wb") as log_file:
        proc = procs.start("safecad", [binary], env=env, stdout=log_file, stderr=log_file,
                           cwd=directory)

    messages = []

    def ready():
        messages.extend(drain(notify))
        return any("READY=1" in m.split("\n") for m in messages)

    bus = Bus(env["DBUS_SYSTEM_BUS_ADDRESS"])
    try:
        wait_for("safecad ready (READY=1 and its bus name)",
                 lambda: ready() and bus.has_owner(SAFECAD_NAME), 60, proc, log_path)

        def all_tokens():
            paths = [str(p) for p in bus.get(SAFECAD_NAME, SAFECAD_MANAGER, SAFECAD_NAME,
                                             "Tokens")]
            return paths if len(paths) == count else None

        paths = wait_for(f"safecad listing {count} tokens", all_tokens, 30, proc, log_path)
        hotplug = bool(bus.get(SAFECAD_NAME, SAFECAD_MANAGER, SAFECAD_NAME, "Hotplug"))
    finally:
        bus.close()
    return proc, paths, log_path, notify, hotplug


def drain(sock):
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode(errors="replace"))
        except (BlockingIOError, InterruptedError):
            return out


# ---------------------------------------------------------------- /proc

def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def kb(value):
    return int(value.split()[0])


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def thread_switches(pid):
    """{tid: (comm, voluntary, involuntary)} for every thread of PID."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            status = proc_status(f"{pid}/task/{tid}")
        except FileNotFoundError:
            continue
        out[int(tid)] = (status.get("Name", "?"), int(status["voluntary_ctxt_switches"]),
                         int(status["nonvoluntary_ctxt_switches"]))
    return out


def switch_delta(before, after):
    """Per-thread (comm, +voluntary, +involuntary, note) over the window."""
    rows = {}
    for tid, (comm, vol, nonvol) in after.items():
        if tid in before:
            _, vol0, nonvol0 = before[tid]
            rows[tid] = (comm, vol - vol0, nonvol - nonvol0, "")
        else:
            rows[tid] = (comm, vol, nonvol, "started in the window")
    for tid, (comm, _, _) in before.items():
        if tid not in after:
            rows[tid] = (comm, 0, 0, "exited in the window (its last switches are lost)")
    return rows


def timers(pid):
    """The armed timerfds of PID: what it has asked to be woken for."""
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[timerfd]":
                continue
            info = dict(line.split(":", 1) for line in
                        read_text(f"/proc/{pid}/fdinfo/{fd}").splitlines() if ":" in line)
        except OSError:
            continue
        clock = {"0": "REALTIME", "1": "MONOTONIC", "7": "BOOTTIME", "8": "REALTIME_ALARM",
                 "9": "BOOTTIME_ALARM"}.get(info.get("clockid", "").strip(),
                                            info.get("clockid", "?").strip())
        value = info.get("it_value", "?").strip()
        interval = info.get("it_interval", "?").strip()
        out.append(f"fd {fd} {clock} it_value={value} it_interval={interval}")
    return out


def thread_report(pid, rows):
    """One line per thread; read while the daemon still runs (where each
    thread sleeps: its system call number and kernel wait channel)."""
    lines = []
    for tid in sorted(rows):
        comm, vol, nonvol, note = rows[tid]
        wchan = read_text(f"/proc/{pid}/task/{tid}/wchan")
        syscall = read_text(f"/proc/{pid}/task/{tid}/syscall").split(" ")[0]
        lines.append(f"    tid {tid:<7} {comm:<16} +{vol} voluntary +{nonvol} involuntary"
                     f"  (sleeping in syscall {syscall}, wchan {wchan or '-'})"
                     + (f"  [{note}]" if note else ""))
    return lines


def rss_breakdown(pid, top=8):
    """RssAnon/RssFile and the mappings holding the most resident memory."""
    status = proc_status(pid)
    summary = (f"RssAnon {kb(status['RssAnon'])} kB, RssFile {kb(status['RssFile'])} kB, "
               f"RssShmem {kb(status['RssShmem'])} kB")
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    summary += f", Pss {kb(line.split(':', 1)[1])} kB"
    except OSError:
        pass
    by_name = {}
    name = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                fields = line.split()
                if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                    name = fields[5] if len(fields) > 5 else "[anon]"
                elif fields[0] == "Rss:":
                    by_name[name] = by_name.get(name, 0) + int(fields[1])
    except OSError:
        return summary, []
    biggest = sorted(by_name.items(), key=lambda item: -item[1])[:top]
    return summary, [f"{rss:>6} kB  {os.path.basename(n) if n.startswith('/') else n}"
                     for n, rss in biggest]


# ---------------------------------------------------------------- latency

def helper_binary(name, build_dir, directory, libraries):
    """bench/NAME from the build folder, or compiled here when it is missing
    or older than its source (the benchmark also runs before a build)."""
    built = os.path.join(build_dir, "bench", name)
    source = os.path.join(REPO, "bench", name + ".c")
    if os.access(built, os.X_OK) and os.path.getmtime(built) >= os.path.getmtime(source):
        return built
    binary = os.path.join(directory, name)
    flags = []
    if libraries:
        flags = run(["pkg-config", "--cflags", "--libs"] + libraries, os.environ,
                    "pkg-config " + " ".join(libraries)).split()
    run(["gcc", "-std=gnu17", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", source, "-o", binary,
         "-ldl"] + flags, os.environ, f"compiling bench/{name}.c")
    return binary


def module_floor(binary, env):
    """VmRSS of a bare process that has loaded the PKCS#11 module and read
    its tokens: what any daemon keeping that module loaded pays at least."""
    out = run([binary, SOFTHSM_MODULE], env, "module-rss")
    values = dict(field.partition("=")[::2] for field in out.split())
    return int(values["after_kb"])


def measure_latency(binary, env, service, paths, interface, prop, reads):
    out = run([binary, service, ",".join(paths), interface, prop, str(reads)], env,
              f"prop-latency {service} {prop}")
    values = {}
    for field in out.split():
        key, _, value = field.partition("=")
        values[key] = value
    return {key: float(values[key]) for key in ("p50_us", "p99_us", "max_us", "mean_us")}


# ---------------------------------------------------------------- report

def fmt_kb(value):
    return f"{value / 1024:.1f} MiB" if value is not None else "n/a"


def fmt_rss(value):
    return f"{value} kB ({value / 1024:.1f} MiB)" if value is not None else "n/a"


def fmt_us(value):
    return f"{value:.0f} us" if value is not None else "n/a"


def verdict(ok):
    if ok is None:
        return "n/a"
    return "yes" if ok else "NO"


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def print_table(rows):
    headers = ("metric", "safecad", "certmonger", "target", "ok?")
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(5)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def main():
    parser = argparse.ArgumentParser(
        description="safecad against certmonger: idle RSS, idle wake-ups, status latency.")
    parser.add_argument("--idle", type=float, default=60.0,
                        help="seconds of the idle window (default 60)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="quiet seconds after start-up before measuring (default 5)")
    parser.add_argument("--reads", type=int, default=10000,
                        help="property reads per daemon (default 10000)")
    parser.add_argument("--tokens", type=int, default=32,
                        help="tokens for safecad, tracked requests for certmonger (default 32)")
    parser.add_argument("--build-dir",
                        default=os.environ.get("SAFECAD_BUILD_DIR") or os.path.join(REPO, "build"),
                        help="meson build folder ($SAFECAD_BUILD_DIR, default <repo>/build)")
    parser.add_argument("--safecad", help="the daemon binary (default <build-dir>/daemon/safecad)")
    parser.add_argument("--safecad-property", default="DaysLeft",
                        help=f"{SAFECAD_TOKEN_IFACE} property read (default DaysLeft)")
    parser.add_argument("--certmonger-property", default="not-valid-after",
                        help=f"{CERTMONGER_REQUEST_IFACE} property read "
                             "(default not-valid-after, its expiry)")
    parser.add_argument("--skip-safecad", action="store_true", help="measure certmonger only")
    parser.add_argument("--skip-certmonger", action="store_true", help="measure safecad only")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (logs, tokens) and print its path")
    parser.add_argument("--check", action="store_true",
                        help="exit 3 when safecad misses a target")
    args = parser.parse_args()
    if args.tokens < 1 or args.reads < 1 or args.idle <= 0 or args.settle < 0:
        parser.error("--tokens, --reads and --idle must be positive")

    safecad_binary = args.safecad or os.path.join(args.build_dir, "daemon", "safecad")
    want_safecad = not args.skip_safecad
    if want_safecad and not os.access(safecad_binary, os.X_OK):
        log(f"{safecad_binary} is missing: measuring certmonger only "
            "(build safecad, or point --build-dir / SAFECAD_BUILD_DIR at it)")
        want_safecad = False
    want_certmonger = not args.skip_certmonger
    if not (want_safecad or want_certmonger):
        log("nothing to measure")
        return 1
    for tool in ["dbus-daemon", "softhsm2-util", "pkcs11-tool", "gcc", "pkg-config"] + (
            ["certmonger", "getcert"] if want_certmonger else []):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            log(f"{tool} is not installed (tools/install-deps.sh installs it)")
            return 1

    def on_signal(signum, frame):
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    directory = tempfile.mkdtemp(prefix="safecad-bench.")
    procs = Processes()
    notify = None
    try:
        env = dict(os.environ)
        for variable in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                         "LISTEN_PID", "INVOCATION_ID", "JOURNAL_STREAM"):
            env.pop(variable, None)
        token_dir = os.path.join(directory, "tokens")
        os.makedirs(token_dir)
        softhsm_conf = os.path.join(directory, "softhsm2.conf")
        with open(softhsm_conf, "w") as f:
            f.write(f"directories.tokendir = {token_dir}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
        env["SOFTHSM2_CONF"] = softhsm_conf

        latency_binary = helper_binary("prop-latency", args.build_dir, directory, ["libsystemd"])
        module_rss_binary = helper_binary("module-rss", args.build_dir, directory, [])
        log(f"making {args.tokens} keys and certificates")
        pairs = make_certificates(directory, args.tokens)
        if want_safecad:
            log(f"making {args.tokens} SoftHSM tokens")
            make_tokens(env, pairs)
        floor = module_floor(module_rss_binary, env) if want_safecad else None

        env["DBUS_SYSTEM_BUS_ADDRESS"] = start_bus(procs, directory)
        daemons = {}
        if want_certmonger:
            log("starting certmonger")
            proc, paths, log_path = start_certmonger(procs, directory, env, pairs)
            daemons["certmonger"] = {"proc": proc, "paths": paths, "log": log_path}
        hotplug = None
        if want_safecad:
            log(f"starting {safecad_binary}")
            safecad_built = datetime.datetime.fromtimestamp(
                os.path.getmtime(safecad_binary)).astimezone()
            proc, paths, log_path, notify, hotplug = start_safecad(
                procs, directory, env, safecad_binary, args.tokens)
            daemons["safecad"] = {"proc": proc, "paths": paths, "log": log_path}

        time.sleep(args.settle)
        for d in daemons.values():
            status = proc_status(d["proc"].pid)
            d["rss"] = kb(status["VmRSS"])
            d["threads"] = int(status["Threads"])
            d["rss_summary"], d["rss_top"] = rss_breakdown(d["proc"].pid)
        if notify is not None:
            drain(notify)

        log(f"idle window: {args.idle:g} s, both daemons side by side, nobody on the bus")
        before = {name: thread_switches(d["proc"].pid) for name, d in daemons.items()}
        start = time.monotonic()
        time.sleep(args.idle)
        for name, d in daemons.items():
            if d["proc"].poll() is not None:
                raise BenchError(f"{name} exited with {d['proc'].returncode} while idle; "
                                 f"its log:\n{tail(d['log'])}")
        after = {name: thread_switches(d["proc"].pid) for name, d in daemons.items()}
        window = time.monotonic() - start
        for name, d in daemons.items():
            d["delta"] = switch_delta(before[name], after[name])
            d["wakeups"] = sum(v + n for _, v, n, _ in d["delta"].values())
            d["timers"] = timers(d["proc"].pid)
            d["threads_report"] = thread_report(d["proc"].pid, d["delta"])
        idle_notifications = drain(notify) if notify is not None else []

        for name, iface, prop in (("safecad", SAFECAD_TOKEN_IFACE, args.safecad_property),
                                  ("certmonger", CERTMONGER_REQUEST_IFACE,
                                   args.certmonger_property)):
            if name not in daemons:
                continue
            d = daemons[name]
            log(f"{name}: {args.reads} reads of {iface}.{prop} over {len(d['paths'])} objects")
            service = SAFECAD_NAME if name == "safecad" else CERTMONGER_NAME
            d["latency"] = measure_latency(latency_binary, env, service, d["paths"], iface, prop,
                                           args.reads)
            status = proc_status(d["proc"].pid)
            d["rss_after"] = kb(status["VmRSS"])
            d["hwm"] = kb(status["VmHWM"])
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
        procs.stop_all()
        if notify is not None:
            notify.close()
        if args.keep:
            log(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    s = daemons.get("safecad")
    c = daemons.get("certmonger")

    def get(d, *keys):
        value = d
        for key in keys:
            if value is None:
                return None
            value = value.get(key)
        return value

    ratio = s["rss"] / c["rss"] if s and c else None
    rows = [
        ("idle RSS (VmRSS)", fmt_rss(get(s, "rss")), fmt_rss(get(c, "rss")),
         f"<= {TARGET_RSS_RATIO}x certmonger", verdict(None if ratio is None
                                                       else ratio <= TARGET_RSS_RATIO)),
        ("  of which: SoftHSM floor (1)", fmt_rss(floor), "", "", ""),
        ("  safecad's own, approx. (RSS - floor)",
         fmt_rss(s["rss"] - floor) if s and floor is not None else "n/a", "", "", ""),
        ("RSS ratio safecad/certmonger", f"{ratio:.2f}" if ratio is not None else "n/a", "",
         f"<= {TARGET_RSS_RATIO}", verdict(None if ratio is None else ratio <= TARGET_RSS_RATIO)),
        (f"idle wake-ups in {window:.0f} s", get(s, "wakeups") if s else "n/a",
         get(c, "wakeups") if c else "n/a", str(TARGET_IDLE_WAKEUPS),
         verdict(None if not s else s["wakeups"] <= TARGET_IDLE_WAKEUPS)),
        ("status read p50", fmt_us(get(s, "latency", "p50_us")),
         fmt_us(get(c, "latency", "p50_us")), "", ""),
        ("status read p99", fmt_us(get(s, "latency", "p99_us")),
         fmt_us(get(c, "latency", "p99_us")), f"<= {TARGET_P99_US:.0f} us",
         verdict(None if not s else s["latency"]["p99_us"] <= TARGET_P99_US)),
        ("status read max", fmt_us(get(s, "latency", "max_us")),
         fmt_us(get(c, "latency", "max_us")), "", ""),
        ("threads", get(s, "threads") if s else "n/a", get(c, "threads") if c else "n/a", "",
         ""),
        ("RSS after the reads (VmHWM)",
         f"{fmt_kb(get(s, 'rss_after'))} ({fmt_kb(get(s, 'hwm'))})" if s else "n/a",
         f"{fmt_kb(get(c, 'rss_after'))} ({fmt_kb(get(c, 'hwm'))})" if c else "n/a", "", ""),
    ]
    print()
    print(f"safecad status benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %z}, "
          f"{os.cpu_count()} CPUs")
    print(f"  {plural(args.tokens, 'token')} (safecad: SoftHSM, hotplug "
          f"{'on' if hotplug else 'off'}) / {plural(args.tokens, 'tracked request')} "
          "(certmonger), "
          "same certificates, one private bus, daemons side by side;")
    print(f"  idle: {window:.1f} s, context switches of every thread; latency: {args.reads} "
          f"Properties.Get round-robin over {args.tokens} objects, one daemon at a time,")
    print(f"  safecad {SAFECAD_TOKEN_IFACE}.{args.safecad_property}, "
          f"certmonger {CERTMONGER_REQUEST_IFACE}.{args.certmonger_property}")
    if s:
        print(f"  safecad: {safecad_binary}, built {safecad_built:%Y-%m-%d %H:%M:%S}")
    print()
    print_table(rows)
    if floor is not None:
        print(f"(1) a bare process that loaded {os.path.basename(SOFTHSM_MODULE)} and read the same "
              f"{args.tokens} tokens (bench/module-rss):")
        print("    any daemon keeping this module loaded pays at least that much; certmonger "
              "loads no PKCS#11 module here.")
    print()
    for name, d in daemons.items():
        print(f"{name} (pid {d['proc'].pid}): {d['wakeups']} context switches while idle, "
              f"{plural(d['threads'], 'thread')}")
        if d["wakeups"] or name == "safecad":
            for line in d["threads_report"]:
                print(line)
        if d["wakeups"]:
            for line in d["timers"] or ["no armed timerfd"]:
                print("    timer " + line)
        print(f"  idle RSS: {d['rss_summary']}; largest mappings:")
        for line in d["rss_top"]:
            print("    " + line)
    if idle_notifications:
        print("safecad sent on NOTIFY_SOCKET while idle: "
              + "; ".join(m.replace("\n", " ") for m in idle_notifications))
    if args.check and s and not (ratio is not None and ratio <= TARGET_RSS_RATIO
                                 and s["wakeups"] <= TARGET_IDLE_WAKEUPS
                                 and s["latency"]["p99_us"] <= TARGET_P99_US):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
