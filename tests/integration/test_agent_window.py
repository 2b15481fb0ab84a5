# SPDX-License-Identifier: LGPL-2.1-or-later
"""The desktop agent and the Token Manager window together, on real parts:
dunst shows the agent's notifications (actions chosen as a user does: its
context menu, or the notification's default action), the window is started
by D-Bus activation of its installed .service file on the test's session
bus and read through AT-SPI, and safecad runs on the test's private system
bus with SoftHSM tokens, pcscd/vpcd hotplug and the reference CA."""

import os
import subprocess
import time

import pytest

from harness.manager import ManagerWindow, require_window, window_desktop
from harness.refca import (  # noqa: F401 - refca is a fixture
    AGENCIES, done_agencies, refca, renewed, token_with_pair)
from harness.safecad import wait_until

OPEN_ON_INSERT = "Open this window when a token is plugged in"
AGENCY_NAMES = {
    "tax": "Thuế điện tử (Tổng cục Thuế)",
    "customs": "Hải quan điện tử (Tổng cục Hải quan)",
    "procurement": "Hệ thống mạng đấu thầu quốc gia",
}


@pytest.fixture
def desktop(world):
    require_window(["dunst", "dunstctl", "busctl"])
    with window_desktop("scagwin-", "dunst") as d:
        yield d


def installed_window(world, desktop, gtk_leaks=False):
    """The window installed for D-Bus activation, not started. Tests that
    read where a control is (AT-SPI's extents, to scroll or click it) pass
    gtk_leaks: GTK 4.8 leaks in its own accessibility code when asked."""
    w = ManagerWindow(world, desktop, gtk_leaks)
    desktop.windows.append(w)
    w.install_service()
    return w


def start_agent(world, desktop, w):
    # The agent and the window read the same user's settings.
    agent = desktop.start_agent(world, XDG_CONFIG_HOME=w.config)
    desktop.wait_agent()
    return agent


def heading(w, label):
    """The accessible name of token label's heading in the window."""
    names = [n[1] for n in w.nodes() if n[0] == "label" and n[1].startswith(f"Token {label} ")]
    assert names, w.texts()
    return names[0]


def heading_y(w, label):
    return w.describe("label", heading(w, label))["extents"][1]


def in_view(w, label):
    """Whether token label's heading is on screen, below the header bar and
    above the window's bottom edge."""
    try:
        return 40 <= heading_y(w, label) <= 560
    except AssertionError:
        return False


def revealed(w, label):
    """Whether token label's heading sits at the top of the list, just below
    the header bar, where show-token scrolls it (False while the list is
    being built again)."""
    try:
        return 40 <= heading_y(w, label) <= 110
    except AssertionError:
        return False


def test_open_and_click_open_the_window_on_the_token(hotplug_world, pki, desktop):
    world = hotplug_world
    first, _ = token_with_pair(world, pki, label="An Phat 01", days_left=90)
    world.start_daemon()
    w = installed_window(world, desktop, gtk_leaks=True)
    agent = start_agent(world, desktop, w)

    # A click on the notification (its default action) opens the window,
    # which the session bus starts from its installed service.
    plugged = desktop.monitor.wait_summary("Token An Phat 01 plugged in")
    assert plugged["actions"].get("open") == "Open", plugged["actions"]
    assert plugged["actions"].get("default") == "Open", plugged["actions"]
    assert not w.running()
    desktop.dunstctl("action", "0")
    w.attach()
    w.wait_text("Token An Phat 01")
    assert revealed(w, "An Phat 01")
    desktop.dunstctl("close-all")

    # A second token: its notification's Open brings the same window to it.
    second, _ = token_with_pair(world, pki, label="Binh Minh 02", days_left=200, key_id="02")
    world.insert_card()
    plugged = desktop.monitor.wait_summary("Token Binh Minh 02 plugged in")
    w.wait_text("Token Binh Minh 02")
    names = [n[1] for n in w.nodes() if n[0] == "label" and n[1].startswith("Token ")]
    if names.index(heading(w, "Binh Minh 02")) < names.index(heading(w, "An Phat 01")):
        # Listed first: scrolled away from it first, so that Open must
        # scroll back to it.
        subprocess.run(["xdotool", "mousemove", "430", "330", "click", "--repeat", "30", "5"],
                       env=desktop.env(), check=True, timeout=30)
        wait_until(lambda: heading_y(w, "Binh Minh 02") < 40, timeout=15,
                   message="the list scrolled down")
    assert not revealed(w, "Binh Minh 02")
    desktop.invoke(plugged["id"], "open")
    wait_until(lambda: revealed(w, "Binh Minh 02"), timeout=20,
               message="the window scrolled to the token")
    assert len([p for p in w.procs if p.poll() is None]) == 1, "one window, brought forward"
    frames = [n for n in w.nodes() if n[0] == "frame"]
    assert len(frames) == 1, frames
    w.stop()
    desktop.stop_agent(agent)


