# SPDX-License-Identifier: LGPL-2.1-or-later
"""Activation and the token's PIN, with the daemon loading the PIN shim
(tests/pin-shim) in front of SoftHSM, so that wrong, count-low, final-try,
locked and pulled are real module answers: exactly one C_Login per PIN the
user gives, none when the flags say the token is locked or at its final
try (unless allowed), modules without counters shown as "ok", and a token
pulled while the CA answers keeps its old pair and completes later with the
same new key."""

import time

import pytest

from harness.pinshim import (  # noqa: F401 - pin_shim is a fixture
    CKR_GENERAL_ERROR, CKR_PIN_INCORRECT, FLAG_TEXT, pin_shim, use)
from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SUPPORT, activate, assert_unchanged, check, configure, find_cert, finish_activate,
    key_sha256, objects, private_keys, refca, sign_and_verify, snapshot, start_activate,
    token_with_pair, window)
from harness.safecad import find_token

WRONG_PIN = "Wrong-000000"


@pytest.fixture
def shim(world, refca):
    """The reference CA's configuration (a longer request limit than the
    usual 5 s, for the slow answers below), the daemon loading the shim."""
    configure(world, refca, timeout=20)
    return use(world)


def ready(world, pki, refca, shim, **counters):
    """A token with a pair and a pending renewal (new key), the shim's
    counters set before the daemon first reads the token, the daemon, the
    CA asked. Returns (token, old, action)."""
    token, old = token_with_pair(world, pki)
    if counters:
        shim.set(token, **counters)
    action = refca.add_action(old, **window())
    world.start_daemon()
    check(world, token.serial)
    return token, old, action


def pin_status(world, token):
    return find_token(world.status(), token.serial)["pin"]


def assert_nothing_asked(refca):
    assert refca.requests("issue") == [], "an issue request reached the CA"
    assert refca.requests("confirm") == [], "a confirm reached the CA"


# --- the shim itself, seen by pkcs11-tool ------------------------------------


def test_the_shim_counts_flags_locks_and_pulls(world, pin_shim):
    token = world.softhsm.create_token("Shim Check", pin=PIN)
    shim = pin_shim
    assert shim.token_flags(token) is not None
    assert not set(FLAG_TEXT.values()) & set(shim.token_flags(token))
    seen = []
    for tries_left in (2, 1, 0):
        r = shim.p11(token, "--login", "--pin", WRONG_PIN, "--list-objects", check=False)
        assert r.returncode != 0
        assert shim.read(token)["tries_left"] == tries_left
        seen.append(set(FLAG_TEXT.values()) & set(shim.token_flags(token)))
    assert seen == [{FLAG_TEXT["count-low"]},
                    {FLAG_TEXT["count-low"], FLAG_TEXT["final-try"]},
                    {FLAG_TEXT["count-low"], FLAG_TEXT["locked"]}]
    # Locked: the right PIN is refused without reaching SoftHSM.
    r = shim.p11(token, "--login", "--pin", PIN, "--list-objects", check=False)
    assert "CKR_PIN_LOCKED" in r.stdout + r.stderr, r
    assert shim.read(token)["logins"] == 4
    # The right PIN gives every try back.
    shim.set(token, tries_left=1, wrong_pin_rv=CKR_GENERAL_ERROR)
    shim.p11(token, "--login", "--pin", PIN, "--list-objects")
    assert shim.read(token)["tries_left"] == 3
    r = shim.p11(token, "--login", "--pin", WRONG_PIN, "--list-objects", check=False)
    assert "CKR_GENERAL_ERROR" in r.stdout + r.stderr, r
    # No counters: no flags, whatever the count.
    shim.set(token, tries_left=1, no_counters=1)
    assert not set(FLAG_TEXT.values()) & set(shim.token_flags(token))
    # Pulled: the slot leaves the list of present tokens.
    shim.set(token, pulled=1)
    assert shim.token_flags(token) is None
    shim.set(token, pulled=0)
    assert shim.token_flags(token) is not None


# --- wrong PIN -----------------------------------------------------------------


@pytest.mark.parametrize("wrong_pin_rv", [CKR_PIN_INCORRECT, CKR_GENERAL_ERROR],
                         ids=["pin-incorrect", "general-error"])
