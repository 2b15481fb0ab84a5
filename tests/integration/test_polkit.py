# SPDX-License-Identifier: LGPL-2.1-or-later
"""Authorization with dbusmock's polkitd on the private bus: an allowed
caller activates, a denied caller gets AccessDenied (exit 6) and nothing
happens, root skips polkit, and export is polkit's too."""

import os

from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SAFECTL, activate, check, private_keys, refca, token_with_pair, window)
from harness.polkit import as_nobody, polkit  # noqa: F401 - polkit is a fixture
from harness.safecad import find_token


def pin_pipe():
    r, w = os.pipe()
    os.write(w, (PIN + "\n").encode())
    os.close(w)
    return r


def test_denied_caller_gets_exit_6_and_nothing_happens(world, pki, refca, polkit):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    polkit("org.safecad.export")
    fd = pin_pipe()
    try:
        run = as_nobody(world, [SAFECTL, "activate", token.serial, action["id"], "--yes",
                                "--pin-fd", str(fd)], pass_fds=(fd,))
    finally:
        os.close(fd)
    assert run.returncode == 6, run
    assert "org.safecad.activate" in run.stderr, run.stderr
    assert refca.requests("issue") == []
    assert len(private_keys(token)) == 1
    t = find_token(world.status(), token.serial)
    assert t["activation"] is None and len(t["certificates"]) == 1

    # Ticking agencies is org.safecad.manage: refused too.
    run = as_nobody(world, [SAFECTL, "agencies", "done", "tax"])
    assert run.returncode in (2, 6), run


def test_allowed_caller_activates(world, pki, refca, polkit):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, type="renew", **window())
    world.start_daemon()
    check(world, token.serial)
    polkit("org.safecad.activate", "org.safecad.export", "org.safecad.manage")
    fd = pin_pipe()
    try:
        run = as_nobody(world, [SAFECTL, "activate", token.serial, action["id"], "--yes",
                                "--pin-fd", str(fd)], pass_fds=(fd,))
    finally:
        os.close(fd)
    assert run.returncode == 0, run
    assert len(private_keys(token)) == 2
    run = as_nobody(world, [SAFECTL, "agencies", "done", "tax"])
    assert run.returncode == 0, run


def test_export_follows_polkit_and_root_skips_it(world, pki, polkit):
    token, old = token_with_pair(world, pki)
    world.start_daemon()
    polkit()  # nothing allowed
    run = as_nobody(world, [SAFECTL, "export", token.serial])
    assert run.returncode == 6, run
    polkit("org.safecad.export")
    run = as_nobody(world, [SAFECTL, "export", token.serial])
    assert run.returncode == 0 and "BEGIN CERTIFICATE" in run.stdout, run
    # Root is never asked: polkit (which allows nothing now) is skipped.
    polkit()
    rc, out, err = world.safectl("export", token.serial)
    assert rc == 0 and "BEGIN CERTIFICATE" in out, err
