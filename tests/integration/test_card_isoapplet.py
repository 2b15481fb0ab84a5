# SPDX-License-Identifier: LGPL-2.1-or-later
"""The IsoApplet card (harness/isoapplet.py) as OpenSC's own tools see it:
personalised with pkcs15-init, keys made on the card, signatures openssl
verifies, certificates written and deleted, the PIN counter, persistence,
a full card, a card pulled mid-operation; and safecad reading it through
OpenSC's PKCS#11 module."""

import json
import os
import re
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import serialization

from harness.expect import cert_view
from harness.isoapplet import OPENSC_MODULE, IsoAppletCard, run_tool
from harness.pcsc import card_present
from harness.safecad import find_token, wait_until

PIN = "123456"
PUK = "0123456789abcdef"
# Given in upper case; OpenSC stores the bytes and shows lower case.
SERIAL_GIVEN = "5AFEC0DE00000001"
SERIAL = SERIAL_GIVEN.lower()


@pytest.fixture
def card(hotplug_world):
    for tool in ("pkcs15-init", "pkcs15-tool"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.skip(f"{tool} is not installed (opensc)")
    if not os.path.exists(OPENSC_MODULE):
        pytest.skip("OpenSC's PKCS#11 module is not installed (opensc-pkcs11)")
    w = hotplug_world
    c = IsoAppletCard(os.path.join(w.dir, "isoapplet.json"), w.pcscd.port)
    w.cards.append(c)
    _insert(w, c)
    return c


def _insert(world, card):
    card.insert()
    assert card_present(world.pcscd.link, timeout=5), "pcscd did not see the card"


def _remove(world, card):
    """Removes the card and waits until pcscd has seen it go: vpcd's driver
    polls, and a card back before the next poll looks never removed."""
    card.remove()
    wait_until(lambda: not card_present(world.pcscd.link), timeout=5,
               message="pcscd to see the card go")


def _personalise(world, card, label="An Phat"):
    card.personalise(world.pcscd, pin=PIN, puk=PUK, label=label, serial=SERIAL_GIVEN)


def _rv(result):
    """The CK_RV name pkcs11-tool reported, or None."""
    m = re.search(r"rv = (CKR_\w+)", result.stdout + result.stderr)
    return m.group(1) if m else None


def _objects(world, card):
    out = card.pkcs11_tool(world.pcscd, "--list-objects").stdout
    return sorted((m.group(1), m.group(2)) for m in
                  re.finditer(r"^(Private Key|Public Key|Certificate) Object;.*?^  ID:\s+(\w+)",
                              out, re.M | re.S))


LOGIN_PROBE = """
import json, sys, PyKCS11
lib = PyKCS11.PyKCS11Lib()
lib.load(sys.argv[1])
slot = lib.getSlotList(tokenPresent=True)[0]
names = ("CKF_USER_PIN_COUNT_LOW", "CKF_USER_PIN_FINAL_TRY", "CKF_USER_PIN_LOCKED")
def flags():
    f = lib.getTokenInfo(slot).flags
    return [n for n in names if f & getattr(PyKCS11, n)]
before = flags()
session = lib.openSession(slot)
try:
    session.login(sys.argv[2])
    rv = "CKR_OK"
except PyKCS11.PyKCS11Error as e:
    rv = PyKCS11.CKR[e.value]
print(json.dumps([before, rv, flags()]))
"""


ATTRIBUTE_PROBE = """
import json, sys, PyKCS11
lib = PyKCS11.PyKCS11Lib()
lib.load(sys.argv[1])
slot = lib.getSlotList(tokenPresent=True)[0]
session = lib.openSession(slot)
session.login(sys.argv[2])
names = ("CKA_LOCAL", "CKA_SENSITIVE", "CKA_EXTRACTABLE", "CKA_PRIVATE")
found = {}
for o in session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)]):
    found["private"] = dict(zip(names, session.getAttributeValue(
        o, [getattr(PyKCS11, n) for n in names])))
print(json.dumps(found))
"""


def _probe(world, card, script, *args):
    pytest.importorskip("PyKCS11")
    r = subprocess.run(["/usr/bin/python3", "-c", script, OPENSC_MODULE, *args],
                       env=card.env(world.pcscd), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _login_probe(world, card, pin):
    """(flags before, C_Login's CK_RV, flags after) in one fresh process,
    through PyKCS11."""
    before, rv, after = _probe(world, card, LOGIN_PROBE, pin)
    return before, rv, after


def test_personalised_card_is_an_rsa_2048_token(hotplug_world, card):
    w = hotplug_world
    _personalise(w, card)
    out = card.pkcs11_tool(w.pcscd, "--list-token-slots", login=False).stdout
    # OpenSC names the token after the PIN that guards it.
    assert "token label        : An Phat (User PIN)" in out, out
    assert f"serial num         : {SERIAL}" in out, out
    assert "login required" in out and "PIN initialized" in out, out
    mechanisms = card.pkcs11_tool(w.pcscd, "--list-mechanisms", login=False).stdout
    assert "RSA-PKCS-KEY-PAIR-GEN, keySize={2048,2048}" in mechanisms, mechanisms
    assert "EC" not in mechanisms.replace("RSA", "").replace("DECRYPT", ""), mechanisms
    # A P-256 key is refused before the card is asked.
    r = card.pkcs11_tool(w.pcscd, "--keypairgen", "--key-type", "EC:prime256v1",
                         "--id", "ec", check=False)
    assert r.returncode != 0, r.stdout
    assert card.applet.generated == 0
    assert _objects(w, card) == []


def test_key_made_on_card_signs_and_openssl_verifies(hotplug_world, card):
    w = hotplug_world
    _personalise(w, card)
    t0 = time.monotonic()
    public = card.generate_key(w.pcscd, "01")
    print(f"keygen through pkcs11-tool took {time.monotonic() - t0:.2f} s")
    assert public.key_size == 2048
    # The card made it: its slot 0 holds the private half.
    assert card.applet.generated == 1
    assert card.applet.public_key(0).public_numbers() == public.public_numbers()
    data = os.path.join(w.dir, "data")
    sig = os.path.join(w.dir, "sig")
    pem = os.path.join(w.dir, "pub.pem")
    with open(data, "wb") as f:
        f.write(b"to be signed\n")
    with open(pem, "wb") as f:
        f.write(public.public_bytes(serialization.Encoding.PEM,
                                    serialization.PublicFormat.SubjectPublicKeyInfo))
    # A second key under the same CKA_ID is refused, after the card made it.
    r = card.pkcs11_tool(w.pcscd, "--keypairgen", "--key-type", "rsa:2048", "--id", "01",
                         "--label", "again", check=False)
    assert r.returncode != 0 and _rv(r) == "CKR_GENERAL_ERROR", r.stdout + r.stderr
    assert card.applet.generated == 1
    assert _objects(w, card) == [("Private Key", "01"), ("Public Key", "01")]
    for mechanism, digest in (("SHA256-RSA-PKCS", "-sha256"), ("SHA1-RSA-PKCS", "-sha1")):
        card.pkcs11_tool(w.pcscd, "--sign", "--mechanism", mechanism, "--id", "01",
                         "--input-file", data, "--output-file", sig)
        r = subprocess.run(["openssl", "dgst", digest, "-verify", pem, "-signature", sig, data],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "Verified OK" in r.stdout, r.stdout + r.stderr


def test_certificate_is_written_read_back_and_paired(hotplug_world, card, pki):
    w = hotplug_world
    _personalise(w, card)
    issued = card.add_key_and_cert(w.pcscd, pki, "a1", label="An Phat 2026")
    out = os.path.join(w.dir, "cert.der")
    card.pkcs11_tool(w.pcscd, "--read-object", "--type", "cert", "--id", "a1",
                     "--output-file", out, login=False)
    with open(out, "rb") as f:
        assert f.read() == issued.der
    assert _objects(w, card) == [("Certificate", "a1"), ("Private Key", "a1"),
                                 ("Public Key", "a1")]
    # A key made on the card, yet OpenSC reads back neither CKA_LOCAL nor
    # CKA_SENSITIVE.
    assert _probe(w, card, ATTRIBUTE_PROBE, PIN)["private"] == {
        "CKA_LOCAL": False, "CKA_SENSITIVE": False, "CKA_EXTRACTABLE": False,
        "CKA_PRIVATE": True}
    # The certificate is public: listed without a login.
    listed = card.pkcs11_tool(w.pcscd, "--list-objects", "--type", "cert", login=False).stdout
    assert "ID:         a1" in listed, listed


def test_objects_are_deleted_and_their_room_returns(hotplug_world, card, pki):
    w = hotplug_world
    _personalise(w, card)
    card.add_key_and_cert(w.pcscd, pki, "01")
    with_cert = card.applet.used()
    card.pkcs11_tool(w.pcscd, "--delete-object", "--type", "cert", "--id", "01")
    assert _objects(w, card) == [("Private Key", "01"), ("Public Key", "01")]
    assert card.applet.used() < with_cert
    card.pkcs11_tool(w.pcscd, "--delete-object", "--type", "pubkey", "--id", "01")
    card.pkcs11_tool(w.pcscd, "--delete-object", "--type", "privkey", "--id", "01")
    assert _objects(w, card) == []
    # The applet cannot delete a key: the next one made overwrites the slot.
    card.generate_key(w.pcscd, "02")
    assert sorted(card.applet.state["keys"]) == ["0"]
    assert _objects(w, card) == [("Private Key", "02"), ("Public Key", "02")]


def test_wrong_pin_counts_down_and_blocks(hotplug_world, card):
    w = hotplug_world
    _personalise(w, card)
    seen = [(_login_probe(w, card, "000000"), card.applet.state["pin_tries"]) for _ in range(3)]
    # Each try is a fresh process: OpenSC shows no PIN flag until a login
    # fails in the same process, never "count low", and the try that blocks
    # the PIN is still "incorrect".
    assert seen == [(([], "CKR_PIN_INCORRECT", []), 2),
                    (([], "CKR_PIN_INCORRECT", ["CKF_USER_PIN_FINAL_TRY"]), 1),
                    (([], "CKR_PIN_INCORRECT", ["CKF_USER_PIN_LOCKED"]), 0)], seen
    # IsoApplet answers a blocked PIN with 63C0, as a wrong one: the right
    # PIN is "incorrect" too, and only then is the locked flag set.
    assert _login_probe(w, card, PIN) == ([], "CKR_PIN_INCORRECT", ["CKF_USER_PIN_LOCKED"])
    r = card.pkcs11_tool(w.pcscd, "--list-objects", check=False)
    assert _rv(r) == "CKR_PIN_INCORRECT", r.stdout + r.stderr
    # The PUK sets a new PIN and unblocks it. (Through PKCS#11, C_SetPIN
    # outside a login sends the PUK as the old PIN: OpenSC's profile links no
    # PUK to the PIN.)
    run_tool(["pkcs15-tool", "--unblock-pin", "--auth-id", "ff", "--puk", PUK,
              "--new-pin", "654321"], card.env(w.pcscd))
    assert card.applet.state["pin_tries"] == 3
    card.pin = "654321"
    card.pkcs11_tool(w.pcscd, "--list-objects")


def test_pin_change(hotplug_world, card):
    w = hotplug_world
    _personalise(w, card)
    card.pkcs11_tool(w.pcscd, "--change-pin", "--new-pin", "24682468")
    r = card.pkcs11_tool(w.pcscd, "--list-objects", check=False)
    assert _rv(r) == "CKR_PIN_INCORRECT", r.stdout + r.stderr
    card.pin = "24682468"
    card.pkcs11_tool(w.pcscd, "--list-objects")
    assert card.applet.state["pin_tries"] == 3


def test_state_survives_removal_and_a_new_emulator(hotplug_world, card, pki):
    w = hotplug_world
    _personalise(w, card)
    issued = card.add_key_and_cert(w.pcscd, pki, "01")
    r = card.pkcs11_tool(w.pcscd, "--login", "--pin", "999999", "--list-objects",
                         login=False, check=False)
    assert _rv(r) == "CKR_PIN_INCORRECT"
    _remove(w, card)
    again = IsoAppletCard(card.state_path, w.pcscd.port)
    again.pin = PIN
    w.cards.append(again)
    _insert(w, again)
    # The counter lives on the card: one try used, two left.
    assert again.applet.state["pin_tries"] == 2
    assert _objects(w, again) == [("Certificate", "01"), ("Private Key", "01"),
                                  ("Public Key", "01")]
    out = os.path.join(w.dir, "cert.der")
    again.pkcs11_tool(w.pcscd, "--read-object", "--type", "cert", "--id", "01",
                      "--output-file", out)
    with open(out, "rb") as f:
        assert f.read() == issued.der
    again.pkcs11_tool(w.pcscd, "--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", "01",
                      "--input-file", out, "--output-file", out + ".sig")
    assert again.applet.state["pin_tries"] == 3


def test_card_is_full_after_seven_pairs(hotplug_world, card):
    w = hotplug_world
    _personalise(w, card)
    for n in range(1, 8):
        card.generate_key(w.pcscd, f"{n:02x}")
    r = card.pkcs11_tool(w.pcscd, "--keypairgen", "--key-type", "rsa:2048", "--id", "08",
                         "--label", "one too many", check=False)
    assert r.returncode != 0
    # The card answers 6A84 (not enough memory); OpenSC reports it so.
    assert _rv(r) == "CKR_DEVICE_MEMORY", r.stdout + r.stderr
    assert card.applet.generated == 7
    assert len(_objects(w, card)) == 14
    # What is there still works.
    data = os.path.join(w.dir, "data")
    with open(data, "wb") as f:
        f.write(b"x")
    card.pkcs11_tool(w.pcscd, "--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", "07",
                     "--input-file", data, "--output-file", data + ".sig")


@pytest.mark.parametrize("after", [False, True], ids=["before-the-card-acts",
                                                      "answer-lost"])
def test_pulled_during_keygen_leaves_a_consistent_card(hotplug_world, card, after):
    w = hotplug_world
    _personalise(w, card)
    card.generate_key(w.pcscd, "01")
    pulled = card.pull_at("generate", after=after)
    r = card.pkcs11_tool(w.pcscd, "--keypairgen", "--key-type", "rsa:2048", "--id", "02",
                         "--label", "pulled", check=False)
    assert pulled.wait(5) and r.returncode != 0, r.stdout + r.stderr
    print(f"pulled during keygen: pkcs11-tool said {_rv(r)}")
    _remove(w, card)
    _insert(w, card)
    assert card.applet.generated == (2 if after else 1)
    assert _objects(w, card) == [("Private Key", "01"), ("Public Key", "01")]
    # The token takes the next key as if nothing happened.
    card.generate_key(w.pcscd, "02")
    assert _objects(w, card) == [("Private Key", "01"), ("Private Key", "02"),
                                 ("Public Key", "01"), ("Public Key", "02")]


def test_pulled_during_certificate_write(hotplug_world, card, pki):
    w = hotplug_world
    _personalise(w, card)
    public = card.generate_key(w.pcscd, "01")
    issued = pki.issue(key=public)
    pulled = card.pull_at(lambda apdu: apdu[1] == 0xD6 and card.selected_ef == 0x3400)
    with pytest.raises(RuntimeError):
        card.write_cert(w.pcscd, issued.der, "01")
    assert pulled.is_set()
    _remove(w, card)
    _insert(w, card)
    assert _objects(w, card) == [("Private Key", "01"), ("Public Key", "01")]
    card.write_cert(w.pcscd, issued.der, "01")
    assert ("Certificate", "01") in _objects(w, card)


def test_daemon_lists_the_token_and_its_certificate_through_opensc(hotplug_world, card, pki):
    w = hotplug_world
    _personalise(w, card)
    issued = card.add_key_and_cert(w.pcscd, pki, "a1b2c3")
    w.write_config(modules=(OPENSC_MODULE,))
    w.start_daemon(OPENSC_CONF=card.conf_path)

    def listed():
        tokens = [t for t in w.status() if t.get("serial") == SERIAL]
        return tokens[0] if tokens and tokens[0]["certificates"] else None
    wait_until(listed, timeout=20, message="the IsoApplet token with its certificate in status")
    token = find_token(w.status(), SERIAL)
    assert token["label"] == "An Phat (User PIN)", token
    assert token["present"] is True
    assert token["profile"] == "SAFE-CA", token
    assert [cert_view(c) for c in token["certificates"]] == [issued.expected("a1b2c3", True)]
