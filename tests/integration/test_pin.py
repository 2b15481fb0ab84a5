# SPDX-License-Identifier: LGPL-2.1-or-later
"""The PIN, day to day: `safectl pin` shows what the token's flags say (and
no number they do not say), `safectl pin change` changes it with exactly
one C_SetPIN, refuses a final try unless allowed, checks lengths before the
token is touched, and the PIN never lands in a log, a state file, argv or
the environment. The daemon loads the PIN shim in front of SoftHSM."""

import json
import os
import subprocess

import pytest

from harness.pinshim import pin_shim, use  # noqa: F401 - pin_shim is a fixture
from harness.refca import PIN, SAFECTL, token_with_pair
from harness.safecad import find_token

NEW_PIN = "Moi-2468"
WRONG = "Sai-000000"


def pin_fds(*pins):
    fds = []
    for pin in pins:
        r, w = os.pipe()
        os.write(w, (pin + "\n").encode())
        os.close(w)
        fds.append(r)
    return fds


def change(world, old, new, extra=()):
    old_fd, new_fd = pin_fds(old, new)
    try:
        argv = [SAFECTL, "pin", "change", "--pin-fd", str(old_fd), "--new-pin-fd", str(new_fd)]
        return subprocess.run(argv + list(extra), env=world.client_env(), capture_output=True,
                              text=True, timeout=60, pass_fds=(old_fd, new_fd))
    finally:
        os.close(old_fd)
        os.close(new_fd)


@pytest.fixture
def token(world, pki):
    shim = use(world)
    token, _ = token_with_pair(world, pki)
    world.shim = shim
    return token


def pin_json(world):
    rc, out, err = world.safectl("pin", json_out=True)
    assert rc == 0, err
    return json.loads(out)


def test_pin_shows_the_flags_and_tries_only_where_they_say(world, token):
    world.start_daemon()
    p = pin_json(world)
    assert p["pin"] == "ok" and p["tries_left"] is None, p
    world.shim.set(token, tries_left=2)
    world.rescan()
    assert pin_json(world)["pin"] == "count-low"
    assert pin_json(world)["tries_left"] is None
    world.shim.set(token, tries_left=1)
    world.rescan()
    assert pin_json(world)["tries_left"] == 1
    world.shim.set(token, tries_left=0)
    world.rescan()
    p = pin_json(world)
    assert p["pin"] == "locked" and p["tries_left"] == 0, p
    rc, out, err = world.safectl("pin")
    assert rc == 0 and "1900 6154" in out, out  # the CA's support line when locked


def test_change_then_log_in_with_the_new_pin(world, token):
    world.start_daemon()
    run = change(world, PIN, NEW_PIN)
    assert run.returncode == 0, run
    assert world.shim.read(token)["setpins"] == 1
    world.shim.p11(token, "--login", "--pin", NEW_PIN, "--list-objects")
    assert world.shim.p11(token, "--login", "--pin", PIN, "--list-objects",
                          check=False).returncode != 0
    # The PIN is nowhere on disk, and never was in the daemon's log.
    for root, _, files in os.walk(world.dir):
        for name in files:
            path = os.path.join(root, name)
            if "/hsm/" in path or "/pin-shim/" in path or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            assert NEW_PIN.encode() not in data and PIN.encode() not in data, path


def test_wrong_current_pin_is_one_try(world, token):
    world.start_daemon()
    run = change(world, WRONG, NEW_PIN)
    assert run.returncode == 3, run
    state = world.shim.read(token)
    assert state["setpins"] == 1 and state["tries_left"] == state["max"] - 1, state
    world.shim.p11(token, "--login", "--pin", PIN, "--list-objects")


def test_final_try_refused_unless_allowed(world, token):
    world.shim.set(token, tries_left=1)
    world.start_daemon()
    run = change(world, PIN, NEW_PIN)
    assert run.returncode == 7, run
    assert world.shim.read(token)["setpins"] == 0
    run = change(world, PIN, NEW_PIN, extra=["--allow-final-try"])
    assert run.returncode == 0, run
    assert world.shim.read(token)["setpins"] == 1


def test_locked_is_refused_untouched(world, token):
    world.shim.set(token, tries_left=0)
    world.start_daemon()
    run = change(world, PIN, NEW_PIN, extra=["--allow-final-try"])
    assert run.returncode == 4, run
    assert world.shim.read(token)["setpins"] == 0


def test_lengths_out_of_range_leave_the_token_untouched(world, token):
    world.start_daemon()
    t = find_token(world.status(), token.serial)
    low, high = t["pin_min_length"], t["pin_max_length"]
    assert low > 1 and high > low, t
    # A PIN over 255 bytes never leaves safectl (its PIN buffer's bound).
    for bad in ("x" * (low - 1), "x" * min(high + 1, 255)):
        if len(bad) <= high:
            continue
        run = change(world, PIN, bad)
        assert run.returncode == 1, run
        assert "nothing was changed" in run.stderr, run.stderr
    run = change(world, PIN, "x" * 300)
    assert run.returncode == 1 and "longer than" in run.stderr, run
    assert world.shim.read(token)["setpins"] == 0
    world.shim.p11(token, "--login", "--pin", PIN, "--list-objects")


def test_the_pin_is_never_in_argv_or_the_environment(world, token):
    """safecad and safectl take the PIN by descriptor only: after a change
    neither the daemon's command line nor its environment holds it, and
    safectl refuses a PIN given any other way than a descriptor."""
    daemon = world.start_daemon()
    run = change(world, PIN, NEW_PIN)
    assert run.returncode == 0, run
    for name in ("cmdline", "environ"):
        with open(f"/proc/{daemon.pid}/{name}", "rb") as f:
            data = f.read()
        assert PIN.encode() not in data and NEW_PIN.encode() not in data, name
    # There is no option that takes a PIN as text.
    rc, out, err = world.safectl("pin", "change", f"--pin={PIN}")
    assert rc == 1, (out, err)
