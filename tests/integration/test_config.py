# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bad input: safecad.conf, modules and CA profiles (PRODUCT.md: a
safecad.conf that cannot be parsed stops the daemon naming file and line;
a module that cannot be loaded, or a profile that cannot be parsed, is
skipped with a warning and the rest works)."""

import os
import re

import pytest

from harness.safecad import assert_sanitizer_clean, find_token
from harness.softhsm import MODULE


@pytest.mark.parametrize("text, line", [
    ("# safecad.conf\n[pkcs11]\nmodules = /usr/lib/softhsm/libsofthsm2.so\n\n"
     "[expiry]\nwarn_days = 30,14\nthis line is not ini\n", 7),
    ("; a comment\n# another\n[pkcs11\nmodules = /usr/lib/softhsm/libsofthsm2.so\n", 3),
])
def test_corrupt_config_stops_the_daemon_naming_file_and_line(world, text, line):
    path = world.write_config(text)
    d = world.start_daemon(wait=False)
    rc = d.wait_exit(timeout=20)
    log = d.log()
    d.checked = True
    d.close()
    assert rc > 0, f"safecad exited {rc} on a corrupt {path}:\n{log}"
    assert "safecad.conf" in log, log
    assert re.search(rf"(safecad\.conf:{line}\b|\bline {line}\b)", log), \
        f"no line number {line} in:\n{log}"
    assert_sanitizer_clean(log, "safecad")


def _not_a_pkcs11_library():
    """A shared library that has no C_GetFunctionList."""
    for path in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1",
                 "/lib/x86_64-linux-gnu/libm.so.6"):
        if os.path.exists(path):
            return path
    pytest.skip("no plain shared library to name as a module")


@pytest.mark.parametrize("kind", ["missing", "not-a-library", "not-pkcs11"])
def test_unloadable_module_is_skipped_with_a_warning(world, pki, kind):
    if kind == "missing":
        bad = "/nonexistent/lib/libvendor-pkcs11.so"
    elif kind == "not-a-library":
        bad = os.path.join(world.dir, "garbage-pkcs11.so")
        with open(bad, "wb") as f:
            f.write(b"this is not an ELF file\n")
    else:
        bad = _not_a_pkcs11_library()
    world.write_config(modules=(bad, MODULE))
    token = world.softhsm.create_token("Co module")
    token.add_pair(pki.issue(days_left=20), "01")
    d = world.start_daemon()
    assert bad in d.log(), d.log()
    t = find_token(world.status(), token.serial)
    assert t["profile"] == "SAFE-CA"
    assert t["days_left"] == 20
    world.rescan()  # a reload skips it again, and does not lose the token
    assert find_token(world.status(), token.serial)["days_left"] == 20


def test_default_module_is_p11_kit_proxy(world, pki):
    """Without [pkcs11] modules the daemon loads p11-kit's proxy, which
    loads SoftHSM (honouring SOFTHSM2_CONF)."""
    if not os.path.exists("/usr/share/p11-kit/modules/softhsm2.module"):
        pytest.skip("SoftHSM is not registered with p11-kit")
    world.write_config("[expiry]\nwarn_days = 30,14,7,3,1\n")
    token = world.softhsm.create_token("Qua p11-kit")
    token.add_pair(pki.issue(days_left=20), "01")
    world.start_daemon()
    assert find_token(world.status(), token.serial)["days_left"] == 20


@pytest.mark.parametrize("garbage", [
    "this is not ini at all\n[ca\nname = broken\n",
    b"\x00\xff\xfe garbage \x01\x02\n\n=====\n",
])
def test_garbage_profile_is_skipped_with_a_warning(world, pki, garbage):
    world.write_profile("broken.conf", None, None, text=garbage)
    token = world.softhsm.create_token("Ho so hong")
    token.add_pair(pki.issue(days_left=20), "01")
    d = world.start_daemon()
    warnings = [line for line in d.log().splitlines() if "broken.conf" in line]
    assert warnings, f"no warning naming broken.conf:\n{d.log()}"
    assert find_token(world.status(), token.serial)["profile"] == "SAFE-CA"


def test_config_directory_profile_overrides_the_shipped_one(world, pki):
    """$CONFIGURATION_DIRECTORY/ca.d/x.conf replaces $SAFECAD_DATADIR/ca.d/x.conf;
    other shipped profiles stay. Relative issuers paths are relative to
    each profile's own folder."""
    datadir = os.path.join(world.dir, "data")
    shipped = os.path.join(datadir, "ca.d")
    world.datadir = datadir
    os.remove(os.path.join(world.confdir, "ca.d", "safe-ca.conf"))
    world.write_profile("safe-ca.conf", "SHIPPED SAFE-CA", pki.safe_issuers_pem, folder=shipped)
    world.write_profile("other-ca.conf", "OTHER-CA", pki.other_issuers_pem, folder=shipped)
    world.write_profile("safe-ca.conf", "SAFE-CA LOCAL", pki.safe_issuers_pem)

    safe = world.softhsm.create_token("Ghi de")
    safe.add_pair(pki.issue(days_left=20), "01")
    other = world.softhsm.create_token("Khong ghi de")
    other.add_pair(pki.issue(days_left=20, ca="other"), "02")
    world.start_daemon()
    tokens = world.status()
    assert find_token(tokens, safe.serial)["profile"] == "SAFE-CA LOCAL"
    assert find_token(tokens, other.serial)["profile"] == "OTHER-CA"


def test_shipped_profile_used_without_override(world, pki):
    datadir = os.path.join(world.dir, "data")
    world.datadir = datadir
    os.remove(os.path.join(world.confdir, "ca.d", "safe-ca.conf"))
    world.write_profile("safe-ca.conf", "SHIPPED SAFE-CA", pki.safe_issuers_pem,
                        folder=os.path.join(datadir, "ca.d"))
    token = world.softhsm.create_token("Mac dinh")
    token.add_pair(pki.issue(days_left=20), "01")
    world.start_daemon()
    assert find_token(world.status(), token.serial)["profile"] == "SHIPPED SAFE-CA"
