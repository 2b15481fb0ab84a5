"""Fixtures for safecad's integration tests.

Every test gets its own folder under /tmp (short, for socket paths), its own
private system bus, SoftHSM token folder and safecad configuration; a test
that needs hotplug starts its own pcscd (world.start_pcscd()). Teardown
stops every process it started (process groups), checks that each daemon
still running exits 0 on SIGTERM with a sanitizer-clean log, and removes the
folder, also when the test failed.
"""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.pcsc import VPCD_DRIVER  # noqa: E402
from harness.pki import PKI  # noqa: E402
from harness.safecad import World  # noqa: E402

REQUIRED_TOOLS = ["dbus-daemon", "softhsm2-util", "pkcs11-tool"]
HOTPLUG_TOOLS = ["pcscd", "unshare", "mount"]


def _require(tools):
    for tool in tools:
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="session")
def pki():
    directory = tempfile.mkdtemp(prefix="scit-pki-")
    try:
        yield PKI(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def world(pki, request):
    _require(REQUIRED_TOOLS)
    directory = tempfile.mkdtemp(prefix="scit-")
    w = World(directory, pki)
    problems = []
    try:
        yield w
    finally:
        try:
            problems = w.teardown()
        finally:
            # Shown by pytest only when the test fails.
            for i, d in enumerate(w.daemons):
                try:
                    print(f"----- safecad log #{i} -----\n{d.log()}")
                except OSError:
                    pass
            if w.pcscd:
                print(f"----- pcscd log -----\n{w.pcscd.log()}")
            shutil.rmtree(directory, ignore_errors=True)
    if problems:
        pytest.fail("teardown: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def hotplug_world(world):
    """A world with its own pcscd and vpcd reader."""
    _require(HOTPLUG_TOOLS)
    if not os.path.exists(VPCD_DRIVER):
        pytest.skip("vsmartcard-vpcd is not installed")
    world.start_pcscd()
    return world
