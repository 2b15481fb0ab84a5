# SPDX-License-Identifier: LGPL-2.1-or-later
"""The reference CA on its own: the server side of protocol-v1, driven by a
small Python client (tools/reference-ca/refca_client.py). No daemon."""

import base64
import datetime
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from harness.refca import PYTHON, REFCA, RefCA, refca_client, refca_pki

SUBJECT = [["C", "VN"], ["ST", "Hà Nội"], ["L", "Quận Cầu Giấy"],
           ["O", "CÔNG TY TNHH AN PHÁT"], ["CN", "CÔNG TY TNHH AN PHÁT"],
           ["UID", "MST:0101234567"]]
LONG_O = ("CÔNG TY TRÁCH NHIỆM HỮU HẠN THƯƠNG MẠI VÀ DỊCH VỤ XUẤT NHẬP KHẨU "
          "AN PHÁT HÀ NỘI")


@pytest.fixture(scope="module")
def server():
    directory = tempfile.mkdtemp(prefix="scit-refca-")
    ca = RefCA(directory).start()
    try:
        yield ca
    finally:
        rc = ca.stop()
        print(f"----- refca log -----\n{ca.log()}")
        shutil.rmtree(directory, ignore_errors=True)
        assert rc == 0


@pytest.fixture
def ca(server):
    server.admin.reset()
    return server


@pytest.fixture
def client(ca):
    return refca_client.Client(ca.url)


_POOL = {}
_NEXT = {}


def rsa_key(bits=2048):
    """A key from a pool that cycles through 16 distinct keys per size:
    distinct within any test here, and cheap (RSA key generation is what
    made these tests slow)."""
    pool = _POOL.setdefault(bits, [])
    i = _NEXT.get(bits, 0)
    _NEXT[bits] = (i + 1) % 16
    if i >= len(pool):
        pool.append(rsa.generate_private_key(public_exponent=65537, key_size=bits))
    return pool[i]


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def enrolled(ca, key=None):
    key = key or rsa_key()
    cert, _ = ca.admin.enroll(key.public_key(), subject=SUBJECT)
    return key, cert


def problem(status_headers_body):
    status, headers, body = status_headers_body
    assert headers.get("content-type") == "application/problem+json", (status, headers, body)
    obj = json.loads(body)
    assert obj["status"] == status, obj
    assert obj["type"].startswith("urn:safeca:"), obj
    return status, obj["type"][len("urn:safeca:"):]


def ok_json(status_headers_body, status=200):
    st, headers, body = status_headers_body
    assert st == status, (st, body)
    assert headers.get("content-type") == "application/json", headers
    return json.loads(body)


def client_checks(cert, csr_key, action, pki_issuing):
    """The client's four checks (protocol-v1.md), as booleans."""
    nb = refca_pki.parse_time(action["not_before"]) - datetime.timedelta(hours=24)
    na = refca_pki.parse_time(action["not_after"]) + datetime.timedelta(hours=24)
    return {
        "key": refca_pki.spki_der(cert.public_key()) == refca_pki.spki_der(csr_key),
        "subject": refca_pki.name_pairs(cert.subject) == action["subject"],
        "issuer": cert.issuer == pki_issuing.subject
        and refca_pki.signature_ok(cert, pki_issuing.public_key()),
        "window": refca_pki.cert_not_before(cert) >= nb and refca_pki.cert_not_after(cert) <= na,
    }


def issuing_ca(ca):
    return x509.load_pem_x509_certificate(ca.admin.ca()["issuing"].encode())


# --- start-up and the PKI ---------------------------------------------------

def test_init_makes_the_pki_and_prints_the_url(server):
    assert server.url == f"http://127.0.0.1:{server.port}/activation/v1"
    with open(server.issuers_pem) as f:
        blocks = f.read().split("-----END CERTIFICATE-----")[:-1]
    issuers = [x509.load_pem_x509_certificate((b + "-----END CERTIFICATE-----").encode())
               for b in blocks]
    issuing, root = issuers
    assert refca_pki.name_pairs(issuing.subject) == [
        ["C", "VN"], ["O", "CÔNG TY CỔ PHẦN SAFE-CA"], ["CN", "SAFE-CA SHA-256 2020"]]
    assert issuing.issuer == root.subject
    assert root.issuer == root.subject
    assert refca_pki.signature_ok(issuing, root.public_key())
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in ("root.key", "issuing.key"):
        assert os.path.exists(os.path.join(server.state, name))


