# SPDX-License-Identifier: LGPL-2.1-or-later
"""What status shows for the certificates on a token (PRODUCT.md, "The
current certificate …"), found at the daemon's start (no pcscd needed)."""

import datetime

from harness.expect import assert_token, expected_token
from harness.pki import utcnow
from harness.safecad import find_token


def test_certificates_order_current_and_days_left(world, pki):
    w = world
    token = w.softhsm.create_token("Nhieu chung thu")
    valid = pki.issue(days_left=20)                          # current
    renewed = pki.issue(days_left=400, starts_in_days=2)    # starts in the future
    expired = pki.issue(days_left=-5, starts_in_days=-400)
    keyless = pki.issue(days_left=100)                       # later, but no key
    token.add_pair(valid, "0a")
    token.add_pair(renewed, "0b")
    token.add_pair(expired, "0c")
    token.add_cert(keyless, "0d")
    token.add_key(pki.key(), "0e")                           # a key without certificate
    w.start_daemon()

    assert_token(find_token(w.status(), token.serial), expected_token(
        token,
        [(renewed, "0b", False), (keyless, "0d", False), (valid, "0a", True),
         (expired, "0c", False)],
        profile="SAFE-CA", days_left=20))


def test_expired_only_token_has_negative_days_left(world, pki):
    w = world
    token = w.softhsm.create_token("Het han")
    latest = pki.issue(days_left=-5, starts_in_days=-400)
    older = pki.issue(days_left=-40, starts_in_days=-500)
    token.add_pair(older, "1b")
    token.add_pair(latest, "1a")
    w.start_daemon()
    assert latest.days_left() == -5
    assert_token(find_token(w.status(), token.serial), expected_token(
        token, [(latest, "1a", True), (older, "1b", False)], profile="SAFE-CA", days_left=-5))


def test_expired_hours_ago_is_negative(world, pki):
    """days_left is rounded down: 12 hours after not_after it is -1, not 0."""
    w = world
    token = w.softhsm.create_token("Vua het han")
    now = utcnow()
    cert = pki.issue(not_before=now - datetime.timedelta(days=300),
                     not_after=now - datetime.timedelta(hours=12))
    token.add_pair(cert, "1c")
    w.start_daemon()
    t = find_token(w.status(), token.serial)
    assert t["days_left"] == -1, t


def test_tokens_without_certificate_and_other_ca_and_ec(world, pki):
    w = world
    empty = w.softhsm.create_token("Trong")
    key_only = w.softhsm.create_token("Chi co khoa")
    key_only.add_key(pki.key(), "20")
    cert_only = w.softhsm.create_token("Chi co chung thu")
    cert_only_cert = pki.issue(days_left=20)
    cert_only.add_cert(cert_only_cert, "21")
    other = w.softhsm.create_token("CA khac")
    other_cert = pki.issue(days_left=50, ca="other")
    other.add_pair(other_cert, "22")
    ec_token = w.softhsm.create_token("Khoa EC")
    ec_cert = pki.issue(days_left=60, key_kind="ec")
    ec_token.add_pair(ec_cert, "23ec")
    w.start_daemon()

    tokens = w.status()
    # Only the initialized tokens: SoftHSM's free slot is not listed.
    assert sorted(t["serial"] for t in tokens) == sorted(
        t.serial for t in (empty, key_only, cert_only, other, ec_token))

    assert_token(find_token(tokens, empty.serial),
                 expected_token(empty, [], profile=None, days_left=None))
    assert_token(find_token(tokens, key_only.serial),
                 expected_token(key_only, [], profile=None, days_left=None))
    # A certificate without its key on the token is never current.
    t = find_token(tokens, cert_only.serial)
    assert t["days_left"] is None, t
    assert [c["current"] for c in t["certificates"]] == [False], t
    assert_token(find_token(tokens, other.serial),
                 expected_token(other, [(other_cert, "22", True)], profile=None,
                                days_left=50))
    assert_token(find_token(tokens, ec_token.serial),
                 expected_token(ec_token, [(ec_cert, "23ec", True)], profile="SAFE-CA",
                                days_left=60))


def test_current_ties_later_not_before_then_greater_serial(world, pki):
    w = world
    now = utcnow()
    not_after = now + datetime.timedelta(days=30, hours=1)
    by_start = w.softhsm.create_token("Hoa theo ngay")
    early = pki.issue(not_before=now - datetime.timedelta(days=30), not_after=not_after,
                      serial=0x7000)
    late = pki.issue(not_before=now - datetime.timedelta(days=10), not_after=not_after,
                     serial=0x6000)
    by_start.add_pair(early, "30")
    by_start.add_pair(late, "31")
    by_serial = w.softhsm.create_token("Hoa theo so")
    nb = now - datetime.timedelta(days=5)
    small = pki.issue(not_before=nb, not_after=not_after, serial=0xFFF)
    big = pki.issue(not_before=nb, not_after=not_after, serial=0x1000)
    by_serial.add_pair(small, "32")
    by_serial.add_pair(big, "33")
    w.start_daemon()

    tokens = w.status()
    t = find_token(tokens, by_start.serial)
    current = {c["serial"]: c["current"] for c in t["certificates"]}
    assert current == {"6000": True, "7000": False}, t
    assert t["days_left"] == 30
    t = find_token(tokens, by_serial.serial)
    current = {c["serial"]: c["current"] for c in t["certificates"]}
    assert current == {"1000": True, "fff": False}, t


def test_status_times_and_names_format(world, pki):
    w = world
    token = w.softhsm.create_token("Dinh dang")
    cert = pki.issue(days_left=20)
    token.add_pair(cert, "40")
    w.start_daemon()
    c = find_token(w.status(), token.serial)["certificates"][0]
    for field in ("not_before", "not_after"):
        datetime.datetime.strptime(c[field], "%Y-%m-%dT%H:%M:%SZ")
    assert c["subject"][-1] == ["UID", "MST:0101234567"]
    assert ["CN", "CÔNG TY TNHH AN PHÁT"] in c["subject"]
    assert c["issuer"][-1] == ["CN", "SAFE-CA SHA-256 2020"]
