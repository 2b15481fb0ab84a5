# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real PKCS#11 module behind PC/SC: OpenSC's module and a CAC card that
only signs (libcacard on an NSS database, harness/cac.py) in a private
pcscd's vpcd reader. What OpenSC shows of it is what the daemon meets with
many real tokens: a label taken from the first certificate, fixed object
labels, a wrong PIN answered with CKR_GENERAL_ERROR, no key generation and
no writes (FACTS.md)."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from harness.cac import OPENSC_MODULE, CacCard, available
from harness.pcsc import VPCD_DRIVER, Pcscd, card_present
from harness.pki import SUBJECT_AN_PHAT
from harness.safecad import find_token, wait_until

# What OpenSC 0.23's CAC driver calls the token and the card's objects.
CAC_MANUFACTURER = "Common Access Card"
CAC_MODEL = "PKCS#15 emulated"
CAC_OBJECT_LABELS = ["CAC ID Certificate", "CAC Email Signature Certificate",
                     "CAC Email Encryption Certificate"]
CAC_IDS = ["0001", "0002", "0003"]
# OpenSC reads the serial from a card identifier that libcacard fixes, so
# every such card has the same one.
CAC_SERIAL = "000058bd002c19b5"
LABEL = dict(SUBJECT_AN_PHAT)["CN"]


def _skip_unless_ready():
    reason = available()
    if reason:
        pytest.skip(reason)
    for tool in ("pcscd", "pkcs11-tool", "unshare"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"{tool} is not installed")
    if not os.path.exists(VPCD_DRIVER):
        pytest.skip("vsmartcard-vpcd is not installed")


class Reader:
    """A private pcscd and what runs OpenSC's pkcs11-tool against it."""

    def __init__(self, directory):
        self.dir = directory
        self.pcscd = Pcscd(os.path.join(directory, "pcsc")).start()
        self.cards = []
        # OpenSC keeps its file cache under $HOME.
        self.env = dict(os.environ, PCSCLITE_CSOCK_NAME=self.pcscd.link, HOME=directory)

    def card(self, pki, name="card", reader=0, **kwargs):
        card = CacCard(os.path.join(self.dir, name), self.pcscd.port + reader, pki, **kwargs)
        self.cards.append(card)
        return card

    def present(self, reader=0, timeout=0.0):
        prefix = f"Virtual PCD 00 0{reader}".encode()
        return card_present(self.pcscd.link, reader_prefix=prefix, timeout=timeout)

    def tool(self, *args, pin=None, slot_index=0):
        argv = ["pkcs11-tool", "--module", OPENSC_MODULE]
        if args and args[0] not in ("-L", "--list-slots"):
            argv += ["--slot-index", str(slot_index)]
        if pin is not None:
            argv += ["--login", "--pin", pin]
        return subprocess.run(argv + list(args), env=self.env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def stop(self):
        for card in self.cards:
            card.remove()
        self.pcscd.stop()


@pytest.fixture
def reader():
    _skip_unless_ready()
    directory = tempfile.mkdtemp(prefix="scit-cac-")
    r = Reader(directory)
    try:
        yield r
    finally:
        try:
            r.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def full_card(pki):
    """One pcscd with a card holding three keys and certificates, shared by
    the tests that only read and sign."""
    _skip_unless_ready()
    directory = tempfile.mkdtemp(prefix="scit-cac-")
    r = Reader(directory)
    try:
        card = r.card(pki, count=3).insert(pcsc_socket=r.pcscd.link)
        yield r, card
    finally:
        try:
            r.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _slots(text):
    """pkcs11-tool -L: {slot line: {field: value}}."""
    slots, current = {}, None
    for line in text.splitlines():
        if line.startswith("Slot "):
            current = slots.setdefault(line, {})
        elif current is not None and ":" in line:
            key, value = line.split(":", 1)
            current[key.strip()] = value.strip()
        elif current is not None and line.strip() == "(empty)":
            current["empty"] = True
    return slots


def _token_fields(reader, slot_index=0):
    r = reader.tool("-L")
    assert r.returncode == 0, r.stdout + r.stderr
    slots = list(_slots(r.stdout).values())
    return slots[slot_index]


def _ckr(result):
    """The CKR_ name pkcs11-tool printed for a failed call."""
    for word in (result.stdout + result.stderr).replace(",", " ").split():
        if word.startswith("CKR_"):
            return word
    return None


def test_token_and_certificates_listed(full_card):
    r, card = full_card
    fields = _token_fields(r)
    assert fields["token label"] == LABEL, fields
    assert fields["token manufacturer"] == CAC_MANUFACTURER
    assert fields["token model"] == CAC_MODEL
    assert "login required" in fields["token flags"]
    assert fields["pin min/max"] == "4/8"

    listed = r.tool("--list-objects", "--type", "cert")
    assert listed.returncode == 0, listed.stderr
    labels = [line.split(":", 1)[1].strip() for line in listed.stdout.splitlines()
              if line.strip().startswith("label:")]
    assert labels == CAC_OBJECT_LABELS, listed.stdout
    # The certificates read back as they went in, in the order given.
    for issued, object_id in zip(card.issued, CAC_IDS):
        out = os.path.join(r.dir, f"cert-{object_id}.der")
        got = r.tool("--read-object", "--type", "cert", "--id", object_id, "-o", out)
        assert got.returncode == 0, got.stderr
        with open(out, "rb") as f:
            assert f.read() == issued.der


def test_login_and_signature_verifies(full_card):
    r, card = full_card
    data = os.path.join(r.dir, "data")
    with open(data, "wb") as f:
        f.write("Tờ khai thuế 01/GTGT".encode())
    for issued, object_id in zip(card.issued, CAC_IDS):
        signature = os.path.join(r.dir, f"signature-{object_id}")
        result = r.tool("--sign", "-m", "SHA256-RSA-PKCS", "--id", object_id, "-i", data,
                        "-o", signature, pin=card.pin)
        assert result.returncode == 0, result.stdout + result.stderr
        # openssl checks it with the certificate's public key.
        pem = os.path.join(r.dir, f"cert-{object_id}.pem")
        with open(pem, "wb") as f:
            f.write(issued.pem)
        public = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-pubkey"],
                                capture_output=True, check=True).stdout
        pubkey = os.path.join(r.dir, f"pubkey-{object_id}.pem")
        with open(pubkey, "wb") as f:
            f.write(public)
        verified = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pubkey,
                                   "-signature", signature, data],
                                  capture_output=True, text=True)
        assert verified.returncode == 0 and "Verified OK" in verified.stdout, verified


