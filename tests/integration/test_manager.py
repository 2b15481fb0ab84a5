# SPDX-License-Identifier: LGPL-2.1-or-later
"""safecad-manager, the Token Manager window, on real parts: Xvfb, a
session bus with its accessibility bus, the window driven through AT-SPI
as a person would (controls found by role and name, pressed; what it
shows read back), and safecad on the test's private system bus with
SoftHSM tokens, pcscd/vpcd hotplug and the reference CA."""

import os
import subprocess
import time

import pytest
from cryptography import x509

from harness.manager import ManagerWindow, require_window, window_desktop
from harness.refca import (  # noqa: F401 - refca is a fixture
    AGENCIES, PIN, SUPPORT, check, configure, done_agencies, refca, renewed, token_with_pair,
    window)
from harness.safecad import REPO, find_token, wait_until

HOLDER = "CÔNG TY TNHH AN PHÁT"


@pytest.fixture
def desktop(world):
    require_window()
    # No notification server is needed; a plain one keeps it light.
    with window_desktop("scman-", "plain") as d:
        yield d


def open_window(world, desktop, gtk_leaks=False, **extra):
    w = ManagerWindow(world, desktop, gtk_leaks, **extra)
    desktop.windows.append(w)
    return w.start()


def test_lists_tokens_and_follows_hotplug(hotplug_world, pki, desktop):
    world = hotplug_world
    first, old = token_with_pair(world, pki, label="An Phat 01", days_left=20)
    world.start_daemon()
    w = open_window(world, desktop)
    w.wait_text("Token An Phat 01")
    texts = w.wait_text("20 days left")
    assert any("renew soon" in t for t in texts), texts
    assert any(HOLDER in t and "tax code 0101234567" in t for t in texts), \
        "the holder and the tax code, from the subject's UID"
    assert any("The PIN is fine" in t for t in texts), texts
    assert any("SAFE-CA" in t and SUPPORT in t for t in texts), texts
    assert any(old.serial in t for t in texts), texts

    # A second token arrives while the window is open, then leaves.
    second, other = token_with_pair(world, pki, label="Binh Minh 02", days_left=200)
    card = world.insert_card()
    texts = w.wait_text("Token Binh Minh 02")
    assert any(t.endswith("days left") and t[:3] in ("199", "200") for t in texts), texts
    second.delete()
    card.remove()
    w.wait_no_text("Binh Minh 02")
    assert any("Token An Phat 01" in t for t in w.texts())
    w.stop()


AGENCY_NAMES = {
    "tax": "Thuế điện tử (Tổng cục Thuế)",
    "customs": "Hải quan điện tử (Tổng cục Hải quan)",
    "procurement": "Hệ thống mạng đấu thầu quốc gia",
}


def test_step3_ticks_reach_safecad_and_sites_open(world, pki, refca, desktop):
    token, old, entry = renewed(world, pki, refca)
    new_serial = entry["new_serial"]
    # Launching the desktop's handler leaks in GTK 4.8's own code.
    w = open_window(world, desktop, gtk_leaks=True)
    w.wait_text("Renewal of token", old.serial, new_serial)
    texts = w.wait_text("24 hours")
    assert any("muasamcong.mpi.gov.vn" in t and "previous certificate" in t for t in texts)

    # Each agency's site opens with the desktop's handler.
    w.click(f"Open the site of {AGENCY_NAMES['procurement']}")
    wait_until(lambda: desktop.opened_files(), message="the site handed to the desktop")
    assert desktop.opened_files() == ["https://muasamcong.mpi.gov.vn"]

    # Ticks go to safecad, one by one.
    ticked = set()
    for agency in AGENCIES:
        w.toggle(AGENCY_NAMES[agency])
        ticked.add(agency)
        wait_until(lambda: done_agencies(world) == ticked, timeout=15,
                   message=f"the {agency} tick in the history")
        # The window reads the history again on the tick's answer and on
        # HistoryChanged, and builds the page anew: the next box is
        # clicked once that has landed, not in the page being replaced.
        time.sleep(1.0)
    w.wait_text("Step 3 is done")

    w.stop()

    # The agent's reminder logic sees Step 3 done: no reminder at login.
    agent = desktop.start_agent(world)
    desktop.monitor.wait_summary("plugged in")
    time.sleep(1.5)
    assert not any("Step 3" in n["summary"] for n in desktop.monitor.notifications())
    desktop.stop_agent(agent)


def checked(w, name):
    return any(role == "check box" and n == name and "checked" in states
               for role, n, states, text in w.nodes())


