#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Token worker: one job per process, or warm? The figures.

Makes 1 and then 8 SoftHSM tokens (a key pair and a certificate each, with
the integration tests' harness) and runs bench/worker-start (C) on them,
through SoftHSM's module directly and through p11-kit's proxy (the daemon's
default module, which loads SoftHSM from its .module file and honours
SOFTHSM2_CONF). worker-start times, with CLOCK_MONOTONIC:
  - a one-job worker: fork + exec, module load + C_Initialize, a scan of
    every token (certificates read and parsed, key ids), C_Finalize, and
    its answer read by the parent over a socketpair;
  - the same scan asked of an already running worker over a socketpair;
  - the worker's VmRSS and Pss after a scan, one-job and after 100 warm
    scans; the wall time of 100 successive jobs both ways.
Prints a table and a conclusion computed from the figures.

Usage:  nice bench/worker-start.py [--build-dir build-bench] [--reps 50]
        [--successive 100] [--tokens 1,8] [--modules softhsm,proxy] [--keep]
Run by hand (see bench/README.md); not part of `meson test`. Exits 0 when
it ran, 1 when it could not.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS_DIR = os.path.join(REPO, "tests", "integration")
MODULES = {
    "softhsm": "/usr/lib/softhsm/libsofthsm2.so",
    "proxy": "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so",
}
ROWS = [
    ("exec_only", "exec + dynamic linking alone (fork to reaped)"),
    ("cold_total", "one-job worker: fork to answer read"),
    ("cold_fork_to_main", "  of which fork + exec + linking (to main)"),
    ("cold_load_init", "  of which dlopen + C_Initialize"),
    ("cold_scan", "  of which the scan"),
    ("cold_finalize_answer", "  of which C_Finalize + answer"),
    ("warm_total", "warm worker: request to answer read"),
    ("warm_request_to_scanned", "  of which request to scan done"),
]


def log(msg):
    print(f"worker-start: {msg}", file=sys.stderr, flush=True)


def make_tokens(directory, count):
    from harness.pki import PKI
    from harness.softhsm import SoftHSM
    pki = PKI(os.path.join(directory, "pki"))
    hsm = SoftHSM(os.path.join(directory, "softhsm"))
    for i in range(count):
        token = hsm.create_token(f"Worker Bench {i + 1:02d}")
        token.add_pair(pki.issue(days_left=200), f"{i + 1:02x}")
    return hsm.env


def run_one(binary, module, env, reps, successive):
    r = subprocess.run([binary, module, str(reps), str(successive)], env=env,
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"worker-start failed ({r.returncode}): {r.stderr}")
    out = {"figures": {}, "rss": {}, "wall": {}}
    for line in r.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "figure" in fields:
            out["figures"][fields["figure"]] = {
                k: float(fields[k]) / 1000 for k in ("median_us", "p90_us", "max_us")}
        elif "rss" in fields:
            out["rss"][fields["rss"]] = (int(fields["vmrss_kb"]), int(fields["pss_kb"]))
        elif "wall" in fields:
            out["wall"][fields["wall"]] = float(fields["total_ms"])
        elif line.startswith("answer"):
            out["answer"] = line.split(None, 1)[1]
        elif "warm_start_us" in fields:
            out["warm_start_ms"] = float(fields["warm_start_us"]) / 1000
    return out


def print_table(name, res, successive):
    print(f"\n### {name}  ({res['answer']})\n")
    print("| figure, ms | median | p90 | max |")
    print("|---|---:|---:|---:|")
    for key, label in ROWS:
        f = res["figures"][key]
        print(f"| {label} | {f['median_us']:.2f} | {f['p90_us']:.2f} | {f['max_us']:.2f} |")
    print(f"| warm worker's start (once: fork to module ready) | {res['warm_start_ms']:.2f} | | |")
    (cv, cp), (wv, wp) = res["rss"]["cold"], res["rss"]["warm"]
    print(f"\nRSS after a scan: one-job VmRSS {cv / 1024:.1f} MB, Pss {cp / 1024:.1f} MB; "
          f"warm after {successive} scans VmRSS {wv / 1024:.1f} MB, Pss {wp / 1024:.1f} MB")
    print(f"{successive} successive scans: one job each {res['wall']['cold']:.0f} ms, "
          f"warm {res['wall']['warm']:.0f} ms")


def conclusion(name, res):
    cold = res["figures"]["cold_total"]["median_us"]
    warm = res["figures"]["warm_total"]["median_us"]
    return (f"{name}: a one-job worker costs {cold:.1f} ms per scan (median), a warm one "
            f"{warm:.2f} ms: {1000 / cold:.0f} against {1000 / warm:.0f} scans/s, "
            f"{cold / warm:.0f}x; the one-job worker's own overhead is "
            f"{cold - warm:.1f} ms per job")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.environ.get("SAFECAD_BUILD_DIR",
                                                         os.path.join(REPO, "build-bench")))
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--successive", type=int, default=100)
    p.add_argument("--tokens", default="1,8")
    p.add_argument("--modules", default="softhsm,proxy")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    binary = os.path.join(args.build_dir, "bench", "worker-start")
    if not os.access(binary, os.X_OK):
        log(f"{binary} not built: ninja -C {args.build_dir} bench/worker-start")
        return 1
    os.environ["SAFECAD_BUILD_DIR"] = args.build_dir
    sys.path.insert(0, HARNESS_DIR)
    modules = [m for m in args.modules.split(",") if m]
    for m in modules:
        if m not in MODULES or not os.path.exists(MODULES[m]):
            log(f"module {m!r} unknown or not installed")
            return 1
    directory = tempfile.mkdtemp(prefix="worker-start-")
    conclusions = []
    try:
        for count in [int(n) for n in args.tokens.split(",")]:
            env = make_tokens(os.path.join(directory, f"tokens-{count}"), count)
            for m in modules:
                name = f"{m}, {count} token{'s' if count > 1 else ''}"
                log(f"running {name}")
                res = run_one(binary, MODULES[m], env, args.reps, args.successive)
                print_table(name, res, args.successive)
                conclusions.append(conclusion(name, res))
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        log(str(e))
        return 1
    finally:
        if args.keep:
            log(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print("\nConclusion:")
    for c in conclusions:
        print(f"- {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