def test_pss_signature_verifies(full_card):
    r, card = full_card
    data = os.path.join(r.dir, "data-pss")
    with open(data, "wb") as f:
        f.write(b"PSS")
    signature = os.path.join(r.dir, "signature-pss")
    result = r.tool("--sign", "-m", "SHA256-RSA-PKCS-PSS", "--mgf", "MGF1-SHA256",
                    "--salt-len", "-1", "--id", CAC_IDS[0],
                    "-i", data, "-o", signature, pin=card.pin)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(signature, "rb") as f:
        card.issued[0].cert.public_key().verify(
            f.read(), b"PSS",
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())


def test_wrong_pin_is_a_general_error(full_card):
    """As with many real tokens, not CKR_PIN_INCORRECT; and the card keeps
    no count of tries (libcacard's NSS database has none)."""
    r, card = full_card
    result = r.tool("--list-objects", pin="999999")
    assert result.returncode != 0
    assert _ckr(result) == "CKR_GENERAL_ERROR", result.stdout + result.stderr
    fields = _token_fields(r)
    for flag in ("count low", "final try", "locked"):
        assert flag not in fields["token flags"], fields
    again = r.tool("--list-objects", "--type", "privkey", pin=card.pin)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("Private Key Object") == 3, again.stdout


def test_key_generation_refused(full_card):
    r, card = full_card
    mechanisms = r.tool("--list-mechanisms")
    assert mechanisms.returncode == 0
    assert "generate_key_pair" not in mechanisms.stdout
    assert "KEY-PAIR-GEN" not in mechanisms.stdout
    # Named anyway, the module itself refuses it.
    result = r.tool("--keypairgen", "--key-type", "rsa:2048", "-m", "RSA-PKCS-KEY-PAIR-GEN",
                    "--id", "09", "--label", "moi", pin=card.pin)
    assert result.returncode != 0
    assert _ckr(result) == "CKR_FUNCTION_NOT_SUPPORTED", result.stdout + result.stderr


