# SPDX-License-Identifier: LGPL-2.1-or-later
"""safecad-notify on real parts: Xvfb, a session bus, dunst as the
notification server (actions chosen through its context menu, as a user
does), a scripted pinentry, and safecad on the test's private system bus
with SoftHSM tokens, pcscd/vpcd hotplug and the reference CA."""

import os
import shutil
import tempfile
import time

import pytest
from cryptography import x509

from harness.bus import MANAGER_IFACE, MANAGER_PATH, TOKEN_IFACE
from harness.desktop import Desktop
from harness.pinshim import use as use_pin_shim
from harness.refca import (  # noqa: F401 - refca is a fixture
    AGENCIES, PIN, SUPPORT, activate, check, configure, refca, safectl_json, token_with_pair,
    window)
from harness.safecad import find_token, wait_until

from gi.repository import GLib

DESKTOP_TOOLS = ["Xvfb", "dunst", "dunstctl", "dbus-daemon"]


@pytest.fixture
def desktop(world, request):
    for tool in DESKTOP_TOOLS:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    directory = tempfile.mkdtemp(prefix="scdesk-")
    d = Desktop(directory)
    problems = []
    try:
        d.start(getattr(request, "param", "dunst"))
        yield d
    finally:
        try:
            problems = d.stop()
        finally:
            d.print_logs()
            shutil.rmtree(directory, ignore_errors=True)
    if problems:
        pytest.fail("teardown: " + "\n".join(problems), pytrace=False)


def summaries(desktop):
    return [n["summary"] for n in desktop.monitor.notifications()]


def test_insert_pending_activate_and_step3(hotplug_world, pki, refca, desktop):
    world = hotplug_world
    world.start_daemon()
    agent = desktop.start_agent(world)
    # The agent is up and following safecad before the token goes in.
    desktop.wait_agent()

    token, old = token_with_pair(world, pki, days_left=40)
    action = refca.add_action(old, type="renew", message="Gia hạn chứng thư số 1 năm.",
                              **window(365))
    world.insert_card()

    inserted = desktop.monitor.wait_summary("plugged in")
    assert token.label in inserted["summary"]
    assert old.serial in inserted["body"] and "days left" in inserted["body"], inserted
    # The daemon asks the CA on insert; the agent announces what it has.
    pending = desktop.monitor.wait_summary("Renewal ready")
    assert pending["id"] == inserted["id"], "one notification per token, replaced in place"
    assert pending["replaces"] == inserted["id"]
    assert pending["actions"]["activate"] == "Activate now"
    assert pending["actions"]["later"] == "Later"
    assert "Gia hạn chứng thư số 1 năm." in pending["body"]
    assert "24 hours" in pending["body"] and "register the new certificate" in pending["body"]
    assert pending["timeout"] == 0, "an offer waits for the user"

    # "Activate now" from dunst's menu: the PIN is asked through pinentry.
    desktop.set_pin(PIN)
    desktop.invoke(pending["id"], "activate")
    result = desktop.monitor.wait_summary("Certificate renewed", timeout=90)
    assert result["id"] == inserted["id"]
    steps = [n for n in desktop.monitor.notifications() if "Activating" in n["summary"]]
    assert len(steps) >= 2, f"progress shown while it runs: {summaries(desktop)}"
    assert any("Step 8 of 8" in n["body"] for n in steps) or "Step" in steps[-1]["body"]

    commands = desktop.pinentry_commands()
    descriptions = [c["argument"] for c in commands if c["command"] == "SETDESC"]
    assert descriptions and token.serial in descriptions[-1] and old.serial in descriptions[-1]
    assert [c["command"] for c in commands].count("GETPIN") == 1
    assert all(c["display"] == desktop.display for c in commands)

    history = safectl_json(world, "history")["activations"]
    entry = [h for h in history if h["action"] == action["id"]][0]
    new_serial = entry["new_serial"]
    assert new_serial in result["body"] and old.serial in result["body"]
    assert find_token(world.status(), token.serial)["certificates"][0]["serial"] == new_serial

    # Step 3: the agencies, with Export certificate and Open checklist.
    reminder = desktop.monitor.wait_summary("Step 3")
    assert reminder["id"] != result["id"]
    assert reminder["actions"]["export"] == "Export certificate"
    assert reminder["actions"]["checklist"] == "Open checklist"
    assert "Thuế điện tử (Tổng cục Thuế)" in reminder["body"]
    assert "https://muasamcong.mpi.gov.vn" in reminder["body"]

    desktop.invoke(reminder["id"], "export")
    saved = desktop.monitor.wait(lambda n: n["id"] == reminder["id"] and "Saved as" in n["body"])
    documents = os.path.join(desktop.home, "Documents")
    pem_path = os.path.join(documents, f"certificate-{new_serial}.pem")
    der_path = os.path.join(documents, f"certificate-{new_serial}.der")
    assert pem_path in saved["body"]
    with open(pem_path, "rb") as f:
        pem = x509.load_pem_x509_certificate(f.read())
    with open(der_path, "rb") as f:
        der = x509.load_der_x509_certificate(f.read())
    assert pem == der and format(pem.serial_number, "x") == new_serial

    desktop.invoke(reminder["id"], "checklist")
    wait_until(lambda: desktop.opened_files(), message="xdg-open called")
    page = desktop.opened_files()[0]
    assert page.startswith(desktop.runtime)
    with open(page, encoding="utf-8") as f:
        html = f.read()
    for agency in AGENCIES:
        assert f"safectl agencies done {agency}" in html
    assert "Hải quan điện tử" in html

    # What dunst showed, as its history has it.
    desktop.dunstctl("close-all")
    shown = [n["summary"] for n in desktop.history()]
    assert any("Certificate renewed" in s for s in shown), shown
    assert any("Step 3" in s for s in shown), shown

    # The reminder comes back at the next login until every agency is
    # ticked; then it stops.
    desktop.stop_agent(agent)
    agent = desktop.start_agent(world)
    again = desktop.monitor.wait_summary("Step 3")
    assert "Thuế điện tử" in again["body"]
    desktop.stop_agent(agent)
    rc, out, err = world.safectl("agencies", "done", *AGENCIES)
    assert rc == 0, out + err
    before = len(desktop.monitor.notifications())
    agent = desktop.start_agent(world)
    desktop.monitor.wait_summary("plugged in")
    time.sleep(1.5)
    later = desktop.monitor.notifications()[before:]
    assert not any("Step 3" in n["summary"] for n in later), later
    desktop.stop_agent(agent)


