# SPDX-License-Identifier: LGPL-2.1-or-later
"""A CMP profile (protocol = cmp) renewed end to end through the desktop:
the agent (dunst under Xvfb, the PIN through a scripted pinentry) and the
Token Manager window (driven through AT-SPI and the keyboard), with
safecad on a private system bus, a SoftHSM token and the CMP test CA,
which issues for the key actually requested and records every message.
A CMP action promises no validity: both clients say that the CA sets it
when it issues the certificate, and show no dates in its place."""

import os
import re

import pytest

from harness.manager import ManagerWindow, require_window, window_desktop
from harness.refca import PIN, certificates, safectl_json, serial_hex, token_with_pair
from harness.safecad import find_token, wait_until
from test_cmp_update import (  # noqa: F401 - cmpca is a fixture
    assert_renewed, cmpca, configure_cmp, the_action)
from test_manager_activate import pin_nowhere, shot, type_pin

# A date as the clients write it, in either language ("2026-12-01",
# "01/12/2026").
DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4}")

TAX_URL = "https://thuedientu.gdt.gov.vn"

# The window's words, in English and in Vietnamese (po/vi.po).
WORDS = {
    "en": {
        "offered": "Renewal offered by the CA",
        "activate": "Activate…",
        "warnings": "Before you activate, know three things",
        "new_validity": "New validity",
        "validity": "Validity",
        "set_by_ca": "Set by the CA when it issues the certificate",
        "from_to": "From ",
        "ask_ca": "ask the CA yourself to keep the previous certificate's registration",
        "keep": "Keep the previous certificate's registration",
        "accept": "Accept",
        "pin_page": "Type the token's PIN",
        "pin": "PIN",
        "log_in": "Log in",
        "check": "Check the issued certificate",
        "confirm": "Confirm",
        "loaded": "The new certificate is loaded on the token",
    },
    "vi": {
        "offered": "Nhà cung cấp dịch vụ chứng thực đề nghị gia hạn",
        "activate": "Kích hoạt…",
        "warnings": "Trước khi kích hoạt, cần biết ba điều",
        "new_validity": "Hiệu lực mới",
        "validity": "Hiệu lực",
        "set_by_ca": "Do nhà cung cấp dịch vụ chứng thực đặt khi cấp chứng thư số",
        "from_to": "Từ ",
        "ask_ca": "hãy tự đề nghị nhà cung cấp dịch vụ chứng thực giữ đăng ký",
        "keep": "Giữ đăng ký của chứng thư số cũ",
        "accept": "Chấp nhận",
        "pin_page": "Nhập mã PIN của USB token",
        "pin": "Mã PIN",
        "log_in": "Đăng nhập",
        "check": "Kiểm tra chứng thư số đã cấp",
        "confirm": "Xác nhận",
        "loaded": "Đã nạp chứng thư số mới vào USB token",
    },
}


@pytest.fixture
def desktop(world):
    require_window(["dunst", "dunstctl"])
    with window_desktop("sccmpui-", "dunst") as d:
        yield d


def cmp_token(world, pki, start_ca):
    """A token whose certificate is in its CMP renewal window, the CMP
    test CA, safecad, and the CMP action it offers (no CA asked yet)."""
    token, old = token_with_pair(world, pki, days_left=20)
    ca = start_ca()
    configure_cmp(world, ca)
    # The agency with its address, as SAFE-CA's profile gives it: Step 3
    # links to it.
    with open(os.path.join(world.confdir, "ca.d", "safe-ca.conf"), "a") as f:
        f.write(f"url = {TAX_URL}\n")
    world.start_daemon()
    action = the_action(world, token)
    assert action["protocol"] == "cmp" and action["type"] == "renew", action
    assert "not_before" not in action and "not_after" not in action, action
    assert ca.types() == [], "an offer asks nothing of the CA"
    return token, old, ca, action


def row_text(nodes, title):
    """The subtitle of the window's row titled `title`: the label that
    follows the title among the accessibles."""
    labels = [n[1] for n in nodes if n[0] == "label" and n[1]]
    for i, name in enumerate(labels[:-1]):
        if name == title:
            return labels[i + 1]
    raise AssertionError(f"no row {title!r}: {labels}")


# --- the agent -----------------------------------------------------------------