def test_refuses_other_hosts_and_a_missing_ca(tmp_path):
    r = subprocess.run([PYTHON, REFCA, "--state", str(tmp_path), "--port", "0",
                        "--host", "0.0.0.0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "loopback" in r.stderr, r
    r = subprocess.run([PYTHON, REFCA, "--state", str(tmp_path / "none"), "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--init" in r.stderr, r


# --- nonce and pending ------------------------------------------------------

def test_nonce_is_204_with_a_fresh_replay_nonce(ca):
    seen = set()
    for _ in range(3):
        status, headers, body = refca_client.request(ca.url, "GET", "/nonce")
        assert status == 204 and body == b""
        nonce = headers["replay-nonce"]
        assert nonce and nonce not in seen
        seen.add(nonce)


def test_pending_lists_actions_for_the_certificates_sent(ca, client):
    key, cert = enrolled(ca)
    _, other = enrolled(ca)
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(cert), type="renew",
                                 message="Gia hạn 1 năm", extra={"x-portal": {"a": [1, 2]}})
    assert action["replaces"] == refca_pki.serial_hex(cert)
    assert action["subject"] == SUBJECT
    assert action["key"] == {"generate": True, "type": "rsa", "bits": 2048}
    assert action["x-portal"] == {"a": [1, 2]}

    assert ok_json(client.pending("ce92349bcdfc0c1e", [cert])) == {"pending": [action]}
    assert ok_json(client.pending("ce92349bcdfc0c1e", [other])) == {"pending": []}
    assert ok_json(client.pending("ce92349bcdfc0c1e", [other, cert])) == {"pending": [action]}
    # Matched by serial and issuer, and the SHA-256 must be the DER's.
    entry = refca_client.cert_entry(cert)
    for bad in ({"sha256": "00" * 32}, {"issuer": [["CN", "SAFE-CA SHA-256 2020"]]}):
        body = {"token_serial": "t", "certificates": [dict(entry, **bad)]}
        assert ok_json(refca_client.request(ca.url, "POST", "/pending", body)) == \
            {"pending": []}
    # Upper-case hex is the same serial.
    body = {"token_serial": "t", "certificates": [dict(entry, serial=entry["serial"].upper())]}
    assert ok_json(refca_client.request(ca.url, "POST", "/pending", body)) == \
        {"pending": [action]}
    log = ca.requests("pending")
    assert log[0]["request"]["token_serial"] == "ce92349bcdfc0c1e"


@pytest.mark.parametrize("body,ctype", [
    (b"{not json", "application/json"),
    (b'{"certificates": []}', "application/json"),
    (b'{"token_serial": "x", "certificates": [{"serial": "1"}]}', "application/json"),
    (b'{"token_serial": "x", "certificates": []}', "text/plain"),
])
def test_pending_malformed(ca, body, ctype):
    assert problem(refca_client.request(ca.url, "POST", "/pending", body, ctype)) == \
        (400, "malformed")


def test_unknown_paths_and_methods(ca):
    assert problem(refca_client.request(ca.url, "GET", "/nowhere")) == (404, "notFound")
    assert problem(refca_client.request(ca.url, "GET", "/pending")) == (400, "malformed")
    assert problem(refca_client.request(ca.url, "POST", "/nonce", {})) == (400, "malformed")


# --- issue and confirm --------------------------------------------------------

@pytest.mark.parametrize("old_kind,new_key", [
    ("rsa", {"generate": True, "type": "rsa", "bits": 2048}),
    ("ec", {"generate": True, "type": "ec", "curve": "P-256"}),
    ("rsa", {"generate": True, "type": "ec", "curve": "P-256"}),
])
def test_issue_and_confirm(ca, client, old_kind, new_key):
    old_key, old = enrolled(ca, rsa_key() if old_kind == "rsa" else ec_key())
    now = refca_pki.utcnow()
    window = (refca_pki.rfc3339(now), refca_pki.rfc3339(now + datetime.timedelta(days=400)))
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old), key=new_key,
                                 not_before=window[0], not_after=window[1])
    key = rsa_key() if new_key["type"] == "rsa" else ec_key()
    csr = refca_client.make_csr(key, action["subject"])
    answer = ok_json(client.issue(action["id"], old_key, old, csr))
    new = x509.load_pem_x509_certificate(answer["certificate"].encode())
    issuing = issuing_ca(ca)
    assert [x509.load_pem_x509_certificate(p.encode()) for p in answer["chain"]] == [issuing]
    assert all(client_checks(new, key.public_key(), action, issuing).values())
    assert refca_pki.name_pairs(new.subject) == SUBJECT
    assert [a._type for a in new.subject] == [a._type for a in x509.load_der_x509_csr(
        csr).subject]
    assert refca_pki.rfc3339(refca_pki.cert_not_before(new)) == window[0]
    assert refca_pki.rfc3339(refca_pki.cert_not_after(new)) == window[1]
    assert new.serial_number != old.serial_number and new.serial_number.bit_length() > 64

    log = ca.requests("issue")[-1]
    assert log["status"] == 200
    assert log["jws_header"]["alg"] == ("RS256" if old_kind == "rsa" else "ES256")
    assert log["jws_header"]["x5c"] == [base64.b64encode(
        old.public_bytes(serialization.Encoding.DER)).decode()]
    assert log["csr_key_sha256"] == refca_pki.key_sha256(key.public_key())
    assert log["issued_serial"] == refca_pki.serial_hex(new)

    # The new certificate is this CA's now: /pending matches it (nothing for it).
    assert ok_json(client.pending("t", [old, new])) == {"pending": [action]}
    assert ok_json(client.confirm(action["id"], key, new, keep_previous=False)) == \
        {"status": "completed"}
    assert ok_json(client.pending("t", [old, new])) == {"pending": []}
    # Confirming twice is harmless.
    assert ok_json(client.confirm(action["id"], key, new)) == {"status": "completed"}
    item = ca.admin.action(action["id"])
    assert item["state"] == "completed" and item["keep_previous"] is True
    confirms = ca.requests("confirm")
    assert [c["payload"]["keep_previous"] for c in confirms] == [False, True]


def test_recertify_existing_key_with_a_long_changed_subject(ca, client):
    old_key, old = enrolled(ca)
    subject = [p if p[0] != "O" else ["O", LONG_O] for p in SUBJECT]
    subject = [p if p[0] != "L" else ["L", "Quận Hoàn Kiếm"] for p in subject]
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old), type="change",
                                 subject=subject, key={"generate": False})
    assert action["id"].startswith("c-") and action["type"] == "change"
    csr = refca_client.make_csr(old_key, subject)
    new = x509.load_pem_x509_certificate(ok_json(client.issue(
        action["id"], old_key, old, csr))["certificate"].encode())
    assert refca_pki.name_pairs(new.subject) == subject
    assert new.public_key().public_numbers() == old.public_key().public_numbers()
    assert ok_json(client.confirm(action["id"], old_key, new)) == {"status": "completed"}


