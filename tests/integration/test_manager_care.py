# SPDX-License-Identifier: LGPL-2.1-or-later
"""Token care in the Token Manager window: changing the PIN and removing
the certificate the latest activation replaced, each in its own dialog,
on real parts: the window under Xvfb driven through AT-SPI and the
keyboard as a person would, safecad on a private system bus loading the
PIN shim in front of SoftHSM (its counters say how many C_Login and
C_SetPIN the token saw), and the token read back with pkcs11-tool."""

import json
import time

from harness.pinshim import pin_shim  # noqa: F401 - a fixture
from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SUPPORT, activate, certificates, check, find_cert, private_keys, refca, serial_hex,
    sign_and_verify, token_with_pair, window)
from harness.safecad import wait_until
from test_manager import desktop, open_window  # noqa: F401 - desktop is a fixture

NEW_PIN = "Moi-2468"
WRONG = "Sai-000000"
LABEL = "An Phat 01"
FIELDS = ("Current PIN", "New PIN", "New PIN again")


def type_into(w, field, pin):
    """Clicks into the PIN field with the mouse and types, as a person does."""
    w.click_pointer("text", field)
    w.type(pin)


def pins_nowhere(w, pins, fields):
    """No AT-SPI client can read any of the PINs, nor their lengths."""
    nodes = w.everything()
    dump = json.dumps(nodes, ensure_ascii=False)
    for pin in pins:
        assert pin not in dump and pin[:4] not in dump, "a PIN is readable over AT-SPI"
        assert "●" * len(pin) not in dump
    for field in fields:
        found = [n for n in nodes if n["role"] == "text" and n["name"] == field]
        assert found, f"no PIN field named {field!r}"
        assert all(n["text"] is None for n in found), f"the PIN field offers a text: {found}"


def showing(w, role, name):
    """The nodes of that role and name on screen (GTK 4.8 says "visible")."""
    return [n for n in w.find(role, name) if "visible" in n[2]]


def sensitive(w, name):
    buttons = showing(w, "push button", name)
    assert buttons, f"no button {name!r}: {[n for n in w.nodes() if n[0] == 'push button']}"
    return "sensitive" in buttons[0][2]


def ready(world, pki, shim, **counters):
    """A token with a pair, the shim's counters set before safecad first
    reads it, and the window open on it."""
    token, old = token_with_pair(world, pki, label=LABEL)
    if counters:
        shim.set(token, **counters)
    world.start_daemon()
    return token


def open_change(world, desktop, gtk_leaks=False):
    w = open_window(world, desktop, gtk_leaks)
    w.wait_text(f"Token {LABEL}")
    w.click(f"Change the PIN of {LABEL}")
    w.wait_text("Change the PIN of token")
    return w


def type_all(w, old, new, again):
    for field, pin in zip(FIELDS, (old, new, again)):
        type_into(w, field, pin)


def logs_in(shim, token, pin):
    return shim.p11(token, "--login", "--pin", pin, "--list-objects",
                    check=False).returncode == 0


def test_change_pin_then_the_new_one_logs_in(world, pki, pin_shim, desktop):
    token = ready(world, pki, pin_shim)
    w = open_window(world, desktop)
    w.wait_text(f"Token {LABEL}")
    # No activation replaced anything: there is nothing to remove.
    assert not w.find("push button", f"Remove the previous certificate of {LABEL}")
    w.click(f"Change the PIN of {LABEL}")
    texts = w.wait_text("A PIN has")
    assert any("Vietnamese input method" in t for t in texts), texts
    type_all(w, PIN, NEW_PIN, NEW_PIN)
    pins_nowhere(w, (PIN, NEW_PIN), FIELDS)
    assert pin_shim.read(token)["setpins"] == 0
    w.click("Change PIN")
    w.wait_text("The PIN was changed", timeout=60)
    assert pin_shim.read(token)["setpins"] == 1
    w.click("Close")
    wait_until(lambda: not showing(w, "text", "New PIN again"), message="the dialog closed")
    assert logs_in(pin_shim, token, NEW_PIN)
    assert not logs_in(pin_shim, token, PIN)
    w.stop()


def test_a_slip_in_the_repeat_never_reaches_the_token(world, pki, pin_shim, desktop):
    token = ready(world, pki, pin_shim)
    w = open_change(world, desktop)
    type_all(w, PIN, NEW_PIN, NEW_PIN + "x")
    w.click("Change PIN")
    w.wait_text("The two new PINs differ")
    # A new PIN the token's lengths refuse, typed the same twice.
    type_into(w, "New PIN", "ab")
    type_into(w, "New PIN again", "ab")
    w.click("Change PIN")
    w.wait_text("The new PIN must have")
    state = pin_shim.read(token)
    assert state["logins"] == 0 and state["setpins"] == 0, state
    assert logs_in(pin_shim, token, PIN)
    w.stop()


