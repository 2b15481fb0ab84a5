# SPDX-License-Identifier: LGPL-2.1-or-later
"""A PKCS#11 module that crashes or hangs costs one job, not the service.

The daemon loads the PIN shim (tests/pin-shim) in front of SoftHSM, and the
shim crashes (SIGSEGV, abort) or never returns in the call a test names:
C_GetSlotList in a scan, C_Login, C_GenerateKeyPair, C_Sign or
C_CreateObject in an activation. For each: the daemon stays on the bus, a
second token keeps answering and activating, the job ends with
org.safecad.Error.DriverFailed in words that say the token's driver failed
(safectl exit 1), and a later attempt without the fault completes with the
same key. Then the worker itself killed at every journal step, and the
daemon killed while a worker runs: no worker is left behind, and the next
activation completes with the same key."""

import os
import signal
import time

import pytest

from harness.pinshim import pin_shim, use  # noqa: F401 - pin_shim is a fixture
from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, activate, certificates, check, configure, find_cert, finish_activate, key_sha256,
    private_keys, refca, sign_and_verify, start_activate, stopped_by_crash, token_with_pair,
    window, working_pairs)
from harness.safecad import child_pids, find_token, wait_until
from test_i18n import safectl as i18n_safectl

STEPS = ["accepted", "logged-in", "key-ready", "csr-sent", "issued", "verified", "written"]
# The limits the hang tests run with ([pkcs11] in safecad.conf).
CALL_TIMEOUT = 3
KEYGEN_TIMEOUT = 6


@pytest.fixture
def shim(world, refca):
    configure(world, refca, timeout=20)
    return use(world)


def with_limits(world, call_timeout=CALL_TIMEOUT, keygen_timeout=KEYGEN_TIMEOUT):
    """Adds [pkcs11] limits to the world's safecad.conf."""
    path = os.path.join(world.confdir, "safecad.conf")
    with open(path) as f:
        text = f.read()
    text = text.replace("[pkcs11]\n", f"[pkcs11]\ncall_timeout = {call_timeout}\n"
                        f"keygen_timeout = {keygen_timeout}\n", 1)
    with open(path, "w") as f:
        f.write(text)


def two_tokens(world, pki, refca):
    """Tokens A and B, each with a pair and a pending renewal (new key);
    the daemon started and the CA asked. Returns ((token, old, action) of
    A, the same of B)."""
    out = []
    for label in ("Faulty 01", "Healthy 02"):
        token, old = token_with_pair(world, pki, label=label)
        out.append((token, old, refca.add_action(old, **window())))
    world.start_daemon()
    for token, _, _ in out:
        check(world, token.serial)
    return out


def assert_daemon_alive(world):
    daemon = world.daemons[-1]
    assert daemon.proc.poll() is None, f"safecad died:\n{daemon.log()}"


def assert_completed_with_one_key(refca, token, old):
    """Every issue request certified the same key, the token holds it with
    its certificate, and both pairs work."""
    issues = [i for i in refca.requests("issue") if i["status"] == 200]
    on_token = {format(c.serial_number, "x") for _, c in certificates(token)}
    mine = [i for i in issues if i["issued_serial"] in on_token]
    assert mine, f"no certificate of an issue request is on the token: {issues}"
    keys = {i["csr_key_sha256"] for i in mine}
    assert len(keys) == 1, f"a second key was certified: {mine}"
    new_obj, new_cert = find_cert(token, mine[-1]["issued_serial"])
    assert key_sha256(new_cert) in keys
    assert len(private_keys(token)) == 2, private_keys(token)
    sign_and_verify(token, new_obj["id"], new_cert)
    sign_and_verify(token, "01", old.cert)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


# --- a module that crashes or hangs in an activation -------------------------


