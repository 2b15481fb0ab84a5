# SPDX-License-Identifier: LGPL-2.1-or-later
"""A token that refuses: full (CKR_DEVICE_MEMORY) or unable
(CKR_FUNCTION_NOT_SUPPORTED) when the key is made or the certificate
written, as the PIN shim makes SoftHSM answer (fault=<call>:full). A key
that cannot be made stops before the CA is asked; a certificate that
passed the checks and cannot be written is kept, exportable, and written
by the next attempt without asking the CA again, for v1 and for CMP."""

import os

from cryptography import x509

from harness.cmpca import CmpCA
from harness.pinshim import use
from harness.refca import (  # noqa: F401 - refca is a fixture
    SUPPORT, activate, assert_unchanged, check, configure, find_cert, refca, sign_and_verify,
    snapshot, token_with_pair, window)
from harness.safecad import find_token
from test_cmp_update import configure_cmp, the_action


def ready_v1(world, pki, refca, **action):
    configure(world, refca)
    shim = use(world)
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, **(action or window()))
    world.start_daemon()
    check(world, token.serial)
    return shim, token, old, action


def test_a_full_token_cannot_make_the_key_and_the_ca_is_not_asked(world, pki, refca):
    shim, token, old, action = ready_v1(world, pki, refca)
    shim.set(token, fault="C_GenerateKeyPair:full", faults_left=1)
    before = snapshot(token)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 1, run
    assert "could not make the new key (the token is full)" in run.err, run
    assert "Nothing was sent to the CA" in run.err, run
    assert refca.requests("issue") == []
    assert_unchanged(token, before)


def test_a_refused_write_keeps_the_certificate_and_the_next_attempt_writes_it(world, pki,
                                                                               refca):
    shim, token, old, action = ready_v1(world, pki, refca)
    shim.set(token, fault="C_CreateObject:full", faults_left=1)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 1, run
    assert f"Token {token.serial} did not take the new certificate (the token is full)" \
        in run.err, run
    assert f"safectl export {token.serial} --issued" in run.err and SUPPORT in run.err, run
    assert len(refca.requests("issue")) == 1 and refca.requests("confirm") == []

    t = find_token(world.status(), token.serial)
    assert t["activation"]["step"] == "verified" and t["activation"]["interrupted"], t
    assert t["activation"]["write_error"] == "the token is full", t
    rc, pem, err = world.safectl("export", token.serial, "--issued")
    assert rc == 0, err
    kept = x509.load_pem_x509_certificate(pem.encode())
    assert kept.subject == old.cert.subject and kept != old.cert
    # The old pair is untouched and still the current one.
    rc, pem, _ = world.safectl("export", token.serial)
    assert x509.load_pem_x509_certificate(pem.encode()) == old.cert
    sign_and_verify(token, "01", old.cert)

    # Room again: the same certificate is written, the CA is not asked for
    # another, and only the confirm goes out.
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert len(refca.requests("issue")) == 1 and len(refca.requests("confirm")) == 1
    obj, cert = find_cert(token, format(kept.serial_number, "x"))
    assert cert == kept
    sign_and_verify(token, obj["id"], cert)
    t = find_token(world.status(), token.serial)
    assert t["activation"] is None, t
    rc, _, err = world.safectl("export", token.serial, "--issued")
    assert rc == 2 and "no issued certificate waiting" in err, err


def test_cmp_a_refused_write_is_accepted_at_the_ca_and_kept(world, pki):
    """CMP: the certificate is checked and kept, so the certConf accepts
    it; the next attempt writes it from the journal with no new request."""
    shim = use(world)
    token, old = token_with_pair(world, pki)
    ca = CmpCA(os.path.join(world.dir, "cmp-ca"), pki).start()
    try:
        configure_cmp(world, ca)
        world.start_daemon()
        action = the_action(world, token)
        shim.set(token, fault="C_CreateObject:unsupported", faults_left=1)
        run = activate(world, token.serial, action["id"])
        assert run.rc == 1, run
        assert "did not take the new certificate (the token does not support this)" \
            in run.err, run
        assert ca.types() == ["kur", "certConf"], ca.types()
        assert ca.cert_confs()[0]["hash_matched"] is True, ca.cert_confs()
        t = find_token(world.status(), token.serial)
        assert t["activation"]["write_error"] == "the token does not support this", t
        rc, pem, err = world.safectl("export", token.serial, "--issued")
        assert rc == 0, err
        kept = x509.load_pem_x509_certificate(pem.encode())
        assert kept == ca.issued()[0]

        run = activate(world, token.serial, action["id"])
        assert run.rc == 0, run
        # Nothing more was asked of the CA, and the CA had heard already.
        assert ca.types() == ["kur", "certConf"], ca.types()
        assert "Confirmed" in run.out or "confirmed" in run.out.lower(), run
        obj, cert = find_cert(token, format(kept.serial_number, "x"))
        assert cert == kept
        sign_and_verify(token, obj["id"], cert)
        t = find_token(world.status(), token.serial)
        assert t["activation"] is None and t["pending"] == [], t
    finally:
        ca.stop()