# --- the PIN -------------------------------------------------------------------

WRONG_PIN = "Wrong-000000"


def ready_with_shim(world, pki, refca, desktop, **counters):
    """A token behind the PIN shim with a pending renewal, safecad, and the
    agent showing the offer. Returns (token, old, action, offer, shim)."""
    configure(world, refca, timeout=20)
    shim = use_pin_shim(world)
    token, old = token_with_pair(world, pki, days_left=60)
    if counters:
        shim.set(token, **counters)
    action = refca.add_action(old, type="renew", **window(365))
    world.start_daemon()
    check(world, token.serial)
    desktop.start_agent(world)
    offer = desktop.monitor.wait_summary("Renewal ready")
    return token, old, action, offer, shim


def test_wrong_pin_says_tries_and_support_and_changes_nothing(world, pki, refca, desktop):
    token, old, action, offer, shim = ready_with_shim(world, pki, refca, desktop)
    desktop.set_pin(WRONG_PIN)
    desktop.invoke(offer["id"], "activate")
    wrong = desktop.monitor.wait_summary("Wrong PIN")
    assert wrong["id"] == offer["id"]
    assert "Nothing was changed" in wrong["body"]
    assert "locks after a few more wrong tries" in wrong["body"], wrong["body"]
    assert SUPPORT in wrong["body"], wrong["body"]
    assert WRONG_PIN not in wrong["body"]
    # One login for the one PIN the user gave; never retried for them.
    assert shim.logins(token) == 1
    assert refca.requests("issue") == []
    # Trying again is the user's choice: the offer is on the error.
    assert wrong["actions"].get("activate") == "Activate now"
    commands = [c["command"] for c in desktop.pinentry_commands()]
    assert commands.count("GETPIN") == 1 and "CONFIRM" not in commands

    # The second dialogue says a wrong PIN was entered before.
    desktop.set_pin(PIN)
    desktop.invoke(wrong["id"], "activate")
    desktop.monitor.wait_summary("Certificate renewed", timeout=90)
    errors = [c["argument"] for c in desktop.pinentry_commands() if c["command"] == "SETERROR"]
    assert errors and "wrong PIN was entered before" in errors[-1], errors
    assert shim.logins(token) == 2


