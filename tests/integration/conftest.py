# SPDX-License-Identifier: LGPL-2.1-or-later
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
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.pcsc import VPCD_DRIVER  # noqa: E402
from harness.pki import PKI  # noqa: E402
from harness.safecad import REPO, World  # noqa: E402

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


VI_LOCALE = "vi_VN.UTF-8"


@pytest.fixture(scope="session")
def vi_env():
    """LANG, LOCPATH and SAFECAD_LOCALEDIR for Vietnamese: the locale made
    with localedef, po/vi.po compiled with msgfmt, both in a temp folder."""
    for tool in ("localedef", "msgfmt"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (locales, gettext)")
    if not os.path.exists("/usr/share/i18n/locales/vi_VN"):
        pytest.skip("the vi_VN locale source is not installed (locales)")
    directory = tempfile.mkdtemp(prefix="scit-i18n-")
    try:
        locpath = os.path.join(directory, "locale")
        localedir = os.path.join(directory, "share", "locale")
        messages = os.path.join(localedir, "vi", "LC_MESSAGES")
        os.makedirs(locpath)
        os.makedirs(messages)
        # Exit 1 means warnings; the locale is made all the same.
        r = subprocess.run(["localedef", "-i", "vi_VN", "-f", "UTF-8",
                            os.path.join(locpath, "vi_VN.utf8")],
                           capture_output=True, text=True, timeout=120)
        assert os.path.exists(os.path.join(locpath, "vi_VN.utf8", "LC_MESSAGES")), \
            f"localedef exited {r.returncode}: {r.stdout}{r.stderr}"
        r = subprocess.run(["msgfmt", "--check", "-o", os.path.join(messages, "safecad.mo"),
                            os.path.join(REPO, "po", "vi.po")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"msgfmt po/vi.po: {r.stderr}"
        yield {"LANG": VI_LOCALE, "LOCPATH": locpath, "SAFECAD_LOCALEDIR": localedir}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