def test_issue_is_idempotent_for_the_same_key_and_409_for_another(ca, client):
    old_key, old = enrolled(ca)
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old))
    key = rsa_key()
    csr = refca_client.make_csr(key, action["subject"])
    first = ok_json(client.issue(action["id"], old_key, old, csr))["certificate"]
    # The same key again (even another CSR for it): the same certificate.
    again = ok_json(client.issue(action["id"], old_key, old,
                                 refca_client.make_csr(key, action["subject"])))["certificate"]
    assert again == first
    other = refca_client.make_csr(rsa_key(), action["subject"])
    assert problem(client.issue(action["id"], old_key, old, other)) == (409, "alreadyIssued")


def test_nonce_is_single_use_even_when_the_request_fails(ca, client):
    old_key, old = enrolled(ca)
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old))
    csr = refca_client.make_csr(rsa_key(), action["subject"])
    nonce = client.nonce()
    # Signed by a key that is not x5c[0]'s: 401, and the nonce is used up.
    assert problem(client.issue(action["id"], rsa_key(), old, csr, nonce=nonce)) == \
        (401, "badSignature")
    assert problem(client.issue(action["id"], old_key, old, csr, nonce=nonce)) == \
        (400, "badNonce")
    assert problem(client.issue(action["id"], old_key, old, csr, nonce="made-up")) == \
        (400, "badNonce")
    nonce = client.nonce()
    assert ok_json(client.issue(action["id"], old_key, old, csr, nonce=nonce))
    assert problem(client.issue(action["id"], old_key, old, csr, nonce=nonce)) == \
        (400, "badNonce")


