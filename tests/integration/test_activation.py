# SPDX-License-Identifier: LGPL-2.1-or-later
"""Activation end to end: safectl → safecad → the reference CA → the
SoftHSM token, checked afterwards with pkcs11-tool and openssl (TH1
renewal with a new key, TH2 change re-certifying the key, the wrong PIN,
what `pending` shows, two tokens at once)."""

import json
import os
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from harness.refca import (  # noqa: F401 - refca is a fixture
    AGENCIES, PIN, activate, certificates, check, der_b64, find_cert, finish_activate,
    key_sha256, objects, openssl_verify, private_keys, refca, safectl_json, sign_and_verify,
    snapshot, assert_unchanged, start_activate, token_with_pair, window)
from harness.safecad import find_token

LONG_O = ("CÔNG TY TRÁCH NHIỆM HỮU HẠN THƯƠNG MẠI VÀ DỊCH VỤ XUẤT NHẬP KHẨU "
          "AN PHÁT HÀ NỘI")


def one(requests, what):
    assert len(requests) == 1, f"want exactly one {what} request, got {len(requests)}: {requests}"
    return requests[0]


def assert_generated_on_token(token, key_id):
    """The new private key: generated on the token (local), private,
    sensitive, not extractable."""
    keys = [o for o in private_keys(token) if o["id"] == key_id]
    assert len(keys) == 1, f"private key {key_id}: {keys}"
    flags = keys[0]["access_flags"]
    assert "sensitive" in flags, keys[0]
    assert "never extractable" in flags and "extractable" not in flags, keys[0]
    assert "local" in flags, f"not generated on the token: {keys[0]}"
    public = [o for o in objects(token, login=False) if o["kind"] == "privkey"]
    assert public == [], f"private keys visible without login (CKA_PRIVATE false): {public}"


def assert_history(world, token, action, old, new_serial, completed=True):
    history = safectl_json(world, "history")["activations"]
    entry = [h for h in history if h["action"] == action["id"]]
    assert len(entry) == 1, history
    h = entry[0]
    assert h["type"] == action["type"]
    assert h["token"] == token.serial
    assert h["old_serial"] == old.serial
    assert h["new_serial"] == new_serial
    assert (h["completed"] is not None) == completed, h
    assert [a["id"] for a in h["agencies"]] == AGENCIES, h
    assert all(a["done"] is False for a in h["agencies"]), h
    assert h["agencies"][0]["name"] == "Thuế điện tử (Tổng cục Thuế)"
    assert h["agencies"][0]["url"] == "https://thuedientu.gdt.gov.vn"
    return h


