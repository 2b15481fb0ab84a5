# SPDX-License-Identifier: LGPL-2.1-or-later
"""Without pcscd the daemon runs all the same: tokens at start and on
Rescan(), and one log line saying hotplug is off."""

from harness import bus as busmod
from harness.safecad import find_token, lines_matching


def test_runs_without_pcscd_and_rescans_on_demand(world, pki):
    w = world  # PCSCLITE_CSOCK_NAME names a socket that does not exist
    at_start = w.softhsm.create_token("Luc dau")
    at_start.add_pair(pki.issue(days_left=20), "01")
    d = w.start_daemon()
    conn = w.bus.connection()
    assert busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE,
                               "Hotplug") is False
    assert [t["serial"] for t in w.status()] == [at_start.serial]

    listener = w.listener()
    later = w.softhsm.create_token("Sau do")
    cert = pki.issue(days_left=45)
    later.add_pair(cert, "02")
    # SoftHSM shows it only after a module reload: not before the Rescan.
    assert [t["serial"] for t in w.status()] == [at_start.serial]
    w.rescan()
    # The reply comes after the scan: status is up to date at once.
    tokens = w.status()
    assert sorted(t["serial"] for t in tokens) == sorted([at_start.serial, later.serial])
    assert find_token(tokens, later.serial)["days_left"] == 45
    path = listener.wait_for("TokenAdded", later.serial, timeout=5).args[0]
    assert path in busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE,
                                       "Tokens")

    w.rescan()  # nothing changed: no signal
    assert listener.drain(0.5) == []

    later.delete()
    w.rescan()
    assert [t["serial"] for t in w.status()] == [at_start.serial]
    listener.wait_for("TokenRemoved", later.serial, timeout=5)

    off = lines_matching(d.log(), "hotplug", "off")
    assert len(off) == 1, f"want one 'hotplug … off' line, got {off}:\n{d.log()}"
