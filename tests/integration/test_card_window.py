# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Token Manager window with a token behind OpenSC that cannot do what
the CA asks: the IsoApplet card makes RSA-2048 keys only, so a renewal to
a P-256 key is shown with why, and no Activate button offers it."""

import pytest

from harness.manager import ManagerWindow, require_window, window_desktop
from harness.refca import check, refca, window  # noqa: F401 - refca is a fixture
from harness.safecad import wait_until
from test_card_activation import ISO_SERIAL, P256, RSA2048, iso, listed, start_on_card  # noqa: F401
from test_card_isoapplet import card  # noqa: F401 - a fixture
from test_manager_activate import shot


@pytest.fixture
def desktop(world):
    require_window()
    with window_desktop("sccard-", "plain") as d:
        yield d


@pytest.mark.parametrize("key,activatable", [(P256, False), (RSA2048, True)],
                         ids=["p256-refused", "rsa2048-offered"])
def test_what_the_card_cannot_do_is_shown_not_offered(hotplug_world, pki, refca, iso, desktop,
                                                      key, activatable):
    w = hotplug_world
    refca.add_action(iso.old, type="renew", key=key, **window(400))
    start_on_card(w, iso, refca)
    check(w, ISO_SERIAL)
    win = ManagerWindow(w, desktop)
    desktop.windows.append(win)
    win.start()
    win.wait_text("Renewal offered by the CA")
    if activatable:
        wait_until(lambda: win.find("push button", "Activate…"), timeout=20,
                   message="the Activate button")
        assert not any("cannot carry it out" in t for t in win.texts())
    else:
        texts = win.wait_text("This token cannot carry it out")
        why = [t for t in texts if "cannot carry it out" in t]
        assert any("P-256" in t and "1900 6154" in t for t in why), why
        assert not win.find("push button", "Activate…"), win.nodes()
        shot(desktop, "card-not-activatable")


@pytest.fixture
def agent_desktop(world):
    require_window(["dunst", "dunstctl"])
    with window_desktop("sccardn-", "dunst") as d:
        yield d


def test_the_agent_says_what_the_card_cannot_do_and_offers_no_button(hotplug_world, pki, refca,
                                                                     iso, agent_desktop):
    w = hotplug_world
    refca.add_action(iso.old, type="renew", key=P256, **window(400))
    start_on_card(w, iso, refca)
    check(w, ISO_SERIAL)
    agent_desktop.start_agent(w)
    offer = agent_desktop.monitor.wait_summary("Renewal not possible")
    body = offer["body"]
    assert "This token cannot carry it out" in body and "P-256" in body, body
    assert "Nothing was sent to the CA" in body and "1900 6154" in body, body
    assert "activate" not in offer["actions"], offer["actions"]
