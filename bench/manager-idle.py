#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""safecad-manager at rest against a bare libadwaita window: wake-ups,
memory and the time from launch to the tokens on screen.

    meson setup build-bench -Dbuildtype=debugoptimized && ninja -C build-bench
    bench/manager-idle.py --build-dir build-bench [--idle 30] [--launches 5]

Everything comes from the integration tests' harness: a private system bus,
pcscd with a vpcd reader (a card in it), safecad with four SoftHSM tokens,
Xvfb, a session bus with the accessibility bus, the AT-SPI driver. The
Token Manager (client/safecad-manager) and the baseline
(bench/manager-baseline, one AdwApplicationWindow with one label) run in
the same session, one at a time, with the same environment."""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = [f"Bench {i:02d}" for i in range(1, 5)]
ANIMATIONS = "gtk-enable-animations=false\n"


def task_switches(pid):
    """{tid: (thread name, voluntary + nonvoluntary context switches)}."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            count = 0
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        count += int(line.split()[1])
            out[tid] = (name, count)
        except OSError:
            continue  # a thread that ended meanwhile
    return out


def memory(pid):
    """(VmRSS, Pss or None) in KiB."""
    rss = pss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def poll_returns(pid, seconds, log):
    """Returns of poll()/ppoll() of every thread in `seconds`, seen by
    strace attached to the process (None without strace). A call that was
    waiting when strace attached and returns later counts once; one still
    waiting at the end does not."""
    if shutil.which("strace") is None:
        return None
    proc = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=poll,ppoll", "-e",
                             "signal=none", "-o", log, "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    returns = 0
    with open(log, errors="replace") as f:
        for line in f:
            if re.search(r"\) += \d+", line):
                returns += 1
    return returns


class Subject:
    def __init__(self, name, binary, shown):
        self.name = name
        self.binary = binary
        self.shown = shown  # nodes -> bool


def tokens_shown(nodes):
    """Each token's heading is there and visible (GTK 4.8 gives AT-SPI no
    "showing" state)."""
    return all(any(role == "label" and name.startswith(f"Token {label} ")
                   and "visible" in states for role, name, states, text in nodes)
               for label in LABELS)


def baseline_shown(nodes):
    return any(role == "label" and name == "Baseline window" and "visible" in states
               for role, name, states, text in nodes)