@pytest.mark.parametrize("old_kind,key", [
    ("rsa", {"generate": True, "type": "rsa", "bits": 2048}),
    ("ec", {"generate": True, "type": "ec", "curve": "P-256"}),
    ("rsa", {"generate": True, "type": "rsa", "bits": 3072}),
], ids=["rsa2048", "ec-p256", "rsa3072"])
def test_th1_renewal_with_a_new_key(world, pki, refca, old_kind, key):
    token, old = token_with_pair(world, pki, key_kind=old_kind)
    action = refca.add_action(old, type="renew", key=key,
                              message="Gia hạn chứng thư số 1 năm.", **window(400))
    world.start_daemon()
    check(world, token.serial)
    assert find_token(world.status(), token.serial)["pending"] == [action]

    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run

    # The CA: exactly one issue and one confirm, a nonce for each.
    issue = one(refca.requests("issue"), "issue")
    confirm = one(refca.requests("confirm"), "confirm")
    assert issue["status"] == 200 and confirm["status"] == 200, (issue, confirm)
    assert len(refca.requests("nonce")) == 2
    header = issue["jws_header"]
    assert header["alg"] == ("RS256" if old_kind == "rsa" else "ES256")
    assert header["x5c"][0] == der_b64(old.cert)
    assert header["url"] == f"{refca.url}/actions/{action['id']}/issue"
    new_serial = issue["issued_serial"]
    assert confirm["payload"] == {"installed_serial": new_serial, "keep_previous": True}
    assert confirm["jws_header"]["alg"] == ("RS256" if key["type"] == "rsa" else "ES256")
    assert confirm["jws_header"]["url"] == f"{refca.url}/actions/{action['id']}/confirm"

    # The token: the new certificate with the new key's CKA_ID, the old pair
    # untouched, the new key generated on the token, private, not extractable.
    new_obj, new_cert = find_cert(token, new_serial)
    assert new_obj["id"] != "01"
    assert key_sha256(new_cert) == issue["csr_key_sha256"]
    assert_generated_on_token(token, new_obj["id"])
    assert sorted(o["id"] for o in private_keys(token)) == sorted(["01", new_obj["id"]])
    old_obj, old_cert = find_cert(token, old.serial)
    assert old_obj["id"] == "01" and old_cert == old.cert
    sign_and_verify(token, new_obj["id"], new_cert)
    sign_and_verify(token, "01", old.cert)
    openssl_verify(pki, new_cert, world.dir)
    assert len(certificates(token)) == 2

    # What safectl shows now.
    t = find_token(world.status(), token.serial)
    assert t["pending"] == [] and t["activation"] is None, t
    current = [c for c in t["certificates"] if c["current"]]
    assert [(c["serial"], c["key_id"]) for c in current] == [(new_serial, new_obj["id"])], t
    assert_history(world, token, action, old, new_serial)

    # export: PEM on stdout, DER to a file.
    rc, out, err = world.safectl("export", token.serial)
    assert rc == 0, out + err
    assert out.strip() == new_cert.public_bytes(Encoding.PEM).decode().strip()
    path = os.path.join(world.dir, "new.der")
    rc, out, err = world.safectl("export", token.serial, "--der", "-o", path)
    assert rc == 0, out + err
    with open(path, "rb") as f:
        assert f.read() == new_cert.public_bytes(Encoding.DER)


def test_th2_change_recertifies_the_existing_key(world, pki, refca):
    token, old = token_with_pair(world, pki)
    subject = [[a, v] for a, v in old.subject]
    subject = [[a, LONG_O] if a == "O" else [a, v] for a, v in subject]
    subject = [[a, "Quận Hoàn Kiếm"] if a == "L" else [a, v] for a, v in subject]
    action = refca.add_action(old, type="change", subject=subject,
                              key={"generate": False, "type": "rsa", "bits": 2048},
                              message="Thay đổi tên doanh nghiệp và địa chỉ.", **window(300))
    world.start_daemon()
    check(world, token.serial)
    keys_before = private_keys(token)

    # One token, one action: neither needs naming.
    run = activate(world, extra=["--no-keep-previous"])
    assert run.rc == 0, run

    issue = one(refca.requests("issue"), "issue")
    confirm = one(refca.requests("confirm"), "confirm")
    assert issue["status"] == 200 and confirm["status"] == 200
    # The CSR carries the key of the replaced certificate and the new subject.
    assert issue["csr_key_sha256"] == key_sha256(old.cert)
    assert issue["csr_subject"] == subject
    assert confirm["payload"] == {"installed_serial": issue["issued_serial"],
                                  "keep_previous": False}
    # No new key; the new certificate sits beside the old one, with its key's CKA_ID.
    assert private_keys(token) == keys_before
    new_obj, new_cert = find_cert(token, issue["issued_serial"])
    assert new_obj["id"] == "01"
    assert key_sha256(new_cert) == key_sha256(old.cert)
    find_cert(token, old.serial)
    sign_and_verify(token, "01", new_cert)
    openssl_verify(pki, new_cert, world.dir)

    t = find_token(world.status(), token.serial)
    assert t["pending"] == [] and t["activation"] is None, t
    current = [c for c in t["certificates"] if c["current"]]
    assert [(c["serial"], c["subject"]) for c in current] == [(issue["issued_serial"],
                                                               subject)], t
    h = assert_history(world, token, action, old, issue["issued_serial"])

    # Step 3: tick agencies of the latest activation.
    rc, out, err = world.safectl("agencies", "done", "tax", "procurement")
    assert rc == 0, out + err
    h = safectl_json(world, "history")["activations"][0]
    assert {a["id"]: a["done"] for a in h["agencies"]} == {
        "tax": True, "customs": False, "procurement": True}


