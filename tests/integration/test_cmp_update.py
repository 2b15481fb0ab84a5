# SPDX-License-Identifier: LGPL-2.1-or-later
"""protocol = cmp: a SoftHSM token's certificate renewed by CMP key update
(kur) with safecad's client, against the CMP test CA on OpenSSL's server
framework (tests/cmp-ca), which issues for the key actually requested and
records every message. What the profile offers needs no CA; the activation
keeps v1's promises (one login, the key made before any request, checks
before the write, nothing written on a fault)."""

import os

import pytest
from cryptography.hazmat.primitives import serialization

from harness.cmpca import CmpCA
from harness.refca import (
    activate, assert_unchanged, certificates, safectl_json, check, find_cert, finish_activate, private_keys,
    sign_and_verify, snapshot, start_activate, token_with_pair)
from harness.safecad import SOFTHSM_MODULE, find_token
from test_confirm_write import interactive

SUPPORT = "1900 6154"


def configure_cmp(world, ca, issuers=None, timeout=5, **keys):
    """safecad.conf with short limits, and SAFE-CA as a CMP profile at the
    test CA, or at a port nobody listens on when ca is None (keys:
    server_cert, renew_days, key, implicit_confirm)."""
    world.write_config(
        "[pkcs11]\n"
        f"modules = {SOFTHSM_MODULE}\n"
        "[network]\n"
        "connect_timeout = 2\n"
        f"timeout = {timeout}\n")
    lines = ["[ca]", "name = SAFE-CA CMP", "protocol = cmp",
             f"url = {ca.url if ca else 'http://127.0.0.1:1/pkix/'}",
             f"issuers = {ca.issuers_path if ca else issuers}",
             f"support = {SUPPORT} (T2–T6)"]
    lines += [f"{k} = {v}" for k, v in keys.items()]
    lines += ["[agency.tax]", "name = Thuế điện tử"]
    world.write_profile("safe-ca.conf", "SAFE-CA CMP", None, text="\n".join(lines) + "\n")


@pytest.fixture
def cmpca(world, pki):
    cas = []

    def start(**options):
        ca = CmpCA(os.path.join(world.dir, f"cmp-ca-{len(cas)}"), pki, **options).start()
        cas.append(ca)
        return ca
    yield start
    for ca in cas:
        ca.stop() if ca.proc and ca.proc.poll() is None else ca.kill()


def pending_of(world, serial):
    """The token's pending actions once a check has run (one runs on
    insert too, but not before the daemon says it is ready)."""
    check(world, serial)
    return find_token(world.status(), serial)["pending"]


def the_action(world, token):
    pending = pending_of(world, token.serial)
    assert len(pending) == 1, pending
    return pending[0]


def assert_renewed(ca, token, old, new_key=True):
    """The CA issued once, the certificate is on the token for the key it
    certifies, and the old pair still works."""
    issued = ca.issued()
    assert len(issued) == 1, issued
    new = issued[0]
    obj, cert = find_cert(token, format(new.serial_number, "x"))
    assert cert == new
    assert cert.subject == old.cert.subject
    assert cert.not_valid_after > old.cert.not_valid_after
    sign_and_verify(token, obj["id"], cert)
    sign_and_verify(token, "01", old.cert)
    assert len(private_keys(token)) == (2 if new_key else 1), private_keys(token)
    same = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo) == \
        old.cert.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    assert same != new_key
    return cert


# --- what is offered ----------------------------------------------------------


def test_a_certificate_in_its_renewal_window_is_offered_without_a_ca(world, pki):
    token, old = token_with_pair(world, pki, days_left=20)
    configure_cmp(world, None, pki.safe_issuers_pem)
    world.start_daemon()
    check(world, token.serial)  # no CA runs: nothing is asked
    action = the_action(world, token)
    assert action["id"].startswith("cmp-") and len(action["id"]) == 36, action
    assert action["type"] == "renew" and action["protocol"] == "cmp"
    assert action["replaces"] == format(old.cert.serial_number, "x")
    assert action["key"] == {"generate": True, "type": "rsa", "bits": 2048}
    assert "not_before" not in action and "not_after" not in action


@pytest.mark.parametrize("days_left,renew_days,offered", [(45, None, False), (45, 60, True),
                                                          (-1, None, False)])
def test_the_window_follows_renew_days(world, pki, days_left, renew_days, offered):
    token, _ = token_with_pair(world, pki, days_left=days_left)
    configure_cmp(world, None, pki.safe_issuers_pem,
                  **({"renew_days": renew_days} if renew_days else {}))
    world.start_daemon()
    assert bool(pending_of(world, token.serial)) == offered


