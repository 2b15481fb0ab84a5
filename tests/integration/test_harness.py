# SPDX-License-Identifier: LGPL-2.1-or-later
"""The harness itself, without safecad: when these fail, the machine or the
harness is at fault, not the daemon."""

import subprocess

from harness import bus as busmod
from harness.pcsc import card_present
from harness.softhsm import MODULE


def test_private_bus_carries_signals(world):
    from gi.repository import GLib

    listener = world.listener()
    conn = busmod.connect(world.bus.address)
    conn.emit_signal(None, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "TokenAdded",
                     GLib.Variant("(os)", ("/org/safecad/token/x", "abc")))
    conn.flush_sync(None)
    sig = listener.wait_for("TokenAdded", "abc", timeout=5)
    assert sig.args == ("/org/safecad/token/x", "abc")
    conn.close_sync(None)


def test_softhsm_token_holds_key_and_cert(world, pki):
    token = world.softhsm.create_token("Harness Token")
    issued = pki.issue(days_left=20)
    token.add_pair(issued, "a1")
    objects = token.list_objects()
    assert "Private Key Object" in objects
    assert "Public Key Object" in objects
    assert "Certificate Object" in objects
    # Exactly one initialized token plus SoftHSM's free slot.
    slots = world.softhsm.show_slots()
    assert [(label, init) for label, _, init in slots] == [("Harness Token", True), ("", False)]
    # pkcs11-tool reads the same serial.
    out = subprocess.run(["pkcs11-tool", "--module", MODULE, "-L"], env=world.softhsm.env,
                         capture_output=True, text=True, check=True).stdout
    assert token.serial in out


def test_vpcd_card_insert_and_remove_seen_by_pcsc(hotplug_world):
    w = hotplug_world
    assert not card_present(w.pcsc_socket)
    card = w.insert_card()
    assert card_present(w.pcsc_socket, timeout=5)
    card.remove()
    import time
    deadline = time.monotonic() + 5
    while card_present(w.pcsc_socket):
        assert time.monotonic() < deadline, "card still present 5 s after removal"
        time.sleep(0.2)
