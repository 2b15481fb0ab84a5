# SPDX-License-Identifier: LGPL-2.1-or-later
"""The whole activation on tokens that really sit behind PC/SC: card →
vpcd → pcscd → OpenSC's opensc-pkcs11.so → safecad, against the reference
CA. The IsoApplet card makes RSA-2048 keys and nothing else and fills up;
the CAC card only reads and signs. What a token cannot do is known before
the CA is asked; what only shows after the CA issued leaves the checked
certificate kept and exportable."""

import os
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.cac import CacCard, available as cac_available
from harness.isoapplet import OPENSC_MODULE, run_tool
from harness.pcsc import card_present
from harness.refca import (  # noqa: F401 - refca is a fixture
    activate, check, configure, openssl_verify, refca, window)
from harness.safecad import find_token, wait_until
from test_card_isoapplet import card  # noqa: F401 - a fixture

PIN = "123456"
ISO_SERIAL = "5afec0de00000002"
CAC_SERIAL = "000058bd002c19b5"
RSA2048 = {"generate": True, "type": "rsa", "bits": 2048}
P256 = {"generate": True, "type": "ec", "curve": "P-256"}
SUPPORT = "1900 6154"


def configure_opensc(world, ca):
    """The reference CA's profile, and OpenSC's module as the only one."""
    configure(world, ca)
    world.write_config(
        "[pkcs11]\n"
        f"modules = {OPENSC_MODULE}\n"
        "[network]\n"
        "connect_timeout = 2\n"
        "timeout = 5\n")


def listed(world, serial, with_certificates=1, timeout=30):
    def ready():
        tokens = [t for t in world.status() if t.get("serial") == serial]
        return tokens[0] if tokens and len(tokens[0]["certificates"]) >= with_certificates \
            else None
    return wait_until(ready, timeout=timeout, interval=0.3,
                      message=f"token {serial} with {with_certificates} certificate(s)")


def issue_requests(ca):
    return ca.requests("issue")


# --- the IsoApplet card ------------------------------------------------------


@pytest.fixture
def iso(hotplug_world, pki, card):
    """A personalised IsoApplet card (test_card_isoapplet's) holding one
    SAFE-CA certificate for a key made on it (CKA_ID 01)."""
    card.personalise(hotplug_world.pcscd, pin=PIN, label="An Phat", serial=ISO_SERIAL)
    card.old = card.add_key_and_cert(hotplug_world.pcscd, pki, "01", days_left=20)
    return card


def card_objects(world, c):
    out = c.pkcs11_tool(world.pcscd, "--list-objects").stdout
    return sorted((m.group(1), m.group(2)) for m in
                  re.finditer(r"^(Private Key|Public Key|Certificate) Object;.*?^  ID:\s+(\w+)",
                              out, re.M | re.S))


def card_certificate(world, c, key_id):
    r = run_tool(["pkcs15-tool", "--read-certificate", key_id], c.env(world.pcscd))
    return x509.load_pem_x509_certificate(r.stdout.encode())


