"""The live bus API against dbus/*.xml, and the token objects' properties."""

import os
import urllib.parse
import xml.etree.ElementTree as ET

from gi.repository import GLib

from harness import bus as busmod
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
