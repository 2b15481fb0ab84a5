# SPDX-License-Identifier: LGPL-2.1-or-later
"""dbusmock's polkitd on the test's private bus, and running clients as an
unprivileged user."""

import os
import subprocess

import pytest

from . import bus as busmod
from .safecad import wait_until

NOBODY = 65534


@pytest.fixture
def polkit(world):
    """dbusmock's polkitd template, serving org.freedesktop.PolicyKit1;
    yields set_allowed(*action_ids)."""
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=world.bus.address)
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--system", "--template",
                             "polkitd"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    conn = world.bus.connection()
    wait_until(lambda: busmod.name_has_owner(conn, "org.freedesktop.PolicyKit1"),
               message="dbusmock's polkitd on the bus")

    def set_allowed(*actions):
        mock(world, "SetAllowed", "as", str(len(actions)), *actions)
    yield set_allowed
    proc.terminate()
    proc.wait(10)


def mock(world, method, *args):
    """Calls one of dbusmock's control methods on the polkitd mock."""
    subprocess.run(["busctl", f"--address={world.bus.address}", "call",
                    "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                    "org.freedesktop.DBus.Mock", method, *args], check=True,
                   capture_output=True)


def as_user(world, argv, uid=NOBODY, pass_fds=(), timeout=120):
    """Runs a client as an unprivileged user, on the same private bus."""
    # The bus socket must be reachable by that user.
    for path in (world.dir, os.path.dirname(world.bus.socket)):
        os.chmod(path, 0o755)
    env = world.client_env()
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}",
                           "--clear-groups", "--"] + argv, env=env, pass_fds=pass_fds,
                          capture_output=True, text=True, timeout=timeout)


def as_nobody(world, argv, pass_fds=()):
    return as_user(world, argv, pass_fds=pass_fds)