def test_wrong_url_unknown_action_wrong_certificate(ca, client):
    old_key, old = enrolled(ca)
    other_key, other = enrolled(ca)
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old))
    csr = refca_client.make_csr(rsa_key(), action["subject"])
    path = f"/actions/{action['id']}/issue"
    for url in (ca.url + path + "/", ca.url.replace("127.0.0.1", "localhost") + path,
                ca.url.replace("http:", "https:") + path,
                ca.url + f"/actions/{action['id']}/confirm"):
        assert problem(client.issue(action["id"], old_key, old, csr, url=url)) == \
            (400, "malformed"), url
    assert problem(client.issue("no-such", old_key, old, csr)) == (404, "notFound")
    assert problem(client.issue(action["id"], other_key, other, csr)) == (403, "unauthorized")
    # Header members the contract requires, or forbids.
    for extra in ({"crit": ["b64"]}, {"alg": "PS256"}, {"nonce": None}):
        assert problem(client.issue(action["id"], old_key, old, csr, extra_header=extra))[1] \
            in ("malformed", "badNonce"), extra
    # The client's own URL when it names the host as localhost.
    local = refca_client.Client(ca.url.replace("127.0.0.1", "localhost"))
    assert ok_json(local.issue(action["id"], old_key, old, csr))


def test_oversize_request_is_malformed(ca, client):
    old_key, old = enrolled(ca)
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old))
    payload = {"csr": "A" * (70 * 1024)}
    assert problem(client.signed(f"/actions/{action['id']}/issue", old_key, old, payload)) == \
        (400, "malformed")
    body = b'{"token_serial": "x", "certificates": [], "pad": "' + b"x" * 70000 + b'"}'
    assert problem(refca_client.request(ca.url, "POST", "/pending", body)) == \
        (400, "malformed")
    # The connection still serves the next request.
    assert client.nonce()


def test_bad_csr(ca, client):
    old_key, old = enrolled(ca)
    ec_old_key, ec_old = enrolled(ca, ec_key())
    gen = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old))
    keep = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old),
                               key={"generate": False})
    gen_ec = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(ec_old),
                                 key={"generate": True, "type": "ec", "curve": "P-256"})

    def issue(action, csr, key=old_key, cert=old):
        return problem(client.issue(action["id"], key, cert, csr))

    other_subject = [p if p[0] != "CN" else ["CN", "CÔNG TY TNHH AN PHAT"] for p in SUBJECT]
    assert issue(gen, refca_client.make_csr(rsa_key(), other_subject)) == (422, "badCSR")
    assert issue(gen, refca_client.make_csr(rsa_key(3072), SUBJECT)) == (422, "badCSR")
    assert issue(gen, refca_client.make_csr(ec_key(), SUBJECT)) == (422, "badCSR")
    assert issue(gen, refca_client.make_csr(old_key, SUBJECT)) == (422, "badCSR")
    assert issue(keep, refca_client.make_csr(rsa_key(), SUBJECT)) == (422, "badCSR")
    assert issue(gen_ec, refca_client.make_csr(rsa_key(), SUBJECT), ec_old_key, ec_old) == \
        (422, "badCSR")
    # The CN as a PrintableString: equal by value, but not the contract's type.
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "AN PHAT",
                                         _ASN1Type.PrintableString)])
    retyped = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old),
                                  subject=[["C", "VN"], ["CN", "AN PHAT"]])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(
        rsa_key(), hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    assert issue(retyped, csr) == (422, "badCSR")
    # Signed with SHA-384, not SHA-256.
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        refca_pki.make_name(SUBJECT)).sign(rsa_key(), hashes.SHA384()).public_bytes(
        serialization.Encoding.DER)
    assert issue(gen, csr) == (422, "badCSR")
    # A CSR whose signature does not verify (one bit of the key changed).
    good = bytearray(refca_client.make_csr(rsa_key(), SUBJECT))
    good[-10] ^= 1
    assert issue(gen, bytes(good)) == (422, "badCSR")
    assert problem(client.signed(f"/actions/{gen['id']}/issue", old_key, old,
                                 {"csr": "not*base64"})) == (400, "malformed")
    assert problem(client.signed(f"/actions/{gen['id']}/issue", old_key, old, {})) == \
        (400, "malformed")


