# SPDX-License-Identifier: LGPL-2.1-or-later
"""safectl: naming a token, show, errors, the human status."""

import json
import re
import urllib.parse

import pytest

from harness.safecad import find_token


@pytest.fixture
def two_tokens(world, pki):
    near = world.softhsm.create_token("An Phát 01")
    near_cert = pki.issue(days_left=20)
    near.add_pair(near_cert, "01")
    far = world.softhsm.create_token("Binh Minh")
    far_cert = pki.issue(days_left=200)
    far.add_pair(far_cert, "02")
    world.start_daemon()
    return near, far


def _uri_escape(text):
    return urllib.parse.quote(text, safe="")


def test_show_by_serial_label_and_uri(world, two_tokens):
    near, far = two_tokens
    tokens = world.status()
    for token in (near, far):
        want = find_token(tokens, token.serial)
        for name in (token.serial, token.label, f"pkcs11:token={_uri_escape(token.label)}",
                     f"pkcs11:serial={token.serial}",
                     f"pkcs11:token={_uri_escape(token.label)};serial={token.serial}"):
            rc, out, err = world.safectl("show", name, json_out=True)
            assert rc == 0, f"show {name!r} exited {rc}: {out}{err}"
            assert json.loads(out) == want, f"show {name!r}"
            rc, out, err = world.safectl("show", name)
            assert rc == 0, f"show {name!r} exited {rc}: {out}{err}"
            assert token.serial in out or token.label in out, out


def test_show_unknown_token_exits_1_and_lists_the_tokens(world, two_tokens):
    near, far = two_tokens
    for name in ("no-such-token", "pkcs11:token=Nobody", "pkcs11:serial=0000"):
        rc, out, err = world.safectl("show", name)
        assert rc == 1, f"show {name!r} exited {rc}: {out}{err}"
        text = out + err
        for token in (near, far):
            assert token.serial in text or token.label in text, \
                f"show {name!r} does not list {token}: {text}"


def test_show_without_token_needs_exactly_one(world, pki):
    only = world.softhsm.create_token("Duy nhat")
    only.add_pair(pki.issue(days_left=20), "01")
    world.start_daemon()
    rc, out, err = world.safectl("show", json_out=True)
    assert rc == 0, out + err
    assert json.loads(out)["serial"] == only.serial


def test_show_without_token_among_several_exits_1_with_the_list(world, two_tokens):
    rc, out, err = world.safectl("show")
    assert rc == 1, out + err
    for token in two_tokens:
        assert token.serial in out + err or token.label in out + err


def test_daemon_not_running_exits_1(world):
    for args, json_out in ((("status",), True), (("status",), False), (("show", "x"), False),
                           ((), False)):
        rc, out, err = world.safectl(*args, json_out=json_out)
        assert rc == 1, f"safectl {args} without the daemon exited {rc}: {out}{err}"
        assert err.strip(), "no message on stderr"


def test_json_status_is_one_object_with_tokens(world, two_tokens):
    rc, out, err = world.safectl("status", json_out=True)
    assert rc == 0
    obj = json.loads(out)  # exactly one JSON document
    assert list(obj) == ["tokens"] or "tokens" in obj
    assert len(obj["tokens"]) == 2


def test_human_status_shows_days_left_and_marks_under_30(world, two_tokens):
    near, far = two_tokens
    rc, out, err = world.safectl("status")
    assert rc == 0, out + err
    rc2, out2, _ = world.safectl()  # status is the default verb
    assert rc2 == 0 and out2 == out
    assert near.label in out and far.label in out, out

    def block(token, other):
        """The lines about `token`: from its label up to the other's."""
        lines = out.splitlines()
        start = next(i for i, line in enumerate(lines) if token.label in line)
        end = next((i for i, line in enumerate(lines) if i > start and other.label in line),
                   len(lines))
        return "\n".join(lines[start:end])

    near_text, far_text = block(near, far), block(far, near)
    assert re.search(r"\b20\b", near_text), near_text
    assert re.search(r"\b200\b", far_text), far_text
    # The mark: something the under-30 token's lines carry and the other's do not.
    marks = set(re.findall(r"[^\w\s:.,()\-/]|\b[A-Z]{3,}\b", near_text))
    far_marks = set(re.findall(r"[^\w\s:.,()\-/]|\b[A-Z]{3,}\b", far_text))
    assert marks - far_marks, (
        f"no mark for the token under 30 days:\n--- near ---\n{near_text}\n--- far ---\n"
        f"{far_text}")