class Bench:
    def __init__(self, world, desktop, renderer):
        self.world = world
        self.desktop = desktop
        self.renderer = renderer
        self.settings = os.path.join(desktop.dir, "config", "gtk-4.0", "settings.ini")
        self.windows = []
        self.count = 0

    def launch(self, subject, blink):
        """A driver of its own for each launch: one driver does not see an
        application that starts after another has gone. It is ready (pyatspi
        loaded, on the accessibility bus) before the clock starts."""
        from harness.manager import ManagerWindow

        self.w = ManagerWindow(self.world, self.desktop)
        self.windows.append(self.w)
        self.w.env["GSK_RENDERER"] = self.renderer
        self.w.proc = types.SimpleNamespace(pid=-1)
        self.w.nodes()
        with open(self.settings, "w") as f:
            f.write("[Settings]\n" + ("gtk-cursor-blink=false\n" if not blink else "")
                    + ANIMATIONS)
        log = os.path.join(self.w.desktop.dir, f"window-{self.count}.log")
        self.count += 1
        start = time.monotonic()
        proc = subprocess.Popen([subject.binary], env=self.w.env, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = log
        self.w.procs.append(proc)
        self.w.proc = proc
        return proc, start

    def wait_shown(self, subject, proc, timeout=60):
        """When the AT-SPI driver first saw the subject's content showing;
        the driver is asked again as soon as it answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                nodes = self.w.nodes()
            except RuntimeError:
                nodes = []
            now = time.monotonic()
            if subject.shown(nodes):
                return now
            if proc.poll() is not None:
                raise RuntimeError(f"{subject.name} exited {proc.returncode}: "
                                   f"{open(proc.log_path).read()}")
            if now > deadline:
                raise RuntimeError(f"{subject.name} showed nothing in {timeout} s: "
                                   f"{[n for n in nodes if n[0] == 'label']}")
            time.sleep(0.01)

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
        if rc != 0:
            raise RuntimeError(f"the window exited {rc}: {open(proc.log_path).read()}")

    def close(self):
        problems = []
        while self.windows:
            problems += self.windows.pop().close()
        return problems

    def at_rest(self, subject, blink, settle, idle):
        proc, _ = self.launch(subject, blink)
        self.wait_shown(subject, proc)
        time.sleep(settle)
        before = task_switches(proc.pid)
        time.sleep(idle)
        after = task_switches(proc.pid)
        rss, pss = memory(proc.pid)
        threads = []
        for tid, (name, count) in sorted(after.items(), key=lambda kv: int(kv[0])):
            threads.append((tid, name, count - before.get(tid, (name, 0))[1]))
        log = os.path.join(self.w.desktop.dir, f"strace-{self.count}.log")
        polls = poll_returns(proc.pid, idle, log)
        self.stop(proc)
        self.close()
        return {"wakeups": sum(t[2] for t in threads), "threads": threads, "polls": polls,
                "rss": rss, "pss": pss}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.environ.get("SAFECAD_BUILD_DIR"),
                        required="SAFECAD_BUILD_DIR" not in os.environ)
    parser.add_argument("--idle", type=float, default=30, help="seconds counted at rest")
    parser.add_argument("--settle", type=float, default=3,
                        help="seconds after the content shows before counting")
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--renderer", default="cairo", help="GSK_RENDERER (tests use cairo)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    build = os.path.abspath(args.build_dir)
    os.environ["SAFECAD_BUILD_DIR"] = build
    sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
    from harness.desktop import Desktop
    from harness.manager import MANAGER
    from harness.pki import PKI
    from harness.refca import token_with_pair
    from harness.safecad import World

    baseline = os.path.join(build, "bench", "manager-baseline")
    for binary in (MANAGER, baseline):
        if not os.access(binary, os.X_OK):
            print(f"{binary} is missing: build with GTK 4 and libadwaita", file=sys.stderr)
            return 1
    subjects = [Subject("safecad-manager", MANAGER, tokens_shown),
                Subject("baseline", baseline, baseline_shown)]

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    directory = tempfile.mkdtemp(prefix="manager-idle-")
    world = desktop = bench = None
    try:
        pki = PKI(os.path.join(directory, "pki"))
        world = World(os.path.join(directory, "world"), pki)
        world.start_pcscd()
        for i, label in enumerate(LABELS):
            token_with_pair(world, pki, label=label, days_left=40 + 100 * i)
        world.start_daemon()
        world.insert_card()
        desktop = Desktop(os.path.join(directory, "desktop")).start("plain")
        bench = Bench(world, desktop, args.renderer)

        rest = {}
        for subject in subjects:
            for blink in (False, True):
                print(f"{subject.name}, cursor blink {'on' if blink else 'off'}: "
                      f"{args.settle + 2 * args.idle:.0f} s at rest", file=sys.stderr)
                rest[subject.name, blink] = bench.at_rest(subject, blink, args.settle,
                                                          args.idle)
        launches = {s.name: [] for s in subjects}
        for i in range(args.launches):
            # Taking turns, so that a busy moment of the machine is shared.
            for subject in subjects:
                proc, start = bench.launch(subject, False)
                launches[subject.name].append(bench.wait_shown(subject, proc) - start)
                time.sleep(0.5)
                bench.stop(proc)
                bench.close()

        report(args, subjects, rest, launches)
        return 0
    except KeyboardInterrupt:
        return 1
    finally:
        # The windows first, then their session, then safecad's world.
        for part, stop in ((bench, "close"), (desktop, "stop"), (world, "teardown")):
            if part:
                getattr(part, stop)()
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


def report(args, subjects, rest, launches):
    names = [s.name for s in subjects]
    own, base = names

    def mb(kib):
        return f"{kib / 1024:.1f}" if kib is not None else "n/a"

    def n(value):
        return "n/a" if value is None else str(value)

    def diff(a, b, fmt=str):
        return "n/a" if a is None or b is None else fmt(a - b)

    rows = []
    for blink in (False, True):
        state = "off" if not blink else "on"
        a, b = rest[own, blink], rest[base, blink]
        rows.append((f"wake-ups in {args.idle:.0f} s, blink {state}", n(a["wakeups"]),
                     n(b["wakeups"]), diff(a["wakeups"], b["wakeups"])))
        rows.append((f"poll returns in {args.idle:.0f} s, blink {state}", n(a["polls"]),
                     n(b["polls"]), diff(a["polls"], b["polls"])))
    a, b = rest[own, False], rest[base, False]
    rows.append(("VmRSS at rest, MB", mb(a["rss"]), mb(b["rss"]),
                 diff(a["rss"], b["rss"], mb)))
    rows.append(("Pss at rest, MB", mb(a["pss"]), mb(b["pss"]),
                 diff(a["pss"], b["pss"], mb)))
    med = {k: statistics.median(v) for k, v in launches.items()}
    top = {k: max(v) for k, v in launches.items()}
    rows.append((f"launch to shown, median of {args.launches}, s", f"{med[own]:.2f}",
                 f"{med[base]:.2f}", f"{med[own] - med[base]:.2f}"))
    rows.append((f"launch to shown, max of {args.launches}, s", f"{top[own]:.2f}",
                 f"{top[base]:.2f}", f"{top[own] - top[base]:.2f}"))

    header = ("", own, base, "window's own")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    print(f"| {' | '.join(h.ljust(w) for h, w in zip(header, widths))} |")
    print(f"|{'|'.join('-' * (w + 2) for w in widths)}|")
    for r in rows:
        print(f"| {' | '.join(c.ljust(w) for c, w in zip(r, widths))} |")
    print()
    print(f"GSK_RENDERER={args.renderer}; counted after the content showed and "
          f"{args.settle:.0f} s more; wake-ups: voluntary + nonvoluntary context switches "
          "of every thread (/proc/PID/task/*/status); poll returns: poll()/ppoll() "
          "returns of every thread under strace, in a second window of the same length.")
    for name in names:
        print(f"launches of {name}, s: " + " ".join(f"{t:.2f}" for t in launches[name]))
    for (name, blink), r in rest.items():
        busy = [f"{tname}({tid}) {count}" for tid, tname, count in r["threads"] if count]
        print(f"{name}, blink {'on' if blink else 'off'}: {len(r['threads'])} threads; "
              f"woke: {', '.join(busy) if busy else 'none'}")


if __name__ == "__main__":
    sys.exit(main())