def test_final_try_asks_for_confirmation_first(world, pki, refca, desktop):
    token, old, action, offer, shim = ready_with_shim(world, pki, refca, desktop,
                                                      tries_left=1)
    desktop.set_pin(None)  # the user declines the warning
    desktop.invoke(offer["id"], "activate")
    again = desktop.monitor.wait_summary("Renewal ready")
    commands = desktop.pinentry_commands()
    assert [c["command"] for c in commands if c["command"] in ("CONFIRM", "GETPIN")] == \
        ["CONFIRM"], commands
    warning = [c["argument"] for c in commands if c["command"] == "SETDESC"][0]
    assert "ONE try" in warning and SUPPORT in warning, warning
    assert shim.logins(token) == 0, "declined: no login at all"

    desktop.set_pin(WRONG_PIN)
    desktop.invoke(again["id"], "activate")
    locked = desktop.monitor.wait(lambda n: n["summary"] in ("Wrong PIN", "The PIN is locked"))
    assert shim.logins(token) == 1
    assert SUPPORT in locked["body"]
    assert "activate" not in locked["actions"] or locked["summary"] == "Wrong PIN"
    wait_until(lambda: find_token(world.status(), token.serial)["pin"] == "locked",
               message="the token locked")


def test_locked_token_asks_no_pin(world, pki, refca, desktop):
    token, old, action, offer, shim = ready_with_shim(world, pki, refca, desktop)
    shim.set(token, tries_left=0)
    world.rescan()
    wait_until(lambda: find_token(world.status(), token.serial)["pin"] == "locked",
               message="safecad sees the lock")
    time.sleep(0.5)
    desktop.set_pin(PIN)
    desktop.invoke(offer["id"], "activate")
    locked = desktop.monitor.wait_summary("The PIN is locked")
    assert SUPPORT in locked["body"]
    assert desktop.pinentry_commands() == [], "no PIN asked for a locked token"
    assert shim.logins(token) == 0


# --- following safecad ---------------------------------------------------------


def test_survives_safecad_restart_and_ignores_impostors(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki, days_left=60)
    daemon = world.start_daemon()
    agent = desktop.start_agent(world)
    desktop.monitor.wait_summary("plugged in")

    # Someone else on the system bus sends safecad's signals: nothing shows.
    conn = world.bus.connection()
    path = "/org/safecad/token/" + token.serial
    conn.emit_signal(None, MANAGER_PATH, MANAGER_IFACE, "TokenAdded",
                     GLib.Variant("(os)", ("/org/safecad/token/fake", "fake")))
    conn.emit_signal(None, path, TOKEN_IFACE, "ActivationFinished",
                     GLib.Variant("(ssss)", ("x", '{"type":"renew","new_serial":"66",'
                                              '"old_serial":"55","confirmed":true}', "", "")))
    conn.emit_signal(None, path, TOKEN_IFACE, "ExpiryWarning",
                     GLib.Variant("(si)", (old.serial, 1)))
    conn.flush_sync(None)
    time.sleep(1.0)
    shown = summaries(desktop)
    assert shown == [s for s in shown if "plugged in" in s], shown

    # safecad restarts: the agent stays, reads the tokens again without
    # announcing them twice, and follows the new instance.
    daemon.stop()
    assert agent.poll() is None
    world.start_daemon()
    action = refca.add_action(old, type="renew", **window(365))
    check(world, token.serial)
    offer = desktop.monitor.wait_summary("Renewal ready")
    assert "plugged in" not in " ".join(summaries(desktop)[1:])
    assert agent.poll() is None
    assert action["id"]
    desktop.set_pin(PIN)
    desktop.invoke(offer["id"], "activate")
    desktop.monitor.wait_summary("Certificate renewed", timeout=90)
    desktop.stop_agent(agent)


def test_safecad_gone_during_activation(world, pki, refca, desktop):
    """safecad dies while the CA is slow: the agent says so, offers to go
    on, and going on completes."""
    configure(world, refca, timeout=20)
    token, old = token_with_pair(world, pki, days_left=60)
    action = refca.add_action(old, type="renew", **window(365))
    daemon = world.start_daemon()
    check(world, token.serial)
    agent = desktop.start_agent(world)
    offer = desktop.monitor.wait_summary("Renewal ready")
    refca.fault("issue", "slow", seconds=8)
    desktop.set_pin(PIN)
    desktop.invoke(offer["id"], "activate")
    desktop.monitor.wait(lambda n: "Activating" in n["summary"] and "Step 4" in n["body"],
                         timeout=60)
    daemon.kill()
    daemon.checked = True  # killed on purpose: no clean exit to expect
    gone = desktop.monitor.wait_summary("safecad stopped")
    assert gone["actions"].get("activate") == "Activate now"
    world.start_daemon()
    time.sleep(1.0)
    desktop.invoke(gone["id"], "activate")
    desktop.monitor.wait_summary("Certificate renewed", timeout=90)
    assert agent.poll() is None
    history = safectl_json(world, "history")["activations"]
    assert [h["action"] for h in history] == [action["id"]], history


