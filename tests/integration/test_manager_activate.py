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
from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SUPPORT, certificates, check, find_cert, private_keys, refca,
    safectl_json, serial_hex, sign_and_verify, snapshot, token_with_pair, window)
from harness.safecad import find_token, wait_until
from test_activation_pin import WRONG_PIN, ready, shim  # noqa: F401 - shim is a fixture
from test_manager import desktop  # noqa: F401 - a fixture

HOLDER = "CÔNG TY TNHH AN PHÁT"


def open_window(world, desktop, gtk_leaks=False, **extra):
    w = ManagerWindow(world, desktop, gtk_leaks, **extra)
    desktop.windows.append(w)
    return w.start()


def type_pin(w, pin=PIN, field="PIN"):
    """Clicks into the PIN field and types the PIN, as a person does."""
    w.click_pointer("text", field)
    w.type(pin)


def pin_nowhere(w, pin=PIN, field="PIN"):
    """Nothing any AT-SPI client can read holds the PIN, nor its length."""
    nodes = w.everything()
    assert nodes, "the window exposes nothing at all"
    dump = json.dumps(nodes, ensure_ascii=False)
    assert pin not in dump, "the PIN is readable over AT-SPI"
    assert pin[:4] not in dump
    found = [n for n in nodes if n["role"] == "text" and n["name"] == field]
    assert found, "the PIN field has its accessible name"
    assert all(n["text"] is None for n in found), f"the PIN field offers a text: {found}"
    assert "●" * len(pin) not in dump


def shot(desktop, name):
    """A screenshot for whoever works on the dialog (SAFECAD_SHOTS=dir)."""
    directory = os.environ.get("SAFECAD_SHOTS")
    if directory:
        desktop.screenshot(os.path.join(directory, name + ".png"))


def start_dialog(w, label="Activate…"):
    w.click(label)
    w.wait_text("Before you activate, know three things")


def continue_and_confirm(w):
    """An interrupted activation, continued from the window to the end."""
    w.click("Continue activation…")
    w.wait_text("Continue the interrupted activation")
    w.click("Accept")
    w.wait_text("Type the token's PIN")
    type_pin(w)
    w.click("Log in")
    w.wait_text("Check the issued certificate", timeout=90)
    w.click("Confirm")
    w.wait_text("The new certificate is loaded on the token", timeout=60)


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


def test_th2_shows_each_field_and_recertifies_the_key(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki)
    subject = [[a, "CÔNG TY CỔ PHẦN AN PHÁT"] if a == "O" else [a, v] for a, v in old.subject]
    refca.add_action(old, type="change", subject=subject,
                     key={"generate": False, "type": "rsa", "bits": 2048}, **window(300))
    world.start_daemon()
    check(world, token.serial)
    keys_before = private_keys(token)
    w = open_window(world, desktop)
    w.wait_text("Change of information offered by the CA")
    start_dialog(w)
    # Old → new, field by field.
    texts = w.wait_text("Details: now → new")
    assert any(t == f"{HOLDER} → CÔNG TY CỔ PHẦN AN PHÁT" for t in texts), texts
    assert any("(unchanged)" in t and "MST:0101234567" in t for t in texts), texts
    assert any("certified again" in t for t in texts), texts
    # Not keeping the previous registration.
    switch = [n for n in w.nodes() if n[1].startswith("Keep the previous certificate's")
              and n[0] not in ("label", "list item", "panel")]
    assert switch, w.nodes()
    w.click(switch[0][1], role=switch[0][0])
    w.click("Accept")
    w.wait_text("Type the token's PIN")
    type_pin(w)
    w.click("Log in")
    w.wait_text("Check the issued certificate", timeout=90)
    new_serial = refca.requests("issue")[-1]["issued_serial"]
    w.wait_text(new_serial)
    w.wait_text("O=CÔNG TY CỔ PHẦN AN PHÁT")
    w.click("Confirm")
    w.wait_text("The new certificate is loaded on the token", timeout=60)
    obj, cert = find_cert(token, new_serial)
    assert private_keys(token) == keys_before, "TH2 makes no new key"
    sign_and_verify(token, obj["id"], cert)
    confirm = refca.requests("confirm")[-1]
    assert confirm["payload"] == {"installed_serial": new_serial, "keep_previous": False}
    w.click("OK")
    w.stop()


