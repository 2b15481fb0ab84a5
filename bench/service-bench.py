#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Service benchmark: the figures of the service issue against their peers,
in one run, one table.

  idle RSS, 1 token           safecad (daemon + its worker processes)
                              against certmonger tracking 1 certificate;
                              goal <= 0.6 x certmonger
  activation overhead         wall time - CA time of a renewal to a new
                              P-256 key, median of 7: `safectl activate`
                              against the same steps by hand (pkcs11-tool,
                              openssl, curl; bench/activation-bench.py's
                              two methods); goal <= 0.5 x by hand
  status with 32 tokens       `safectl --json status` p50 against
                              `getcert list` p50 with 32 tracked
                              certificates; goal <= getcert
  hotplug share               from the moment an independent PC/SC client
                              is woken by a card insertion to the
                              TokenAdded signal on the bus (the daemon's
                              module reload included), p50/p99 over 20
                              insertions; goal p99 <= 10 ms
  RSS per token at 64 tokens  (RSS with 64 tokens - RSS with 1) / 63;
                              goal <= 64 KiB

Every RSS figure is VmRSS summed over the daemon and every process below it
(its token workers, `safecad-worker`), found through /proc/*/stat, and the
split is printed. safecad runs with pcscd and vpcd (hotplug on) for the RSS,
status and hotplug figures; the activation runs as in activation-bench (no
pcscd, bench/p11-timing.so in front of SoftHSM, the reference CA behind the
bench's proxy).

Usage:  bench/service-bench.py [--quick] [--build-dir DIR] [--keep] [--check]
Run by hand (see bench/README.md); it is not part of `meson test`. It exits 0
when every part ran, 1 when a part could not run (the table shows the rest),
and, with --check, 3 when safecad misses a goal. Everything it starts runs in
its own process group in a temporary folder, and is stopped and removed at
the end, also on Ctrl-C or SIGTERM.
"""

import argparse
import datetime
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import threading
import time

import benchlib

sb = benchlib.load("status-bench")
ab = benchlib.load("activation-bench")
BenchError, Stop, Processes, log, run, tail = (
    sb.BenchError, sb.Stop, sb.Processes, sb.log, sb.run, sb.tail)

REPO = benchlib.REPO
PYTHON = "/usr/bin/python3"
HARNESS_DIR = os.path.join(REPO, "tests", "integration")
P256 = {"generate": True, "type": "ec", "curve": "P-256"}
SCARD_STATE_PRESENT = 0x20
MANAGER_IFACE = sb.SAFECAD_NAME

GOAL_RSS_RATIO = 0.6
GOAL_ACTIVATION_RATIO = 0.5
GOAL_HOTPLUG_P99_MS = 10.0
GOAL_RSS_PER_TOKEN_KIB = 64.0

# What the caller's environment must not hand to the daemons and tools.
UNSET = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
         "INVOCATION_ID", "JOURNAL_STREAM", "OPENSSL_CONF", "PKCS11_MODULE_PATH",
         "P11_TIMING_LOG", "SAFECAD_LOG_LEVEL", "SOFTHSM2_CONF", "PCSCLITE_CSOCK_NAME")


def ms(ns):
    return ns / 1e6


def softhsm_env(env, directory, tokendir):
    """env with a SoftHSM configuration of its own in directory, reading
    tokendir."""
    os.makedirs(tokendir, exist_ok=True)
    conf = os.path.join(directory, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\n"
                "log.level = ERROR\nslots.removable = false\n")
    return dict(env, SOFTHSM2_CONF=conf)


class Tokens:
    """SoftHSM tokens made once, each in a folder of its own; each daemon run
    gets a token folder with copies of the first N. SoftHSM reads its folder
    only at C_Initialize, so a daemon with another count needs another
    folder; copying a token's folder is much faster than making it again."""

    def __init__(self, directory, env, pairs):
        self.directory = directory
        self.made = os.path.join(directory, "tokens-made")
        env = softhsm_env(env, directory, self.made)
        self.folders = []
        for pair in pairs:
            before = set(os.listdir(self.made))
            sb.make_tokens(env, [pair])
            new = set(os.listdir(self.made)) - before
            if len(new) != 1:
                raise BenchError(f"making token {pair['label']} added {sorted(new)} to "
                                 f"{self.made}")
            self.folders.append(new.pop())

    def copy(self, index, tokendir):
        os.makedirs(tokendir, exist_ok=True)
        target = os.path.join(tokendir, self.folders[index])
        shutil.copytree(os.path.join(self.made, self.folders[index]), target)
        return target

    def env_with(self, env, name, count):
        """(env, tokendir) for a daemon run named name with the first count
        tokens."""
        directory = os.path.join(self.directory, name)
        tokendir = os.path.join(directory, "tokens")
        for i in range(count):
            self.copy(i, tokendir)
        return softhsm_env(env, directory, tokendir), tokendir


class NotifyDrain:
    """Reads NOTIFY_SOCKET the whole time, as systemd does: the daemon sends
    STATUS= at every change of its token list and blocks when the socket's
    short queue is full."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.setblocking(False)
        self.messages = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.2)
                if ready:
                    self.messages += sb.drain(self.sock)
            except (OSError, ValueError):
                return

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


class Daemon:
    """safecad with count tokens from tokens, hotplug on when pcscd is given."""

    def __init__(self, procs, directory, env, binary, tokens, name, count, pcscd):
        self.procs = procs
        self.env, self.tokendir = tokens.env_with(env, name, count)
        self.proc, self.paths, self.log_path, notify, self.hotplug = sb.start_safecad(
            procs, os.path.join(directory, name), self.env, binary, count,
            pcsc_socket=pcscd.link if pcscd else None)
        self.notify = NotifyDrain(notify)

    def rss(self):
        return benchlib.tree_rss(self.proc.pid)

    def stop(self):
        exited = self.proc.poll()
        self.procs.stop(self.proc)
        self.notify.close()
        if exited is not None:
            raise BenchError(f"safecad exited with {exited} before the end; its log:\n"
                             f"{tail(self.log_path)}")


class PcscObserver:
    """An independent PC/SC client (harness.pcsc.observe in a process of its
    own, since libpcsclite reads PCSCLITE_CSOCK_NAME once per process):
    blocked in SCardGetStatusChange, it notes when pcscd wakes it."""

    def __init__(self, procs, socket_path):
        code = (f"import sys; sys.path.insert(0, {HARNESS_DIR!r}); "
                "from harness.pcsc import observe; sys.exit(observe())")
        self.proc = procs.start("pcsc observer", [PYTHON, "-c", code],
                                env=dict(os.environ, PCSCLITE_CSOCK_NAME=socket_path),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.events = []
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(0, None, 10)

    def _read(self):
        for line in self.proc.stdout:
            fields = line.split()
            with self.lock:
                self.lines.append(line.rstrip("\n"))
                if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                    self.events.append((int(fields[0]), int(fields[1])))

    def wait(self, t0, present, timeout):
        """The first wake-up at or after t0 (CLOCK_MONOTONIC ns) with a card
        present (or not); present None: any."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for t, state in self.events:
                    if t >= t0 and (present is None
                                    or bool(state & SCARD_STATE_PRESENT) == present):
                        return t
            if self.proc.poll() is not None:
                break
            time.sleep(0.002)
        with self.lock:
            seen = "\n".join(self.lines[-10:])
        raise BenchError(f"the PC/SC observer saw no {'insertion' if present else 'event'} "
                         f"within {timeout} s; it printed:\n{seen}")


def wait_signal(signals, member, t0, timeout, daemon):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t, name, args in signals.between(t0, time.monotonic_ns()):
            if name == member:
                return t, args
        if daemon.proc.poll() is not None:
            break
        time.sleep(0.002)
    raise BenchError(f"no {member} within {timeout} s; the daemon's log:\n"
                     f"{tail(daemon.log_path)}")


# ---------------------------------------------------------------- the parts

def certmonger_part(procs, directory, env, pairs, status_tokens, runs, settle):
    """certmonger's idle RSS with one tracked certificate, then `getcert
    list` with status_tokens of them."""
    proc, _, log_path = sb.start_certmonger(procs, directory, env, pairs[:1])
    time.sleep(settle)
    rss = benchlib.tree_rss(proc.pid)
    sb.track_certificates(env, pairs[1:status_tokens], status_tokens, proc, log_path)
    time.sleep(1)

    def check(result):
        if result.returncode != 0:
            raise BenchError(f"getcert list exited {result.returncode}: {result.stderr!r}")

    times, first = benchlib.timed_runs(["getcert", "list", "-S"], env, runs, check)
    listed = first.stdout.decode(errors="replace").count("Request ID")
    procs.stop(proc)
    return {"rss": rss, "list": times, "listed": listed}


def hotplug_part(daemon, pcscd, observer, signals, pool_token, insertions, VpcdCard):
    """Moves a ready-made token into the daemon's token folder and inserts a
    vpcd card, insertions times (the tests' way to plug a SoftHSM token in);
    each time, the observer's wake-up and the TokenAdded signal."""
    rows = []
    inside = os.path.join(daemon.tokendir, os.path.basename(pool_token))
    for i in range(insertions):
        os.rename(pool_token, inside)
        t0 = time.monotonic_ns()
        card = VpcdCard(pcscd.port).insert()
        try:
            wake = observer.wait(t0, True, 10)
            added, args = wait_signal(signals, "TokenAdded", t0, 10, daemon)
        finally:
            os.rename(inside, pool_token)
            t1 = time.monotonic_ns()
            card.remove()
        gone = observer.wait(t1, False, 10)
        removed, _ = wait_signal(signals, "TokenRemoved", t1, 10, daemon)
        rows.append({"connect_to_wake": wake - t0, "share": added - wake,
                     "removal_share": removed - gone, "serial": str(args[1])})
        log(f"insertion {i + 1}/{insertions}: PC/SC {ms(wake - t0):.0f} ms after the connect, "
            f"TokenAdded {ms(added - wake):.2f} ms after that")
        time.sleep(0.3)
    return rows


def status_part(daemon, safectl, runs, count):
    def check(result):
        if result.returncode != 0:
            raise BenchError(f"safectl --json status exited {result.returncode}: "
                             f"{result.stderr!r}")

    times, first = benchlib.timed_runs([safectl, "--json", "status"], daemon.env, runs, check)
    listed = len(json.loads(first.stdout)["tokens"])
    if listed != count:
        raise BenchError(f"safectl --json status listed {listed} tokens, not {count}")
    return {"status": times, "listed": listed}


def activation_part(procs, directory, env, build_dir, rounds):
    """bench/activation-bench.py's two methods on a P-256 renewal."""
    directory = os.path.join(directory, "activation")
    env = softhsm_env(env, directory, os.path.join(directory, "tokens"))
    shim = ab.build_shim(directory)
    ca = signals = sc = drain = None
    sc_runs, bh_runs = [], []
    try:
        ca = ab.CA(procs, directory, key_spec=P256)
        sc_token = ab.make_token(env, ca, directory, "safecad")
        signals = ab.Signals(env["DBUS_SYSTEM_BUS_ADDRESS"])
        sc = ab.Safecad(procs, directory, env, build_dir, shim, ab.v1_profile(ca))
        sc.wait_ready()
        drain = NotifyDrain(sc.notify)
        sc_token["path"] = sc.token_path()
        sc.wait_settled(sc_token["path"], sc_token["facts"]["sha256"], ca)
        # Made after the daemon started: it never sees this one.
        bh_token = ab.make_token(env, ca, directory, "byhand")
        by_hand = ab.ByHand(directory, env, shim, ca, bh_token)
        ca.mark()
        sc.p11.read_new()
        for i in range(rounds):
            order = ("safecad", "by hand") if i % 2 == 0 else ("by hand", "safecad")
            for method in order:
                log(f"activation round {i + 1}/{rounds}: {method}")
                if method == "safecad":
                    sc_runs.append(ab.run_safecad(sc, sc_token, ca, signals, i))
                else:
                    bh_runs.append(by_hand.run_round(i))
                time.sleep(0.2)
    finally:
        if signals is not None:
            signals.stop()
        if sc is not None:
            procs.stop(sc.proc)
            if drain is not None:
                drain.close()
            else:
                sc.notify.close()
        if ca is not None:
            procs.stop(ca.proc)
            ca.proxy.close()
    return {"safecad": sc_runs, "by hand": bh_runs}


# ---------------------------------------------------------------- report

def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def verdict(ok, note=""):
    if ok is None:
        return "n/a"
    return ("yes" if ok else "NO") + (f" ({note})" if note else "")


def rss_line(what, rss):
    names = {}
    for _, name, kib in rss["processes"][1:]:
        count, total = names.get(name, (0, 0))
        names[name] = (count + 1, total + kib)
    workers = ", ".join(f"{n} x{c} {mib(k)}" for n, (c, k) in sorted(names.items()))
    return (f"  {what}: {rss['total']} KiB = {rss['main']} KiB daemon + {rss['others']} KiB in "
            f"{len(rss['processes']) - 1} processes below it" + (f" ({workers})" if workers
                                                                   else ""))


def spread_ms(values, digits=1):
    return (f"p50 {ms(benchlib.percentile(values, 50)):.{digits}f}, "
            f"p99 {ms(benchlib.percentile(values, 99)):.{digits}f}, "
            f"max {ms(max(values)):.{digits}f} ms")


def report(args, results, errors):
    rows, missed = [], []

    def row(metric, figure, peer, goal, ok, note=""):
        rows.append((metric, figure, peer, goal, verdict(ok, note)))
        if ok is False:
            missed.append(metric)

    cm, one = results.get("certmonger"), results.get("rss 1")
    if cm and one:
        ratio = one["total"] / cm["rss"]["total"]
        row("idle RSS, 1 token",
            f"{mib(one['total'])} (daemon {one['main'] / 1024:.1f} + workers "
            f"{one['others'] / 1024:.1f})", f"certmonger {mib(cm['rss']['total'])}",
            f"<= {GOAL_RSS_RATIO}x certmonger", ratio <= GOAL_RSS_RATIO, f"{ratio:.2f}x")
    else:
        row("idle RSS, 1 token", "n/a", "certmonger", f"<= {GOAL_RSS_RATIO}x certmonger", None)

    act = results.get("activation")
    metric = f"activation overhead (wall - CA), median of {args.rounds}, P-256"
    if act:
        sc = statistics.median(r["total"] - r["ca"] for r in act["safecad"])
        bh = statistics.median(r["total"] - r["ca"] for r in act["by hand"])
        row(metric, f"{ms(sc):.0f} ms", f"by hand {ms(bh):.0f} ms",
            f"<= {GOAL_ACTIVATION_RATIO}x by hand", sc <= GOAL_ACTIVATION_RATIO * bh,
            f"{sc / bh:.2f}x")
    else:
        row(metric, "n/a", "by hand", f"<= {GOAL_ACTIVATION_RATIO}x by hand", None)

    status = results.get("status")
    metric = f"safectl --json status p50, {args.status_tokens} tokens"
    if status and cm:
        sc = benchlib.percentile(status["status"], 50)
        gc = benchlib.percentile(cm["list"], 50)
        row(metric, f"{ms(sc):.1f} ms", f"getcert list {ms(gc):.1f} ms", "<= getcert list",
            sc <= gc, f"{sc / gc:.2f}x")
    else:
        row(metric, "n/a", "getcert list", "<= getcert list", None)

    hot = results.get("hotplug")
    metric = f"hotplug share, PC/SC event -> TokenAdded, p50 / p99 of {args.insertions}"
    if hot:
        shares = [r["share"] for r in hot]
        p99 = ms(benchlib.percentile(shares, 99))
        row(metric, f"{ms(benchlib.percentile(shares, 50)):.2f} / {p99:.2f} ms", "(none)",
            f"p99 <= {GOAL_HOTPLUG_P99_MS:.0f} ms", p99 <= GOAL_HOTPLUG_P99_MS)
    else:
        row(metric, "n/a", "(none)", f"p99 <= {GOAL_HOTPLUG_P99_MS:.0f} ms", None)

    many = results.get(f"rss {args.many_tokens}")
    metric = f"RSS per token at {args.many_tokens} tokens"
    if many and one:
        per = (many["total"] - one["total"]) / (args.many_tokens - 1)
        per_main = (many["main"] - one["main"]) / (args.many_tokens - 1)
        row(metric, f"{per:.1f} KiB (daemon {per_main:.1f} + workers {per - per_main:.1f})",
            "(none)", f"<= {GOAL_RSS_PER_TOKEN_KIB:.0f} KiB",
            per <= GOAL_RSS_PER_TOKEN_KIB)
    else:
        row(metric, "n/a", "(none)", f"<= {GOAL_RSS_PER_TOKEN_KIB:.0f} KiB", None)

    print()
    print(f"safecad service benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %z}, "
          f"{os.cpu_count()} CPUs, kernel {os.uname().release}"
          + (" (--quick: fewer repetitions)" if args.quick else ""))
    print(f"  {args.binary}, built {results.get('built', '?')}; load average "
          f"{results['load'][0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print()
    ab.table(("", "safecad", "peer", "goal", "met?"), rows, ["<", ">", ">", ">", "<"])
    print()
    print("RSS (VmRSS of the daemon and every process below it, after "
          f"{args.settle:g} s of quiet):")
    if cm:
        print(rss_line("certmonger, 1 tracked certificate", cm["rss"]))
    if one:
        print(rss_line("safecad, 1 token", one))
    if many:
        print(rss_line(f"safecad, {args.many_tokens} tokens", many))
    if cm:
        print(f"status: getcert list -S ({cm['listed']} requests listed), {args.runs} runs: "
              f"{spread_ms(cm['list'])}")
    if status:
        print(f"status: safectl --json status ({status['listed']} tokens listed), {args.runs} "
              f"runs: {spread_ms(status['status'])}")
    if hot:
        print(f"hotplug, {len(hot)} insertions (a SoftHSM token moved into the daemon's folder, "
              "then a vpcd card connected):")
        print(f"  vpcd connect -> PC/SC observer woken: "
              f"{spread_ms([r['connect_to_wake'] for r in hot], 0)} (vpcd's polling, not ours)")
        print(f"  observer woken -> TokenAdded received: {spread_ms([r['share'] for r in hot], 2)}")
        print("    each: " + " ".join(f"{ms(r['share']):.1f}" for r in hot))
        print(f"  (info) removal, observer woken -> TokenRemoved: "
              f"{spread_ms([r['removal_share'] for r in hot], 2)}")
    if act:
        print(f"activation, renewal to a new P-256 key, {len(act['safecad'])} rounds, the methods "
              "taking turns to go first (ms):")
        table_rows = []
        for i, (s, b) in enumerate(zip(act["safecad"], act["by hand"]), 1):
            table_rows.append((i, f"{ms(s['total']):.0f}", f"{ms(s['ca']):.1f}",
                               f"{ms(s['keygen']):.1f}", f"{ms(s['total'] - s['ca']):.1f}",
                               f"{ms(b['total']):.0f}", f"{ms(b['ca']):.1f}",
                               f"{ms(b['keygen']):.1f}", f"{ms(b['total'] - b['ca']):.1f}"))
        ab.table(("round", "safecad", "CA", "keygen", "wall - CA", "by hand", "curl runs",
                  "keygen run", "wall - CA"), table_rows)
        print("  safecad: `safectl activate` wall time; CA = its requests' round trips at the "
              "proxy. By hand: the sum of the")
        print("  tools' wall times; CA = the curl runs (bench/activation-bench.py explains both).")
        sc_rest = statistics.median(r["total"] - r["ca"] - r["keygen"] for r in act["safecad"])
        bh_rest = statistics.median(r["total"] - r["ca"] - r["keygen_token"]
                                    for r in act["by hand"])
        print(f"  (info) wall - CA - C_GenerateKeyPair, median: safecad {ms(sc_rest):.0f} ms, by "
              f"hand {ms(bh_rest):.0f} ms ({sc_rest / bh_rest:.2f}x); C_GenerateKeyPair median "
              f"{ms(statistics.median(r['keygen'] for r in act['safecad'])):.1f} / "
              f"{ms(statistics.median(r['keygen_token'] for r in act['by hand'])):.1f} ms")
    for part, error in errors:
        print(f"{part}: could not run: {error.splitlines()[0]}")
    return missed


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(
        description="safecad's service figures against certmonger and by-hand tools, "
                    "one table.")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions: 3 activation rounds, 5 insertions, 10 status "
                             "runs, 2 s settle (figures only indicative)")
    parser.add_argument("--rounds", type=int, help="activation rounds (default 7)")
    parser.add_argument("--insertions", type=int, help="card insertions (default 20)")
    parser.add_argument("--runs", type=int, help="runs of each status command (default 30)")
    parser.add_argument("--settle", type=float,
                        help="quiet seconds before an RSS reading (default 5)")
    parser.add_argument("--status-tokens", type=int, default=32,
                        help="tokens / tracked certificates for the status row (default 32)")
    parser.add_argument("--many-tokens", type=int, default=64,
                        help="tokens for the RSS-per-token row (default 64)")
    benchlib.add_common_options(parser)
    args = parser.parse_args()
    quick = args.quick
    for name, full, short in (("rounds", 7, 3), ("insertions", 20, 5), ("runs", 30, 10),
                              ("settle", 5.0, 2.0)):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    if (args.rounds < 1 or args.insertions < 1 or args.runs < 1 or args.settle < 0
            or args.status_tokens < 1 or args.many_tokens < 2):
        parser.error("counts must be positive, --many-tokens at least 2")
    args.binary = os.path.join(args.build_dir, "daemon", "safecad")
    safectl = os.path.join(args.build_dir, "client", "safectl")
    for binary in (args.binary, safectl):
        if not os.access(binary, os.X_OK):
            log(f"{binary} is missing: build first (ninja -C {args.build_dir})")
            return 1
    for tool in ("dbus-daemon", "softhsm2-util", "pkcs11-tool", "openssl", "curl", "gcc",
                 "pkg-config", "pcscd", "unshare", "certmonger", "getcert"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            log(f"{tool} is not installed (tools/install-deps.sh installs it)")
            return 1
    ab.check_build(args.build_dir)
    sys.path.insert(0, HARNESS_DIR)
    from harness.pcsc import Pcscd, VpcdCard

    bench_run = benchlib.Run("safecad-service-bench.", args.keep)
    directory = bench_run.directory
    procs = Processes()
    bench_run.on_finish(procs.stop_all)
    signals = None
    results = {"load": os.getloadavg(), "built": datetime.datetime.fromtimestamp(
        os.path.getmtime(args.binary)).astimezone().strftime("%Y-%m-%d %H:%M:%S")}
    errors = []
    many = max(args.status_tokens, args.many_tokens)

    def part(name, fn):
        """Runs one part; a part that cannot run leaves its row n/a."""
        try:
            return fn()
        except BenchError as e:
            log(f"{name}: {e}")
            errors.append((name, str(e)))
            # A daemon left running would hold the bus name the next part
            # needs.
            for proc_name, proc in list(procs.procs):
                if proc_name == "safecad":
                    procs.stop(proc)
            return None

    try:
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        log(f"making {many + 1} keys, certificates and SoftHSM tokens")
        pairs = sb.make_certificates(directory, many + 1)
        tokens = Tokens(directory, env, pairs)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = sb.start_bus(procs, directory)
        pcscd = Pcscd(os.path.join(directory, "pcsc")).start()
        bench_run.on_finish(pcscd.stop)
        observer = PcscObserver(procs, pcscd.link)

        log("certmonger: idle RSS with 1 certificate, then getcert list with "
            f"{args.status_tokens}")
        results["certmonger"] = part("certmonger", lambda: certmonger_part(
            procs, directory, env, pairs, args.status_tokens, args.runs, args.settle))

        def one_token():
            daemon = Daemon(procs, directory, env, args.binary, tokens, "safecad-1", 1, pcscd)
            if not daemon.hotplug:
                raise BenchError("safecad reports Hotplug false with pcscd running")
            try:
                time.sleep(args.settle)
                results["rss 1"] = daemon.rss()
            except BaseException:
                daemon.stop()
                raise
            log(f"hotplug: {args.insertions} insertions")
            pool = os.path.join(directory, "hotplug-pool")
            pool_token = tokens.copy(many, pool)
            try:
                results["hotplug"] = hotplug_part(daemon, pcscd, observer, signals, pool_token,
                                                  args.insertions, VpcdCard)
            finally:
                daemon.stop()

        signals = ab.Signals(env["DBUS_SYSTEM_BUS_ADDRESS"], MANAGER_IFACE)
        bench_run.on_finish(signals.stop)
        log("safecad, 1 token: idle RSS, then hotplug")
        part("safecad, 1 token", one_token)

        def status_tokens():
            daemon = Daemon(procs, directory, env, args.binary, tokens,
                            f"safecad-{args.status_tokens}", args.status_tokens, pcscd)
            try:
                results["status"] = status_part(daemon, safectl, args.runs, args.status_tokens)
            finally:
                daemon.stop()

        log(f"safecad, {args.status_tokens} tokens: safectl --json status")
        part(f"safecad, {args.status_tokens} tokens", status_tokens)

        def many_tokens():
            daemon = Daemon(procs, directory, env, args.binary, tokens,
                            f"safecad-{args.many_tokens}", args.many_tokens, pcscd)
            try:
                time.sleep(args.settle)
                results[f"rss {args.many_tokens}"] = daemon.rss()
            finally:
                daemon.stop()

        log(f"safecad, {args.many_tokens} tokens: idle RSS")
        part(f"safecad, {args.many_tokens} tokens", many_tokens)

        log(f"activation: {args.rounds} rounds, P-256")
        results["activation"] = part("activation", lambda: activation_part(
            procs, directory, env, args.build_dir, args.rounds))
    except (KeyboardInterrupt, Stop, BenchError) as e:
        return bench_run.exit_code(e)
    finally:
        bench_run.finish()

    missed = report(args, results, errors)
    if errors:
        return 1
    if args.check and missed:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