def test_confirm_checks(ca, client):
    old_key, old = enrolled(ca)
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old))
    key = rsa_key()
    # Before anything is issued, no certificate can confirm.
    assert problem(client.confirm(action["id"], old_key, old)) == (403, "unauthorized")
    new = x509.load_pem_x509_certificate(ok_json(client.issue(
        action["id"], old_key, old, refca_client.make_csr(key, action["subject"])))[
        "certificate"].encode())
    path = f"/actions/{action['id']}/confirm"
    serial = refca_pki.serial_hex(new)
    assert problem(client.signed(path, key, new, {"installed_serial": serial})) == \
        (400, "malformed")
    assert problem(client.signed(path, key, new, {"installed_serial": serial,
                                                  "keep_previous": "yes"})) == \
        (400, "malformed")
    assert problem(client.confirm(action["id"], key, new, installed_serial="1234")) == \
        (400, "malformed")
    assert problem(client.confirm(action["id"], old_key, old)) == (403, "unauthorized")
    assert ca.admin.action(action["id"])["state"] == "issued"
    # Upper-case hex is the same serial.
    assert ok_json(client.confirm(action["id"], key, new,
                                  installed_serial=serial.upper())) == {"status": "completed"}


def test_withdrawn_action(ca, client):
    old_key, old = enrolled(ca)
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old))
    ca.admin.withdraw(action["id"])
    assert ok_json(client.pending("t", [old])) == {"pending": []}
    csr = refca_client.make_csr(rsa_key(), action["subject"])
    assert problem(client.issue(action["id"], old_key, old, csr)) == (404, "notFound")


def test_raw_entries(ca, client):
    _, old = enrolled(ca)
    _, other = enrolled(ca)
    hostile = {"id": "bad id!", "type": "renew"}
    ca.admin.add_raw(hostile)
    ca.admin.add_raw({"id": "only-other"}, show_with=refca_pki.serial_hex(other))
    assert ok_json(client.pending("t", [old])) == {"pending": [hostile]}
    assert ok_json(client.pending("t", [other]))["pending"] == [hostile, {"id": "only-other"}]


# --- faults -------------------------------------------------------------------

def _issue_setup(ca, client, **action_fields):
    old_key, old = enrolled(ca)
    action = ca.admin.add_action(replaces_serial=refca_pki.serial_hex(old), **action_fields)
    key = rsa_key()
    csr = refca_client.make_csr(key, action["subject"])
    return old_key, old, action, key, csr


@pytest.mark.parametrize("kind,failing", [
    ("wrong_key", "key"), ("wrong_subject", "subject"), ("untrusted_issuer", "issuer"),
    ("outside_window", "window"), ("edge_window", None), ("retyped_subject", None),
])
def test_certificate_faults_fail_exactly_one_check(ca, client, kind, failing):
    old_key, old, action, key, csr = _issue_setup(ca, client)
    ca.fault("issue", kind)
    answer = ok_json(client.issue(action["id"], old_key, old, csr))
    bad = x509.load_pem_x509_certificate(answer["certificate"].encode())
    checks = client_checks(bad, key.public_key(), action, issuing_ca(ca))
    assert [k for k, v in checks.items() if not v] == ([failing] if failing else []), checks
    if kind == "untrusted_issuer":
        # Same name as the issuing CA, another key; the chain names the impostor.
        assert bad.issuer == issuing_ca(ca).subject
        chain = x509.load_pem_x509_certificate(answer["chain"][0].encode())
        assert refca_pki.signature_ok(bad, chain.public_key())
    if kind == "retyped_subject":
        assert [a._type for a in bad.subject] != [a._type for a in
                                                   x509.load_der_x509_csr(csr).subject]
    # A wrong certificate is not the one issued: the same key gets the real
    # one next. A right variant is the one issued, and comes again.
    again = ok_json(client.issue(action["id"], old_key, old, csr))["certificate"]
    if failing:
        assert all(client_checks(x509.load_pem_x509_certificate(again.encode()),
                                 key.public_key(), action, issuing_ca(ca)).values())
    else:
        assert again == answer["certificate"]
    assert ca.requests("issue")[0]["fault"] == kind