def test_cancel_at_confirm_writes_nothing_then_continue_uses_the_same_key(
        world, pki, refca, desktop):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    w = open_window(world, desktop)
    w.wait_text("Renewal offered by the CA")
    start_dialog(w)
    w.click("Accept")
    w.wait_text("Type the token's PIN")
    before = snapshot(token)
    type_pin(w)
    w.click("Log in")
    w.wait_text("Check the issued certificate", timeout=90)
    keys = {k["id"] for k in private_keys(token)}
    w.click("Cancel")
    w.wait_text("Nothing was written to the token", timeout=30)
    # Every certificate byte for byte; only the new key was made.
    assert snapshot(token)["certificates"] == before["certificates"]
    t = find_token(world.status(), token.serial)
    assert t["activation"]["step"] == "verified" and t["activation"]["interrupted"], t
    w.click("OK")

    # The window offers to go on; the same key, the CA not asked again.
    continue_and_confirm(w)
    assert len(refca.requests("issue")) == 1
    new_serial = refca.requests("issue")[-1]["issued_serial"]
    obj, cert = find_cert(token, new_serial)
    assert obj["id"] in keys and {k["id"] for k in private_keys(token)} == keys
    sign_and_verify(token, obj["id"], cert)
    w.click("OK")
    w.stop()


# --- the PIN's states, through the PIN shim ------------------------------------

def to_pin_page(w):
    w.wait_text("Renewal offered by the CA")
    start_dialog(w)
    w.click("Accept")


def sensitive(w, name):
    nodes = w.find("push button", name)
    assert nodes, f"no button {name!r}: {w.texts()}"
    return any("sensitive" in n[2] for n in nodes)


def test_wrong_pin_is_one_login_and_asks_again(world, pki, refca, shim, desktop):
    token, old, action = ready(world, pki, refca, shim)
    logins = shim.logins(token)
    w = open_window(world, desktop)
    to_pin_page(w)
    w.wait_text("Type the token's PIN")
    type_pin(w, WRONG_PIN)
    w.click("Log in")
    texts = w.wait_text("wrong", timeout=30)
    assert shim.logins(token) == logins + 1, "want exactly one C_Login"
    assert any("tries" in t for t in texts), texts
    assert refca.requests("issue") == []
    # Never tried again on the person's behalf: still one login later.
    w.wait_text("Type the token's PIN")
    assert shim.logins(token) == logins + 1
    # The right PIN, typed again by the person, goes through.
    type_pin(w)
    w.click("Log in")
    w.wait_text("Check the issued certificate", timeout=90)
    w.click("Confirm")
    w.wait_text("The new certificate is loaded on the token", timeout=60)
    assert shim.logins(token) == logins + 2
    w.click("OK")
    w.stop()


def test_final_try_must_be_confirmed_and_declining_tries_nothing(
        world, pki, refca, shim, desktop):
    token, old, action = ready(world, pki, refca, shim, tries_left=1)
    logins = shim.logins(token)
    # GTK 4.8's AT-SPI code leaks a g_hash_table_get_keys_as_array() here
    # (seen with fast_unwind_on_malloc=0; GTK's own, under the D-Bus
    # handler of the accessibility bus): with the fast unwinder no
    # suppression can tell it from ours, so leak checking is off for this
    # window, as for the file chooser's tests.
    w = open_window(world, desktop, gtk_leaks=True)
    to_pin_page(w)
    w.wait_text("Only one try is left")
    type_pin(w)
    # Log in waits for the person to say they are sure.
    assert not sensitive(w, "Log in")
    w.click("Cancel")
    wait_until(lambda: not w.find("push button", "Log in"), message="the dialog closed")
    assert shim.logins(token) == logins, "a login at the final try nobody allowed"
    assert refca.requests("issue") == []

    # Sure, this time: allow_final_try is sent, one login.
    start_dialog(w)
    w.click("Accept")
    w.wait_text("Only one try is left")
    type_pin(w)
    w.toggle("I am sure of this PIN: try it, knowing that a wrong one locks the token")
    shot(desktop, "final-try")
    wait_until(lambda: sensitive(w, "Log in"), message="Log in allowed")
    w.click("Log in")
    w.wait_text("Check the issued certificate", timeout=90)
    assert shim.logins(token) == logins + 1
    w.click("Confirm")
    w.wait_text("The new certificate is loaded on the token", timeout=60)
    w.click("OK")
    w.stop()


def test_locked_token_is_never_asked(world, pki, refca, shim, desktop):
    token, old, action = ready(world, pki, refca, shim, tries_left=0)
    logins = shim.logins(token)
    w = open_window(world, desktop)
    to_pin_page(w)
    texts = w.wait_text("PIN is locked")
    assert any(SUPPORT in t for t in texts), "a locked token needs the CA's support line"
    assert not w.find("text", "PIN"), "a PIN field for a locked token"
    assert not w.find("push button", "Log in") or not sensitive(w, "Log in")
    w.click("Close")
    assert shim.logins(token) == logins
    assert refca.requests("issue") == []
    w.stop()


