#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""safecad-notify at rest: its resident memory and how often it wakes while
nothing happens, in a real session (Xvfb, a session bus, dunst, safecad on
a private system bus with one SoftHSM token).

    bench/agent-idle.py --build-dir build-demo [--idle 60]

Use a build without sanitizers (tools/demo.sh makes build-demo)."""

import argparse
import os
import shutil
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_status(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            values[key] = value.split()[0] if value.split() else ""
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--idle", type=float, default=60)
    args = parser.parse_args()
    os.environ["SAFECAD_BUILD_DIR"] = os.path.abspath(args.build_dir)
    sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
    from harness.desktop import Desktop
    from harness.pki import PKI
    from harness.refca import token_with_pair
    from harness.safecad import World

    directory = tempfile.mkdtemp(prefix="agent-idle-")
    world = desktop = None
    try:
        pki = PKI(os.path.join(directory, "pki"))
        world = World(os.path.join(directory, "world"), pki)
        token_with_pair(world, pki, days_left=60)
        world.start_daemon()
        desktop = Desktop(os.path.join(directory, "desktop")).start()
        agent = desktop.start_agent(world)
        desktop.monitor.wait_summary("plugged in")
        time.sleep(2)  # let start-up settle
        before = proc_status(agent.pid)
        time.sleep(args.idle)
        after = proc_status(agent.pid)
        switches = sum(int(after[k]) - int(before[k])
                       for k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
        print(f"safecad-notify idle {args.idle:.0f} s: VmRSS {int(after['VmRSS']) / 1024:.1f} MB, "
              f"RssAnon {int(after['RssAnon']) / 1024:.1f} MB, context switches {switches}")
        desktop.stop_agent(agent)
        return 0
    finally:
        if desktop:
            desktop.stop()
        if world:
            world.teardown()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