def test_tick_from_safectl_shows_without_focus(world, pki, refca, desktop):
    """safecad announces history changes: a tick made elsewhere shows in
    the open window while it stays as it is, not only when it comes back
    to the front."""
    token, old, entry = renewed(world, pki, refca)
    w = open_window(world, desktop)
    name = AGENCY_NAMES["customs"]
    w.wait_text(name)
    assert not checked(w, name)
    # The window has had its focus change; from here on nothing touches it.
    time.sleep(1)
    rc, out, err = world.safectl("agencies", "done", "customs")
    assert rc == 0, out + err
    wait_until(lambda: checked(w, name), timeout=10,
               message="the tick from safectl shown in the window")
    assert not checked(w, AGENCY_NAMES["tax"])
    w.stop()


def test_export_writes_what_openssl_reads(world, pki, refca, desktop):
    token, old, entry = renewed(world, pki, refca)
    new_serial = entry["new_serial"]
    # The file chooser leaks in GTK 4.8's own code.
    w = open_window(world, desktop, gtk_leaks=True)
    target = os.path.join(desktop.dir, "exported.pem")
    w.click(f"Export the new certificate {new_serial}")
    # GTK 4.8's file chooser: the name entry is "Name:", and its buttons'
    # names come doubled (mnemonic label and label).
    w.act("text", "Name:", "text", value=target)
    w.click("_Save Save")
    wait_until(lambda: os.path.exists(target), timeout=15, message="the exported file")
    r = subprocess.run(["openssl", "x509", "-in", target, "-noout", "-serial"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip().split("=")[1], 16) == int(new_serial, 16)
    w.stop()


def test_follows_safecad_stopping_and_restarting(world, pki, desktop):
    token, old = token_with_pair(world, pki, days_left=90)
    # Opened before safecad runs: it says so, in words.
    w = open_window(world, desktop)
    w.wait_text("The safecad token service is not running")
    daemon = world.start_daemon()
    w.wait_text(f"Token {token.label}")
    w.wait_no_text("not running")

    daemon.stop()
    w.wait_text("The safecad token service is not running")
    w.wait_no_text(f"Token {token.label}")
    world.start_daemon()
    w.wait_text(f"Token {token.label}")
    # The token's details fill in after its title: wait for them.
    texts = w.wait_text(HOLDER)
    assert any(HOLDER in t for t in texts), texts
    w.stop()


def test_second_launch_brings_the_first_forward(world, pki, desktop):
    token, old = token_with_pair(world, pki, days_left=90)
    world.start_daemon()
    w = open_window(world, desktop)
    w.wait_text(f"Token {token.label}")
    second = w.launch()
    assert second.wait(30) == 0, w.log(second)
    assert w.proc.poll() is None
    frames = [n for n in w.nodes() if n[0] == "frame"]
    assert len(frames) == 1, frames
    w.stop()


def test_vietnamese_window_and_screenshot(world, pki, refca, desktop, vi_env):
    token, old, entry = renewed(world, pki, refca)
    second, other = token_with_pair(world, pki, label="Binh Minh 02", days_left=12,
                                    key_id="02")
    world.rescan()
    w = open_window(world, desktop, **vi_env)
    texts = w.wait_text("còn 12 ngày: cần gia hạn sớm")
    assert "Quản lý USB token" in texts, texts
    assert any("mã số thuế 0101234567" in t for t in texts), texts
    assert any("Mã PIN bình thường" in t for t in texts), texts
    assert any("Bước 3" in t for t in texts), texts
    assert any("muasamcong.mpi.gov.vn" in t and "giữ đăng ký" in t for t in texts), texts
    assert not any("days left" in t for t in texts), "nothing left in English"
    time.sleep(0.5)
    shot = os.path.join(os.environ.get("SAFECAD_SHOT_DIR", desktop.dir), "manager-vi.png")
    desktop.screenshot(shot)
    assert os.path.getsize(shot) > 10000
    w.stop()


def test_pending_action_shown_with_its_activate_button(world, pki, refca, desktop):
    token, old = token_with_pair(world, pki, days_left=25)
    refca.add_action(old, type="renew", message="Gia hạn chứng thư số 1 năm.", **window(365))
    world.start_daemon()
    check(world, token.serial)
    w = open_window(world, desktop)
    texts = w.wait_text("Renewal offered by the CA")
    assert "Gia hạn chứng thư số 1 năm." in texts, texts
    buttons = w.find("push button", "Activate…")
    assert buttons, [n for n in w.nodes() if n[0] == "push button"]
    assert all("sensitive" in states for _, _, states, _ in buttons), buttons
    w.stop()