def test_token_pulled_mid_activation_then_continued(world, pki, refca, shim, desktop):
    token, old, action = ready(world, pki, refca, shim)
    refca.fault("issue", "slow", seconds=6)
    w = open_window(world, desktop)
    to_pin_page(w)
    w.wait_text("Type the token's PIN")
    type_pin(w)
    w.click("Log in")
    wait_until(lambda: (find_token(world.status(), token.serial).get("activation") or {})
               .get("step") == "csr-sent", timeout=60, message="the request sent")
    shim.set(token, pulled=1)
    # The CA answers meanwhile; the certificate passes its checks (they
    # need no token) and waits to be written: then the token is missed.
    w.wait_text("Check the issued certificate", timeout=60)
    w.click("Confirm")
    texts = w.wait_text("The activation stopped", timeout=60)
    assert any("pulled out" in t for t in texts), texts
    assert refca.requests("confirm") == []
    sign_and_verify(token, "01", old.cert)
    w.click("OK")

    # Back in: the window offers to go on, with the same key.
    shim.set(token, pulled=0)
    world.rescan()
    continue_and_confirm(w)
    issues = refca.requests("issue")
    assert len({i["csr_key_sha256"] for i in issues}) == 1, f"a second key: {issues}"
    w.click("OK")
    w.stop()


def test_daemon_restarted_while_the_certificate_is_shown(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="renew", **window())
    daemon = world.start_daemon()
    check(world, token.serial)
    w = open_window(world, desktop)
    w.wait_text("Renewal offered by the CA")
    start_dialog(w)
    w.click("Accept")
    type_pin(w)
    w.click("Log in")
    w.wait_text("Check the issued certificate", timeout=90)
    before = snapshot(token)
    daemon.stop()
    texts = w.wait_text("The activation stopped", timeout=30)
    assert any("not running" in t for t in texts), texts
    assert snapshot(token)["certificates"] == before["certificates"]
    w.click("OK")
    w.wait_text("The token service cannot be reached")

    # It comes back: the window follows, and the activation goes on.
    world.start_daemon()
    continue_and_confirm(w)
    assert len(refca.requests("issue")) == 1
    w.click("OK")
    w.stop()


def test_vietnamese_th1_in_the_guides_words(world, pki, refca, desktop, vi_env):
    token, old = token_with_pair(world, pki, days_left=20)
    refca.add_action(old, type="renew", **window(365))
    world.start_daemon()
    check(world, token.serial)
    w = open_window(world, desktop, **vi_env)
    w.click("Kích hoạt…")
    texts = w.wait_text("Trước khi kích hoạt, cần biết ba điều")
    assert any("Hiệu lực mới" in t for t in texts), texts
    assert not any("New validity" in t for t in texts), "nothing left in English"
    w.click("Chấp nhận")
    w.wait_text("Nhập mã PIN của USB token")
    type_pin(w, field="Mã PIN")
    pin_nowhere(w, field="Mã PIN")
    w.click("Đăng nhập")
    w.wait_text("Kiểm tra chứng thư số đã cấp", timeout=90)
    shot(desktop, "vi-4-certificate")
    w.click("Xác nhận")
    w.wait_text("Đã nạp chứng thư số mới vào USB token", timeout=60)
    new_serial = refca.requests("issue")[-1]["issued_serial"]
    obj, cert = find_cert(token, new_serial)
    sign_and_verify(token, obj["id"], cert)
    w.click("OK")
    w.stop()


def test_a_certificate_that_fails_a_check_is_never_shown_for_confirm(
        world, pki, refca, desktop):
    """The CA answers with a certificate for another key: the dialog says
    the activation stopped, with the CA's support line, and nothing is
    written; it never offers that certificate for Confirm."""
    token, old = token_with_pair(world, pki)
    refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    before = snapshot(token)
    refca.fault("issue", "wrong_key")
    w = open_window(world, desktop)
    w.wait_text("Renewal offered by the CA")
    start_dialog(w)
    w.click("Accept")
    type_pin(w)
    w.click("Log in")
    texts = w.wait_text("The activation stopped", timeout=90)
    assert any(SUPPORT in t for t in texts), f"the CA's support line: {texts}"
    assert not any("Check the issued certificate" in t for t in texts
                   if t == "Check the issued certificate"), texts
    assert snapshot(token)["certificates"] == before["certificates"]
    assert refca.requests("confirm") == []
    sign_and_verify(token, "01", old.cert)
    w.click("OK")
    w.stop()
