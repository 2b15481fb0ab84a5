# SPDX-License-Identifier: LGPL-2.1-or-later
"""The live bus API against dbus/*.xml, and the token objects' properties."""

import os
import urllib.parse
import xml.etree.ElementTree as ET

from gi.repository import GLib

from harness import bus as busmod
from harness.refca import (  # noqa: F401 - refca is a fixture
    activate, check, refca, safectl_json, token_with_pair, window)
from harness.safecad import REPO, find_token

ECS = "org.freedesktop.DBus.Property.EmitsChangedSignal"


def members(xml_text, interface):
    """{(kind, name, signature, access)} of one interface, and the effective
    EmitsChangedSignal of each property (default "true", or the interface's)."""
    root = ET.fromstring(xml_text)
    found = [i for i in root.findall("interface") if i.get("name") == interface]
    assert len(found) == 1, f"interface {interface} found {len(found)} times"
    iface = found[0]
    default_ecs = "true"
    for a in iface.findall("annotation"):
        if a.get("name") == ECS:
            default_ecs = a.get("value")
    out, emits = set(), {}
    for m in iface.findall("method"):
        ins = "".join(a.get("type") for a in m.findall("arg") if a.get("direction", "in") == "in")
        outs = "".join(a.get("type") for a in m.findall("arg") if a.get("direction") == "out")
        out.add(("method", m.get("name"), f"{ins}->{outs}", None))
    for s in iface.findall("signal"):
        out.add(("signal", s.get("name"), "".join(a.get("type") for a in s.findall("arg")), None))
    for p in iface.findall("property"):
        out.add(("property", p.get("name"), p.get("type"), p.get("access")))
        value = default_ecs
        for a in p.findall("annotation"):
            if a.get("name") == ECS:
                value = a.get("value")
        emits[p.get("name")] = value
    return out, emits


def own_interfaces(xml_text):
    root = ET.fromstring(xml_text)
    return {i.get("name") for i in root.findall("interface")
            if not i.get("name").startswith("org.freedesktop.DBus.")}


def _spec(name):
    with open(os.path.join(REPO, "dbus", f"{name}.xml")) as f:
        return f.read()


def _token_world(world, pki):
    token = world.softhsm.create_token("Giao dien")
    cert = pki.issue(days_left=20)
    token.add_pair(cert, "a1")
    world.start_daemon()
    conn = world.bus.connection()
    paths = busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "Tokens")
    assert len(paths) == 1, paths
    return token, cert, conn, paths[0]


def test_manager_introspection_matches_xml(world):
    world.start_daemon()
    live = busmod.introspect(world.bus.connection(), busmod.MANAGER_PATH)
    assert own_interfaces(live) == {"org.safecad.Manager1"}
    want, want_emits = members(_spec("org.safecad.Manager1"), "org.safecad.Manager1")
    got, got_emits = members(live, "org.safecad.Manager1")
    assert got == want, f"missing: {want - got}\nextra: {got - want}"
    assert got_emits == want_emits


def test_token_introspection_matches_xml(world, pki):
    token, cert, conn, path = _token_world(world, pki)
    live = busmod.introspect(conn, path)
    assert own_interfaces(live) == {"org.safecad.Token1"}
    want, want_emits = members(_spec("org.safecad.Token1"), "org.safecad.Token1")
    got, got_emits = members(live, "org.safecad.Token1")
    assert got == want, f"missing: {want - got}\nextra: {got - want}"
    assert got_emits == want_emits


