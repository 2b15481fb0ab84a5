# SPDX-License-Identifier: LGPL-2.1-or-later
"""The CMP test CA (tests/cmp-ca) and the `openssl cmp` mock wrapper,
checked with OpenSSL's own CMP client and file keys: what the CA issues,
what each of its faults does to a client, and what it records."""

import datetime
import os
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from harness.cmp import MockServer, openssl_cmp, public_key_pem, recertify
from harness.cmpca import CMP_TEST_CA, CmpCA
from harness.pki import make_name, new_key

pytestmark = pytest.mark.skipif(not os.path.exists(CMP_TEST_CA),
                                reason="cmp-test-ca is not built (SAFECAD_BUILD_DIR)")

NEW_SUBJECT = "/C=VN/O=CÔNG TY TNHH AN PHÁT/CN=Nguyễn Văn An"


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def _key_file(path, kind):
    key = new_key(kind)
    _write(path, key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return key


def _public_der(key_or_cert):
    """The SubjectPublicKeyInfo of a private key or a certificate."""
    return key_or_cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


class Client:
    """An end entity for `openssl cmp`: a current certificate from the
    session PKI (SAFE-CA) and its key in files, and a new key."""

    def __init__(self, directory, pki, new_kind="rsa", days_left=20):
        self.dir = directory
        self.old = pki.issue(days_left=days_left)
        self.old_cert = _write(directory / "old.pem", self.old.pem)
        self.old_key = _write(directory / "old.key", self.old.key_pkcs8_pem)
        self.new_key_path = str(directory / "new.key")
        self.new_key = _key_file(self.new_key_path, new_kind)
        self.out = str(directory / "new.pem")

    def run(self, ca, cmd="kur", *extra, srvcert=None, trusted=None, timeout=30):
        """`openssl cmp -cmd CMD` against ca (a CmpCA or MockServer),
        trusting its server certificate (or the `trusted` PEM file)."""
        host, path = ca.url.removeprefix("http://").split("/", 1)
        trust = ["-trusted", trusted] if trusted else \
            ["-srvcert", srvcert or ca.server_cert_path]
        return openssl_cmp("-cmd", cmd, "-server", host, "-path", path, *trust,
                           "-cert", self.old_cert, "-key", self.old_key,
                           "-newkey", self.new_key_path, "-certout", self.out,
                           "-msg_timeout", 5, "-total_timeout", 20, *extra, timeout=timeout)

    def new_cert(self):
        with open(self.out, "rb") as f:
            return x509.load_pem_x509_certificate(f.read())


@pytest.fixture
def client(tmp_path, pki):
    return Client(tmp_path, pki)


@pytest.fixture
def make_ca(tmp_path, pki):
    """make_ca(**options) → a started CmpCA, stopped (and checked) after
    the test."""
    cas = []

    def make(**options):
        ca = CmpCA(str(tmp_path / f"ca{len(cas)}"), pki, **options).start()
        cas.append(ca)
        return ca
    yield make
    for ca in cas:
        try:
            ca.stop()
        finally:
            print(f"----- cmp-test-ca log -----\n{ca.log()}")


def _failed(result, *texts):
    """openssl cmp failed, saying each of `texts` (it logs on stdout)."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"openssl cmp succeeded:\n{output}"
    for text in texts:
        assert text in output, f"{text!r} not in:\n{output}"


def _succeeded(result):
    assert result.returncode == 0, \
        f"openssl cmp exited {result.returncode}:\n{result.stdout}{result.stderr}"


def _assert_chains_to_ca(pki, cert_path):
    r = subprocess.run(["openssl", "verify", "-CAfile", pki.directory + "/safe-ca-issuers.pem",
                        cert_path], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# --- issuing ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_kur_issues_for_the_requested_key(tmp_path, pki, make_ca, kind):
    client = Client(tmp_path, pki, new_kind=kind)
    ca = make_ca()
    _succeeded(client.run(ca, "kur"))
    cert = client.new_cert()
    assert _public_der(cert) == _public_der(client.new_key)
    assert cert.subject == client.old.cert.subject
    assert cert.issuer == pki.safe_issuing.cert.subject
    assert cert.serial_number != client.old.cert.serial_number
    _assert_chains_to_ca(pki, client.out)
    assert ca.types() == ["kur", "certConf"]
    [conf] = ca.cert_confs()
    assert conf["hash_matched"] and conf["accepted"], conf
    [issued] = ca.issued()
    assert issued == cert


@pytest.mark.parametrize("cmd,kind", [("ir", "rsa"), ("cr", "ec")])
def test_ir_and_cr_take_the_requested_subject(tmp_path, pki, make_ca, cmd, kind):
    client = Client(tmp_path, pki, new_kind=kind)
    ca = make_ca()
    _succeeded(client.run(ca, cmd, "-subject", NEW_SUBJECT))
    cert = client.new_cert()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Nguyễn Văn An"
    assert _public_der(cert) == _public_der(client.new_key)
    _assert_chains_to_ca(pki, client.out)
    assert ca.types() == [cmd, "certConf"]
    assert ca.cert_confs()[0]["hash_matched"]


def test_ir_with_a_shared_secret(tmp_path, pki, make_ca):
    key_path = str(tmp_path / "new.key")
    key = _key_file(key_path, "ec")
    ca = make_ca(secret="mật khẩu một lần")
    out = str(tmp_path / "new.pem")
    host, path = ca.url.removeprefix("http://").split("/", 1)
    _succeeded(openssl_cmp("-cmd", "ir", "-server", host, "-path", path,
                           "-srvcert", ca.server_cert_path, "-ref", "4711",
                           "-secret", "pass:mật khẩu một lần", "-newkey", key_path,
                           "-subject", NEW_SUBJECT, "-certout", out, "-msg_timeout", 5))
    with open(out, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    assert _public_der(cert) == _public_der(key)
    assert ca.types() == ["ir", "certConf"]


def test_p10cr_issues_for_the_csr(tmp_path, make_ca, client):
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        make_name([("CN", "p10cr")])).sign(client.new_key, hashes.SHA256())
    csr_path = _write(tmp_path / "req.csr", csr.public_bytes(serialization.Encoding.PEM))
    ca = make_ca()
    _succeeded(client.run(ca, "p10cr", "-csr", csr_path))
    cert = client.new_cert()
    assert cert.subject == make_name([("CN", "p10cr")])
    assert ca.types() == ["p10cr", "certConf"]


def test_days_sets_the_validity(make_ca, client):
    ca = make_ca(days=30)
    _succeeded(client.run(ca))
    cert = client.new_cert()
    length = cert.not_valid_after - cert.not_valid_before
    assert abs(length - datetime.timedelta(days=30)) < datetime.timedelta(minutes=5)


def test_the_record_holds_every_message(make_ca, client):
    ca = make_ca()
    _succeeded(client.run(ca, trusted=ca.issuers_path))
    messages = ca.messages()
    assert [(m.direction, m.type) for m in messages] == [
        ("request", "kur"), ("response", "kup"), ("request", "certConf"),
        ("response", "pkiconf")]
    for m in messages:
        assert m.der[0] == 0x30 and os.path.basename(m.path).startswith(f"{m.number:03}-")
    e = ca.exchanges()
    assert e[0]["transaction_id"] == e[1]["transaction_id"]
    assert e[1]["transaction_closed"] and not e[0]["transaction_closed"]


# --- answers a client must refuse ------------------------------------------------

def test_reject_with_failure_bits_and_text(make_ca, client):
    ca = make_ca(reject=["badPOP", "badCertTemplate"], status_string="Thử lại sau")
    _failed(client.run(ca), "rejection", "badPOP, badCertTemplate", "Thử lại sau")
    assert ca.types() == ["kur"]
    assert ca.exchanges()[0]["rejected"]
    assert ca.issued() == []


def test_other_public_key_is_refused_by_the_client(make_ca, client):
    ca = make_ca(other_public_key=True)
    _failed(client.run(ca), "public key in new certificate does not match")
    assert ca.types() == ["kur", "certConf"]
    [conf] = ca.cert_confs()
    assert conf["hash_matched"] and not conf["accepted"], conf
    [issued] = ca.issued()
    assert _public_der(issued) != _public_der(client.new_key)


def test_other_subject(make_ca, client):
    ca = make_ca(other_subject=True)
    _succeeded(client.run(ca))  # OpenSSL 3.0's client does not check it
    cert = client.new_cert()
    assert cert.subject != client.old.cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[-1].value == "another subject"


def test_not_after_before_the_old_one(make_ca, client):
    ca = make_ca(not_after_before_old=True)
    _succeeded(client.run(ca))
    old_end = client.old.cert.not_valid_after
    new_end = client.new_cert().not_valid_after
    assert old_end - datetime.timedelta(days=1, minutes=5) < new_end < old_end


@pytest.mark.parametrize("fault,text", [
    ("wrong-cert-req-id", "certresponse not found"),
    ("wrong-recip-nonce", "recipnonce unmatched"),
    ("no-recip-nonce", "recipnonce unmatched"),
    ("wrong-transaction-id", "transactionid unmatched"),
    ("no-transaction-id", "transactionid unmatched"),
    ("unprotected", "missing protection"),
    ("wrong-key", "signature verification failed"),
])
def test_answer_faults(make_ca, client, fault, text):
    ca = make_ca(faults=[fault])
    _failed(client.run(ca), text)
    [e] = ca.exchanges()
    assert e["request"] == "kur" and e["response"] == "kup" and e["faults"] == [fault]
    assert not os.path.exists(client.out)


def test_http_status(make_ca, client):
    ca = make_ca(http_status=500)
    _failed(client.run(ca), "code=500")
    [e] = ca.exchanges()
    assert e["http_status"] == 500 and e["response"] is None


def test_hang_ends_in_the_client_timeout(make_ca, client):
    ca = make_ca(faults=["hang"])
    start = time.monotonic()
    result = client.run(ca, "kur", "-msg_timeout", 2)
    assert time.monotonic() - start < 10
    _failed(result)
    assert ca.types() == ["kur"] and ca.exchanges()[0]["response"] is None


def test_faults_on_the_cert_conf_only(make_ca, client):
    """The certificate comes, its confirmation is never answered."""
    ca = make_ca(faults=["close"], fault_on="certConf")
    _failed(client.run(ca), "CERTCONF")
    assert ca.types() == ["kur", "certConf"]
    kur, conf = ca.exchanges()
    assert kur["faults"] == [] and kur["issued_serial"]
    assert conf["faults"] == ["close"] and conf["response"] is None


def test_fault_count_limits_the_fault(make_ca, client):
    ca = make_ca(http_status=500, fault_count=1)
    _failed(client.run(ca), "code=500")
    _succeeded(client.run(ca))
    assert ca.types() == ["kur", "kur", "certConf"]


# --- polling, confirmation ---------------------------------------------------

def test_polling(make_ca, client):
    ca = make_ca(poll_count=2, check_after=1)
    start = time.monotonic()
    _succeeded(client.run(ca))
    assert time.monotonic() - start >= 0.9  # one pollRep's checkAfter
    assert ca.types() == ["kur", "pollReq", "pollReq", "certConf"]
    answers = [e["response"] for e in ca.exchanges()]
    assert answers == ["kup", "pollRep", "kup", "pkiconf"]
    assert ca.cert_confs()[0]["hash_matched"]


def test_polling_then_rejection(make_ca, client):
    ca = make_ca(poll_count=1, check_after=0, reject="badRequest")
    _failed(client.run(ca), "rejection", "badRequest")
    assert ca.types() == ["kur", "pollReq"]


def test_implicit_confirm_refused_unless_granted(make_ca, client):
    ca = make_ca()
    _succeeded(client.run(ca, "kur", "-implicit_confirm"))
    assert ca.types() == ["kur", "certConf"]
    assert not ca.exchanges()[0]["implicit_confirm_granted"]


def test_implicit_confirm_granted(make_ca, client):
    ca = make_ca(grant_implicit=True)
    _succeeded(client.run(ca, "kur", "-implicit_confirm"))
    assert ca.types() == ["kur"]
    [e] = ca.exchanges()
    assert e["implicit_confirm_granted"] and e["transaction_closed"]


@pytest.mark.parametrize("accept", [False, True])
def test_bad_cert_hash(tmp_path, make_ca, client, accept):
    """A certConf from an earlier transaction, sent again in a new one
    (-reqin with fresh IDs and nonces), names the wrong certificate: it is
    recorded, and rejected unless --accept-bad-cert-hash."""
    ca = make_ca(accept_bad_cert_hash=accept)
    first = [str(tmp_path / "kur.der"), str(tmp_path / "certConf.der")]
    _succeeded(client.run(ca, "kur", "-reqout", ",".join(first)))
    result = client.run(ca, "kur", "-reqin", ",".join(first), "-reqin_new_tid")
    if accept:
        _succeeded(result)
    else:
        _failed(result, "certhash unmatched")
    assert ca.types() == ["kur", "certConf", "kur", "certConf"]
    assert [c["hash_matched"] for c in ca.cert_confs()] == [True, False]
    assert ca.exchanges()[3]["response"] == ("pkiconf" if accept else "error")


def test_two_clients_at_once(tmp_path, pki, make_ca):
    """Each waits a second between polls: their transactions overlap."""
    ca = make_ca(poll_count=2, check_after=1)
    clients = []
    for name in ("a", "b"):
        os.makedirs(tmp_path / name)
        clients.append(Client(tmp_path / name, pki, new_kind="ec"))
    url = ca.url.removeprefix("http://")
    host, path = url.split("/", 1)
    procs = [subprocess.Popen(["openssl", "cmp", "-cmd", "kur", "-server", host, "-path", path,
                               "-srvcert", ca.server_cert_path, "-cert", c.old_cert,
                               "-key", c.old_key, "-newkey", c.new_key_path, "-certout", c.out,
                               "-msg_timeout", "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in clients]
    for p in procs:
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0, out
    for c in clients:
        assert _public_der(c.new_cert()) == _public_der(c.new_key)
    assert sorted(ca.types()) == sorted(["kur", "pollReq", "pollReq", "certConf"] * 2)
    ids = [e["transaction_id"] for e in ca.exchanges()]
    assert len(set(ids)) == 2
    first, second = ids[0], next(i for i in ids if i != ids[0])
    assert ids.index(second) < len(ids) - 1 - ids[::-1].index(first), ids
    assert all(c["hash_matched"] for c in ca.cert_confs())


# --- openssl cmp's mock server ------------------------------------------------

@pytest.fixture
def mock_files(tmp_path, pki, client):
    """The server certificate and key, the issuing CA's files, and the
    client, for MockServer."""
    ca = CmpCA(str(tmp_path / "files"), pki)  # writes the files, never started
    return ca, client


def test_mock_kur_with_a_recertified_key(tmp_path, mock_files):
    files, client = mock_files
    rsp_cert = recertify(client.old_cert, public_key_pem(client.new_key_path,
                                                         str(tmp_path / "new.pub")),
                         files.ca_cert_path, files.ca_key_path, str(tmp_path / "rsp.pem"))
    with MockServer(str(tmp_path / "mock"), files.server_cert_path, files.server_key_path,
                    srv_trusted=files.issuers_path, rsp_cert=rsp_cert) as mock:
        _succeeded(client.run(mock, srvcert=files.server_cert_path))
    cert = client.new_cert()
    assert cert.serial_number == client.old.cert.serial_number
    assert _public_der(cert) == _public_der(client.new_key)


def test_mock_rejection(tmp_path, mock_files):
    files, client = mock_files
    with MockServer(str(tmp_path / "mock"), files.server_cert_path, files.server_key_path,
                    srv_trusted=files.issuers_path, rsp_cert=client.old_cert, pkistatus=2,
                    failure=9, statusstring="khóa không hợp lệ") as mock:
        _failed(client.run(mock, srvcert=files.server_cert_path), "rejection", "badPOP",
                "khóa không hợp lệ")


def test_mock_error_message(tmp_path, mock_files):
    files, client = mock_files
    with MockServer(str(tmp_path / "mock"), files.server_cert_path, files.server_key_path,
                    srv_trusted=files.issuers_path, rsp_cert=client.old_cert,
                    send_error=True) as mock:
        _failed(client.run(mock, srvcert=files.server_cert_path), "received error")
