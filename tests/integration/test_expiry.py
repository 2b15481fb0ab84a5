# SPDX-License-Identifier: LGPL-2.1-or-later
"""Expiry warnings: a certificate past one of [expiry] warn_days is warned
about once (a log line, and ExpiryWarning on the token's object), one
further away is not."""

from harness.refca import token_with_pair
from harness.safecad import lines_matching


def test_warned_once_at_the_threshold(world, pki):
    token, _ = token_with_pair(world, pki, days_left=20.5)
    daemon = world.start_daemon()
    world.rescan()
    world.rescan()
    lines = lines_matching(daemon.log(), "expires in", token.serial)
    assert len(lines) == 1, daemon.log()
    assert "20 day(s)" in lines[0], lines


def test_not_warned_far_from_expiry(world, pki):
    token, _ = token_with_pair(world, pki, days_left=40.5)
    daemon = world.start_daemon()
    world.rescan()
    assert lines_matching(daemon.log(), "expires in") == [], daemon.log()
