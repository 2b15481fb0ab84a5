# SPDX-License-Identifier: LGPL-2.1-or-later
"""protocol = cmp, interrupted: the daemon killed at each journal step of a
CMP key update (SAFECAD_TEST_CRASH_AT), the worker killed at each step
(SAFECAD_TEST_CRASH_WORKER_AT), and a token pulled (the PIN shim) while
the CMP test CA keeps the request waiting; each then resumed with
`safectl activate`.

What the CA sees is exact. Up to csr-sent the crash comes before the kur
goes out (csr-sent is journaled first): the resumed activation sends the
one kur and its certConf. From issued on the crash comes inside OpenSSL's
certConf callback, after the CA issued and before the certConf goes out;
OpenSSL 3.0 cannot send a certConf later, so the resumed activation asks
the CA nothing: it writes the journaled certificate and ends unconfirmed
(docs/cmp.md). Either way the CA saw one kur and issued one certificate,
for the one new key, which the token holds with it; the old pair works
throughout. A token pulled while the CA keeps the kur waiting cannot sign
the next pollReq: the transaction is given up, nothing was issued, and the
resumed activation sends a second kur for the same new key."""

import json
import os
import time

import pytest
from cryptography.hazmat.primitives import serialization

from harness.pinshim import use
from harness.refca import (
    PIN, activate, certificates, check, find_cert, finish_activate, private_keys,
    sign_and_verify, start_activate, stopped_by_crash, token_with_pair)
from harness.safecad import find_token
from test_activation_crash import assert_working
from test_cmp_update import cmpca, configure_cmp  # noqa: F401 - cmpca is a fixture

STEPS = ["accepted", "logged-in", "key-ready", "csr-sent", "issued", "verified", "written"]
# From key-ready on the token has changed: the journal stays and status shows it.
KEPT = STEPS[STEPS.index("key-ready"):]
# The crash comes after the CA issued, before the certConf went out.
AFTER_ISSUE = STEPS[STEPS.index("issued"):]
INTERRUPTED_WORDS = "interrupted after the CA issued the certificate"


def pending(world, token):
    check(world, token.serial)
    return find_token(world.status(), token.serial)["pending"]


def the_action(world, token):
    actions = pending(world, token)
    assert len(actions) == 1, actions
    return actions[0]


def activation_of(world, token):
    return find_token(world.status(), token.serial)["activation"]


def activate_json(world, token, action):
    """`safectl --json activate`: (Run, its result or None)."""
    run = activate(world, token.serial, action, extra=("--json",))
    try:
        return run, json.loads(run.out) if run.rc == 0 else None
    except ValueError:
        raise AssertionError(f"activate --json printed no JSON: {run}") from None


