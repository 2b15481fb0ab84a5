# SPDX-License-Identifier: LGPL-2.1-or-later
"""A card behind PC/SC through the whole activation, when it comes and
goes: the IsoApplet card (harness/isoapplet.py) read by OpenSC's
opensc-pkcs11.so. Inserted and removed under a running daemon; pulled
while it makes the new key or takes the new certificate, then plugged in
again and activated to the end with one CA request and one new key;
the replaced pair removed from it; and activated at the same time as a
SoftHSM token served by a second module."""

import json
import os
import subprocess

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from harness.isoapplet import OPENSC_MODULE
from harness.refca import (  # noqa: F401 - refca is a fixture
    SAFECTL, activate, configure, find_cert, finish_activate, openssl_verify, refca,
    sign_and_verify, start_activate, token_with_pair, window)
from harness.safecad import SOFTHSM_MODULE, find_token, wait_until
from test_card_activation import (  # noqa: F401 - iso and card are fixtures
    ISO_SERIAL, PIN, RSA2048, card, card_certificate, card_objects, iso, listed, spki,
    start_on_card)
from test_card_isoapplet import _insert, _remove


def journal(world, serial, action_id):
    """The activation's journal (named by the token serial's bytes in hex),
    or None when there is none."""
    path = os.path.join(world.statedir, "activations",
                        f"{serial.encode().hex()}.{action_id}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def new_ids(world, c):
    """The CKA_IDs on the card besides the old pair's 01."""
    return sorted({i for _, i in card_objects(world, c)} - {"01"})


def assert_card_signs(world, c, key_id, cert):
    """The card's private key `key_id` signs (pkcs11-tool through OpenSC)
    and the certificate's public key verifies the signature."""
    data = os.path.join(world.dir, f"tbs-{key_id}")
    sig = data + ".sig"
    tbs = os.urandom(64)
    with open(data, "wb") as f:
        f.write(tbs)
    c.pkcs11_tool(world.pcscd, "--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", key_id,
                  "--input-file", data, "--output-file", sig)
    with open(sig, "rb") as f:
        signature = f.read()
    try:
        cert.public_key().verify(signature, tbs, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise AssertionError(f"the card's key {key_id} does not match certificate "
                             f"{cert.serial_number:x}") from None


def card_listed(world, present=True):
    """The card as status lists it, when listed with that `present`."""
    return next((t for t in world.status()
                 if t["serial"] == ISO_SERIAL and t["present"] is present), None)


def reinsert(world, c):
    """The card back after a pull, and safecad listing it again."""
    _remove(world, c)
    _insert(world, c)
    return wait_until(lambda: card_listed(world), timeout=20, interval=0.3,
                      message="safecad to list the card again")


def test_insert_and_removal_under_a_running_daemon(hotplug_world, pki, refca, iso):
    """OpenSC's module sees the card come and go: TokenAdded and
    TokenRemoved for each insert and removal, status following."""
    w = hotplug_world
    start_on_card(w, iso, refca)
    listener = w.listener()
    for _ in range(2):
        _remove(w, iso)
        removed = listener.wait_for("TokenRemoved", ISO_SERIAL, timeout=15)
        assert removed.args[1] == ISO_SERIAL
        assert [t for t in w.status() if t["serial"] == ISO_SERIAL] == []

        _insert(w, iso)
        added = listener.wait_for("TokenAdded", ISO_SERIAL, timeout=15)
        path, serial = added.args
        assert serial == ISO_SERIAL and path.startswith("/org/safecad/token/"), added
        token = listed(w, ISO_SERIAL)
        assert token["present"] is True, token
        assert [c["sha256"] for c in token["certificates"]] == [iso.old.sha256], token
    # One signal per event, no more.
    late = [e for e in listener.drain(1.0) if e.member in ("TokenAdded", "TokenRemoved")]
    assert late == [], late


@pytest.mark.parametrize("after", [False, True], ids=["before-the-card-acts", "answer-lost"])
def test_pulled_during_key_generation(hotplug_world, pki, refca, iso, after):
    """Pulled when the GENERATE command arrives: nothing reaches the CA and
    the old pair works. The new key's id was journaled before the card was
    asked; plugged in again, the next activation makes the key under that
    same id. With the answer lost (after=True) the card made a key that
    OpenSC never recorded: no object names it, and the retry makes the key
    again, under the same id, in the same key slot of the card."""
    w = hotplug_world
    action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    start_on_card(w, iso, refca)
    generated = iso.applet.generated
    slots = sorted(iso.applet.state["keys"])

    pulled = iso.pull_at("generate", after=after)
    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert pulled.is_set(), "the card was never asked to make a key"
    assert run.rc == 1, run
    assert "Nothing was sent" in run.err, run
    assert refca.requests("issue") == []
    assert iso.applet.generated == generated + (1 if after else 0)
    lost = sorted(set(iso.applet.state["keys"]) - set(slots))
    assert len(lost) == (1 if after else 0), iso.applet.state["keys"]
    lost_key = iso.applet.public_key(lost[0]) if after else None
    journaled = (journal(w, ISO_SERIAL, action["id"]) or {}).get("new_key_id")
    assert journaled, "no key id journaled before the card was asked for the key"

    reinsert(w, iso)
    # No object of the new key: the pull came before OpenSC wrote any.
    assert card_objects(w, iso) == [("Certificate", "01"), ("Private Key", "01"),
                                    ("Public Key", "01")]
    assert_card_signs(w, iso, "01", iso.old.cert)

    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert run.rc == 0, run
    issues = refca.requests("issue")
    assert len(issues) == 1 and len(refca.requests("confirm")) == 1, issues
    assert iso.applet.generated == generated + (2 if after else 1)
    # The key lost with its answer took no slot of its own: the new key
    # was made over it.
    assert len(iso.applet.state["keys"]) == len(slots) + 1, iso.applet.state["keys"]

    ids = new_ids(w, iso)
    assert ids == [journaled.lower()], (ids, journaled)
    objects = card_objects(w, iso)
    assert sorted(k for k, i in objects if i == ids[0]) == \
        ["Certificate", "Private Key", "Public Key"], objects
    cert = card_certificate(w, iso, ids[0])
    assert format(cert.serial_number, "x") == issues[0]["issued_serial"]
    assert spki(cert.public_key()) == spki(iso.read_public_key(w.pcscd, ids[0]))
    if after:
        assert spki(iso.applet.public_key(lost[0])) == spki(cert.public_key())
        assert spki(lost_key) != spki(cert.public_key())
    openssl_verify(pki, cert, w.dir)
    assert_card_signs(w, iso, ids[0], cert)
    assert card_certificate(w, iso, "01") == iso.old.cert
    assert find_token(w.status(), ISO_SERIAL)["activation"] is None


def writes_a_certificate_file(c):
    """UPDATE BINARY into a certificate file: OpenSC's isoApplet profile
    puts certificates at file ids 0x34xx."""
    return lambda apdu: (len(apdu) >= 2 and apdu[1] == 0xD6
                         and ((c.selected_ef or 0) & 0xFF00) == 0x3400)


def test_pulled_during_the_certificate_write(hotplug_world, pki, refca, iso):
    """Pulled while the issued certificate is written: the certificate is
    kept at verified, the token stays listed as interrupted, and plugged in
    again the next activation writes that certificate for the same key
    without asking the CA again."""
    w = hotplug_world
    action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    start_on_card(w, iso, refca)

    pulled = iso.pull_at(writes_a_certificate_file(iso))
    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert pulled.is_set(), "no certificate file was written"
    assert run.rc == 1, run
    issues = refca.requests("issue")
    assert len(issues) == 1 and refca.requests("confirm") == [], issues
    journaled = journal(w, ISO_SERIAL, action["id"])
    assert journaled and journaled.get("new_key_id"), journaled
    key_id = journaled["new_key_id"].lower()

    # Pulled out, it stays listed: an interrupted activation at verified.
    _remove(w, iso)
    token = wait_until(lambda: card_listed(w, present=False), timeout=20, interval=0.3,
                       message="the card listed as not present")
    assert token["activation"]["step"] == "verified", token
    assert token["activation"]["interrupted"] is True, token
    assert token["activation"]["action"] == action["id"], token

    _insert(w, iso)
    token = wait_until(lambda: card_listed(w), timeout=20, interval=0.3,
                       message="the card listed as present")
    assert token["activation"]["step"] == "verified", token
    # The new key is on the card, under the journaled id, without its
    # certificate.
    before = card_objects(w, iso)
    assert new_ids(w, iso) == [key_id], before
    assert ("Certificate", key_id) not in before, before
    public_before = iso.read_public_key(w.pcscd, key_id)
    generated = iso.applet.generated

    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert run.rc == 0, run
    assert len(refca.requests("issue")) == 1, refca.requests("issue")
    assert len(refca.requests("confirm")) == 1
    assert iso.applet.generated == generated, "a second key was made"
    assert new_ids(w, iso) == [key_id]
    cert = card_certificate(w, iso, key_id)
    assert format(cert.serial_number, "x") == issues[0]["issued_serial"]
    assert spki(cert.public_key()) == spki(public_before)
    openssl_verify(pki, cert, w.dir)
    assert_card_signs(w, iso, key_id, cert)
    assert card_certificate(w, iso, "01") == iso.old.cert
    assert find_token(w.status(), ISO_SERIAL)["activation"] is None


PULLS = {
    "generate": lambda c: c.pull_at("generate"),
    "generate-answer-lost": lambda c: c.pull_at("generate", after=True),
    "certificate-write": lambda c: c.pull_at(writes_a_certificate_file(c)),
}


@pytest.mark.parametrize("pull", sorted(PULLS))
def test_a_pull_is_reported_as_a_pull(hotplug_world, pki, refca, iso, pull):
    """The holder reads that the card was pulled out, not that it refused
    or failed: plugging it in again is what helps."""
    w = hotplug_world
    action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    start_on_card(w, iso, refca)
    pulled = PULLS[pull](iso)
    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert pulled.is_set() and run.rc == 1, run
    assert "pulled out" in run.err, run
    assert "did not take" not in run.err and "refused" not in run.err, run
    # Listed while out only when something was kept (the certificate
    # write); never with a write error.
    listed_now = [t for t in w.status() if t["serial"] == ISO_SERIAL]
    activation = (listed_now[0]["activation"] if listed_now else None) or {}
    assert "write_error" not in activation, activation


def remove_previous(world, pin, *extra):
    r, wfd = os.pipe()
    os.write(wfd, (pin + "\n").encode())
    os.close(wfd)
    try:
        return subprocess.run([SAFECTL, "remove-previous", ISO_SERIAL, "--yes",
                               "--pin-fd", str(r)] + list(extra),
                              env=world.client_env(), capture_output=True, text=True,
                              timeout=90, pass_fds=(r,))
    finally:
        os.close(r)


def test_remove_previous_on_the_card(hotplug_world, pki, refca, iso):
    """After a TH1 renewal the replaced certificate and key 01 leave the
    card; the new pair stays and signs."""
    w = hotplug_world
    action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    start_on_card(w, iso, refca)
    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert run.rc == 0, run
    [new_id] = new_ids(w, iso)
    new_cert = card_certificate(w, iso, new_id)

    run = remove_previous(w, PIN, "--force")
    assert run.returncode == 0, run
    assert card_objects(w, iso) == [("Certificate", new_id), ("Private Key", new_id),
                                    ("Public Key", new_id)]
    assert card_certificate(w, iso, new_id) == new_cert
    assert_card_signs(w, iso, new_id, new_cert)
    openssl_verify(pki, new_cert, w.dir)
    token = wait_until(lambda: [t for t in w.status() if t["serial"] == ISO_SERIAL
                                and len(t["certificates"]) == 1],
                       timeout=20, interval=0.3,
                       message="status to list the new certificate alone")[0]
    assert [c["key_id"] for c in token["certificates"]] == [new_id], token
    assert token["certificates"][0]["sha256"] != iso.old.sha256, token


def test_a_softhsm_token_and_the_card_at_once(hotplug_world, pki, refca, iso):
    """Two modules, two tokens, two renewals running together: both end,
    each token with its own new certificate."""
    w = hotplug_world
    soft, soft_old = token_with_pair(w, pki, label="Binh Minh 02")
    soft_action = refca.add_action(soft_old, **window())
    card_action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    configure(w, refca)
    w.write_config(
        "[pkcs11]\n"
        f"modules = {SOFTHSM_MODULE}, {OPENSC_MODULE}\n"
        "[network]\n"
        "connect_timeout = 2\n"
        "timeout = 10\n")
    # The CA holds each issue a moment: both requests are there together.
    refca.fault("issue", "slow", count=2, seconds=3)
    w.start_daemon(OPENSC_CONF=iso.conf_path)
    listed(w, ISO_SERIAL)
    listed(w, soft.serial)

    runs = [start_activate(w, soft.serial, soft_action["id"]),
            start_activate(w, ISO_SERIAL, card_action["id"], pin=PIN)]
    results = [finish_activate(r, timeout=120) for r in runs]
    assert [r.rc for r in results] == [0, 0], "\n".join(map(repr, results))

    issues = refca.requests("issue")
    assert sorted(i["action"] for i in issues) == sorted([soft_action["id"],
                                                          card_action["id"]]), issues
    assert max(i["t_start"] for i in issues) < min(i["t_end"] for i in issues), issues
    by_action = {i["action"]: i["issued_serial"] for i in issues}

    obj, cert = find_cert(soft, by_action[soft_action["id"]])
    sign_and_verify(soft, obj["id"], cert)
    openssl_verify(pki, cert, w.dir)

    [new_id] = new_ids(w, iso)
    card_cert = card_certificate(w, iso, new_id)
    assert format(card_cert.serial_number, "x") == by_action[card_action["id"]]
    assert_card_signs(w, iso, new_id, card_cert)
    openssl_verify(pki, card_cert, w.dir)
    tokens = w.status()
    for serial in (soft.serial, ISO_SERIAL):
        t = find_token(tokens, serial)
        assert t["pending"] == [] and t["activation"] is None, t
