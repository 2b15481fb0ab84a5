# SPDX-License-Identifier: LGPL-2.1-or-later
"""Start, stop, idle, and a pcscd that goes away."""

import time

from harness import bus as busmod
from harness.safecad import child_pids, find_token, wait_until


def test_sigterm_exits_0_promptly_with_pcscd_and_a_card(hotplug_world, pki):
    w = hotplug_world
    token = w.softhsm.create_token("Dung lai")
    token.add_pair(pki.issue(days_left=20), "01")
    d = w.start_daemon()
    w.insert_card()
    time.sleep(1)
    assert find_token(w.status(), token.serial)
    took = d.stop()
    assert took < 5


def test_sigterm_exits_0_promptly_without_pcscd(world):
    d = world.start_daemon()
    assert d.stop() < 5


def test_sigterm_right_after_start(hotplug_world):
    """"SIGTERM stops it cleanly at any moment": also before it is ready."""
    d = hotplug_world.start_daemon(wait=False)
    time.sleep(0.3)
    assert d.stop() < 5


def test_idle_daemon_does_not_wake_up(hotplug_world, pki):
    w = hotplug_world
    token = w.softhsm.create_token("Ngu yen")
    token.add_pair(pki.issue(days_left=20), "01")
    d = w.start_daemon()
    w.insert_card()
    time.sleep(2.5)  # let the insert's rescan finish
    # The scan worker stays a few seconds after its last scan, then goes:
    # one wake-up to let it go, then none.
    wait_until(lambda: not child_pids(d.pid), timeout=15,
               message="the idle scan worker to leave")
    time.sleep(0.5)  # the thread that reaped it goes back to sleep
    before = d.context_switches()
    time.sleep(3)
    after = d.context_switches()
    assert after - before == 0, f"{after - before} context switches in 3 s idle"


def test_pcscd_going_away_does_not_spin_and_hotplug_comes_back(hotplug_world, pki):
    w = hotplug_world
    d = w.start_daemon()
    conn = w.bus.connection()

    def hotplug():
        return busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "Hotplug")

    assert hotplug() is True
    w.pcscd.stop()
    wait_until(lambda: hotplug() is False, timeout=10, message="Hotplug to turn false")
    cpu = d.cpu_seconds()
    time.sleep(3)
    spent = d.cpu_seconds() - cpu
    assert spent < 0.3, f"safecad used {spent:.2f} s CPU in 3 s with pcscd gone"
    assert w.status() == []

    # A new pcscd at the same socket name: the daemon reconnects.
    w.pcscd.port = None
    w.pcscd.start()
    listener = w.listener()
    token = w.softhsm.create_token("Tro lai")
    w.insert_card()
    listener.wait_for("TokenAdded", token.serial, timeout=30)
    assert hotplug() is True
