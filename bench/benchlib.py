# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the bench scripts share beyond each other's functions: their errors
and log line, one run's temporary folder and clean-up, loading a bench script
as a module, percentiles, the resident memory of a process tree, timed runs
of a command. Not a benchmark itself."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)


class Stop(Exception):
    """SIGTERM or SIGHUP: unwind and clean up, as for Ctrl-C."""


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Run:
    """One benchmark run: a temporary folder, SIGTERM and SIGHUP raised as
    Stop, and clean-ups that finish() runs, last registered first, with
    Ctrl-C and SIGTERM ignored meanwhile; then the folder goes (or stays,
    with keep)."""

    def __init__(self, prefix, keep):
        def on_signal(signum, frame):
            raise Stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGHUP, on_signal)
        self.keep = keep
        self.cleanups = []
        self.directory = tempfile.mkdtemp(prefix=prefix)

    def on_finish(self, fn):
        self.cleanups.append(fn)

    def finish(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for fn in reversed(self.cleanups):
                fn()
        finally:
            if self.keep:
                log(f"kept {self.directory}")
            else:
                shutil.rmtree(self.directory, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    @staticmethod
    def exit_code(error):
        """What main() returns for Ctrl-C, Stop or a BenchError, said once."""
        if isinstance(error, KeyboardInterrupt):
            log("interrupted, cleaning up")
            return 130
        if isinstance(error, Stop):
            log(f"{error}, cleaning up")
            return 143
        log(str(error))
        return 1


def add_common_options(parser):
    """--build-dir, --keep and --check, as every bench script has them.
    The build folder is made absolute: the scripts start programs in
    folders of their own, where a relative path would point nowhere."""
    parser.add_argument("--build-dir", type=os.path.abspath,
                        default=os.environ.get("SAFECAD_BUILD_DIR") or os.path.join(REPO, "build"),
                        help="meson build folder ($SAFECAD_BUILD_DIR, default <repo>/build)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (logs, tokens, CA state) and print its "
                             "path")
    parser.add_argument("--check", action="store_true",
                        help="exit 3 when safecad misses a target")


def load(script):
    """bench/SCRIPT.py (its name has a dash, so no plain import) as a module.
    Loaded once per process: two scripts that both load status-bench get the
    same module, so its exception classes are the same ones for both."""
    name = script.replace("-", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, script + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def percentile(values, q):
    """The q-th percentile (0–100), interpolated between the two nearest
    ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return None
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def _parents():
    """{pid: parent pid} of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields
        # follow its last ')'.
        out[int(entry)] = int(text.rsplit(")", 1)[1].split()[1])
    return out


def descendants(pid):
    """Every process below PID, children first."""
    children = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        below = sorted(children.get(todo.pop(0), []))
        out += below
        todo += below
    return out


def _vm_rss(pid):
    """(name, VmRSS in KiB) of PID; None when it is gone. A zombie has no
    VmRSS: 0."""
    name, rss = "?", 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Name:"):
                    name = line.split(None, 1)[1].strip()
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        return None
    return name, rss


def tree_rss(pid):
    """VmRSS of PID and of every process below it (its workers), in KiB:
    {"total", "main", "others", "processes": [(pid, name, KiB), …]}."""
    processes = []
    for p in [pid] + descendants(pid):
        found = _vm_rss(p)
        if found is not None:
            processes.append((p, found[0], found[1]))
    main = sum(rss for p, _, rss in processes if p == pid)
    others = sum(rss for p, _, rss in processes if p != pid)
    return {"total": main + others, "main": main, "others": others, "processes": processes}


def timed_runs(argv, env, times, check=None):
    """Wall time of `times` runs of argv, in ns, each from fork to exit;
    check(result) may raise on a bad run (the first one's result is
    returned too)."""
    out, first = [], None
    for _ in range(times):
        t0 = time.monotonic_ns()
        result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)
        out.append(time.monotonic_ns() - t0)
        if check is not None:
            check(result)
        first = first or result
    return out, first
