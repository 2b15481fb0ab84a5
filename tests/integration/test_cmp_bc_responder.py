# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Bouncy Castle CMP responder on its own, with `openssl cmp` (file
keys, no token) as the client: it issues for the requested key, refuses
what it must, and its fault options reach the client. Requests that
openssl will not make (a broken proof of possession, a signature by
another key, a wrong certHash) are made from recorded ones by editing
their DER and signing them again. No daemon."""

import datetime
import hashlib
import os
import shutil
import subprocess
import tempfile

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from harness.bccmp import BcResponder, Unavailable, compiled
from harness.cmpmsg import (
    body_type, cert_hash, cert_responses, cert_statuses, children, header_field,
    old_cert_id, spki, template_public_key, tlv, verify_popo, verify_protection)

ERROR_BODY = 0xB7  # PKIBody [23] error
PKICONF_BODY = 0xB3  # PKIBody [19] pkiconf
KUP_BODY = 0xA8  # PKIBody [8] kup


@pytest.fixture(scope="module")
def tmp():
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    try:
        compiled()
    except Unavailable as e:
        pytest.skip(str(e))
    directory = tempfile.mkdtemp(prefix="scit-bccmp-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Files:
    """Certificates and keys as the openssl client reads them."""

    def __init__(self, directory):
        self.directory = directory

    def write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def issued(self, name, issued):
        return self.write(name + ".pem", issued.pem), self.write(name + ".key",
                                                                  issued.key_pkcs8_pem)

    def key(self, name, kind):
        path = os.path.join(self.directory, name + ".key")
        if kind == "rsa":
            argv = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        else:
            argv = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        subprocess.run(["openssl", "genpkey", *argv, "-out", path], check=True,
                       capture_output=True, timeout=60)
        return path


@pytest.fixture(scope="module")
def files(tmp, pki):
    f = Files(tmp)
    f.old_rsa = pki.issue(days_left=20)
    f.old_rsa_cert, f.old_rsa_key = f.issued("old-rsa", f.old_rsa)
    f.old_ec = pki.issue(days_left=20, key_kind="ec")
    f.old_ec_cert, f.old_ec_key = f.issued("old-ec", f.old_ec)
    f.other_ca = pki.issue(ca="other")
    f.other_ca_cert, f.other_ca_key = f.issued("other-ca", f.other_ca)
    f.new_rsa = f.key("new-rsa", "rsa")
    f.new_ec = f.key("new-ec", "ec")
    return f


@pytest.fixture(scope="module")
def responder(tmp, pki):
    """One responder with default options for the tests that need no fault."""
    r = BcResponder(os.path.join(tmp, "responder"), pki).start()
    try:
        yield r
    finally:
        rc = r.stop()
        print(f"----- responder output -----\n{r.output()}")
        assert rc == 0, f"the CMP responder exited {rc}"


@pytest.fixture
def start(tmp, pki, request):
    """start(**options): a responder of this test's own."""
    started = []

    def _start(**options):
        directory = os.path.join(tmp, f"{request.node.name}-{len(started)}")
        r = BcResponder(directory, pki, **options).start()
        started.append(r)
        return r

    yield _start
    for r in started:
        assert r.stop() == 0, r.output()


def cmp(responder, files, command="kur", cert=None, key=None, newkey=None, out="new.pem",
        extra=(), trust=None):
    """`openssl cmp` against the responder; returns (exit status, output, certout path).
    It trusts the responder's certificate itself, or with `trust` a root."""
    certout = os.path.join(files.directory, out)
    if os.path.exists(certout):
        os.unlink(certout)
    argv = ["openssl", "cmp", "-cmd", command, "-server", f"127.0.0.1:{responder.port}",
            "-path", "pkix/", "-cert", cert or files.old_rsa_cert,
            "-key", key or files.old_rsa_key, "-newkey", newkey or files.new_rsa,
            *(["-trusted", trust] if trust else ["-srvcert", responder.server_cert_path]),
            "-certout", certout,
            "-msg_timeout", "20", "-total_timeout", "60", *extra]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    return r.returncode, r.stdout + r.stderr, certout