@pytest.mark.parametrize("kind", ["segv", "abort", "hang"])
@pytest.mark.parametrize("call", ["C_Login", "C_GenerateKeyPair", "C_Sign", "C_CreateObject"])
def test_driver_failure_costs_one_job(world, pki, refca, shim, call, kind):
    if kind == "hang":
        with_limits(world)
    (a, a_old, a_action), (b, b_old, b_action) = two_tokens(world, pki, refca)
    shim.set_fault(a, call, kind)

    t0 = time.monotonic()
    run = activate(world, a.serial, a_action["id"])
    took = time.monotonic() - t0
    assert run.rc == 1, run
    assert shim.faulted(a) == 1, shim.read(a)
    assert "driver failed" in run.text, run
    assert call in world.daemons[-1].log(), world.daemons[-1].log()
    if kind == "hang":
        limit = KEYGEN_TIMEOUT if call == "C_GenerateKeyPair" else CALL_TIMEOUT
        assert f"within {limit} s" in run.text, run
        assert took >= limit, f"stopped after {took:.1f} s, before the {limit} s limit"
    assert_daemon_alive(world)
    # The old pair is as it was, and working.
    assert ("01", a_old.cert) in working_pairs(a)

    # The other token answers and activates meanwhile.
    tokens = world.status()
    assert find_token(tokens, b.serial)["present"] is True
    run_b = activate(world, b.serial, b_action["id"])
    assert run_b.rc == 0, run_b
    assert_completed_with_one_key(refca, b, b_old)

    # The faulty token's activation, tried again without the fault,
    # completes with the key the failed attempt made (if it made one).
    run = activate(world, a.serial, a_action["id"])
    assert run.rc == 0, run
    assert_completed_with_one_key(refca, a, a_old)
    t = find_token(world.status(), a.serial)
    assert t["activation"] is None and t["pending"] == [], t
    assert_daemon_alive(world)


# --- a module that crashes or hangs in a scan ----------------------------------


@pytest.mark.parametrize("kind", ["segv", "abort", "hang"])
def test_scan_survives_a_driver_failure(world, pki, refca, shim, kind):
    """A fault in C_GetSlotList: the scan's worker goes, the scan is made
    again with a new one, and the tokens stay listed."""
    if kind == "hang":
        with_limits(world)
    (a, _, _), (b, _, _) = two_tokens(world, pki, refca)
    shim.set_fault(None, "C_GetSlotList", kind)
    world.rescan()
    assert shim.faulted(None) == 1
    assert_daemon_alive(world)
    serials = {t["serial"] for t in world.status() if t["present"]}
    assert {a.serial, b.serial} <= serials
    assert "C_GetSlotList" in world.daemons[-1].log()


def test_scan_failing_twice_keeps_the_tokens_as_they_were(world, pki, refca, shim):
    (a, _, _), (b, _, a_action) = two_tokens(world, pki, refca)
    shim.set_fault(None, "C_GetSlotList", "segv", times=2)
    world.rescan()
    assert shim.faulted(None) == 2
    assert_daemon_alive(world)
    serials = {t["serial"] for t in world.status() if t["present"]}
    assert {a.serial, b.serial} <= serials
    # The next scan works again.
    world.rescan()
    assert shim.faulted(None) == 2
    serials = {t["serial"] for t in world.status() if t["present"]}
    assert {a.serial, b.serial} <= serials


# --- the worker killed at each journal step ----------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_worker_killed_at_step_then_resumed(world, pki, refca, shim, step):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, **window())
    once = os.path.join(world.dir, "worker-crashed")
    world.start_daemon(SAFECAD_TEST_CRASH_WORKER_AT=step, SAFECAD_TEST_CRASH_WORKER_ONCE=once)
    check(world, token.serial)

    run = activate(world, token.serial, action["id"])
    assert run.rc == 1, run
    assert "stopped unexpectedly" in run.text, run
    assert_daemon_alive(world)
    assert ("01", old.cert) in working_pairs(token)
    assert len(private_keys(token)) <= 2
    assert os.path.exists(once)

    # The same daemon carries on from the journal the worker left.
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert_completed_with_one_key(refca, token, old)
    assert [c["status"] for c in refca.requests("confirm")] == [200]


# --- the daemon killed while a worker runs -------------------------------------


def test_daemon_killed_while_a_worker_runs(world, pki, refca, shim):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, **window())
    daemon = world.start_daemon()
    check(world, token.serial)
    refca.fault("issue", "slow", seconds=8)

    started = start_activate(world, token.serial, action["id"])
    try:
        wait_until(lambda: (find_token(world.status(), token.serial)["activation"] or {})
                   .get("step") == "csr-sent", timeout=20, message="csr-sent")
        workers = child_pids(daemon.pid)
        assert workers, "no worker runs the activation"
        os.kill(daemon.pid, signal.SIGKILL)
    except BaseException:
        started[0].kill()
        raise
    run = finish_activate(started)
    assert run.rc != 0, run
    assert stopped_by_crash(daemon) == -9
    # The daemon's end takes its workers with it.
    wait_until(lambda: not any(alive(p) for p in workers), timeout=5,
               message="the workers to end with the daemon")
    assert ("01", old.cert) in working_pairs(token)

    world.start_daemon()
    check(world, token.serial)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert_completed_with_one_key(refca, token, old)