def test_wrong_pin_is_one_login_and_asks_the_ca_nothing(world, pki, refca, shim,
                                                        wrong_pin_rv):
    token, old, action = ready(world, pki, refca, shim, wrong_pin_rv=wrong_pin_rv)
    before = snapshot(token)
    logins = shim.logins(token)

    run = activate(world, token.serial, action["id"], pin=WRONG_PIN)
    assert run.rc == 3, run
    state = shim.read(token)
    assert state["logins"] == logins + 1, f"want exactly one C_Login: {state}"
    assert state["tries_left"] == 2, state
    assert_nothing_asked(refca)
    assert_unchanged(token, before)
    t = find_token(world.status(), token.serial)
    assert t["activation"] is None, t
    assert t["pending"] == [action], t
    assert WRONG_PIN not in run.text


def test_status_shows_count_low_after_a_wrong_pin(world, pki, refca, shim):
    """The token's PIN status follows what the token says after a failed
    login, without waiting for the next rescan."""
    token, old, action = ready(world, pki, refca, shim)
    assert pin_status(world, token) == "ok"
    run = activate(world, token.serial, action["id"], pin=WRONG_PIN)
    assert run.rc == 3, run
    assert pin_status(world, token) == "count-low"


# --- count low, final try, locked ------------------------------------------------


def test_count_low_shows_and_the_right_pin_gives_the_tries_back(world, pki, refca, shim):
    token, old, action = ready(world, pki, refca, shim, tries_left=2)
    assert pin_status(world, token) == "count-low"
    logins = shim.logins(token)

    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    state = shim.read(token)
    assert state["logins"] == logins + 1, state
    assert state["tries_left"] == 3, state
    assert len(refca.requests("issue")) == 1
    assert pin_status(world, token) == "ok"


def test_final_try_is_refused_unless_allowed(world, pki, refca, shim):
    token, old, action = ready(world, pki, refca, shim, tries_left=1)
    assert pin_status(world, token) == "final-try"
    before = snapshot(token)
    logins = shim.logins(token)

    run = activate(world, token.serial, action["id"])
    assert run.rc == 7, run
    assert shim.logins(token) == logins, "the daemon logged in at the final try"
    assert_nothing_asked(refca)
    assert_unchanged(token, before)

    run = activate(world, token.serial, action["id"], extra=["--allow-final-try"])
    assert run.rc == 0, run
    state = shim.read(token)
    assert state["logins"] == logins + 1, state
    assert state["tries_left"] == 3, state
    assert len(refca.requests("issue")) == 1


def test_final_try_guard_is_the_daemons_own(world, pki, refca, shim):
    """The token reaches its final try after the daemon last read it:
    safectl cannot know, the daemon reads the flags before it logs in."""
    token, old, action = ready(world, pki, refca, shim)
    assert pin_status(world, token) == "ok"
    shim.set(token, tries_left=1)
    logins = shim.logins(token)

    run = activate(world, token.serial, action["id"])
    assert run.rc == 7, run
    assert shim.logins(token) == logins, "the daemon logged in at the final try"
    assert_nothing_asked(refca)


def test_a_wrong_pin_at_the_allowed_final_try_locks(world, pki, refca, shim):
    token, old, action = ready(world, pki, refca, shim, tries_left=1)
    logins = shim.logins(token)
    run = activate(world, token.serial, action["id"], pin=WRONG_PIN,
                   extra=["--allow-final-try"])
    assert run.rc in (3, 4), run
    state = shim.read(token)
    assert state["logins"] == logins + 1 and state["tries_left"] == 0, state
    assert SUPPORT in run.text, f"a locked token needs the CA: {run}"
    assert_nothing_asked(refca)
    world.rescan()
    assert pin_status(world, token) == "locked"