def key_bits(public_key):
    """The key's SubjectPublicKeyInfo without its outer tag and length: what
    a CRMF certTemplate carries (its publicKey is implicitly tagged [6])."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    n = der[1] & 0x7F if der[1] & 0x80 else 0
    return der[2 + n:]


def kur_asks_for(ca, public_key):
    """For each kur the CA received, whether it asks to certify public_key."""
    return [key_bits(public_key) in m.der for m in ca.messages()
            if m.direction == "request" and m.type == "kur"]


def assert_renewed_once(ca, token, old):
    """One kur, for the new key; one certificate issued, for it, on the
    token with its key; exactly one key made; both pairs work. Returns the
    new certificate."""
    issued = ca.issued()
    assert len(issued) == 1, f"the CA issued {len(issued)} certificates: {ca.types()}"
    new = issued[0]
    obj, cert = find_cert(token, format(new.serial_number, "x"))
    assert cert == new
    assert obj["id"] != "01"
    assert cert.subject == old.cert.subject
    assert kur_asks_for(ca, cert.public_key()) == [True], \
        "the kur did not ask to certify the key now on the token"
    keys = sorted(k["id"] for k in private_keys(token))
    assert keys == sorted(["01", obj["id"]]), f"a key too many or too few: {keys}"
    sign_and_verify(token, obj["id"], cert)
    assert_working(token, old)
    assert len(certificates(token)) == 2
    return cert


def assert_crashed_state(ca, token, old, step):
    """What is on the token and at the CA right after a crash at step."""
    assert_working(token, old)
    keys = private_keys(token)
    made = STEPS.index(step) >= STEPS.index("key-ready")
    assert len(keys) == (2 if made else 1), f"after {step}: {keys}"
    # The certificate is written at written, not before.
    assert len(certificates(token)) == (2 if step == "written" else 1)
    # csr-sent is journaled before the kur goes; the certConf goes only
    # after the write, which the crash cut short.
    assert ca.types() == (["kur"] if step in AFTER_ISSUE else []), \
        f"after a crash at {step} the CA saw {ca.types()}"
    assert len(ca.issued()) == (1 if step in AFTER_ISSUE else 0)


def assert_resumed(world, ca, token, old, action, step, run, result):
    """The resumed activation: the same key, the CA asked only what it had
    not been asked, unconfirmed when the certConf could not be sent."""
    assert run.rc == 0, run
    cert = assert_renewed_once(ca, token, old)
    assert result["new_serial"] == format(cert.serial_number, "x"), result
    assert result["old_serial"] == format(old.cert.serial_number, "x"), result
    t = find_token(world.status(), token.serial)
    assert [c["serial"] for c in t["certificates"] if c["current"]] == [result["new_serial"]]
    if step in AFTER_ISSUE:
        # Nothing more was sent: the certificate came from the journal.
        assert ca.types() == ["kur"], ca.types()
        assert ca.cert_confs() == []
        assert result["confirmed"] is False, result
        assert INTERRUPTED_WORDS in result["confirm_error"], result
        # The journal stays, marked unconfirmed: status shows it.
        assert t["activation"] == {"action": action["id"], "step": "written",
                                   "interrupted": True}, t
        # Run again, it is closed as it is: OpenSSL cannot send a certConf
        # later, and nothing more goes to the CA.
        run, again = activate_json(world, token, action["id"])
        assert run.rc == 0, run
        assert again["closed"] is True and again["confirmed"] is False, again
        assert INTERRUPTED_WORDS in again["confirm_error"], again
        assert ca.types() == ["kur"], ca.types()
        assert find_token(world.status(), token.serial)["activation"] is None
        assert_renewed_once(ca, token, old)
    else:
        assert ca.types() == ["kur", "certConf"], ca.types()
        assert [c["hash_matched"] for c in ca.cert_confs()] == [True]
        assert [c["accepted"] for c in ca.cert_confs()] == [True]
        assert result["confirmed"] is True, result
        assert t["activation"] is None, t
    # Renewed: nothing is offered any more.
    assert pending(world, token) == []


# --- the daemon killed at each step ----------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_daemon_killed_at_step_then_resumed(world, pki, cmpca, step):
    """Started again, the daemon checks the token (as it does at start) before
    the activation is resumed."""
    token, old = token_with_pair(world, pki)
    ca = cmpca()
    configure_cmp(world, ca)
    daemon = world.start_daemon(SAFECAD_TEST_CRASH_AT=step)
    action = the_action(world, token)

    run = activate(world, token.serial, action["id"])
    assert run.rc != 0, f"activate succeeded although the daemon died at {step}: {run}"
    rc = stopped_by_crash(daemon)
    assert rc == -9, f"safecad exited {rc}, not by SIGKILL at {step}:\n{daemon.log()}"
    assert_crashed_state(ca, token, old, step)
    for root, _, files in os.walk(world.statedir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert PIN.encode() not in f.read(), f"the PIN is on disk in {name}"

    world.start_daemon()
    # Waits for the check the daemon runs at start, and asks once more.
    check(world, token.serial)
    interrupted = activation_of(world, token)
    assert_working(token, old)
    run, result = activate_json(world, token, action["id"])
    assert_resumed(world, ca, token, old, action, step, run, result)

    if step in KEPT:
        assert interrupted == {"action": action["id"], "step": step, "interrupted": True}, \
            interrupted
    else:
        assert interrupted is None, f"nothing had changed at {step}: {interrupted}"


# --- the worker killed at each step ----------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_worker_killed_at_step_then_resumed(world, pki, cmpca, step):
    token, old = token_with_pair(world, pki)
    ca = cmpca()
    configure_cmp(world, ca)
    once = os.path.join(world.dir, "worker-crashed")
    daemon = world.start_daemon(SAFECAD_TEST_CRASH_WORKER_AT=step,
                                SAFECAD_TEST_CRASH_WORKER_ONCE=once)
    action = the_action(world, token)

    run = activate(world, token.serial, action["id"])
    assert run.rc == 1, run
    assert "stopped unexpectedly" in run.text, run
    assert os.path.exists(once), "no worker reached the step"
    assert daemon.proc.poll() is None, f"safecad ended with its worker:\n{daemon.log()}"
    assert_crashed_state(ca, token, old, step)

    # The same daemon carries on from the journal the worker left, with no
    # check in between.
    run, result = activate_json(world, token, action["id"])
    assert_resumed(world, ca, token, old, action, step, run, result)


# --- a token pulled while the CA keeps the request waiting -----------------------


def wait_for(predicate, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = predicate()
        if seen:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout}s")


def test_token_pulled_while_the_ca_keeps_the_request_waiting(world, pki, cmpca):
    """The CA answers the kur with 'waiting'; the token leaves before the
    next pollReq, which must be signed with the old key on it. The
    activation fails as a pulled token, the CA issued nothing; back in,
    the next activation sends a new kur for the same new key."""
    token, old = token_with_pair(world, pki)
    ca = cmpca(poll_count=3, check_after=2)
    configure_cmp(world, ca, timeout=20)
    shim = use(world)
    world.start_daemon()
    action = the_action(world, token)
    logins = shim.logins(token)

    started = start_activate(world, token.serial, action["id"])
    try:
        wait_for(lambda: ca.types()[:1] == ["kur"], "kur at the CA")
        shim.set(token, pulled=1)
    except BaseException:
        started[0].kill()
        raise
    run = finish_activate(started)
    assert run.rc == 1, run
    failed = run  # its words are checked at the end (the more telling failure first)
    assert ca.issued() == [], ca.types()
    assert ca.cert_confs() == []
    keys = sorted(k["id"] for k in private_keys(token))
    assert len(keys) == 2, f"the new key was not made before the kur: {keys}"
    assert [c for _, c in certificates(token)] == [old.cert]
    assert_working(token, old)

    # Out of the reader, the interrupted activation keeps the token listed.
    world.rescan()
    t = find_token(world.status(), token.serial)
    assert t["present"] is False, t
    assert t["activation"] == {"action": action["id"], "step": "csr-sent",
                               "interrupted": True}, t

    shim.set(token, pulled=0)
    world.rescan()
    assert find_token(world.status(), token.serial)["present"] is True
    first = ca.types()
    run, result = activate_json(world, token, action["id"])
    assert run.rc == 0, run
    assert result["confirmed"] is True, result
    # A new transaction: the first one cannot be carried on.
    assert ca.types()[len(first):] == ["kur", "pollReq", "pollReq", "pollReq", "certConf"], \
        ca.types()
    cert = find_cert(token, result["new_serial"])[1]
    issued = ca.issued()
    assert issued == [cert], f"want one certificate, the one on the token: {issued}"
    assert kur_asks_for(ca, cert.public_key()) == [True, True], \
        "the two kur did not ask for the same new key"
    assert sorted(k["id"] for k in private_keys(token)) == keys, "a second key was made"
    obj, _ = find_cert(token, result["new_serial"])
    sign_and_verify(token, obj["id"], cert)
    assert_working(token, old)
    assert shim.logins(token) == logins + 2, "want one C_Login per activation"
    t = find_token(world.status(), token.serial)
    assert t["activation"] is None and t["pending"] == [], t
    assert "pulled out" in failed.text, failed
    assert token.serial in failed.text or token.label in failed.text, failed