def test_wrong_pin_exits_3_and_asks_the_ca_nothing(world, pki, refca):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, **window())
    world.start_daemon()
    check(world, token.serial)
    before = snapshot(token)

    run = activate(world, token.serial, action["id"], pin="000000")
    assert run.rc == 3, run
    assert refca.requests("issue") == [] and refca.requests("confirm") == []
    assert_unchanged(token, before)
    t = find_token(world.status(), token.serial)
    assert t["activation"] is None, t   # nothing had changed: dropped
    assert t["pending"] == [action]

    # The right PIN then works: nothing was left half done.
    run = activate(world, token.serial, action["id"])
    assert run.rc == 0, run
    assert len(refca.requests("issue")) == 1


def test_nothing_to_activate_exits_2_and_a_choice_exits_1(world, pki, refca):
    token, old = token_with_pair(world, pki)
    world.start_daemon()
    check(world, token.serial)
    run = activate(world, token.serial)
    assert run.rc == 2, run
    first = refca.add_action(old, id="r-first", **window())
    second = refca.add_action(old, id="c-second", type="change", key={"generate": False},
                              **window())
    check(world, token.serial)
    run = activate(world, token.serial, "r-no-such-action")
    assert run.rc == 2, run
    # Two pending and none named: exit 1 with the list to choose from.
    run = activate(world, token.serial)
    assert run.rc == 1, run
    assert first["id"] in run.text and second["id"] in run.text, run
    assert refca.requests("issue") == [] and refca.requests("nonce") == []


def test_pending_shows_the_ca_entries_verbatim_and_drops_broken_ones(world, pki, refca):
    token, old = token_with_pair(world, pki)
    # Another CA's certificate on the same token is never sent to SAFE-CA.
    token.add_pair(pki.issue(days_left=100, ca="other"), "09", label="Other CA")
    good = refca.add_action(
        old, type="renew", id="r-7f3a9c_OK",
        message="Gia hạn 1 năm.\nGọi 1900 6154 nếu cần.\x1b[31m\x07",
        extra={"x-portal": {"ma_ho_so": "HS-2026-001", "flags": [1, 2.5, None, True]},
               "priority": 3},
        **window())
    revoke = refca.add_action(old, type="revoke", id="v-1", **window())
    weak = refca.add_action(old, id="r-weak", key={"generate": True, "type": "rsa",
                                                   "bits": 1024}, **window())
    base = {k: v for k, v in good.items() if k not in ("x-portal", "priority", "message")}
    broken = [
        dict(base, id="r 7f3a!"),                        # characters outside the set
        dict(base, id="r" * 65),                         # too long
        dict(base, id="r-notsent", replaces="5401a3deadbeef"),  # not a serial we sent
        {k: v for k, v in dict(base, id="r-noafter").items() if k != "not_after"},
        dict(base, id="r-badtime", not_before="tomorrow"),
        dict(base, id="r-badsubject", subject="CN=AN PHAT"),
        {k: v for k, v in dict(base, id="r-nokey").items() if k != "key"},
        dict(base, id=17),
    ]
    for entry in broken:
        refca.add_raw(entry, show_with=old.serial)
    good2 = refca.add_action(old, id="c-second", type="change", key={"generate": False},
                             **window())
    world.start_daemon()
    check(world, token.serial)

    requests = refca.requests("pending")
    assert requests, "the daemon never asked the CA"
    for r in requests:
        assert r["request"]["token_serial"] == token.serial, r
        sent = [{k: c.get(k) for k in ("serial", "issuer", "sha256")}
                for c in r["request"]["certificates"]]
        assert sent == [{"serial": old.serial, "issuer": old.issuer, "sha256": old.sha256}], r

    pending = find_token(world.status(), token.serial)["pending"]
    ids = [p.get("id") for p in pending]
    for entry in broken:
        assert entry["id"] not in ids, f"a contract-breaking entry is listed: {entry}"
    # The CA's order; unknown members and the message exactly as sent.
    assert [p for p in pending if p["id"] in (good["id"], good2["id"])] == [good, good2], pending
    # Another type, or a key the client cannot make: shown as they are
    # (as unsupported) or not at all, never activated.
    for unsupported in (revoke, weak):
        listed = [p for p in pending if p["id"] == unsupported["id"]]
        assert listed in ([], [unsupported]), pending
        run = activate(world, token.serial, unsupported["id"])
        assert run.rc == 2, run
    assert refca.requests("issue") == []
    # People see the message without terminal control characters.
    rc, out, err = world.safectl("show", token.serial)
    assert rc == 0, out + err
    assert "\x1b" not in out + err and "\x07" not in out + err


