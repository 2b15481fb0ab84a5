# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Token Manager's activation dialog, the CA's guide step by step, on
real parts: the window under Xvfb driven through AT-SPI and the keyboard
as a person would, safecad on a private system bus, SoftHSM tokens (with
the PIN shim where the PIN's state matters) and the reference CA. The
token is read back with pkcs11-tool."""

import json
import os

import pytest

from harness.manager import ManagerWindow
from harness.pinshim import pin_shim  # noqa: F401 - a fixture
from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SUPPORT, assert_unchanged, certificates, check, find_cert, private_keys, refca,
    safectl_json, serial_hex, sign_and_verify, snapshot, token_with_pair, window)
from harness.safecad import find_token, wait_until
from test_manager import desktop  # noqa: F401 - a fixture

HOLDER = "CÔNG TY TNHH AN PHÁT"


def open_window(world, desktop, **extra):
    w = ManagerWindow(world, desktop, **extra)
    desktop.windows.append(w)
    return w.start()


def type_pin(w, pin=PIN):
    """Clicks into the PIN field and types the PIN, as a person does."""
    w.click_pointer("text", "PIN")
    w.type(pin)


def pin_nowhere(w, pin=PIN):
    """Nothing any AT-SPI client can read holds the PIN, nor its length."""
    nodes = w.everything()
    assert nodes, "the window exposes nothing at all"
    dump = json.dumps(nodes, ensure_ascii=False)
    assert pin not in dump, "the PIN is readable over AT-SPI"
    assert pin[:4] not in dump
    field = [n for n in nodes if n["role"] == "text" and n["name"] == "PIN"]
    assert field, "the PIN field has its accessible name"
    assert all(n["text"] is None for n in field), f"the PIN field offers a text: {field}"
    assert "●" * len(pin) not in dump


def shot(desktop, name):
    """A screenshot for whoever works on the dialog (SAFECAD_SHOTS=dir)."""
    directory = os.environ.get("SAFECAD_SHOTS")
    if directory:
        desktop.screenshot(os.path.join(directory, name + ".png"))


def start_dialog(w, label="Activate…"):
    w.click(label)
    w.wait_text("Before you activate, know three things")


def test_th1_through_all_five_steps(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki, days_left=20)
    action = refca.add_action(old, type="renew", message="Gia hạn 1 năm.", **window(365))
    world.start_daemon()
    check(world, token.serial)
    w = open_window(world, desktop)
    w.wait_text("Renewal offered by the CA")

    # 1. What changes, the CA's message, the three warnings → Accept.
    start_dialog(w)
    texts = w.wait_text("New validity")
    assert any("Gia hạn 1 năm." in t for t in texts), texts
    assert any("24 hours" in t for t in texts) and any("muasamcong" in t for t in texts)
    assert refca.requests("issue") == []
    shot(desktop, "1-changes")
    w.click("Accept")

    # 2. The PIN, typed on the keyboard; no other process can read it.
    w.wait_text("Type the token's PIN")
    type_pin(w)
    pin_nowhere(w)
    shot(desktop, "2-pin")
    before = [serial_hex(c) for _, c in certificates(token)]
    w.click("Log in")

    # 4. The issued certificate, shown before anything is written.
    texts = w.wait_text("Check the issued certificate", timeout=90)
    new_serial = refca.requests("issue")[-1]["issued_serial"]
    texts = w.wait_text(new_serial)
    assert any(HOLDER in t for t in texts), texts
    shot(desktop, "4-certificate")
    # The new key is on the token; no certificate was written yet.
    assert [serial_hex(c) for _, c in certificates(token)] == before
    w.click("Confirm")

    # 5. Loaded → OK.
    texts = w.wait_text("The new certificate is loaded on the token", timeout=60)
    assert any(new_serial in t and old.serial in t for t in texts), texts
    obj, cert = find_cert(token, new_serial)
    sign_and_verify(token, obj["id"], cert)
    assert len(refca.requests("issue")) == 1
    shot(desktop, "5-loaded")
    w.click("OK")
    wait_until(lambda: not w.find("push button", "Confirm"), message="the dialog closed")
    entry = safectl_json(world, "history")["activations"][0]
    assert entry["new_serial"] == new_serial and entry["action"] == action["id"]
    w.stop()
