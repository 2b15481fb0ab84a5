# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon killed at each journal step of an activation (it kills itself
with SIGKILL right after journaling the step named by
SAFECAD_TEST_CRASH_AT) and started again: the token always holds a working
certificate and key, `status` shows what was interrupted, and activating
again with the PIN completes with the same new key."""

import os

import pytest

from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, activate, certificates, check, find_cert, key_sha256, private_keys, refca,
    sign_and_verify, stopped_by_crash, token_with_pair, window, working_pairs)
from harness.safecad import find_token

STEPS = ["accepted", "logged-in", "key-ready", "csr-sent", "issued", "verified", "written"]
KEPT = STEPS[STEPS.index("key-ready"):]


def assert_working(token, old):
    """The old pair works, and every certificate on the token has its key
    and works with it."""
    pairs = working_pairs(token)
    assert ("01", old.cert) in pairs, f"the old pair does not work: {pairs}"
    certs = certificates(token)
    assert len(pairs) == len(certs), (
        f"a certificate without a working key: {[(o['id'], format(c.serial_number, 'x')) for o, c in certs]}")


@pytest.mark.parametrize("step", STEPS)
def test_killed_at_step_then_resumed(world, pki, refca, step):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", **window())
    daemon = world.start_daemon(SAFECAD_TEST_CRASH_AT=step)
    check(world, token.serial)

    run = activate(world, token.serial, action["id"])
    assert run.rc != 0, f"activate succeeded although the daemon died at {step}: {run}"
    rc = stopped_by_crash(daemon)
    assert rc == -9, f"safecad exited {rc}, not by SIGKILL at {step}:\n{daemon.log()}"
    assert_working(token, old)
    assert len(private_keys(token)) <= 2
    issues_before = refca.requests("issue")
    if STEPS.index(step) < STEPS.index("csr-sent"):
        assert issues_before == [], f"a CSR was sent before {step} was journaled"
    assert refca.requests("confirm") == []
    for root, _, files in os.walk(world.statedir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert PIN.encode() not in f.read(), f"the PIN is on disk in {name}"

    world.start_daemon()
    # What status shows now is asserted at the end, after the resume (the
    # more telling failure comes first).
    interrupted = find_token(world.status(), token.serial)
    assert_working(token, old)

    check(world, token.serial)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run

    issues = refca.requests("issue")
    assert issues, "no issue request at all"
    assert all(i["status"] == 200 for i in issues), f"the CA refused a request: {issues}"
    assert len({i["csr_key_sha256"] for i in issues}) == 1, \
        f"a second key was certified: {issues}"
    if step == "written":
        assert len(issues) == 1, f"only the confirm was left after written: {issues}"
    elif step in ("accepted", "logged-in", "key-ready"):
        assert len(issues) == 1, issues
    else:
        assert len(issues) <= 2, issues
    assert [c["status"] for c in refca.requests("confirm")] == [200]

    # One new key, the one the CA certified, with its certificate.
    keys = private_keys(token)
    assert len(keys) == 2, f"a key pair too many or too few: {keys}"
    new_obj, new_cert = find_cert(token, issues[-1]["issued_serial"])
    assert key_sha256(new_cert) == issues[0]["csr_key_sha256"]
    assert new_obj["id"] in {k["id"] for k in keys} - {"01"}
    sign_and_verify(token, new_obj["id"], new_cert)
    assert_working(token, old)
    assert len(certificates(token)) == 2

    t = find_token(world.status(), token.serial)
    assert t["activation"] is None and t["pending"] == [], t
    assert [c["serial"] for c in t["certificates"] if c["current"]] == [
        issues[-1]["issued_serial"]]

    if step in KEPT:
        assert interrupted["activation"] == {"action": action["id"], "step": step,
                                             "interrupted": True}, interrupted
    else:
        assert interrupted["activation"] is None, f"nothing had changed at {step}: {interrupted}"


def test_withdrawn_action_loses_its_key_at_the_next_login(world, pki, refca):
    """An activation interrupted after its key was made, whose action the
    CA then withdraws: status stops showing it at the next check, and the
    next activation (another action, with the PIN) removes its key; the old
    pair is never touched."""
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", **window())
    daemon = world.start_daemon(SAFECAD_TEST_CRASH_AT="key-ready")
    check(world, token.serial)
    run = activate(world, token.serial, action["id"])
    assert run.rc != 0, run
    assert stopped_by_crash(daemon) == -9
    assert len(private_keys(token)) == 2, "the new key was not made"

    world.start_daemon()
    t = find_token(world.status(), token.serial)
    assert t["activation"] == {"action": action["id"], "step": "key-ready",
                               "interrupted": True}, t
    refca.admin.withdraw(action["id"])
    check(world, token.serial)
    t = find_token(world.status(), token.serial)
    assert t["activation"] is None, t
    assert len(private_keys(token)) == 2, "a private key went without a login"

    second = refca.add_action(old, type="renew", **window())
    check(world, token.serial)
    run = activate(world, token.serial, second["id"])
    assert run.rc == 0, run
    issues = refca.requests("issue")
    new_obj, new_cert = find_cert(token, issues[-1]["issued_serial"])
    ids = {k["id"] for k in private_keys(token)}
    assert ids == {"01", new_obj["id"]}, f"the withdrawn action's key is still there: {ids}"
    assert_working(token, old)