def test_two_tokens_activate_at_once_and_a_busy_token_says_so(world, pki, refca):
    first, first_old = token_with_pair(world, pki, label="An Phat 01")
    second, second_old = token_with_pair(world, pki, label="Binh Minh 02", key_kind="ec",
                                         key_id="02")
    a1 = refca.add_action(first_old, **window())
    a2 = refca.add_action(second_old, key={"generate": True, "type": "ec", "curve": "P-256"},
                          **window())
    refca.fault("issue", "slow", count=2, seconds=4)
    world.start_daemon()
    check(world, first.serial)
    check(world, second.serial)

    runs = [start_activate(world, first.serial, a1["id"]),
            start_activate(world, second.serial, a2["id"])]
    # While both wait for the CA: status stays instant, a second job on a
    # busy token is refused at once.
    deadline = time.monotonic() + 20
    while len(refca.requests("issue")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    t0 = time.monotonic()
    world.status()
    assert time.monotonic() - t0 < 1.5
    busy = activate(world, first.serial, a1["id"], timeout=20)
    assert busy.rc == 8, busy
    results = [finish_activate(r) for r in runs]
    assert [r.rc for r in results] == [0, 0], "\n".join(map(repr, results))

    issues = refca.requests("issue")
    assert sorted(i["action"] for i in issues) == sorted([a1["id"], a2["id"]])
    assert all(i["status"] == 200 for i in issues), issues
    # The two issue requests were at the CA at the same time.
    assert max(i["t_start"] for i in issues) < min(i["t_end"] for i in issues), issues
    confirms = refca.requests("confirm")
    assert sorted((c["action"], c["status"]) for c in confirms) == sorted(
        [(a1["id"], 200), (a2["id"], 200)]), \
        f"want one confirm per action (the daemon's log says why not): {confirms}"
    by_action = {i["action"]: i for i in issues}
    for token, action in ((first, a1), (second, a2)):
        obj, cert = find_cert(token, by_action[action["id"]]["issued_serial"])
        sign_and_verify(token, obj["id"], cert)
    tokens = world.status()
    for token in (first, second):
        t = find_token(tokens, token.serial)
        assert t["pending"] == [] and t["activation"] is None, t


def test_json_status_during_an_activation(world, pki, refca):
    """`activation` shows the running step; the result is in the history
    with the PIN nowhere on disk."""
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, **window())
    refca.fault("issue", "slow", seconds=3)
    world.start_daemon()
    check(world, token.serial)
    run = start_activate(world, token.serial, action["id"])
    deadline = time.monotonic() + 20
    while not refca.requests("issue") and time.monotonic() < deadline:
        time.sleep(0.1)
    t = find_token(world.status(), token.serial)
    assert t["activation"] is not None, t
    assert t["activation"]["action"] == action["id"]
    assert t["activation"]["step"] == "csr-sent", t
    assert t["activation"]["interrupted"] is False, t
    done = finish_activate(run)
    assert done.rc == 0, done
    for root, _, files in os.walk(world.statedir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert PIN.encode() not in f.read(), f"the PIN is in {name}"
    assert json.dumps(find_token(world.status(), token.serial)["activation"]) == "null"
