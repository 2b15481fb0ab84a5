# SPDX-License-Identifier: LGPL-2.1-or-later
"""Activation when the CA misbehaves: each of the client's four checks
failing, the CA down, failing, answering garbage, too much or too slowly,
202 and 429 waits, a badNonce retry, a failed confirm. Nothing is written
unless everything checks out; the token is compared byte for byte."""

import os
import time

import pytest

from harness.refca import (  # noqa: F401 - refca is a fixture
    SUPPORT, RefCA, activate, assert_unchanged, check, check_rc, configure, find_cert, refca,
    sign_and_verify, snapshot, tls_files, token_with_pair, window)
from harness.safecad import find_token


@pytest.fixture
def ready(world, pki, refca):
    """A token, an action that re-certifies its key (so a failed attempt
    makes no key either: the whole token must stay as it was), the daemon,
    and the token as it is before."""
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", key={"generate": False}, **window())
    world.start_daemon()
    check(world, token.serial)
    return token, old, action, snapshot(token)


def assert_nothing_written(refca, token, old, before, run):
    """Exit 5, the support line shown, the token as it was, the old pair
    working, no confirm sent (refca None: the CA is down)."""
    assert run.rc == 5, run
    assert SUPPORT in run.text, f"the CA's support line is not shown: {run}"
    assert_unchanged(token, before)
    sign_and_verify(token, "01", old.cert)
    if refca is not None:
        assert refca.requests("confirm") == [], "a confirm was sent"


# --- the four checks ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["wrong_key", "wrong_subject", "untrusted_issuer",
                                  "outside_window"])
def test_a_failed_check_writes_nothing(world, refca, ready, kind):
    token, old, action, before = ready
    refca.fault("issue", kind)
    run = activate(world, token.serial, action["id"])
    assert_nothing_written(refca, token, old, before, run)
    issues = refca.requests("issue")
    assert [(i["status"], i["fault"]) for i in issues] == [(200, kind)], issues


@pytest.mark.parametrize("kind", ["wrong_key", "untrusted_issuer"])
def test_after_a_failed_check_the_next_activation_asks_again(world, refca, ready, kind):
    """A certificate that failed a check is not kept for the next attempt:
    the next activation sends the same key again and gets the CA's
    (now right) answer, no 409."""
    token, old, action, before = ready
    refca.fault("issue", kind)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 5, run
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    issues = refca.requests("issue")
    assert [i["status"] for i in issues] == [200, 200], issues
    assert len({i["csr_key_sha256"] for i in issues}) == 1
    obj, cert = find_cert(token, issues[-1]["issued_serial"])
    sign_and_verify(token, obj["id"], cert)


@pytest.mark.parametrize("kind", ["edge_window", "retyped_subject"])
def test_within_24_hours_and_other_string_types_pass(world, refca, ready, kind):
    """The window is widened by 24 h each side; a subject is compared by
    value, not by ASN.1 string type."""
    token, old, action, before = ready
    refca.fault("issue", kind)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    issue = refca.requests("issue")[0]
    assert issue["fault"] == kind
    obj, cert = find_cert(token, issue["issued_serial"])
    sign_and_verify(token, obj["id"], cert)
    assert refca.requests("confirm", status=200)


# --- the CA failing ---------------------------------------------------------------

def test_ca_down(world, refca, ready):
    token, old, action, before = ready
    assert refca.stop() == 0
    t0 = time.monotonic()
    run = activate(world, token.serial, action["id"])
    assert_nothing_written(None, token, old, before, run)
    assert time.monotonic() - t0 < 15, run


@pytest.mark.parametrize("kind,seconds", [
    ("status500", None), ("malformed_json", None), ("oversize", None), ("cut_short", None),
    ("slow", 8), ("dribble", 0.5), ("hang", 30),
])
def test_issue_answer_faults(world, refca, ready, kind, seconds):
    token, old, action, before = ready
    refca.fault("issue", kind, count=3, seconds=seconds)
    run = activate(world, token.serial, action["id"])
    assert_nothing_written(refca, token, old, before, run)
    issues = refca.requests("issue")
    assert len(issues) == 1, f"the client retried: {issues}"
    if kind == "status500":
        assert "fault injected" in run.text or "Internal error" in run.text, \
            f"what the CA said is not shown: {run}"
    if kind in ("slow", "dribble", "hang"):
        # [network] timeout = 5: the whole request, not 60 s.
        assert 4.5 <= run.seconds < 20, run


@pytest.mark.parametrize("path,kind", [("nonce", "huge_header"), ("issue", "huge_header"),
                                       ("issue", "oversize")])
def test_an_answer_too_large_says_so(world, refca, ready, path, kind):
    """A header line of 1 MiB (libcurl stops at 100 KiB and calls it "out
    of memory") or a body over 1 MiB is named as what it is: the CA's
    answer is too large, not the daemon out of memory."""
    token, old, action, before = ready
    refca.fault(path, kind)
    run = activate(world, token.serial, action["id"])
    assert_nothing_written(refca, token, old, before, run)
    assert "The CA's answer is too large" in run.text, run
    assert "Out of memory" not in run.text, run