@pytest.mark.parametrize("desktop", ["plain"], indirect=True)
def test_server_without_actions_gets_the_commands(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki, days_left=60)
    refca.add_action(old, type="renew", **window(365))
    world.start_daemon()
    check(world, token.serial)
    agent = desktop.start_agent(world)
    offer = desktop.monitor.wait_summary("Renewal ready")
    assert offer["actions"] == {}, "no actions offered to a server that cannot show them"
    assert f"safectl activate {token.serial}" in offer["body"]
    # The activation done with safectl: progress, result and Step 3 follow.
    run = activate(world, token.serial)
    assert run.rc == 0, run
    desktop.monitor.wait_summary("Certificate renewed", timeout=60)
    reminder = desktop.monitor.wait_summary("Step 3")
    assert reminder["actions"] == {}
    assert "safectl export" in reminder["body"] and "safectl agencies done" in reminder["body"]
    desktop.stop_agent(agent)


def test_ca_text_cannot_inject_markup_or_reorder_text(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki, days_left=60)
    refca.add_action(old, type="renew", **window(365),
                     message='Gia hạn <a href="http://evil.example">bấm đây</a> & '
                             '<img src="x"> \u202enim\u202c\x1b[31m\x07 hết')
    world.start_daemon()
    check(world, token.serial)
    desktop.start_agent(world)
    offer = desktop.monitor.wait_summary("Renewal ready")
    body = offer["body"]
    # dunst reads markup: the CA's text arrives as text.
    assert "<a " not in body and "<img" not in body, body
    assert '&lt;a href="http://evil.example"&gt;bấm đây&lt;/a&gt; &amp; &lt;img' in body, body
    for c in ("\u202e", "\u202c", "\x1b", "\x07"):
        assert c not in body, repr(body)
    assert "nim[31m hết" in body


def test_change_of_information_shows_what_changes(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki, days_left=60)
    before = dict(old.subject)
    subject = [[a, "CÔNG TY TNHH THƯƠNG MẠI AN PHÁT HÀ NỘI"] if a == "O" else [a, v]
               for a, v in old.subject]
    refca.add_action(old, type="change", subject=subject,
                     key={"generate": False, "type": "rsa", "bits": 2048}, **window(300))
    world.start_daemon()
    check(world, token.serial)
    desktop.start_agent(world)
    offer = desktop.monitor.wait_summary("Change of information ready")
    assert f"O: {before['O']} → CÔNG TY TNHH THƯƠNG MẠI AN PHÁT HÀ NỘI" in offer["body"], \
        offer["body"]
    # Only what changes is listed.
    assert f"CN: {before['CN']}" not in offer["body"]
    assert offer["actions"]["activate"] == "Activate now"


def test_expiry_warning_at_the_thresholds(hotplug_world, pki, refca, desktop):
    world = hotplug_world
    world.start_daemon()
    desktop.start_agent(world)
    desktop.wait_agent()
    token, old = token_with_pair(world, pki, days_left=5.5)
    world.insert_card()
    warning = desktop.monitor.wait_summary("expires in 5 days")
    assert "plugged in" not in " ".join(summaries(desktop)), "the warning says more"
    assert old.serial in warning["body"] and SUPPORT in warning["body"], warning["body"]
    assert warning["hints"]["urgency"] == 2, "a week or less is critical"
    assert warning["timeout"] == 0


def test_notifications_and_pin_dialogue_speak_vietnamese(world, pki, refca, desktop, vi_env):
    token, old = token_with_pair(world, pki, days_left=60)
    refca.add_action(old, type="renew", **window(365))
    world.start_daemon()
    check(world, token.serial)
    desktop.start_agent(world, **vi_env)
    offer = desktop.monitor.wait_summary("Đã sẵn sàng gia hạn cho")
    assert offer["actions"]["activate"] == "Kích hoạt ngay"
    assert offer["actions"]["later"] == "Để sau"
    assert "chứng thư số" in offer["body"], offer["body"]
    desktop.set_pin(PIN)
    desktop.invoke(offer["id"], "activate")
    desktop.monitor.wait_summary("Đã gia hạn chứng thư số", timeout=90)
    reminder = desktop.monitor.wait_summary("Bước 3")
    assert "Thuế điện tử (Tổng cục Thuế)" in reminder["body"]
    description = [c["argument"] for c in desktop.pinentry_commands()
                   if c["command"] == "SETDESC"][-1]
    assert "mã PIN" in description and token.serial in description, description