def test_agent_offers_the_cmp_renewal_and_activate_now_renews(world, pki, cmpca, desktop):
    token, old, ca, action = cmp_token(world, pki, cmpca)
    agent = desktop.start_agent(world)
    offer = desktop.monitor.wait_summary("Renewal ready")
    body = offer["body"]
    assert "New validity: set by the CA when it issues the certificate." in body, body
    assert not DATE.search(body.split("New validity:")[1].split("\n")[0]), body
    # No CMP message carries the wish to keep the previous registration:
    # the user is told to ask the CA, not that it is kept.
    assert "ask the CA yourself to keep the previous certificate's registration" in body, body
    assert "registration is kept" not in body, body
    assert offer["actions"]["activate"] == "Activate now"
    assert offer["timeout"] == 0, "an offer waits for the user"

    desktop.set_pin(PIN)
    desktop.invoke(offer["id"], "activate")
    result = desktop.monitor.wait_summary("Certificate renewed", timeout=90)
    assert result["id"] == offer["id"], "one notification per token, replaced in place"

    # One PIN dialogue, about this token and certificate, on this display.
    commands = desktop.pinentry_commands()
    assert [c["command"] for c in commands].count("GETPIN") == 1, commands
    description = [c["argument"] for c in commands if c["command"] == "SETDESC"][-1]
    assert token.serial in description and old.serial in description, description
    assert all(c["display"] == desktop.display for c in commands)

    # The CA issued once and was told the certificate was accepted; it is
    # on the token, for the new key made there.
    assert ca.types() == ["kur", "certConf"], ca.types()
    assert ca.cert_confs()[0]["hash_matched"] is True, ca.cert_confs()
    cert = assert_renewed(ca, token, old)
    new_serial = serial_hex(cert)
    assert new_serial in result["body"] and old.serial in result["body"], result["body"]
    entry = safectl_json(world, "history")["activations"][0]
    assert entry["action"] == action["id"] and entry["new_serial"] == new_serial, entry
    t = find_token(world.status(), token.serial)
    assert t["pending"] == [] and t["activation"] is None, t

    # The agencies are still to be told of the new serial.
    reminder = desktop.monitor.wait_summary("Step 3")
    assert reminder["actions"]["export"] == "Export certificate"
    assert "Thuế điện tử" in reminder["body"] and TAX_URL in reminder["body"], reminder["body"]
    desktop.stop_agent(agent)


# --- the window ----------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "vi"])
def test_window_walks_the_cmp_renewal_through(world, pki, cmpca, desktop, language, request):
    words = WORDS[language]
    extra = request.getfixturevalue("vi_env") if language == "vi" else {}
    token, old, ca, action = cmp_token(world, pki, cmpca)
    w = ManagerWindow(world, desktop, **extra)
    desktop.windows.append(w)
    w.start()
    w.wait_text(words["offered"])

    # 1. What changes: the CA sets the validity; no dates stand in for it.
    w.click(words["activate"])
    w.wait_text(words["warnings"])
    nodes = w.nodes()
    assert row_text(nodes, words["new_validity"]) == words["set_by_ca"], nodes
    assert not any(n[1].startswith(words["from_to"]) and not DATE.search(n[1])
                   for n in nodes), f"a validity without its dates: {nodes}"
    assert any(words["ask_ca"] in n[1] for n in nodes), nodes
    assert not any(n[1].startswith(words["keep"]) and n[0] not in ("label", "list item", "panel")
                   for n in nodes), f"a switch whose answer no CMP CA hears: {nodes}"
    if language == "vi":
        assert not any("New validity" in n[1] or "Accept" == n[1] for n in nodes), nodes
    shot(desktop, f"cmp-{language}-1-changes")
    assert ca.types() == []
    w.click(words["accept"])

    # 2. The PIN, typed on the keyboard.
    w.wait_text(words["pin_page"])
    type_pin(w, field=words["pin"])
    pin_nowhere(w, field=words["pin"])
    before = [serial_hex(c) for _, c in certificates(token)]
    w.click(words["log_in"])

    # 4. The issued certificate, shown before anything is written: the
    # CA's own validity, as dates.
    w.wait_text(words["check"], timeout=90)
    wait_until(lambda: len(ca.issued()) == 1, message="the CA issued")
    new = ca.issued()[0]
    new_serial = format(new.serial_number, "x")
    texts = w.wait_text(new_serial)
    validity = row_text(w.nodes(), words["validity"])
    dates = DATE.findall(validity)
    assert len(dates) == 2, f"the issued certificate's validity: {validity!r} in {texts}"
    shot(desktop, f"cmp-{language}-4-certificate")
    assert [serial_hex(c) for _, c in certificates(token)] == before, "written before Confirm"
    w.click(words["confirm"])

    # 5. Loaded → OK.
    texts = w.wait_text(words["loaded"], timeout=60)
    assert any(new_serial in t and old.serial in t for t in texts), texts
    cert = assert_renewed(ca, token, old)
    assert serial_hex(cert) == new_serial
    assert ca.types() == ["kur", "certConf"], ca.types()
    w.click("OK")
    wait_until(lambda: not w.find("push button", words["confirm"]), message="the dialog closed")
    entry = safectl_json(world, "history")["activations"][0]
    assert entry["action"] == action["id"] and entry["new_serial"] == new_serial, entry
    w.stop()