def entries(responder, since=0):
    return responder.log()[since:]


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def public_der(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def key_public_der(path):
    with open(path, "rb") as f:
        return public_der(serialization.load_pem_private_key(f.read(), None).public_key())


def assert_issued_for(responder, path, newkey, subject):
    cert = load_cert(path)
    assert public_der(cert.public_key()) == key_public_der(newkey)
    assert cert.subject == subject
    r = subprocess.run(["openssl", "verify", "-CAfile", responder.root_cert_path,
                        "-untrusted", responder.ca_cert_path, path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return cert


# --- editing a recorded PKIMessage ------------------------------------------

def set_header(message, **fields):
    """The message with header fields replaced or added, unprotected."""
    numbers = {"transactionID": 4, "senderNonce": 5, "recipNonce": 6}
    header, body = children(message)[:2]
    parts = children(header)
    optional = {p[0] & 0x1F: p for p in parts[3:]}
    for name, value in fields.items():
        optional[numbers[name]] = tlv(0xA0 | numbers[name], tlv(0x04, value))
    new_header = tlv(0x30, b"".join(parts[:3]) + b"".join(optional[n] for n in sorted(optional)))
    return new_header, body


def protect(header, body, key, extra_certs):
    """A PKIMessage signed with the RSA `key` (SHA-256, as openssl does)."""
    signature = key.sign(tlv(0x30, header + body), padding.PKCS1v15(), hashes.SHA256())
    protection = tlv(0xA0, tlv(0x03, b"\x00" + signature))
    return tlv(0x30, header + body + protection + extra_certs)


def extra_certs(message):
    return children(message)[3]


@pytest.fixture(scope="module")
def recorded(responder, files):
    """A kur and its certConf as openssl sent them, read back from the record."""
    since = len(responder.log())
    rc, output, _ = cmp(responder, files)
    assert rc == 0, output
    kur, cert_conf = entries(responder, since)
    return responder.request_der(kur), responder.request_der(cert_conf)


def fresh_kur(recorded, files, **fields):
    kur = recorded[0]
    fields.setdefault("transactionID", os.urandom(16))
    fields.setdefault("senderNonce", os.urandom(16))
    header, body = set_header(kur, **fields)
    return fields["transactionID"], protect(header, body, files.old_rsa.key, extra_certs(kur))


def cert_conf(recorded, files, transaction_id, recip_nonce, cert_hash):
    """openssl's certConf, moved to another transaction and with another certHash."""
    template = recorded[1]
    header, body = set_header(template, transactionID=transaction_id,
                              senderNonce=os.urandom(16), recipNonce=recip_nonce)
    status = children(children(body)[0])[0]
    rest = b"".join(children(status)[1:])
    new_body = tlv(body[0], tlv(0x30, tlv(0x30, tlv(0x04, cert_hash) + rest)))
    return protect(header, new_body, files.old_rsa.key, extra_certs(template))


# --- issuing ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_kur_issues_for_the_new_key(responder, files, kind):
    since = len(responder.log())
    newkey = files.new_rsa if kind == "rsa" else files.new_ec
    rc, output, out = cmp(responder, files, newkey=newkey)
    assert rc == 0, output
    cert = assert_issued_for(responder, out, newkey, files.old_rsa.cert.subject)
    kur, conf = entries(responder, since)
    assert kur["type"] == "kur" and kur["answer"] == "kup"
    assert kur["protection_ok"] and kur["popo_ok"] and kur["error"] is None
    assert kur["issued_serial"] == format(cert.serial_number, "x")
    assert conf["type"] == "certConf" and conf["answer"] == "pkiconf"
    assert conf["protection_ok"] and conf["certhash_ok"] and conf["error"] is None
    assert conf["client_status"] == "accepted"
    assert conf["transactionID"] == kur["transactionID"]
    assert conf["senderNonce"] != kur["senderNonce"]
    assert conf["recipNonce"] is not None


def test_the_der_checks_hold_openssl_s_messages_and_catch_a_wrong_key(responder, files, pki):
    """harness.cmpmsg, which test_cmp_bc.py uses to judge safecad's
    messages, on openssl's: what Bouncy Castle accepts it accepts, and a
    wrong key, a changed byte or another certificate's hash it refuses."""
    since = len(responder.log())
    rc, output, out = cmp(responder, files, newkey=files.new_ec)
    assert rc == 0, output
    (kur_entry, conf_entry) = entries(responder, since)
    kur, conf = responder.request_der(kur_entry), responder.request_der(conf_entry)
    kup = responder.answer_der(kur_entry)
    issued = load_cert(out)
    old_key = files.old_rsa.cert.public_key()
    with open(files.new_ec, "rb") as f:
        new_key = serialization.load_pem_private_key(f.read(), None).public_key()

    assert body_type(kur) == "kur" and body_type(conf) == "certConf" and body_type(kup) == "kup"
    assert verify_protection(kur, old_key) == "1.2.840.113549.1.1.11"
    assert verify_protection(conf, old_key) == "1.2.840.113549.1.1.11"
    assert verify_popo(kur, new_key) == "1.2.840.10045.4.3.2"
    assert old_cert_id(kur) == (files.old_rsa.cert.issuer.public_bytes(),
                                files.old_rsa.cert.serial_number)
    assert template_public_key(kur) == spki(new_key)
    assert cert_responses(kup) == [(cert_responses(kup)[0][0], 0, issued)]
    ((digest, _, _),) = cert_statuses(conf)
    assert digest == cert_hash(issued)
    assert header_field(conf, "recipNonce") == header_field(kup, "senderNonce")
    assert header_field(conf, "transactionID") == header_field(kur, "transactionID")

    another = pki.issue(days_left=20)
    with pytest.raises(InvalidSignature):
        verify_protection(kur, another.cert.public_key())
    with pytest.raises(InvalidSignature):
        verify_popo(kur, files.old_ec.cert.public_key())
    header, body = children(kur)[:2]
    changed = tlv(0x30, header + body[:-1] + bytes([body[-1] ^ 1]) + b"".join(children(kur)[2:]))
    with pytest.raises(InvalidSignature):
        verify_protection(changed, old_key)
    with pytest.raises(InvalidSignature):
        verify_popo(changed, new_key)
    assert digest != cert_hash(another.cert)


def test_kur_protected_by_an_ec_certificate(responder, files):
    rc, output, out = cmp(responder, files, cert=files.old_ec_cert, key=files.old_ec_key,
                          newkey=files.new_rsa)
    assert rc == 0, output
    assert_issued_for(responder, out, files.new_rsa, files.old_ec.cert.subject)
    assert responder.log()[-1]["certhash_ok"] is True


@pytest.mark.parametrize("command", ["ir", "cr"])
def test_ir_and_cr_issue_the_template_subject(responder, files, command):
    since = len(responder.log())
    rc, output, out = cmp(responder, files, command=command, newkey=files.new_ec,
                          extra=["-subject", "/C=VN/O=AN PHAT/CN=may tram 7"])
    assert rc == 0, output
    subject = x509.Name([
        x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "AN PHAT"),
        x509.NameAttribute(x509.NameOID.COMMON_NAME, "may tram 7")])
    assert_issued_for(responder, out, files.new_ec, subject)
    assert [e["type"] for e in entries(responder, since)] == [command, "certConf"]
    assert entries(responder, since)[0]["answer"] == {"ir": "ip", "cr": "cp"}[command]


def test_validity_days_and_a_chain_in_extra_certs(start, files):
    r = start(days=7)
    # Trust only the root: the issuing CA comes from the answer's extraCerts.
    rc, output, out = cmp(r, files, trust=r.root_cert_path)
    assert rc == 0, output
    cert = load_cert(out)
    lifetime = cert.not_valid_after - datetime.datetime.utcnow()
    assert datetime.timedelta(days=6, hours=23) < lifetime <= datetime.timedelta(days=7)


# --- refusals ---------------------------------------------------------------

@pytest.mark.parametrize("popo", ["0", "-1"])
def test_a_request_without_a_signature_popo_is_refused(responder, files, popo):
    since = len(responder.log())
    rc, output, out = cmp(responder, files, extra=["-popo", popo])
    assert rc != 0 and not os.path.exists(out)
    assert "badPOP" in output, output
    (kur,) = entries(responder, since)
    assert kur["protection_ok"] is True and kur["popo_ok"] is False
    assert kur["answer"] == "error" and "proof of possession" in kur["error"]


def test_a_broken_popo_signature_is_refused(responder, files, recorded):
    _, kur = fresh_kur(recorded, files)
    header, body = children(kur)[:2]
    # The POPO signature ends the body (openssl sends no regInfo).
    body = body[:-1] + bytes([body[-1] ^ 0x01])
    tampered = protect(header, body, files.old_rsa.key, extra_certs(kur))
    status, answer = responder.post(tampered)
    assert status == 200 and children(answer)[1][0] == ERROR_BODY
    entry = responder.log()[-1]
    assert entry["protection_ok"] is True and entry["popo_ok"] is False
    assert "does not verify with the requested key" in entry["error"]


def test_a_request_signed_by_another_key_is_refused(responder, files, recorded, pki):
    # Same subject, same CA, another key: only the signature can tell.
    impostor = pki.issue(days_left=20)
    _, kur = fresh_kur(recorded, files)
    header, body = children(kur)[:2]
    swapped = protect(header, body, files.old_rsa.key, tlv(0xA1, tlv(0x30, impostor.der)))
    status, answer = responder.post(swapped)
    assert status == 200 and children(answer)[1][0] == ERROR_BODY
    entry = responder.log()[-1]
    assert entry["protection_ok"] is False and entry["popo_ok"] is None
    assert "protection does not verify" in entry["error"]


def test_a_certificate_of_another_ca_is_refused(responder, files):
    since = len(responder.log())
    rc, output, _ = cmp(responder, files, cert=files.other_ca_cert, key=files.other_ca_key)
    assert rc != 0 and "signerNotTrusted" in output, output
    (entry,) = entries(responder, since)
    assert entry["protection_ok"] is True and "not issued by the CA" in entry["error"]


def test_an_unprotected_request_is_refused(responder, files):
    since = len(responder.log())
    rc, output, _ = cmp(responder, files, extra=["-unprotected_requests"])
    assert rc != 0 and "badMessageCheck" in output, output
    (entry,) = entries(responder, since)
    assert entry["protection_ok"] is False and entry["error"] == "request is not protected"


def test_a_reused_transaction_id_is_refused(responder, files, recorded):
    tid, kur = fresh_kur(recorded, files)
    assert children(responder.post(kur)[1])[1][0] == KUP_BODY
    _, again = fresh_kur(recorded, files, transactionID=tid)
    assert children(responder.post(again)[1])[1][0] == ERROR_BODY
    assert "in use" in responder.log()[-1]["error"]


@pytest.mark.parametrize("fault", [None, "hash", "nonce"])
def test_cert_conf_checks(responder, files, recorded, fault):
    tid, kur = fresh_kur(recorded, files)
    status, answer = responder.post(kur)
    assert status == 200 and children(answer)[1][0] == KUP_BODY
    issued = cert_responses(answer)[0][2]
    cert_hash = hashlib.sha256(issued.public_bytes(serialization.Encoding.DER)).digest()
    recip_nonce = header_field(answer, 5)
    if fault == "hash":
        cert_hash = bytes(32)
    if fault == "nonce":
        recip_nonce = os.urandom(16)
    status, answer = responder.post(cert_conf(recorded, files, tid, recip_nonce, cert_hash))
    entry = responder.log()[-1]
    assert entry["type"] == "certConf" and entry["protection_ok"] is True
    if fault is None:
        assert children(answer)[1][0] == PKICONF_BODY
        assert entry["certhash_ok"] is True and entry["error"] is None
        assert header_field(answer, 6) == bytes.fromhex(entry["senderNonce"])
    else:
        assert children(answer)[1][0] == ERROR_BODY
    if fault == "hash":
        assert entry["certhash_ok"] is False and "certHash" in entry["error"]
    if fault == "nonce":
        assert entry["certhash_ok"] is None and "recipNonce" in entry["error"]


def test_what_is_not_cmp_is_refused(responder, files, recorded):
    since = len(responder.log())
    assert responder.post(b"", method="GET")[0] == 405
    assert responder.post(b"\x30\x00", content_type="text/plain")[0] == 415
    status, answer = responder.post(b"not DER at all")
    assert status == 200 and children(answer)[1][0] == ERROR_BODY
    # extraCerts holding a certificate without its SEQUENCE OF around it
    _, kur = fresh_kur(recorded, files)
    bare = tlv(0x30, b"".join(children(kur)[:3]) + tlv(0xA1, files.old_rsa.der))
    status, answer = responder.post(bare)
    assert status == 200 and children(answer)[1][0] == ERROR_BODY
    garbage, malformed = entries(responder, since)
    assert garbage["type"] == "unparseable" and garbage["error"].startswith("not a PKIMessage")
    assert malformed["type"] == "kur" and malformed["error"].startswith("malformed kur")


# --- fault options, as the client sees them ---------------------------------

def test_reject_with_failinfo_and_status_string(start, files):
    r = start(reject=["badPOP", "notAuthorized"], status_string="Từ chối: thử lại sau")
    rc, output, out = cmp(r, files)
    assert rc != 0 and not os.path.exists(out)
    assert "PKIFailureInfo: badPOP, notAuthorized" in output, output
    assert "Từ chối: thử lại sau" in output
    (entry,) = r.log()
    assert entry["answer"] == "kup" and entry["error"] is None and entry["issued_serial"] is None


@pytest.mark.parametrize("implicit", [False, True])
def test_poll_then_the_certificate(start, files, implicit):
    r = start(poll=2, check_after=1, grant_implicit=implicit)
    rc, output, out = cmp(r, files, newkey=files.new_ec,
                          extra=["-implicit_confirm"] if implicit else [])
    assert rc == 0, output
    assert "starting to poll" in output
    assert_issued_for(r, out, files.new_ec, files.old_rsa.cert.subject)
    expected = [("kur", "kup"), ("pollReq", "pollRep"), ("pollReq", "kup")]
    if not implicit:
        expected.append(("certConf", "pkiconf"))
    assert [(e["type"], e["answer"]) for e in r.log()] == expected
    assert r.log()[-1]["certhash_ok" if not implicit else "implicit_confirm"] is True


def test_implicit_confirm_only_when_granted(start, responder, files):
    since = len(responder.log())
    rc, output, _ = cmp(responder, files, extra=["-implicit_confirm"])
    assert rc == 0, output
    assert [e["type"] for e in entries(responder, since)] == ["kur", "certConf"]
    granting = start(grant_implicit=True)
    rc, output, out = cmp(granting, files, extra=["-implicit_confirm"])
    assert rc == 0, output
    assert "CERTCONF" not in output
    assert_issued_for(granting, out, files.new_rsa, files.old_rsa.cert.subject)
    (kur,) = granting.log()
    assert kur["implicit_confirm"] is True


@pytest.mark.parametrize("option, message", [("unprotected", "missing protection"),
                                             ("wrong_nonce", "recipnonce unmatched")])
def test_faults_the_client_refuses(start, files, option, message):
    r = start(**{option: True})
    rc, output, out = cmp(r, files)
    assert rc != 0 and not os.path.exists(out)
    assert message in output, output
    assert [e["type"] for e in r.log()] == ["kur"]