def test_open_checklist_opens_the_window_checklist(world, pki, refca, desktop):
    token, old, entry = renewed(world, pki, refca)
    w = installed_window(world, desktop, gtk_leaks=True)
    agent = start_agent(world, desktop, w)
    reminder = desktop.monitor.wait_summary("Step 3")
    assert reminder["actions"]["checklist"] == "Open checklist"

    desktop.invoke(reminder["id"], "checklist")
    w.attach()
    # The activation's own page: back to the tokens, its agencies with
    # their sites, the two warnings and Export.
    w.wait_text("Back to the tokens")
    texts = w.wait_text("24 hours")
    assert any("muasamcong.mpi.gov.vn" in t and "previous certificate" in t for t in texts)
    assert f"Export the new certificate {entry['new_serial']}" in texts
    tokens_heading = [n for n in w.nodes() if n[0] == "label" and n[1] == "Tokens"]
    assert all("visible" not in n[2] for n in tokens_heading), \
        "the checklist is a page of its own, not the list"
    assert desktop.opened_files() == [], "no HTML page where the window is there"

    for agency in AGENCIES:
        w.toggle(AGENCY_NAMES[agency])
        wait_until(lambda: agency in done_agencies(world), timeout=15,
                   message=f"the {agency} tick in the history")
    w.wait_text("Step 3 is done")
    assert done_agencies(world) == set(AGENCIES)
    w.stop()
    desktop.stop_agent(agent)
    reminders = [n for n in desktop.monitor.notifications() if "Step 3" in n["summary"]]

    # The next time the agent looks (its next start, as at a login), the
    # token is announced and the reminder is not.
    agent = start_agent(world, desktop, w)
    desktop.monitor.wait(lambda n: "plugged in" in n["summary"]
                         and n["sender"] != reminder["sender"], what="the next announcement")
    time.sleep(1.5)
    assert [n for n in desktop.monitor.notifications() if "Step 3" in n["summary"]] == reminders
    desktop.stop_agent(agent)


def test_without_the_window_the_checklist_is_a_page_and_open_is_not_offered(
        world, pki, refca, desktop):
    token, old, entry = renewed(world, pki, refca)
    agent = desktop.start_agent(world)
    desktop.wait_agent()
    plugged = desktop.monitor.wait_summary("plugged in")
    assert "open" not in plugged["actions"] and "default" not in plugged["actions"], plugged
    reminder = desktop.monitor.wait_summary("Step 3")
    desktop.invoke(reminder["id"], "checklist")
    wait_until(lambda: desktop.opened_files(), message="xdg-open called")
    page = desktop.opened_files()[0]
    assert page.startswith(desktop.runtime) and page.endswith(f"{entry['action']}.html"), page
    desktop.stop_agent(agent)


def test_open_on_insert_is_off_by_default_and_set_in_the_window(hotplug_world, pki, desktop):
    world = hotplug_world
    world.start_daemon()
    w = installed_window(world, desktop, gtk_leaks=True)
    agent = start_agent(world, desktop, w)

    # Off by default: a token plugged in opens nothing.
    first, _ = token_with_pair(world, pki, label="An Phat 01", days_left=90)
    card = world.insert_card()
    desktop.monitor.wait_summary("Token An Phat 01 plugged in")
    time.sleep(3)
    assert not w.running(), "nothing opens while the option is off"

    # Set in the window, with its own control.
    w.start()
    w.wait_text("Token An Phat 01")
    switch = [n for n in w.nodes() if n[1] == OPEN_ON_INSERT and n[0] not in ("label", "list item")]
    assert switch and "checked" not in switch[0][2], switch
    w.act(switch[0][0], OPEN_ON_INSERT, "click")
    conf = os.path.join(w.config, "safecad", "manager.conf")
    wait_until(lambda: os.path.exists(conf), message="the key file written")
    with open(conf) as f:
        text = f.read()
    assert "[manager]" in text and "open_on_insert=true" in text, text
    assert os.stat(os.path.dirname(conf)).st_mode & 0o777 == 0o700
    w.stop()
    assert not w.running()

    # The reader is free for the next token (the first one stays listed).
    card.remove()
    second, _ = token_with_pair(world, pki, label="Binh Minh 02", days_left=200, key_id="02")
    world.insert_card()
    desktop.monitor.wait_summary("Token Binh Minh 02 plugged in")
    w.attach()
    w.wait_text("Token Binh Minh 02")
    # On the token: in view (how far up it can be scrolled depends on how
    # tall the page below it is, which the CA's answers change).
    wait_until(lambda: in_view(w, "Binh Minh 02"), timeout=20,
               message="the window on the token plugged in")
    switch = [n for n in w.nodes() if n[1] == OPEN_ON_INSERT and n[0] not in ("label", "list item")]
    assert switch and "checked" in switch[0][2], switch
    w.stop()
    desktop.stop_agent(agent)
