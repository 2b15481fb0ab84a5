# SPDX-License-Identifier: LGPL-2.1-or-later
"""The PIN shim's faults on demand, checked on the shim itself with
pkcs11-tool (no daemon): a fault kills the process that makes the call
(SIGSEGV, SIGABRT) or never lets the call return, is counted in `faulted`
before it fires, and is spent after `times` calls; C_GetSlotList's fault
is in the module's own file. The daemon's tests rely on exactly this."""

import resource
import signal
import subprocess

import pytest

from harness.pinshim import pin_shim  # noqa: F401 - a fixture

HANG_WAIT = 3


def _no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def p11(shim, token, *args):
    """pkcs11-tool through the shim, no core file when it dies."""
    argv = ["pkcs11-tool", "--module", shim.module]
    if token is not None:
        argv += ["--token-label", token.label]
    return subprocess.run(argv + list(args), env=shim.env, capture_output=True, text=True,
                          timeout=60, preexec_fn=_no_core)


def login(shim, token):
    return p11(shim, token, "--login", "--pin", token.pin, "--list-objects")


@pytest.fixture
def token(world):
    return world.softhsm.create_token("Shim Faults")


@pytest.mark.parametrize("kind, sig", [("segv", signal.SIGSEGV), ("abort", signal.SIGABRT)])
def test_login_fault_kills_the_process_once(pin_shim, token, kind, sig):
    assert login(pin_shim, token).returncode == 0
    pin_shim.set_fault(token, "C_Login", kind)
    assert pin_shim.read(token)["fault"] == f"C_Login:{kind}"
    r = login(pin_shim, token)
    assert r.returncode == -sig, (r.returncode, r.stdout, r.stderr)
    state = pin_shim.read(token)
    assert pin_shim.faulted(token) == 1, state
    assert state["fault"] == "" and state["faults_left"] == 0, state
    # It fired on entry: SoftHSM never saw that login, nor did the counter.
    assert state["logins"] == 1, state
    r = login(pin_shim, token)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert pin_shim.faulted(token) == 1 and pin_shim.logins(token) == 2


def test_fault_fires_as_many_times_as_asked(pin_shim, token):
    pin_shim.set_fault(token, "C_Login", "abort", times=2)
    assert login(pin_shim, token).returncode == -signal.SIGABRT
    assert pin_shim.read(token)["faults_left"] == 1
    assert login(pin_shim, token).returncode == -signal.SIGABRT
    assert pin_shim.faulted(token) == 2
    assert login(pin_shim, token).returncode == 0


def test_cleared_fault_does_not_fire(pin_shim, token):
    pin_shim.set_fault(token, "C_Login", "segv")
    pin_shim.clear_fault(token)
    assert login(pin_shim, token).returncode == 0
    assert pin_shim.faulted(token) == 0


def test_login_hang_never_returns(pin_shim, token):
    pin_shim.set_fault(token, "C_Login", "hang")
    argv = ["pkcs11-tool", "--module", pin_shim.module, "--token-label", token.label,
            "--login", "--pin", token.pin, "--list-objects"]
    proc = subprocess.Popen(argv, env=pin_shim.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=_no_core)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=HANG_WAIT)
        # Counted before it hung, and spent.
        assert pin_shim.faulted(token) == 1
        assert pin_shim.read(token)["fault"] == ""
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert login(pin_shim, token).returncode == 0


def test_slot_list_fault_is_the_modules(pin_shim, token):
    pin_shim.set_fault(None, "C_GetSlotList", "segv")
    r = p11(pin_shim, None, "--list-slots")
    assert r.returncode == -signal.SIGSEGV, (r.returncode, r.stdout, r.stderr)
    assert pin_shim.faulted(None) == 1
    assert pin_shim.faulted(token) == 0
    r = p11(pin_shim, None, "--list-slots")
    assert r.returncode == 0 and "Shim Faults" in r.stdout, (r.stdout, r.stderr)


def test_fault_on_one_token_leaves_the_other_alone(pin_shim, world, token):
    other = world.softhsm.create_token("Shim Other")
    pin_shim.set_fault(token, "C_OpenSession", "abort")
    assert login(pin_shim, other).returncode == 0
    assert pin_shim.faulted(other) == 0 and pin_shim.faulted(token) == 0
    assert login(pin_shim, token).returncode == -signal.SIGABRT
    assert pin_shim.faulted(token) == 1


def test_session_calls_fault(pin_shim, token):
    """C_FindObjectsInit (after the login) and C_GenerateKeyPair on a session."""
    pin_shim.set_fault(token, "C_FindObjectsInit", "segv")
    assert login(pin_shim, token).returncode == -signal.SIGSEGV
    assert pin_shim.logins(token) == 1 and pin_shim.faulted(token) == 1
    pin_shim.set_fault(token, "C_GenerateKeyPair", "abort")
    r = p11(pin_shim, token, "--login", "--pin", token.pin, "--keypairgen", "--key-type",
            "EC:prime256v1", "--id", "01", "--label", "k")
    assert r.returncode == -signal.SIGABRT, (r.returncode, r.stdout, r.stderr)
    assert pin_shim.faulted(token) == 2


def test_the_api_refuses_what_the_shim_has_not(pin_shim, token):
    with pytest.raises(AssertionError):
        pin_shim.set_fault(token, "C_Frobnicate", "segv")
    with pytest.raises(AssertionError):
        pin_shim.set_fault(token, "C_Login", "explode")
    with pytest.raises(AssertionError):
        pin_shim.set_fault(token, "C_GetSlotList", "segv")
    with pytest.raises(AssertionError):
        pin_shim.set_fault(None, "C_Login", "segv")


def test_sign_create_and_token_info_fault(pin_shim, token, tmp_path):
    """C_Sign, C_CreateObject on a session, C_GetTokenInfo on a slot."""
    r = p11(pin_shim, token, "--login", "--pin", token.pin, "--keypairgen", "--key-type",
            "EC:prime256v1", "--id", "02", "--label", "k")
    assert r.returncode == 0, (r.stdout, r.stderr)
    data = tmp_path / "data"
    data.write_bytes(b"\x01" * 32)
    pin_shim.set_fault(token, "C_Sign", "segv")
    r = p11(pin_shim, token, "--login", "--pin", token.pin, "--sign", "--id", "02",
            "--mechanism", "ECDSA", "--input-file", str(data),
            "--output-file", str(tmp_path / "sig"))
    assert r.returncode == -signal.SIGSEGV, (r.returncode, r.stdout, r.stderr)
    assert pin_shim.faulted(token) == 1
    pin_shim.set_fault(token, "C_CreateObject", "abort")
    r = p11(pin_shim, token, "--login", "--pin", token.pin, "--write-object", str(data),
            "--type", "data", "--label", "d")
    assert r.returncode == -signal.SIGABRT, (r.returncode, r.stdout, r.stderr)
    assert pin_shim.faulted(token) == 2
    pin_shim.set_fault(token, "C_GetTokenInfo", "segv")
    r = p11(pin_shim, None, "--list-slots")
    assert r.returncode == -signal.SIGSEGV, (r.returncode, r.stdout, r.stderr)
    assert pin_shim.faulted(token) == 3
    r = p11(pin_shim, token, "--login", "--pin", token.pin, "--sign", "--id", "02",
            "--mechanism", "ECDSA", "--input-file", str(data),
            "--output-file", str(tmp_path / "sig"))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert (tmp_path / "sig").stat().st_size == 64