def test_writing_and_deleting_objects_refused(full_card):
    r, card = full_card
    data = os.path.join(r.dir, "object")
    with open(data, "wb") as f:
        f.write(b"data")
    der = os.path.join(r.dir, "new-cert.der")
    with open(der, "wb") as f:
        f.write(card.issued[0].der)
    for args in (("--write-object", data, "--type", "data", "--label", "d"),
                 ("--write-object", der, "--type", "cert", "--id", "05", "--label", "c")):
        result = r.tool(*args, pin=card.pin)
        assert result.returncode != 0
        assert _ckr(result) == "CKR_FUNCTION_NOT_SUPPORTED", result.stdout + result.stderr
    for kind in ("cert", "privkey"):
        deleted = r.tool("--delete-object", "--type", kind, "--id", CAC_IDS[0], pin=card.pin)
        assert deleted.returncode != 0
        assert _ckr(deleted) == "CKR_FUNCTION_NOT_SUPPORTED", deleted.stdout + deleted.stderr
    # Nor does its PIN change (libcacard has no CHANGE REFERENCE DATA).
    changed = r.tool("--change-pin", "--pin", card.pin, "--new-pin", "654321")
    assert changed.returncode != 0
    assert _ckr(changed) == "CKR_GENERAL_ERROR", changed.stdout + changed.stderr
    assert _token_fields(r)["token label"] == LABEL
    listed = r.tool("--list-objects", "--type", "cert")
    assert listed.stdout.count("Certificate Object") == 3, listed.stdout


def test_remove_and_insert_seen_by_pcscd_and_opensc(reader, pki):
    card = reader.card(pki)
    assert not reader.present()
    card.insert(pcsc_socket=reader.pcscd.link)
    assert reader.present()
    assert _token_fields(reader)["token label"] == LABEL

    card.remove()
    wait_until(lambda: not reader.present(), timeout=5, message="pcscd to see the removal")
    assert _token_fields(reader).get("empty") is True

    t0 = time.monotonic()
    card.insert(pcsc_socket=reader.pcscd.link)
    print(f"pcscd saw the card {time.monotonic() - t0:.2f} s after the program started")
    assert _token_fields(reader)["token label"] == LABEL


def test_serial_is_the_same_on_every_card(reader, pki):
    """Two cards with different certificates and subjects, one in each of
    vpcd's readers: OpenSC gives both the same serial number."""
    other = [("C", "VN"), ("O", "HỘ KINH DOANH BÌNH MINH"), ("CN", "HỘ KINH DOANH BÌNH MINH")]
    first = reader.card(pki, name="first").insert(pcsc_socket=reader.pcscd.link)
    second = reader.card(pki, name="second", reader=1,
                         issued=[pki.issue(days_left=90, subject=other)])
    second.insert()
    wait_until(lambda: reader.present(reader=1, timeout=2), timeout=10,
               message="the second card in pcscd")
    one = _token_fields(reader, 0)
    two = _token_fields(reader, 1)
    assert one["token label"] == LABEL
    assert two["token label"] == "HỘ KINH DOANH BÌNH MINH"
    assert one["serial num"] == two["serial num"] == CAC_SERIAL, (one, two)
    assert first.issued[0].sha256 != second.issued[0].sha256


def test_daemon_lists_the_cac_token(hotplug_world, pki):
    """The chain real tokens use: card → pcscd → OpenSC → safecad."""
    _skip_unless_ready()
    w = hotplug_world
    w.write_config(modules=(OPENSC_MODULE,))
    card = CacCard(os.path.join(w.dir, "cac"), w.pcscd.port, pki)
    w.cards.append(card)
    card.insert(pcsc_socket=w.pcscd.link)
    w.start_daemon()

    def listed():
        tokens = w.status()
        return tokens if any(t.get("serial") == CAC_SERIAL for t in tokens) else None

    tokens = wait_until(listed, timeout=20, interval=0.5, message="the CAC token in status")
    token = find_token(tokens, CAC_SERIAL)
    issued = card.issued[0]
    assert token["label"] == LABEL, token
    assert token["manufacturer"] == CAC_MANUFACTURER
    assert token["model"] == CAC_MODEL
    assert token["present"] is True
    assert token["profile"] == "SAFE-CA", token
    assert token["days_left"] == issued.days_left()
    certificates = token["certificates"]
    assert [c["sha256"] for c in certificates] == [issued.sha256], certificates
    assert certificates[0]["serial"] == issued.serial
    assert certificates[0]["key_id"] == CAC_IDS[0]
    assert certificates[0]["current"] is True

    # Out of the reader, the token leaves the list.
    card.remove()
    wait_until(lambda: not any(t.get("serial") == CAC_SERIAL for t in w.status()),
               timeout=20, interval=0.5, message="the CAC token to leave status")