def test_token_pulled_during_activation_then_carried_on(world, pki, refca, desktop):
    token, old, action, offer, shim = ready_with_shim(world, pki, refca, desktop)
    refca.fault("issue", "slow", seconds=6)
    desktop.set_pin(PIN)
    desktop.invoke(offer["id"], "activate")
    desktop.monitor.wait(lambda n: "Activating" in n["summary"] and "Step 4" in n["body"],
                         timeout=60)
    shim.set(token, pulled=1)
    pulled = desktop.monitor.wait_summary("The token was pulled out", timeout=60)
    assert "goes on from where it stopped" in pulled["body"], pulled["body"]
    assert pulled["actions"].get("activate") == "Activate now"
    world.rescan()
    time.sleep(0.5)

    # Back in: "Activate now" carries on with the same key.
    shim.set(token, pulled=0)
    world.rescan()
    wait_until(lambda: find_token(world.status(), token.serial)["present"] is True,
               message="the token back")
    desktop.invoke(pulled["id"], "activate")
    desktop.monitor.wait_summary("Certificate renewed", timeout=90)
    issues = refca.requests("issue")
    assert len({i["csr_key_sha256"] for i in issues}) == 1, f"a second key: {issues}"


# --- a PIN to change --------------------------------------------------------------

NEW_PIN = "Moi-246810"


def must_change_token(world, pki, refca, desktop):
    configure(world, refca)
    shim = use_pin_shim(world)
    token, old = token_with_pair(world, pki, days_left=200)
    shim.set(token, must_change=1)
    world.start_daemon()
    assert find_token(world.status(), token.serial)["pin_must_change"] is True
    desktop.start_agent(world)
    inserted = desktop.monitor.wait_summary("plugged in")
    return token, shim, inserted


def test_a_pin_to_change_is_offered_and_changed(world, pki, refca, desktop):
    token, shim, inserted = must_change_token(world, pki, refca, desktop)
    assert inserted["actions"]["change-pin"] == "Change PIN"
    assert "asks for a new PIN" in inserted["body"]

    # A slip in the repeated PIN is caught before the token is touched.
    desktop.set_pin(PIN, NEW_PIN, NEW_PIN + "x", NEW_PIN, NEW_PIN)
    desktop.invoke(inserted["id"], "change-pin")
    changed = desktop.monitor.wait_summary("PIN changed")
    assert changed["id"] == inserted["id"]
    commands = desktop.pinentry_commands()
    assert [c["command"] for c in commands].count("GETPIN") == 5
    errors = [c["argument"] for c in commands if c["command"] == "SETERROR"]
    assert any("differ" in e for e in errors), errors
    state = shim.read(token)
    assert state["setpins"] == 1, "one C_SetPIN for one change"
    assert state["must_change"] == 0
    # The new PIN works, the old one no more.
    shim.p11(token, "--login", "--pin", NEW_PIN, "--list-objects")
    assert shim.p11(token, "--login", "--pin", PIN, "--list-objects",
                    check=False).returncode != 0
    wait_until(lambda: find_token(world.status(), token.serial)["pin_must_change"] is False,
               message="safecad sees the PIN changed")


def test_a_wrong_current_pin_changes_nothing(world, pki, refca, desktop):
    token, shim, inserted = must_change_token(world, pki, refca, desktop)
    desktop.set_pin(WRONG_PIN, NEW_PIN, NEW_PIN)
    desktop.invoke(inserted["id"], "change-pin")
    wrong = desktop.monitor.wait_summary("Wrong PIN")
    assert "not changed" in wrong["body"]
    assert "locks after a few more wrong tries" in wrong["body"] and SUPPORT in wrong["body"]
    assert wrong["actions"]["change-pin"] == "Change PIN"
    state = shim.read(token)
    assert state["setpins"] == 1 and state["must_change"] == 1 and state["tries_left"] == 2
    shim.p11(token, "--login", "--pin", PIN, "--list-objects")


def test_a_withdrawn_offer_goes_away(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki, days_left=60)
    action = refca.add_action(old, type="renew", **window(365))
    world.start_daemon()
    check(world, token.serial)
    desktop.start_agent(world)
    offer = desktop.monitor.wait_summary("Renewal ready")
    refca.admin.withdraw(action["id"])
    check(world, token.serial)
    back = desktop.monitor.wait_summary("plugged in")
    assert back["id"] == offer["id"] and back["actions"] == {}, back