def test_an_ec_key_is_renewed_with_an_ec_key(world, pki):
    token, _ = token_with_pair(world, pki, key_kind="ec")
    configure_cmp(world, None, pki.safe_issuers_pem)
    world.start_daemon()
    assert the_action(world, token)["key"] == {"generate": True, "type": "ec",
                                               "curve": "P-256"}


def test_a_renewed_certificate_is_not_offered_again(world, pki):
    """The token keeps the replaced certificate beside the new one: only
    the newer of the two may be offered."""
    token, old = token_with_pair(world, pki, days_left=20)
    newer = pki.issue(days_left=25)
    token.add_pair(newer, "02")
    configure_cmp(world, None, pki.safe_issuers_pem)
    world.start_daemon()
    assert the_action(world, token)["replaces"] == format(newer.cert.serial_number, "x")


# --- renewals ------------------------------------------------------------------


@pytest.mark.parametrize("key_kind", ["rsa", "ec"])
def test_renewal_with_a_new_key_made_on_the_token(world, pki, cmpca, key_kind):
    token, old = token_with_pair(world, pki, key_kind=key_kind)
    ca = cmpca()
    configure_cmp(world, ca)
    daemon = world.start_daemon()
    action = the_action(world, token)

    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert ca.types() == ["kur", "certConf"], ca.types()
    assert ca.cert_confs()[0]["hash_matched"] is True, ca.cert_confs()
    assert_renewed(ca, token, old)
    # Renewed: nothing is offered any more, no activation is left.
    t = find_token(world.status(), token.serial)
    assert t["pending"] == [] and t["activation"] is None, t
    # The history keeps it, with the profile's agency that names no site;
    # read back by a daemon started again.
    daemon.stop()
    world.start_daemon()
    history = safectl_json(world, "history")["activations"]
    assert [(h["old_serial"], h["agencies"]) for h in history] == [
        (format(old.cert.serial_number, "x"),
         [{"id": "tax", "name": "Thuế điện tử", "url": None, "done": False}])], history


def test_key_same_certifies_the_current_key_again(world, pki, cmpca):
    token, old = token_with_pair(world, pki)
    ca = cmpca()
    configure_cmp(world, ca, key="same")
    world.start_daemon()
    action = the_action(world, token)
    assert action["key"] == {"generate": False}
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert_renewed(ca, token, old, new_key=False)


def test_polling_is_honoured(world, pki, cmpca):
    token, old = token_with_pair(world, pki)
    ca = cmpca(poll_count=2, check_after=1)
    configure_cmp(world, ca)
    world.start_daemon()
    run = activate(world, token.serial, the_action(world, token)["id"])
    assert run.rc == 0, run
    assert ca.types().count("pollReq") >= 2, ca.types()
    assert_renewed(ca, token, old)


@pytest.mark.parametrize("allowed", [True, False])
def test_implicit_confirmation_only_when_the_profile_allows_it(world, pki, cmpca, allowed):
    token, old = token_with_pair(world, pki)
    ca = cmpca(grant_implicit=True)
    configure_cmp(world, ca, implicit_confirm="yes" if allowed else "no")
    world.start_daemon()
    run = activate(world, token.serial, the_action(world, token)["id"])
    assert run.rc == 0, run
    assert ca.types() == (["kur"] if allowed else ["kur", "certConf"]), ca.types()
    assert_renewed(ca, token, old)


def test_a_wrong_pin_is_one_login_and_no_request(world, pki, cmpca):
    token, old = token_with_pair(world, pki)
    ca = cmpca()
    configure_cmp(world, ca)
    world.start_daemon()
    before = snapshot(token)
    run = activate(world, token.serial, the_action(world, token)["id"], pin="000000")
    assert run.rc == 3, run
    assert ca.types() == []
    assert_unchanged(token, before)


# --- the CA's faults: one sentence, exit 5, nothing written ----------------------


FAULTS = [
    ({"reject": ["badPOP"], "status_string": "khóa không hợp lệ"}, "rejected"),
    ({"faults": ["unprotected"]}, "not protected"),
    ({"faults": ["wrong-key"]}, "trusts"),
    ({"faults": ["wrong-recip-nonce"]}, "another exchange"),
    ({"faults": ["wrong-transaction-id"]}, "another exchange"),
    ({"faults": ["wrong-cert-req-id"]}, "another request"),
    ({"http_status": 500}, "HTTP status 500"),
    ({"faults": ["hang"]}, "did not answer within"),
    ({"other_public_key": True}, "check 1"),
    ({"other_subject": True}, "check 2"),
    ({"not_after_before_old": True}, "check 4"),
]


@pytest.mark.parametrize("options,words", FAULTS,
                         ids=[w.replace(" ", "-") for _, w in FAULTS])