@pytest.mark.parametrize("kind", ["status500", "malformed_json", "hang"])
def test_nonce_faults(world, refca, ready, kind):
    token, old, action, before = ready
    refca.fault("nonce", kind, count=3, seconds=30)
    run = activate(world, token.serial, action["id"])
    assert_nothing_written(refca, token, old, before, run)
    assert refca.requests("issue") == []


@pytest.mark.parametrize("kind", ["status500", "malformed_json", "oversize"])
def test_check_fails_when_pending_fails(world, pki, refca, kind):
    token, old = token_with_pair(world, pki)
    refca.add_action(old, **window())
    world.start_daemon()
    refca.fault("pending", kind, count=3)
    rc, out, err = check_rc(world, token.serial)
    assert rc == 5, out + err
    assert SUPPORT in out + err


# --- waits and retries that succeed ------------------------------------------

def test_202_then_200(world, refca, ready):
    token, old, action, before = ready
    refca.fault("issue", "accepted", seconds=1)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    issues = refca.requests("issue")
    assert [i["status"] for i in issues] == [202, 200], issues
    assert issues[1]["t_start"] - issues[0]["t_end"] >= 0.9, "did not wait Retry-After"
    assert issues[0]["nonce"] != issues[1]["nonce"]
    assert len({i["csr_key_sha256"] for i in issues}) == 1
    assert len(refca.requests("confirm", status=200)) == 1


def test_202_header_wins_over_body(world, refca, ready):
    token, old, action, before = ready
    refca.fault("issue", "accepted", seconds=1, body_seconds=55)
    t0 = time.monotonic()
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert time.monotonic() - t0 < 30, "waited the body's retry_after, not the header's"
    assert [i["status"] for i in refca.requests("issue")] == [202, 200]


def test_429_is_waited_out(world, refca, ready):
    token, old, action, before = ready
    refca.fault("issue", "rate_limited", seconds=1)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    issues = refca.requests("issue")
    assert [i["status"] for i in issues] == [429, 200], issues
    assert issues[1]["t_start"] - issues[0]["t_end"] >= 0.9


def test_bad_nonce_once_is_retried_with_one_more_nonce(world, refca, ready):
    token, old, action, before = ready
    refca.fault("issue", "bad_nonce")
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    issues = refca.requests("issue")
    confirms = refca.requests("confirm")
    assert [i["status"] for i in issues] == [400, 200], issues
    assert [c["status"] for c in confirms] == [200]
    # One nonce per signed request: exactly one more than without the fault.
    assert len(refca.requests("nonce")) == 3
    nonces = [r["nonce"] for r in issues + confirms]
    assert len(set(nonces)) == 3


def test_bad_nonce_twice_ends_the_activation(world, refca, ready):
    token, old, action, before = ready
    refca.fault("issue", "bad_nonce", count=2)
    run = activate(world, token.serial, action["id"])
    assert_nothing_written(refca, token, old, before, run)
    assert [i["status"] for i in refca.requests("issue")] == [400, 400]


def test_failed_confirm_keeps_the_certificate_and_is_sent_again(world, refca, ready):
    token, old, action, before = ready
    refca.fault("confirm", "status500")
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run   # written and verified: the certificate is the user's
    issue = refca.requests("issue")[0]
    obj, cert = find_cert(token, issue["issued_serial"])
    sign_and_verify(token, obj["id"], cert)
    t = find_token(world.status(), token.serial)
    assert t["activation"] == {"action": action["id"], "step": "written",
                               "interrupted": True}, t

    # The next activation of the action only confirms.
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert len(refca.requests("issue")) == 1
    assert [c["status"] for c in refca.requests("confirm")] == [500, 200]
    t = find_token(world.status(), token.serial)
    assert t["activation"] is None and t["pending"] == [], t


# --- HTTPS ----------------------------------------------------------------------

@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_https_is_verified_against_the_profile_trust(world, pki, trusted):
    """With `trust` in the profile, only that CA vouches for the server:
    the right one works, another one ends the activation with exit 5."""
    cert, key, api_ca, unrelated = tls_files(os.path.join(world.dir, "tls"))
    ca = RefCA(os.path.join(world.dir, "refca-tls"), pki, tls=(cert, key, api_ca)).start()
    try:
        assert ca.url.startswith("https://127.0.0.1:")
        configure(world, ca, trust=api_ca if trusted else unrelated)
        token, old = token_with_pair(world, pki)
        action = ca.add_action(old, **window())
        world.start_daemon()
        before = snapshot(token)
        rc, out, err = check_rc(world, token.serial)
        run = activate(world, token.serial, action["id"])
        if trusted:
            assert rc == 0, out + err
            assert run.rc == 0, run
            issue = ca.requests("issue")[0]
            assert issue["jws_header"]["url"] == f"{ca.url}/actions/{action['id']}/issue"
            find_cert(token, issue["issued_serial"])
        else:
            assert rc == 5, out + err
            assert_nothing_written(ca, token, old, before, run)
            assert ca.requests("issue") == []
    finally:
        assert ca.stop() == 0
        print(f"----- refca (TLS) log -----\n{ca.log()}")