def test_answer_faults(ca, client):
    old_key, old, action, key, csr = _issue_setup(ca, client)
    ca.fault("issue", "status500")
    assert problem(client.issue(action["id"], old_key, old, csr)) == (500, "serverInternal")
    ca.fault("issue", "bad_nonce")
    assert problem(client.issue(action["id"], old_key, old, csr)) == (400, "badNonce")
    ca.fault("issue", "rate_limited", seconds=2)
    status, headers, _ = client.issue(action["id"], old_key, old, csr)
    assert status == 429 and headers["retry-after"] == "2"
    ca.fault("issue", "accepted", seconds=1, count=2)
    for _ in range(2):
        status, headers, body = client.issue(action["id"], old_key, old, csr)
        assert status == 202 and headers["retry-after"] == "1"
        assert json.loads(body) == {"retry_after": 1}
    assert ok_json(client.issue(action["id"], old_key, old, csr))["certificate"]
    ca.fault("issue", "malformed_json")
    status, headers, body = client.issue(action["id"], old_key, old, csr)
    assert status == 200 and headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(body)
    ca.fault("pending", "oversize")
    status, _, body = client.pending("t", [old])
    assert status == 200 and len(body) > 1024 * 1024
    assert json.loads(body)["pending"] == [action]
    ca.fault("nonce", "status500")
    with pytest.raises(refca_client.HTTPError):
        client.nonce()
    # Faults are used up; the CA answers normally again.
    assert ca.admin.faults() == []
    assert client.nonce()
    # Each fault used the request's nonce.
    nonces = [r.get("nonce") for r in ca.requests("issue")]
    assert all(nonces) and len(set(nonces)) == len(nonces)


def test_fault_for_one_action_only(ca, client):
    old_key, old, action, key, csr = _issue_setup(ca, client)
    ca.fault("issue", "status500", action="someone-else")
    assert ok_json(client.issue(action["id"], old_key, old, csr))
    assert len(ca.admin.faults()) == 1


def test_cut_short_slow_hang(ca, client):
    old_key, old, action, key, csr = _issue_setup(ca, client)
    ca.fault("issue", "cut_short")
    with pytest.raises(http.client.IncompleteRead):
        client.issue(action["id"], old_key, old, csr)
    ca.fault("pending", "slow", seconds=1.5)
    t0 = time.monotonic()
    assert ok_json(client.pending("t", [old]))
    assert time.monotonic() - t0 >= 1.5
    ca.fault("nonce", "hang", seconds=30)
    short = refca_client.Client(ca.url, timeout=1)
    with pytest.raises(OSError):
        short.nonce()
    # A reset ends the hang; the server still answers.
    ca.admin.reset()
    assert client.nonce()


def test_faults_are_validated(ca):
    with pytest.raises(refca_client.HTTPError):
        ca.fault("issue", "no-such-kind")
    with pytest.raises(refca_client.HTTPError):
        ca.fault("pending", "wrong_key")
    with pytest.raises(refca_client.HTTPError):
        ca.fault("nowhere", "status500")


# --- HTTPS --------------------------------------------------------------------

def test_tls(tmp_path):
    from harness.pki import PKI
    pki = PKI(str(tmp_path / "pki"))
    key = rsa_key()
    now = refca_pki.utcnow()
    cert = (x509.CertificateBuilder()
            .subject_name(refca_pki.make_name([["CN", "127.0.0.1"]]))
            .issuer_name(pki.other.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                critical=False)
            .sign(pki.other.key, hashes.SHA256()))
    cert_path, key_path, ca_path = (tmp_path / "tls.pem", tmp_path / "tls.key",
                                    tmp_path / "ca.pem")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ca_path.write_bytes(pki.other.pem)
    server = RefCA(str(tmp_path / "ca"), pki, tls=(str(cert_path), str(key_path),
                                                   str(ca_path))).start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        client = refca_client.Client(server.url, cafile=str(ca_path))
        old_key, old = enrolled(server)
        action = server.admin.add_action(replaces_serial=refca_pki.serial_hex(old))
        csr = refca_client.make_csr(rsa_key(), action["subject"])
        assert ok_json(client.issue(action["id"], old_key, old, csr))
        # The JWS url must be the https one.
        url = server.url.replace("https:", "http:") + f"/actions/{action['id']}/issue"
        assert problem(client.issue(action["id"], old_key, old, csr, url=url)) == \
            (400, "malformed")
    finally:
        assert server.stop() == 0