def test_a_ca_fault_is_one_clear_sentence_and_nothing_is_written(world, pki, cmpca, options,
                                                                 words):
    token, old = token_with_pair(world, pki)
    ca = cmpca(**options)
    configure_cmp(world, ca, timeout=3)
    world.start_daemon()
    before = snapshot(token)
    action = the_action(world, token)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 5, run
    assert words in run.err, run
    assert SUPPORT in run.err, run
    if "check" in words:
        assert "Nothing was written" in run.err, run
    assert [c for _, c in certificates(token)] == [old.cert]
    # The old pair is untouched; a new key may wait for the next attempt.
    sign_and_verify(token, "01", old.cert)
    if options.get("reject"):
        assert "khóa không hợp lệ" in run.err, run
    if "check" not in words and "hang" not in options.get("faults", ()):
        # Refused before any certificate was taken: the token is as it
        # was but for the new key, which the next attempt uses again.
        assert len(certificates(token)) == len(before["certificates"])


def test_a_server_cert_that_is_not_the_ca_s_is_refused(world, pki, cmpca):
    token, old = token_with_pair(world, pki)
    ca = cmpca()
    other = pki.issue(days_left=300)
    path = os.path.join(world.dir, "other-server.pem")
    with open(path, "wb") as f:
        f.write(other.pem)
    configure_cmp(world, ca, server_cert=path)
    world.start_daemon()
    run = activate(world, token.serial, the_action(world, token)["id"])
    assert run.rc == 5, run
    assert "trusts" in run.err, run
    assert [c for _, c in certificates(token)] == [old.cert]


def test_the_pinned_server_cert_is_accepted(world, pki, cmpca):
    token, old = token_with_pair(world, pki)
    ca = cmpca()
    configure_cmp(world, ca, server_cert=ca.server_cert_path)
    world.start_daemon()
    run = activate(world, token.serial, the_action(world, token)["id"])
    assert run.rc == 0, run
    assert_renewed(ca, token, old)


def test_after_a_refusal_the_same_key_is_sent_again(world, pki, cmpca):
    token, old = token_with_pair(world, pki)
    bad = cmpca(reject=["badRequest"])
    configure_cmp(world, bad)
    world.start_daemon()
    action = the_action(world, token)
    assert activate(world, token.serial, action["id"]).rc == 5
    keys = private_keys(token)
    bad.stop()
    good = cmpca()
    configure_cmp(world, good)
    world.daemons[-1].stop()
    world.start_daemon()
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert private_keys(token) == keys, "a second key was made"
    assert_renewed(good, token, old)


def test_two_tokens_renew_at_once(world, pki, cmpca):
    a, a_old = token_with_pair(world, pki, label="An Phat 01")
    b, b_old = token_with_pair(world, pki, label="An Phat 02", key_kind="ec")
    ca = cmpca()
    configure_cmp(world, ca)
    world.start_daemon()
    runs = [start_activate(world, t.serial, the_action(world, t)["id"]) for t in (a, b)]
    for started in runs:
        run = finish_activate(started)
        assert run.rc == 0, run
    assert len(ca.issued()) == 2
    assert_renewed_pairs = [(a, a_old), (b, b_old)]
    for token, old in assert_renewed_pairs:
        assert len(private_keys(token)) == 2
        sign_and_verify(token, "01", old.cert)


def test_declining_the_write_tells_the_ca_and_keeps_nothing(world, pki, cmpca):
    """Without --yes the holder sees the certificate first. A "no" is a
    certConf that refuses it, so the CA does not count it as delivered, and
    nothing is kept that could be written later; the new key stays, and the
    next attempt asks the CA again with it."""
    token, old = token_with_pair(world, pki)
    ca = cmpca()
    configure_cmp(world, ca)
    world.start_daemon()
    action = the_action(world, token)
    before = snapshot(token)
    run = interactive(world, token, "y\nn\n")
    assert run.returncode == 2, run
    assert "The CA is told the certificate was not taken" in run.stdout, run.stdout
    assert ca.types() == ["kur", "certConf"], ca.types()
    assert ca.cert_confs()[0]["accepted"] is False, ca.cert_confs()
    assert snapshot(token)["certificates"] == before["certificates"], "a certificate was written"
    t = find_token(world.status(), token.serial)
    assert t["activation"]["step"] == "key-ready", t
    new_keys = {k["id"] for k in private_keys(token)} - {"01"}
    assert len(new_keys) == 1, private_keys(token)
    rc, _, err = world.safectl("export", token.serial, "--issued")
    assert rc == 2, err

    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert ca.types() == ["kur", "certConf", "kur", "certConf"], ca.types()
    assert {k["id"] for k in private_keys(token)} - {"01"} == new_keys, "a second key was made"
    obj, cert = find_cert(token, format(ca.issued()[-1].serial_number, "x"))
    assert obj["id"] in new_keys
    sign_and_verify(token, obj["id"], cert)