def spki(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def start_on_card(world, c, ca):
    configure_opensc(world, ca)
    world.start_daemon(OPENSC_CONF=c.conf_path)
    return listed(world, ISO_SERIAL)


def test_th1_renewal_with_a_key_made_on_the_card(hotplug_world, pki, refca, iso):
    w = hotplug_world
    action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    start_on_card(w, iso, refca)
    check(w, ISO_SERIAL)
    token = find_token(w.status(), ISO_SERIAL)
    assert token["pending"] == [action] and token["not_activatable"] == {}, token

    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert run.rc == 0, run
    assert len(issue_requests(refca)) == 1 and len(refca.requests("confirm")) == 1

    # Read back through OpenSC: the new pair beside the old one, the new
    # certificate for the key made on the card, and its chain.
    objects = card_objects(w, iso)
    ids = sorted({i for _, i in objects})
    assert len(ids) == 2 and "01" in ids, objects
    new_id = [i for i in ids if i != "01"][0]
    assert sorted(k for k, i in objects if i == new_id) == \
        ["Certificate", "Private Key", "Public Key"], objects
    cert = card_certificate(w, iso, new_id)
    assert spki(cert.public_key()) == spki(iso.read_public_key(w.pcscd, new_id))
    assert spki(cert.public_key()) != spki(iso.old.cert.public_key())
    assert cert.subject == iso.old.cert.subject
    openssl_verify(pki, cert, w.dir)
    # The old pair stays, and safecad lists both.
    assert card_certificate(w, iso, "01") == iso.old.cert
    token = listed(w, ISO_SERIAL, with_certificates=2)
    assert token["activation"] is None, token
    assert {c["sha256"] for c in token["certificates"]} >= {iso.old.sha256}


def test_th2_recertifies_the_cards_key(hotplug_world, pki, refca, iso):
    """generate: false on a card that keeps one certificate per key
    (OpenSC's PKCS#15 refuses a second under the same CKA_ID): the new
    certificate, for the same key, takes the old one's place."""
    w = hotplug_world
    action = refca.add_action(iso.old, type="change", key={"generate": False},
                              subject=[["CN", "CÔNG TY AN PHÁT"], ["O", "AN PHÁT"]],
                              **window(300))
    start_on_card(w, iso, refca)
    check(w, ISO_SERIAL)
    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert run.rc == 0, run
    assert len(issue_requests(refca)) == 1 and len(refca.requests("confirm")) == 1
    assert card_objects(w, iso) == [("Certificate", "01"), ("Private Key", "01"),
                                    ("Public Key", "01")]
    cert = card_certificate(w, iso, "01")
    assert cert != iso.old.cert
    assert spki(cert.public_key()) == spki(iso.old.cert.public_key())
    openssl_verify(pki, cert, w.dir)
    token = find_token(w.status(), ISO_SERIAL)
    assert token["activation"] is None, token
    assert [c["sha256"] for c in token["certificates"]] != [iso.old.sha256]
    history = w.safectl("--json", "history")[1]
    assert format(iso.old.cert.serial_number, "x") in history


def test_p256_is_refused_before_the_pin_and_the_ca(hotplug_world, pki, refca, iso):
    w = hotplug_world
    action = refca.add_action(iso.old, type="renew", key=P256, **window(400))
    start_on_card(w, iso, refca)
    check(w, ISO_SERIAL)
    token = find_token(w.status(), ISO_SERIAL)
    why = token["not_activatable"].get(action["id"])
    assert why and "P-256" in why, token
    before = card_objects(w, iso)
    used = iso.applet.used()

    run = activate(w, ISO_SERIAL, action["id"], pin="000000")
    assert run.rc == 2, run
    assert why in run.err and SUPPORT in run.err and "Nothing was sent" in run.err, run
    assert issue_requests(refca) == []
    assert card_objects(w, iso) == before
    # The wrong PIN given was never tried: the card's counter is whole.
    assert iso.applet.state["pin_tries"] == 3
    assert iso.applet.used() == used
    rc, out, _ = w.safectl("status")
    assert rc == 0 and "cannot be activated on this token" in out, out


def test_a_full_card_is_refused_cleanly(hotplug_world, pki, refca, iso):
    """The card has no room for another pair: the key cannot be made, the
    CA is asked nothing, the old pair keeps working."""
    w = hotplug_world
    # Fill the card with pairs until OpenSC says it is full.
    for n in range(2, 20):
        r = iso.pkcs11_tool(w.pcscd, "--keypairgen", "--key-type", "rsa:2048",
                            "--id", f"{n:02x}", "--label", f"filler {n}", check=False)
        if r.returncode != 0:
            break
    else:
        pytest.fail("the card never filled up")
    before = card_objects(w, iso)
    action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    start_on_card(w, iso, refca)
    check(w, ISO_SERIAL)
    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert run.rc == 1, run
    assert "could not make the new key" in run.err and "Nothing was sent" in run.err, run
    assert issue_requests(refca) == []
    after = card_objects(w, iso)
    assert [o for o in after if o[1] == "01"] == [o for o in before if o[1] == "01"]
    assert card_certificate(w, iso, "01") == iso.old.cert


def test_a_wrong_pin_is_one_try(hotplug_world, pki, refca, iso):
    w = hotplug_world
    action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    start_on_card(w, iso, refca)
    check(w, ISO_SERIAL)
    tries = iso.applet.state["pin_tries"]
    run = activate(w, ISO_SERIAL, action["id"], pin="654321")
    assert run.rc == 3, run
    assert iso.applet.state["pin_tries"] == tries - 1
    assert issue_requests(refca) == []


# --- the CAC card ------------------------------------------------------------


@pytest.fixture
def cac(hotplug_world, pki):
    reason = cac_available()
    if reason:
        pytest.skip(reason)
    w = hotplug_world
    card = CacCard(os.path.join(w.dir, "cac"), w.pcscd.port, pki,
                   issued=[pki.issue(days_left=20)])
    w.cards.append(card)
    card.insert(pcsc_socket=w.pcscd.link)
    return card


def start_on_cac(world, ca):
    configure_opensc(world, ca)
    world.start_daemon()
    return listed(world, CAC_SERIAL)


def test_cac_cannot_make_keys_and_says_so_before_the_ca(hotplug_world, pki, refca, cac):
    w = hotplug_world
    action = refca.add_action(cac.issued[0], type="renew", key=RSA2048, **window(400))
    start_on_cac(w, refca)
    check(w, CAC_SERIAL)
    token = find_token(w.status(), CAC_SERIAL)
    assert token["not_activatable"] == {action["id"]: "the token cannot make RSA keys"}, token
    run = activate(w, CAC_SERIAL, action["id"], pin=cac.pin)
    assert run.rc == 2, run
    assert "the token cannot make RSA keys" in run.err, run
    assert issue_requests(refca) == []


def test_cac_wrong_pin_is_one_wrong_pin(hotplug_world, pki, refca, cac):
    """The CAC answers a wrong PIN with CKR_GENERAL_ERROR: still a wrong
    PIN to the user, tried once."""
    w = hotplug_world
    action = refca.add_action(cac.issued[0], type="change", key={"generate": False},
                              **window(300))
    start_on_cac(w, refca)
    check(w, CAC_SERIAL)
    run = activate(w, CAC_SERIAL, action["id"], pin="99999999")
    assert run.rc == 3, run
    assert "Wrong PIN" in run.err, run
    assert issue_requests(refca) == []


def test_cac_refuses_the_write_and_the_certificate_is_kept(hotplug_world, pki, refca, cac):
    """generate: false: the CA issues, the certificate passes the checks,
    the card refuses the write (CKR_FUNCTION_NOT_SUPPORTED). The
    certificate stays in the journal at verified, shown in status,
    exportable, and the next attempt tries the write again without asking
    the CA."""
    w = hotplug_world
    action = refca.add_action(cac.issued[0], type="change", key={"generate": False},
                              **window(300))
    start_on_cac(w, refca)
    check(w, CAC_SERIAL)
    run = activate(w, CAC_SERIAL, action["id"], pin=cac.pin)
    assert run.rc == 1, run
    assert "did not take the new certificate (the token does not support this)" in run.err, run
    assert f"safectl export {CAC_SERIAL} --issued" in run.err and SUPPORT in run.err, run
    assert len(issue_requests(refca)) == 1 and refca.requests("confirm") == []

    token = find_token(w.status(), CAC_SERIAL)
    assert token["activation"]["step"] == "verified", token
    assert token["activation"]["interrupted"] is True
    assert token["activation"]["write_error"] == "the token does not support this", token
    rc, out, _ = w.safectl("status")
    assert rc == 0 and f"safectl export {CAC_SERIAL} --issued" in out, out

    # Exported, it is the certificate the CA issued: for the card's key,
    # chaining to SAFE-CA.
    rc, pem, err = w.safectl("export", CAC_SERIAL, "--issued")
    assert rc == 0, err
    kept = x509.load_pem_x509_certificate(pem.encode())
    assert spki(kept.public_key()) == spki(cac.issued[0].cert.public_key())
    assert kept != cac.issued[0].cert
    openssl_verify(pki, kept, w.dir)
    # The current certificate is still the card's own.
    rc, pem, _ = w.safectl("export", CAC_SERIAL)
    assert rc == 0 and x509.load_pem_x509_certificate(pem.encode()) == cac.issued[0].cert

    # Again: the journal's certificate is written again (and refused
    # again); the CA is not asked for another.
    run = activate(w, CAC_SERIAL, action["id"], pin=cac.pin)
    assert run.rc == 1, run
    assert len(issue_requests(refca)) == 1


def test_export_issued_without_a_kept_certificate(hotplug_world, pki, refca, cac):
    w = hotplug_world
    start_on_cac(w, refca)
    rc, out, err = w.safectl("export", CAC_SERIAL, "--issued")
    assert rc == 2, (rc, out, err)
    assert "no issued certificate waiting" in err, err


def test_the_final_try_guard_holds_though_opensc_forgets(hotplug_world, pki, refca, iso):
    """OpenSC raises FINAL_TRY only in the process whose login just failed,
    and each job runs in a new worker: safecad keeps what the failed login
    showed until a login succeeds, so the last try is never spent without
    the holder's say."""
    w = hotplug_world
    action = refca.add_action(iso.old, type="renew", key=RSA2048, **window(400))
    start_on_card(w, iso, refca)
    check(w, ISO_SERIAL)
    assert iso.applet.state["pin_tries"] == 3
    run = activate(w, ISO_SERIAL, action["id"], pin="000000")
    assert run.rc == 3 and iso.applet.state["pin_tries"] == 2, run
    run = activate(w, ISO_SERIAL, action["id"], pin="000000")
    assert run.rc == 3 and iso.applet.state["pin_tries"] == 1, run
    assert "one try left" in run.err, run
    # Pulled and put back, the card shows no flag any more through OpenSC...
    iso.remove()
    wait_until(lambda: not card_present(w.pcscd.link), timeout=5, message="pcscd to see it go")
    iso.insert()
    assert card_present(w.pcscd.link, timeout=5)
    wait_until(lambda: [t for t in w.status() if t["serial"] == ISO_SERIAL], timeout=20,
               message="the card back")
    # ...and still nothing is tried without the holder's say; status says
    # why.
    run = activate(w, ISO_SERIAL, action["id"], pin=PIN)
    assert run.rc == 7, run
    assert iso.applet.state["pin_tries"] == 1
    assert issue_requests(refca) == []
    wait_until(lambda: find_token(w.status(), ISO_SERIAL)["pin"] == "final-try", timeout=20,
               message="status to show the final try")

    run = activate(w, ISO_SERIAL, action["id"], pin=PIN, extra=("--allow-final-try",))
    assert run.rc == 0, run
    assert iso.applet.state["pin_tries"] == 3
    wait_until(lambda: find_token(w.status(), ISO_SERIAL)["pin"] == "ok", timeout=20,
               message="status to show the PIN ok again")


def test_two_cards_with_one_serial_are_never_confused(hotplug_world, pki, refca, cac):
    """Every emulated CAC card carries the same serial. With two plugged
    in, safecad lists one token, says why nothing can be activated, and
    runs no job that could land on the other card; with one left, it
    works again."""
    w = hotplug_world
    other = CacCard(os.path.join(w.dir, "cac-2"), w.pcscd.port + 1, pki,
                    issued=[pki.issue(days_left=25)])
    w.cards.append(other)
    other.insert(pcsc_socket=w.pcscd.link)
    action = refca.add_action(cac.issued[0], type="change", key={"generate": False},
                              **window(300))
    start_on_cac(w, refca)
    check(w, CAC_SERIAL)
    tokens = [t for t in w.status() if t["serial"] == CAC_SERIAL]
    assert len(tokens) == 1, tokens
    why = tokens[0]["not_activatable"].get(action["id"], "")
    assert "same serial" in why, tokens[0]

    run = activate(w, CAC_SERIAL, action["id"], pin=cac.pin)
    assert run.rc == 2, run
    assert "cannot tell them apart" in run.err, run
    assert issue_requests(refca) == []

    other.remove()
    wait_until(lambda: find_token(w.status(), CAC_SERIAL)["not_activatable"] == {},
               timeout=20, message="the token to be activatable again")