def test_token_object_properties(world, pki):
    token, cert, conn, path = _token_world(world, pki)
    assert path.startswith("/org/safecad/token/")
    props = busmod.get_all(conn, path, "org.safecad.Token1")
    assert props["Serial"] == token.serial
    assert props["Label"] == token.label
    assert props["Manufacturer"] == "SoftHSM project"
    assert props["Model"] == "SoftHSM v2"
    assert props["Present"] is True
    assert props["PinStatus"] == "ok"
    assert props["PinMustChange"] is False
    assert props["Profile"] == "SAFE-CA"
    assert props["CurrentCertificate"] == cert.sha256
    assert props["DaysLeft"] == 20
    assert props["Pending"] == "[]"
    uri = props["Uri"]
    assert uri.startswith("pkcs11:"), uri
    attrs = dict(urllib.parse.unquote(kv).split("=", 1) for kv in uri[7:].split(";"))
    assert attrs.get("token") == token.label and attrs.get("serial") == token.serial, uri
    assert attrs.get("manufacturer") == "SoftHSM project" and attrs.get("model") == "SoftHSM v2"
    certs = props["Certificates"]
    assert len(certs) == 1
    c = certs[0]
    assert c["serial"] == cert.serial
    assert [list(p) for p in c["subject"]] == cert.subject
    assert [list(p) for p in c["issuer"]] == cert.issuer
    assert c["not_before"] == int(cert.not_before_dt.timestamp())
    assert c["not_after"] == int(cert.not_after_dt.timestamp())
    assert c["sha256"] == cert.sha256
    assert c["key_id"] == "a1"
    assert c["has_key"] is True
    assert c["profile"] == "SAFE-CA"
    assert c["current"] is True
    # The same as status says.
    t = find_token(world.status(), token.serial)
    assert t["certificates"][0]["sha256"] == c["sha256"]


def test_object_manager_lists_the_tokens(world, pki):
    token, cert, conn, path = _token_world(world, pki)
    reply = busmod.call(conn, "/org/safecad", "org.freedesktop.DBus.ObjectManager",
                        "GetManagedObjects", None, "(a{oa{sa{sv}}})").unpack()[0]
    assert path in reply, reply.keys()
    assert reply[path]["org.safecad.Token1"]["Serial"] == token.serial


def test_unknown_method_is_an_error_not_a_crash(world):
    world.start_daemon()
    conn = world.bus.connection()
    try:
        busmod.call(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "NoSuchMethod")
    except GLib.Error as e:
        assert "UnknownMethod" in e.message or "UnknownMember" in e.message, e.message
    else:
        raise AssertionError("NoSuchMethod succeeded")
    assert busmod.name_has_owner(conn)


def test_manager_version_is_the_project_version(world):
    import re
    with open(os.path.join(REPO, "meson.build")) as f:
        version = re.search(r"version:\s*'([^']+)'", f.read()).group(1)
    world.start_daemon()
    conn = world.bus.connection()
    assert busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE,
                               "Version") == version


def test_token_without_certificate_properties(world):
    token = world.softhsm.create_token("Rong")
    world.start_daemon()
    conn = world.bus.connection()
    (path,) = busmod.get_property(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "Tokens")
    props = busmod.get_all(conn, path, "org.safecad.Token1")
    assert props["Serial"] == token.serial
    assert props["CurrentCertificate"] == ""
    assert props["DaysLeft"] == 0
    assert props["Profile"] == ""
    assert props["Certificates"] == []


