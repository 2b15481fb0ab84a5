# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hotplug: a card inserted into vpcd makes the token appear on the bus and
in status; removing it makes it go (the test makes or deletes the SoftHSM
token first, as FACTS.md explains)."""

import json
import time

from harness import bus as busmod
from harness.expect import assert_token, expected_token
from harness.pcsc import card_present


def _manager(world, name):
    return busmod.get_property(world.bus.connection(), busmod.MANAGER_PATH,
                               busmod.MANAGER_IFACE, name)


def test_card_insert_and_removal_add_and_remove_the_token(hotplug_world, pki):
    w = hotplug_world
    w.start_daemon()
    assert w.status() == []
    assert _manager(w, "Hotplug") is True
    assert _manager(w, "Tokens") == []

    listener = w.listener()
    json_watch = w.watch(json_mode=True)
    human_watch = w.watch(json_mode=False)

    token = w.softhsm.create_token("An Phat 01")
    issued = pki.issue(days_left=20)
    token.add_pair(issued, "a1b2c3")

    card = w.insert_card()
    t_insert = time.monotonic()
    added = listener.wait_for("TokenAdded", token.serial, timeout=10)
    path, serial = added.args
    print(f"TokenAdded {added.time - t_insert:.3f} s after the vpcd connect")
    assert serial == token.serial
    # The object is on the bus when TokenAdded arrives.
    conn = w.bus.connection()
    assert busmod.get_property(conn, path, busmod.TOKEN_IFACE, "Serial") == token.serial
    assert _manager(w, "Tokens") == [path]

    tokens = w.status()
    assert len(tokens) == 1, tokens
    assert_token(tokens[0], expected_token(
        token, [(issued, "a1b2c3", True)], profile="SAFE-CA", days_left=issued.days_left()))

    event = json_watch.wait_event("token-added", token.serial)
    assert event["path"] == path
    human_watch.wait_for(lambda line: token.serial in line)

    # Exactly one TokenAdded for one insert.
    assert [e for e in listener.drain(1.0) if e.member == "TokenAdded"] == []

    token.delete()
    card.remove()
    removed = listener.wait_for("TokenRemoved", token.serial, timeout=10)
    assert removed.args == (path, token.serial)
    assert w.status() == []
    assert _manager(w, "Tokens") == []
    event = json_watch.wait_event("token-removed", token.serial)
    assert event["path"] == path
    human_watch.wait_for(lambda line: token.serial in line)
    assert [e for e in listener.drain(1.0) if e.member in ("TokenAdded", "TokenRemoved")] == []


def test_second_token_and_second_insert(hotplug_world, pki):
    """The watcher keeps working after an event, and a token already listed
    stays when another card event causes a rescan."""
    w = hotplug_world
    first = w.softhsm.create_token("Token Mot")
    first_cert = pki.issue(days_left=100)
    first.add_pair(first_cert, "01")
    w.start_daemon()
    tokens = w.status()
    assert [t["serial"] for t in tokens] == [first.serial]
    listener = w.listener()

    for round_ in range(2):
        second = w.softhsm.create_token(f"Token Hai {round_}")
        second.add_pair(pki.issue(days_left=50), "02")
        card = w.insert_card()
        listener.wait_for("TokenAdded", second.serial, timeout=10)
        assert sorted(t["serial"] for t in w.status()) == sorted([first.serial, second.serial])
        second.delete()
        card.remove()
        listener.wait_for("TokenRemoved", second.serial, timeout=10)
        assert [t["serial"] for t in w.status()] == [first.serial]
    # The first token was never reported as leaving or arriving again.
    assert [e for e in listener.drain(0.5) if e.args[1] == first.serial] == []


def test_card_event_without_token_change_emits_nothing(hotplug_world, pki):
    """A card insert rescans; when the token set did not change, no signal."""
    w = hotplug_world
    token = w.softhsm.create_token("Token Ba")
    token.add_pair(pki.issue(days_left=100), "03")
    w.start_daemon()
    listener = w.listener()
    card = w.insert_card()
    assert card_present(w.pcsc_socket, timeout=5)
    time.sleep(1.5)
    card.remove()
    time.sleep(1.5)
    assert listener.drain() == []
    assert [t["serial"] for t in w.status()] == [token.serial]


def test_json_watch_lines_are_json_objects(hotplug_world, pki):
    w = hotplug_world
    w.start_daemon()
    watch = w.watch(json_mode=True)
    token = w.softhsm.create_token("Token Bon")
    card = w.insert_card()
    event = watch.wait_event("token-added", token.serial)
    assert event["path"].startswith("/org/safecad/token/")
    token.delete()
    card.remove()
    watch.wait_event("token-removed", token.serial)
    for line in watch.all_lines:
        assert isinstance(json.loads(line), dict), line