def test_wrong_current_pin_is_one_try_and_says_what_is_left(world, pki, pin_shim, desktop):
    token = ready(world, pki, pin_shim)
    w = open_change(world, desktop)
    type_all(w, WRONG, NEW_PIN, NEW_PIN)
    w.click("Change PIN")
    w.wait_text("Wrong PIN for token", "few tries left", timeout=60)
    # The dialog stays, and nothing is tried again by itself.
    assert showing(w, "text", "Current PIN")
    time.sleep(3)
    state = pin_shim.read(token)
    assert state["setpins"] == 1 and state["tries_left"] == state["max"] - 1, state
    assert logs_in(pin_shim, token, PIN)
    w.stop()


def test_locked_is_never_asked(world, pki, refca, pin_shim, desktop):
    token = ready(world, pki, pin_shim, tries_left=0)
    w = open_change(world, desktop)
    w.wait_text("PIN is locked", SUPPORT)
    assert not showing(w, "text", "Current PIN")
    assert not showing(w, "push button", "Change PIN")
    w.click("Close")
    state = pin_shim.read(token)
    assert state["logins"] == 0 and state["setpins"] == 0, state
    w.stop()


def test_final_try_declined_tries_nothing(world, pki, pin_shim, desktop):
    token = ready(world, pki, pin_shim, tries_left=1)
    w = open_change(world, desktop)
    w.wait_text("Only one try is left")
    type_all(w, PIN, NEW_PIN, NEW_PIN)
    time.sleep(1)
    assert not sensitive(w, "Change PIN"), "the last try is used without a tick"
    w.key("Return")
    w.click("Cancel")
    wait_until(lambda: not showing(w, "text", "Current PIN"), timeout=20,
               message="the dialog closed")
    state = pin_shim.read(token)
    assert state["logins"] == 0 and state["setpins"] == 0, state
    w.stop()


def test_final_try_ticked_changes_the_pin(world, pki, pin_shim, desktop):
    token = ready(world, pki, pin_shim, tries_left=1)
    # A click on a GTK 4.8 check box leaves 8 bytes inside GTK that no
    # suppression can tell apart (harness/manager.py, gtk_leaks).
    w = open_change(world, desktop, gtk_leaks=True)
    w.wait_text("Only one try is left")
    type_all(w, PIN, NEW_PIN, NEW_PIN)
    w.toggle("I am sure of this PIN: try it, knowing that a wrong one locks the token")
    w.click("Change PIN")
    w.wait_text("The PIN was changed", timeout=60)
    assert pin_shim.read(token)["setpins"] == 1
    assert logs_in(pin_shim, token, NEW_PIN)
    w.click("Close")
    wait_until(lambda: not showing(w, "text", "New PIN again"), message="the dialog closed")
    w.stop()


def test_a_token_that_asks_for_a_new_pin_says_so(world, pki, pin_shim, desktop):
    ready(world, pki, pin_shim, must_change=1)
    w = open_window(world, desktop)
    w.wait_text("The token asks for a new PIN.")
    w.click(f"Change the PIN of {LABEL}")
    w.wait_text("The token asks for a new PIN: it was given with a PIN")
    w.stop()


# --- removing the previous certificate ---------------------------------------


def renewed(world, pki, refca):
    """A token whose pair was renewed with a new key, Step 3 unticked."""
    token, old = token_with_pair(world, pki, label=LABEL)
    refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    run = activate(world, token.serial)
    assert run.rc == 0, run
    return token, old, refca.requests("issue")[-1]["issued_serial"]


def serials(token):
    return [serial_hex(c) for _, c in certificates(token)]


def test_remove_previous_waits_for_step_3_unless_insisted(world, pki, refca, desktop):
    token, old, new_serial = renewed(world, pki, refca)
    # Ticking a check box leaves GTK 4.8's 8 bytes (see above).
    w = open_window(world, desktop, gtk_leaks=True)
    w.wait_text(f"Certificate {old.serial}, replaced by the latest activation")
    w.click(f"Remove the previous certificate of {LABEL}")
    texts = w.wait_text("What goes")
    assert any("What stays" in t for t in texts), texts
    assert any(f"Certificate {new_serial} (current)" in t for t in texts), texts
    assert any("Its key (ID 01) goes too." in t for t in texts), texts
    w.wait_text("Step 3 is not finished")
    type_into(w, "PIN", PIN)
    pins_nowhere(w, (PIN,), ("PIN",))
    time.sleep(1)
    assert not sensitive(w, "Remove"), "removed while Step 3 is open"
    w.key("Return")
    time.sleep(1)
    assert old.serial in serials(token) and len(private_keys(token)) == 2

    w.toggle("Remove anyway, Step 3 is not finished")
    wait_until(lambda: sensitive(w, "Remove"), message="Remove allowed once insisted")
    w.click("Remove")
    w.wait_text("The previous certificate was removed", timeout=60)
    w.wait_text(f"Removed certificate {old.serial} and its key.")
    assert serials(token) == [new_serial]
    new_obj, new_cert = find_cert(token, new_serial)
    assert [k["id"] for k in private_keys(token)] == [new_obj["id"]]
    sign_and_verify(token, new_obj["id"], new_cert)
    w.click("Close")
    # The window read the token again: nothing is left to remove.
    w.wait_no_text(f"Remove the previous certificate of {LABEL}")
    w.stop()