def test_token_changes_are_announced_in_order(world, pki):
    """Tokens emits PropertiesChanged; the ObjectManager at /org/safecad
    announces the object; TokenAdded comes after the object is there and
    TokenRemoved before it goes."""
    world.start_daemon()
    listener = world.listener()
    token = world.softhsm.create_token("Thong bao")
    token.add_pair(pki.issue(days_left=20), "01")
    world.rescan()

    added = listener.wait_for("TokenAdded", token.serial, timeout=5)
    path = added.args[0]
    iface_added = listener.wait_match(
        lambda s: s.member == "InterfacesAdded" and s.path == "/org/safecad"
        and s.args[0] == path, timeout=5, what="InterfacesAdded")
    assert "org.safecad.Token1" in iface_added.args[1]
    assert iface_added.args[1]["org.safecad.Token1"]["Serial"] == token.serial
    assert iface_added.time <= added.time, "TokenAdded came before the object was announced"
    changed = listener.wait_match(
        lambda s: s.member == "PropertiesChanged" and s.path == busmod.MANAGER_PATH
        and s.args[0] == busmod.MANAGER_IFACE, timeout=5, what="PropertiesChanged(Tokens)")
    if "Tokens" in changed.args[1]:
        assert changed.args[1]["Tokens"] == [path]
    else:
        assert "Tokens" in changed.args[2], changed

    token.delete()
    world.rescan()
    removed = listener.wait_for("TokenRemoved", token.serial, timeout=5)
    assert removed.args[0] == path
    iface_removed = listener.wait_match(
        lambda s: s.member == "InterfacesRemoved" and s.path == "/org/safecad"
        and s.args[0] == path, timeout=5, what="InterfacesRemoved")
    assert "org.safecad.Token1" in iface_removed.args[1]
    assert removed.time <= iface_removed.time, "TokenRemoved came after the object went"
    changed = listener.wait_match(
        lambda s: s.member == "PropertiesChanged" and s.path == busmod.MANAGER_PATH
        and s.args[0] == busmod.MANAGER_IFACE, timeout=5, what="PropertiesChanged(Tokens)")
    assert changed.args[1].get("Tokens", []) == [] or "Tokens" in changed.args[2]


def _history_changes(listener, wait=1.5):
    """The HistoryChanged signals that came since the last call, after
    `wait` s of quiet (they are consumed)."""
    signals = [s for s in listener.drain(wait) if s.member == "HistoryChanged"]
    listener.seen[:] = [s for s in listener.seen if s.member != "HistoryChanged"]
    for s in signals:
        assert s.path == busmod.MANAGER_PATH and s.args == (), s
    return signals


def test_history_changed_once_per_change(world, pki, refca):
    """HistoryChanged follows what GetHistory returns: the activation
    recorded and then confirmed by the CA, a tick from another client,
    and nothing for reads, a tick that changes nothing or one refused."""
    token, old = token_with_pair(world, pki, days_left=20)
    action = refca.add_action(old, type="renew", **window(365))
    world.start_daemon()
    check(world, token.serial)
    listener = world.listener()
    assert _history_changes(listener, 0.5) == []

    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    entry = safectl_json(world, "history")["activations"][0]
    assert entry["completed"], entry
    # Recorded when written, then completed when the CA confirmed: two
    # changes, which may come as one when they are close together.
    assert 1 <= len(_history_changes(listener)) <= 2

    # Reading changes nothing.
    conn = world.bus.connection()
    for _ in range(3):
        busmod.call(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "GetHistory")
    assert _history_changes(listener) == []

    # A tick from another client: exactly one signal, which `safectl
    # watch` prints.
    watch = world.watch()
    agency = entry["agencies"][0]["id"]
    rc, out, err = world.safectl("agencies", "done", agency)
    assert rc == 0, out + err
    assert len(_history_changes(listener)) == 1
    assert watch.wait_event("history-changed", None)["path"] is None
    # The same tick again, and one refused: the history is as it was.
    assert world.safectl("agencies", "done", agency)[0] == 0
    assert world.safectl("agencies", "done", "no-such-agency")[0] != 0
    assert _history_changes(listener) == []


def test_history_changed_when_damaged_history_is_set_aside(world):
    """A history found damaged is set aside and begun anew: one signal,
    and none for the reads after it."""
    world.start_daemon()
    listener = world.listener()
    conn = world.bus.connection()
    busmod.call(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "GetHistory")
    assert _history_changes(listener) == []
    with open(os.path.join(world.statedir, "history.json"), "w") as f:
        f.write('{"activations": [{"action": 7}]}')
    busmod.call(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "GetHistory")
    assert len(_history_changes(listener)) == 1
    assert any(n.startswith("history.json.damaged-") for n in os.listdir(world.statedir))
    for _ in range(3):
        busmod.call(conn, busmod.MANAGER_PATH, busmod.MANAGER_IFACE, "GetHistory")
    assert _history_changes(listener) == []
