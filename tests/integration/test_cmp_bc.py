# SPDX-License-Identifier: LGPL-2.1-or-later
"""protocol = cmp against a peer that shares no code with OpenSSL: a SoftHSM
token's certificate renewed by safecad's CMP client against the Bouncy
Castle responder (tests/cmp-bc), which issues for the requested key. What
safecad sent is judged from the responder's record, not from safecad's
word: Bouncy Castle's own verdicts (protection, proof of possession,
certHash) and, again from the recorded DER, the signatures checked with the
old certificate's and the new key's public halves, the nonce chain, the
transaction ID and the certHash."""

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness.bccmp import BcResponder, Unavailable, compiled
from harness.cmpmsg import (
    IMPLICIT_CONFIRM, body_type, cert_hash, cert_responses, cert_statuses, children, content,
    extra_certs, general_info, header_field, old_cert_id, spki, template_public_key, verify_popo,
    verify_protection)
from harness.refca import activate, certificates, private_keys, sign_and_verify, token_with_pair
from harness.safecad import find_token
from test_cmp_update import SUPPORT, assert_renewed, configure_cmp, the_action

SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"


@pytest.fixture
def bc(world, pki):
    """bc(**options): a Bouncy Castle responder of this test's own (see
    BcResponder for the options)."""
    try:
        compiled()
    except Unavailable as e:
        pytest.skip(str(e))
    started = []

    def start(**options):
        directory = os.path.join(world.dir, f"bc-cmp-{len(started)}")
        responder = BcResponder(directory, pki, **options).start()
        started.append(responder)
        return responder
    yield start
    for responder in started:
        rc = responder.stop()
        assert rc == 0, f"the CMP responder exited {rc}:\n{responder.output()}"


def renew(world, token, responder, **profile):
    """The token's one action, activated against the responder."""
    configure_cmp(world, responder, **profile)
    world.start_daemon()
    action = the_action(world, token)
    return action, activate(world, token.serial, action["id"])


def exchanges(responder):
    """What the responder received and answered: (log entry, request DER,
    answer DER), in order."""
    return [(e, responder.request_der(e), responder.answer_der(e)) for e in responder.log()]


def assert_transaction(responder, old, expected, implicit_confirm=False):
    """One kur transaction as the standard wants it, read from the record;
    `expected` lists (request, answer) body types. Returns the certificate
    the responder delivered."""
    recorded = exchanges(responder)
    assert [(e["type"], e["answer"]) for e, _, _ in recorded] == expected, responder.log()
    requests = [request for _, request, _ in recorded]
    answers = [answer for _, _, answer in recorded]
    assert [body_type(m) for m in requests] == [t for t, _ in expected]

    # Bouncy Castle found nothing wrong with any request.
    for entry, _, _ in recorded:
        assert entry["error"] is None and entry["protection_ok"] is True, entry

    # Every request is protected by the old certificate's key, that
    # certificate first in extraCerts; each signature is checked here
    # with the public key of the certificate the test put on the token.
    for request in requests:
        algorithm = verify_protection(request, old.cert.public_key())
        assert algorithm == (SHA256_WITH_RSA if isinstance(old.cert.public_key(), rsa.RSAPublicKey)
                             else ECDSA_WITH_SHA256), algorithm
        assert extra_certs(request)[0] == old.cert

    # One transaction ID across requests and answers; a fresh senderNonce of
    # at least 128 bits in each request; each request after the first
    # answers the senderNonce of the answer before it.
    transaction_id = header_field(requests[0], "transactionID")
    assert transaction_id is not None and len(transaction_id) >= 16
    for message in requests + answers:
        assert header_field(message, "transactionID") == transaction_id
    nonces = [header_field(m, "senderNonce") for m in requests]
    assert all(n is not None and len(n) >= 16 for n in nonces), nonces
    answer_nonces = [header_field(m, "senderNonce") for m in answers]
    assert len(set(nonces + answer_nonces)) == len(nonces) + len(answer_nonces), \
        "a senderNonce is used twice"
    assert header_field(requests[0], "recipNonce") is None
    for request, answer_before in zip(requests[1:], answers):
        assert header_field(request, "recipNonce") == header_field(answer_before, "senderNonce")

    # The kur: it names the old certificate, and its proof of possession
    # verifies with the key the delivered certificate certifies.
    kur, kur_entry = requests[0], recorded[0][0]
    assert old_cert_id(kur) == (old.cert.issuer.public_bytes(), old.cert.serial_number)
    delivered = [(answer, r) for answer in answers if body_type(answer) == "kup"
                 for r in cert_responses(answer) if r[2] is not None]
    assert len(delivered) == 1, delivered
    kup, (cert_req_id, status, issued) = delivered[0]
    assert status == 0, status
    assert template_public_key(kur) == spki(issued)
    assert verify_popo(kur, issued.public_key()) in (SHA256_WITH_RSA, ECDSA_WITH_SHA256)
    assert kur_entry["popo_ok"] is True

    # Implicit confirmation: asked for, and granted, only as the profile says.
    assert (IMPLICIT_CONFIRM in general_info(kur)) == implicit_confirm
    assert (IMPLICIT_CONFIRM in general_info(kup)) == implicit_confirm

    cert_confs = [(e, m) for (e, m, _) in recorded if e["type"] == "certConf"]
    if implicit_confirm:
        assert cert_confs == []
    else:
        # The certConf confirms the delivered certificate by its hash.
        (entry, cert_conf), = cert_confs
        (digest, request_id, status_info), = cert_statuses(cert_conf)
        assert digest == cert_hash(issued)
        assert request_id == cert_req_id
        # No statusInfo, or status accepted (0).
        assert status_info is None or content(children(status_info)[0]) == b"\x00", status_info
        assert entry["certhash_ok"] is True and entry["client_status"] == "accepted"
        assert header_field(cert_conf, "recipNonce") == header_field(kup, "senderNonce")
    return issued


