"""safecad-manager, the Token Manager window, on real parts: Xvfb, a
session bus with its accessibility bus, the window driven through AT-SPI
as a person would (controls found by role and name, pressed; what it
shows read back), and safecad on the test's private system bus with
SoftHSM tokens, pcscd/vpcd hotplug and the reference CA."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest
from cryptography import x509

from harness.desktop import Desktop
from harness.manager import MANAGER, ManagerWindow
from harness.refca import (  # noqa: F401 - refca is a fixture
    AGENCIES, PIN, SUPPORT, activate, check, configure, refca, safectl_json, token_with_pair,
    window)
from harness.safecad import REPO, find_token, wait_until

TOOLS = ["Xvfb", "dbus-daemon", "xdotool", "import"]
HOLDER = "CÔNG TY TNHH AN PHÁT"


@pytest.fixture
def desktop(world):
    for tool in TOOLS:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not os.access(MANAGER, os.X_OK):
        pytest.skip("safecad-manager is not built (GTK 4 and libadwaita missing)")
    r = subprocess.run(["/usr/bin/python3", "-c", "import pyatspi"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("pyatspi is not installed (python3-pyatspi)")
    directory = tempfile.mkdtemp(prefix="scman-")
    d = Desktop(directory)
    d.windows = []
    problems = []
    try:
        # No notification server is needed; a plain one keeps it light.
        d.start("plain")
        yield d
    finally:
        try:
            for w in d.windows:
                problems += w.close()
            problems += d.stop()
        finally:
            for w in d.windows:
                for i, proc in enumerate(w.procs):
                    try:
                        print(f"----- safecad-manager log #{i} -----\n{w.log(proc)}")
                    except OSError:
                        pass
            shutil.rmtree(directory, ignore_errors=True)
    if problems:
        pytest.fail("teardown: " + "\n".join(problems), pytrace=False)


def open_window(world, desktop, **extra):
    w = ManagerWindow(world, desktop, **extra)
    desktop.windows.append(w)
    return w.start()


def test_lists_tokens_and_follows_hotplug(hotplug_world, pki, desktop):
    world = hotplug_world
    first, old = token_with_pair(world, pki, label="An Phat 01", days_left=20)
    world.start_daemon()
    w = open_window(world, desktop)
    w.wait_text("Token An Phat 01")
    texts = w.wait_text("20 days left")
    assert any("renew soon" in t for t in texts), texts
    assert HOLDER in texts
    assert "0101234567" in texts, "the tax code, from the subject's UID"
    assert any("The PIN is fine" in t for t in texts), texts
    assert "SAFE-CA" in texts and any(SUPPORT in t for t in texts), texts
    assert any(old.serial in t for t in texts), texts

    # A second token arrives while the window is open, then leaves.
    second, other = token_with_pair(world, pki, label="Binh Minh 02", days_left=200)
    card = world.insert_card()
    texts = w.wait_text("Token Binh Minh 02")
    assert any(t.endswith("days left") and t[:3] in ("199", "200") for t in texts), texts
    second.delete()
    card.remove()
    w.wait_no_text("Binh Minh 02")
    assert any("Token An Phat 01" in t for t in w.texts())
    w.stop()