@pytest.mark.parametrize("when", ["before-start", "behind-the-daemon"])
def test_locked_token_is_not_logged_in(world, pki, refca, shim, when):
    counters = {"tries_left": 0} if when == "before-start" else {}
    token, old, action = ready(world, pki, refca, shim, **counters)
    if when == "before-start":
        assert pin_status(world, token) == "locked"
    else:
        shim.set(token, tries_left=0)
    before = snapshot(token)
    logins = shim.logins(token)

    run = activate(world, token.serial, action["id"])
    assert run.rc == 4, run
    assert shim.logins(token) == logins, "the daemon called C_Login on a locked token"
    assert SUPPORT in run.text, f"a locked token needs the CA: {run}"
    assert_nothing_asked(refca)
    assert_unchanged(token, before)
    run = activate(world, token.serial, action["id"], extra=["--allow-final-try"])
    assert run.rc == 4, run
    assert shim.logins(token) == logins


def test_module_without_counters_shows_ok_and_guesses_nothing(world, pki, refca, shim):
    token, old, action = ready(world, pki, refca, shim, tries_left=1, no_counters=1)
    t = find_token(world.status(), token.serial)
    assert t["pin"] == "ok", t
    for key, value in t.items():
        if "tries" in key or "retr" in key:
            assert value is None, f"a number of tries the token never said: {key}={value}"
    rc, out, err = world.safectl("show", token.serial)
    assert rc == 0, out + err
    assert "tries left" not in (out + err).lower(), out + err
    # No flag says final try, so nothing stops the activation.
    logins = shim.logins(token)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert shim.logins(token) == logins + 1


# --- a token pulled while the CA answers ---------------------------------------------


def wait_for_step(world, token, step, timeout=20):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        t = find_token(world.status(), token.serial)
        seen = t["activation"]
        if seen and seen["step"] == step:
            return
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout}s; last seen: {seen}")


def old_objects(token, key_id="01"):
    return sorted((o for o in objects(token) if o["id"] == key_id), key=lambda o: o["header"])


def test_token_pulled_while_the_ca_answers(world, pki, refca, shim):
    token, old, action = ready(world, pki, refca, shim)
    old_before = old_objects(token)
    logins = shim.logins(token)
    refca.fault("issue", "slow", seconds=6)

    started = start_activate(world, token.serial, action["id"])
    try:
        wait_for_step(world, token, "csr-sent")
        shim.set(token, pulled=1)
    except BaseException:
        started[0].kill()
        raise
    run = finish_activate(started)
    assert run.rc == 1, run
    failed = run   # its message is checked at the end (the more telling failure first)
    assert refca.requests("confirm") == []

    # The old pair as it was, and working (seen past the shim, on SoftHSM).
    assert old_objects(token) == old_before
    obj, cert = find_cert(token, old.serial)
    assert obj["id"] == "01" and cert == old.cert
    sign_and_verify(token, "01", old.cert)

    # Out of the reader, the interrupted activation keeps the token listed.
    t = find_token(world.status(), token.serial)
    assert t["activation"] is not None and t["activation"]["interrupted"] is True, t
    world.rescan()
    t = find_token(world.status(), token.serial)
    assert t["present"] is False, t
    assert t["activation"]["interrupted"] is True, t

    # Back in: the next activation with the PIN completes with the same key.
    shim.set(token, pulled=0)
    world.rescan()
    assert find_token(world.status(), token.serial)["present"] is True
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run

    issues = refca.requests("issue")
    assert issues and all(i["status"] == 200 for i in issues), \
        f"the CA refused an issue request (409: another key): {issues}"
    assert len({i["csr_key_sha256"] for i in issues}) == 1, f"a second key: {issues}"
    assert [c["status"] for c in refca.requests("confirm")] == [200]
    new_obj, new_cert = find_cert(token, issues[-1]["issued_serial"])
    assert new_obj["id"] != "01"
    assert key_sha256(new_cert) == issues[0]["csr_key_sha256"]
    assert sorted(k["id"] for k in private_keys(token)) == sorted(["01", new_obj["id"]])
    sign_and_verify(token, new_obj["id"], new_cert)
    sign_and_verify(token, "01", old.cert)
    assert shim.logins(token) == logins + 2, "want one C_Login per activation"
    t = find_token(world.status(), token.serial)
    assert t["activation"] is None and t["pending"] == [], t
    assert token.serial in failed.text or token.label in failed.text, \
        f"the message does not name the token: {failed}"