# --- renewals ------------------------------------------------------------------


@pytest.mark.parametrize("key_kind", ["rsa", "ec"])
def test_renewal_with_a_new_key(world, pki, bc, key_kind):
    token, old = token_with_pair(world, pki, key_kind=key_kind)
    responder = bc()
    action, run = renew(world, token, responder)
    assert run.rc == 0, run
    issued = assert_transaction(responder, old, [("kur", "kup"), ("certConf", "pkiconf")])
    new_key = issued.public_key()
    if key_kind == "rsa":
        assert isinstance(new_key, rsa.RSAPublicKey) and new_key.key_size == 2048
    else:
        assert isinstance(new_key, ec.EllipticCurvePublicKey)
        assert isinstance(new_key.curve, ec.SECP256R1)
    assert spki(new_key) != spki(old.cert)
    assert_renewed(responder, token, old)
    t = find_token(world.status(), token.serial)
    assert t["pending"] == [] and t["activation"] is None, t


def test_key_same_certifies_and_proves_the_current_key(world, pki, bc):
    token, old = token_with_pair(world, pki)
    responder = bc()
    action, run = renew(world, token, responder, key="same")
    assert action["key"] == {"generate": False}
    assert run.rc == 0, run
    issued = assert_transaction(responder, old, [("kur", "kup"), ("certConf", "pkiconf")])
    assert spki(issued) == spki(old.cert)
    assert_renewed(responder, token, old, new_key=False)


@pytest.mark.parametrize("allowed", [True, False])
def test_implicit_confirmation_only_when_the_profile_allows_it(world, pki, bc, allowed):
    token, old = token_with_pair(world, pki)
    responder = bc(grant_implicit=True)
    _, run = renew(world, token, responder, implicit_confirm="yes" if allowed else "no")
    assert run.rc == 0, run
    expected = [("kur", "kup")] + ([] if allowed else [("certConf", "pkiconf")])
    assert_transaction(responder, old, expected, implicit_confirm=allowed)
    assert responder.log()[0]["implicit_confirm"] is allowed
    assert_renewed(responder, token, old)


def test_polling_keeps_the_transaction_and_the_nonce_chain(world, pki, bc):
    token, old = token_with_pair(world, pki, key_kind="ec")
    responder = bc(poll=3, check_after=1)
    _, run = renew(world, token, responder)
    assert run.rc == 0, run
    assert_transaction(responder, old, [("kur", "kup"), ("pollReq", "pollRep"),
                                        ("pollReq", "pollRep"), ("pollReq", "kup"),
                                        ("certConf", "pkiconf")])
    # The first kup said "waiting" and held no certificate.
    first_answer = exchanges(responder)[0][2]
    assert [(status, cert) for _, status, cert in cert_responses(first_answer)] == [(3, None)]
    assert_renewed(responder, token, old)


def test_answers_signed_with_an_ec_key_and_a_pinned_server_cert(world, pki, bc):
    token, old = token_with_pair(world, pki)
    responder = bc(server_key="ec")
    _, run = renew(world, token, responder, server_cert=responder.server_cert_path)
    assert run.rc == 0, run
    assert_transaction(responder, old, [("kur", "kup"), ("certConf", "pkiconf")])
    assert_renewed(responder, token, old)


# --- the responder refuses, or misbehaves: exit 5, nothing written ---------------


def test_a_rejection_shows_the_responder_s_words(world, pki, bc):
    token, old = token_with_pair(world, pki)
    responder = bc(reject=["badCertTemplate", "notAuthorized"],
                   status_string="Chứng thư đã bị thu hồi")
    _, run = renew(world, token, responder, timeout=3)
    assert run.rc == 5, run
    assert "rejected" in run.err, run
    assert "badCertTemplate, notAuthorized" in run.err, run
    assert "Chứng thư đã bị thu hồi" in run.err, run
    assert SUPPORT in run.err, run
    # What safecad sent was sound; only the responder said no.
    (entry,) = responder.log()
    assert entry["type"] == "kur" and entry["answer"] == "kup"
    assert entry["protection_ok"] is True and entry["popo_ok"] is True
    assert entry["issued_serial"] is None
    kur = responder.request_der(entry)
    verify_protection(kur, old.cert.public_key())
    assert responder.issued() == []
    assert [c for _, c in certificates(token)] == [old.cert]
    sign_and_verify(token, "01", old.cert)
    # The new key stays on the token for the next attempt.
    keys = private_keys(token)
    assert len(keys) == 2, keys


@pytest.mark.parametrize("option,words", [("unprotected", "not protected"),
                                          ("wrong_nonce", "another exchange")])
def test_an_answer_safecad_must_refuse(world, pki, bc, option, words):
    token, old = token_with_pair(world, pki)
    responder = bc(**{option: True})
    _, run = renew(world, token, responder, timeout=3)
    assert run.rc == 5, run
    assert words in run.err, run
    assert SUPPORT in run.err, run
    # The responder issued for a sound kur, but safecad took nothing and
    # confirmed nothing.
    (entry,) = responder.log()
    assert entry["type"] == "kur" and entry["error"] is None, entry
    assert entry["protection_ok"] is True and entry["popo_ok"] is True, entry
    assert len(responder.issued()) == 1
    assert [c for _, c in certificates(token)] == [old.cert]
    sign_and_verify(token, "01", old.cert)