def test_daemon_starts_when_the_first_scan_fails(world, pki, refca, shim):
    """A module that crashes at start-up keeps nobody off the bus: the
    daemon starts with no tokens and the next scan lists them."""
    token, _ = token_with_pair(world, pki)
    shim.set_fault(None, "C_GetSlotList", "abort", times=2)
    world.start_daemon()
    assert shim.faulted(None) == 2
    assert [t for t in world.status() if t["present"]] == []
    world.rescan()
    assert find_token(world.status(), token.serial)["present"] is True


# --- where a worker may write ----------------------------------------------------


def allow_writes(world, *paths):
    """Sets [pkcs11] writable_paths in the world's safecad.conf."""
    path = os.path.join(world.confdir, "safecad.conf")
    with open(path) as f:
        text = f.read()
    text = text.replace("[pkcs11]\n", f"[pkcs11]\nwritable_paths = {', '.join(paths)}\n", 1)
    with open(path, "w") as f:
        f.write(text)


def probe(world, shim, path, run):
    """Has the next worker try to write `path` while `run()` makes it
    scan or work; returns the errno it met (0: written)."""
    shim.probe_write(path)
    run()
    wait_until(lambda: shim.probe_result() is not None, timeout=20,
               message=f"the write probe of {path}")
    return shim.probe_result()


def test_scan_worker_writes_only_where_allowed(world, pki, refca, shim):
    """A module in a scan worker writes to the state folder and to the
    folders safecad.conf allows, and nowhere else (Landlock)."""
    token, _ = token_with_pair(world, pki)
    allowed = os.path.join(world.dir, "module-locks")
    other = os.path.join(world.dir, "elsewhere")
    os.makedirs(allowed)
    os.makedirs(other)
    allow_writes(world, world.softhsm.directory, shim.dir, allowed)
    world.start_daemon()
    assert find_token(world.status(), token.serial)["present"] is True

    assert probe(world, shim, os.path.join(allowed, "lock"), world.rescan) == 0
    assert os.path.exists(os.path.join(allowed, "lock"))
    assert probe(world, shim, os.path.join(world.statedir, "probe"), world.rescan) == 0
    for path in (os.path.join(other, "f"), os.path.join(world.confdir, "safecad.conf.new"),
                 os.path.join(world.dir, "f")):
        assert probe(world, shim, path, world.rescan) == 13, path  # EACCES
        assert not os.path.exists(path), path
    # The token is still served, by a worker that keeps to its folders.
    assert find_token(world.status(), token.serial)["present"] is True
    assert_daemon_alive(world)


def test_activation_worker_writes_only_where_allowed(world, pki, refca, shim):
    """An activation's worker is held to the same folders, and the
    activation completes inside them."""
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, **window())
    other = os.path.join(world.dir, "elsewhere")
    os.makedirs(other)
    allow_writes(world, world.softhsm.directory, shim.dir)
    world.start_daemon()
    check(world, token.serial)

    target = os.path.join(other, "f")
    shim.probe_write(target)
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert shim.probe_result() == 13
    assert not os.path.exists(target)
    assert_completed_with_one_key(refca, token, old)


# --- the crash said in the daemon's language ------------------------------------


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_the_crash_is_named_in_the_daemons_language(world, pki, refca, shim, vi_env, lang):
    """The signal a driver died of is named in words the reader has, not
    in the daemon's C locale."""
    env = vi_env if lang == "vi" else dict(vi_env, LANG="C.UTF-8")
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, **window())
    world.start_daemon(**env)
    check(world, token.serial)
    shim.set_fault(token, "C_Sign", "segv")

    rc, out, err = i18n_safectl(world, env, "activate", token.serial, action["id"], "--yes",
                                pin=PIN)
    assert rc == 1, out + err
    if lang == "vi":
        assert "nó bị sập (Lỗi phân đoạn bộ nhớ)" in err, err
        assert "Segmentation fault" not in err, err
    else:
        assert "it crashed (Segmentation fault)" in err, err
    assert_daemon_alive(world)
