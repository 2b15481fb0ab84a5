# SPDX-License-Identifier: LGPL-2.1-or-later
"""Removing the pair the latest activation replaced: refused while Step 3
is open (unless forced), never the current certificate or a key it uses,
the removed certificate kept in the history, and journaled: a crash leaves
the replaced certificate and its key both there or both gone, and the
current pair always working."""

import json
import os
import subprocess

import pytest

from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SAFECTL, activate, certificates, check, find_cert, openssl_verify, private_keys,
    refca, sign_and_verify, stopped_by_crash, token_with_pair, window)
from harness.safecad import find_token


def remove(world, *extra):
    r, w = os.pipe()
    os.write(w, (PIN + "\n").encode())
    os.close(w)
    try:
        return subprocess.run([SAFECTL, "remove-previous", "--yes", "--pin-fd", str(r)] +
                              list(extra), env=world.client_env(), capture_output=True,
                              text=True, timeout=60, pass_fds=(r,))
    finally:
        os.close(r)


def renewed(world, pki, refca, key=None, **daemon_env):
    """A token whose pair was renewed (TH1, or TH2 with key={"generate": False})."""
    token, old = token_with_pair(world, pki)
    extra = {"key": key} if key else {}
    refca.add_action(old, type="renew" if not key else "change", **extra, **window())
    world.start_daemon(**daemon_env)
    check(world, token.serial)
    run = activate(world, token.serial)
    assert run.rc == 0, run
    new_serial = refca.requests("issue")[-1]["issued_serial"]
    return token, old, new_serial


def has_cert(token, serial):
    try:
        find_cert(token, serial)
        return True
    except AssertionError:
        return False


def history(world):
    rc, out, err = world.safectl("history", json_out=True)
    assert rc == 0, err
    return json.loads(out)["activations"]


def test_refused_while_step_3_is_open_then_forced(world, pki, refca):
    token, old, new_serial = renewed(world, pki, refca)
    run = remove(world)
    assert run.returncode == 1 and "agencies" in run.stderr, run
    assert has_cert(token, old.serial) and len(private_keys(token)) == 2

    run = remove(world, "--force")
    assert run.returncode == 0, run
    assert not has_cert(token, old.serial)
    keys = private_keys(token)
    new_obj, new_cert = find_cert(token, new_serial)
    assert [k["id"] for k in keys] == [new_obj["id"]], keys
    sign_and_verify(token, new_obj["id"], new_cert)
    openssl_verify(pki, new_cert, world.dir)
    entry = history(world)[0]
    assert "BEGIN CERTIFICATE" in entry.get("removed_certificate", ""), entry
    t = find_token(world.status(), token.serial)
    assert [c["serial"] for c in t["certificates"]] == [new_serial], t


def test_all_ticked_then_removed_without_force(world, pki, refca):
    token, old, new_serial = renewed(world, pki, refca)
    ids = [a["id"] for a in history(world)[0]["agencies"]]
    rc, out, err = world.safectl("agencies", "done", *ids)
    assert rc == 0, err
    run = remove(world)
    assert run.returncode == 0, run
    assert not has_cert(token, old.serial)


def test_a_recertified_key_stays(world, pki, refca):
    token, old, new_serial = renewed(world, pki, refca,
                                     key={"generate": False, "type": "rsa", "bits": 2048})
    run = remove(world, "--force")
    assert run.returncode == 0 and "stays" in run.stdout, run
    assert not has_cert(token, old.serial)
    assert [k["id"] for k in private_keys(token)] == ["01"]
    new_obj, new_cert = find_cert(token, new_serial)
    sign_and_verify(token, "01", new_cert)


@pytest.mark.parametrize("step,gone", [("removal-started", False), ("removal-key-gone", True)])
def test_killed_during_removal(world, pki, refca, step, gone):
    token, old, new_serial = renewed(world, pki, refca, SAFECAD_TEST_CRASH_AT=step)
    daemon = world.daemons[-1]
    run = remove(world, "--force")
    assert run.returncode != 0, run
    assert stopped_by_crash(daemon) == -9
    world.start_daemon()  # its first scan finishes or undoes the removal
    new_obj, new_cert = find_cert(token, new_serial)
    sign_and_verify(token, new_obj["id"], new_cert)
    openssl_verify(pki, new_cert, world.dir)
    keys = {k["id"] for k in private_keys(token)}
    if gone:
        assert not has_cert(token, old.serial) and keys == {new_obj["id"]}, keys
    else:
        assert has_cert(token, old.serial) and keys == {"01", new_obj["id"]}
        sign_and_verify(token, "01", old.cert)
