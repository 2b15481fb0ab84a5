# SPDX-License-Identifier: LGPL-2.1-or-later
"""protocol = cmp against another peer: OpenSSL's own mock CMP server
(`openssl cmp -port`, harness.cmp.MockServer), which verifies the
request's protection and proof of possession and answers with a fixed
certificate (-rsp_cert), a rejection, an error message, an unprotected
answer or polling. safecad's key update must succeed with it, re-certifying
the same key or a new one made on the token, and each fault must end in
exit 5, one sentence naming the cause with the profile's support line,
and a token as it was."""

import json
import os
import re
import socket
import threading
import types

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.cmp import MockServer, free_port, recertify
from harness.cmpca import CmpCA, failure_bits
from harness.refca import (
    activate, assert_unchanged, certificates, openssl_verify, p11, private_keys,
    sign_and_verify, snapshot, token_with_pair)
from harness.safecad import find_token
from test_cmp_update import SUPPORT, configure_cmp, the_action

STATUS_WORDS = "khóa không hợp lệ"


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def _spki(key_or_cert):
    key = key_or_cert.public_key() if hasattr(key_or_cert, "public_key") else key_or_cert
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


class Peer:
    """The files a mock needs (server certificate and key issued by
    SAFE-CA's issuing CA, the issuers, the CA's key) and the mocks started
    with them. `.url` and `.issuers_path` are what configure_cmp() takes."""

    def __init__(self, directory, pki):
        self.directory = directory
        self.pki = pki
        self.files = CmpCA(os.path.join(directory, "files"), pki)  # never started
        self.issuers_path = self.files.issuers_path
        self.url = None
        self.mocks = []

    def certificate_for(self, old, public_key, name="rsp.pem"):
        """What the mock must answer to the kur of `old` (a harness.pki
        Issued): the old certificate's subject, serial and issuer (the
        mock wants the request's oldCertID to be -rsp_cert's), the given
        public key, a year of validity; signed by the issuing CA."""
        old_path = _write(os.path.join(self.directory, "old.pem"), old.pem)
        pub_path = _write(os.path.join(self.directory, name + ".pub"),
                          public_key.public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
        path = recertify(old_path, pub_path, self.files.ca_cert_path, self.files.ca_key_path,
                         os.path.join(self.directory, name))
        with open(path, "rb") as f:
            return path, x509.load_pem_x509_certificate(f.read())

    def start(self, rsp_cert, **options):
        """A mock answering with rsp_cert (a path); its log shows every
        message it received (verbosity 7)."""
        mock = MockServer(os.path.join(self.directory, f"mock-{len(self.mocks)}"),
                          self.files.server_cert_path, self.files.server_key_path,
                          srv_trusted=self.issuers_path, rsp_cert=rsp_cert, verbosity=7,
                          **options)
        self.mocks.append(mock)
        mock.start()
        self.url = mock.url
        return mock


def received(mock):
    """The body types the mock received, in order ("KUR", "CERTCONF"...)."""
    return re.findall(r"CMP DEBUG: received (\w+)", mock.log())


@pytest.fixture
def peer(world, pki):
    p = Peer(os.path.join(world.dir, "peer"), pki)
    yield p
    for mock in p.mocks:
        print(f"----- openssl cmp -port {mock.port} -----\n{mock.log()}")
        mock.stop()


def assert_one_sentence(run, words):
    """The CA's fault, as safectl shows it: one line, the cause, the
    profile's support line."""
    text = run.err.strip()
    assert words in text, run
    assert f"Support: {SUPPORT}" in text, run
    assert "\n" not in text, run


def assert_holds(world, pki, token, expected, key_id):
    """The token holds `expected` (DER-equal) with the key `key_id`, it
    chains to SAFE-CA, the key signs for it; nothing is left to do."""
    held = [(o, c) for o, c in certificates(token) if c == expected]
    assert len(held) == 1, [c.serial_number for _, c in certificates(token)]
    obj, cert = held[0]
    assert obj["id"] == key_id, obj
    openssl_verify(pki, cert, world.dir)
    sign_and_verify(token, key_id, cert)
    t = find_token(world.status(), token.serial)
    assert t["pending"] == [] and t["activation"] is None, t


# --- renewals ------------------------------------------------------------------


def test_key_same_is_certified_again_and_confirmed(world, pki, peer):
    token, old = token_with_pair(world, pki)
    rsp_cert, expected = peer.certificate_for(old, old.cert.public_key())
    assert expected.not_valid_after > old.cert.not_valid_after
    mock = peer.start(rsp_cert)
    configure_cmp(world, peer, key="same")
    world.start_daemon()
    run = activate(world, token.serial, the_action(world, token)["id"])
    assert run.rc == 0, run
    assert "Confirmed with the CA" in run.out, run
    assert received(mock) == ["KUR", "CERTCONF"], mock.log()
    assert_holds(world, pki, token, expected, "01")
    assert len(private_keys(token)) == 1, private_keys(token)
    assert _spki(expected) == _spki(old.cert)
    # The replaced certificate stays beside the new one.
    assert sorted(c.not_valid_after for _, c in certificates(token)) == \
        [old.cert.not_valid_after, expected.not_valid_after]


def _journal(world, token, action_id):
    """The activation's journal (named by the token serial's bytes in hex)."""
    path = os.path.join(world.statedir, "activations",
                        f"{token.serial.encode().hex()}.{action_id}.json")
    with open(path) as f:
        return json.load(f)


def _public_key_on_token(token, key_id, directory):
    """The token's public key object `key_id`, read by pkcs11-tool."""
    path = os.path.join(directory, f"pubkey-{key_id}.der")
    p11(token, "--read-object", "--type", "pubkey", "--id", key_id, "-o", path)
    with open(path, "rb") as f:
        return serialization.load_der_public_key(f.read())


@pytest.mark.parametrize("key_kind", ["rsa", "ec"])
def test_a_new_key_kept_from_a_failed_attempt_is_certified(world, pki, peer, key_kind):
    """FACTS.md's recipe: the first attempt meets no CA but leaves its new
    key on the token and in the journal; the mock then answers with a
    certificate for that key, and the second attempt sends it again."""
    token, old = token_with_pair(world, pki, key_kind=key_kind)
    closed = types.SimpleNamespace(url=f"http://127.0.0.1:{free_port()}/pkix/",
                                   issuers_path=peer.issuers_path)
    configure_cmp(world, closed)
    world.start_daemon()
    action = the_action(world, token)
    certs_before = snapshot(token)["certificates"]

    first = activate(world, token.serial, action["id"])
    assert first.rc == 5, first
    assert_one_sentence(first, closed.url)
    assert snapshot(token)["certificates"] == certs_before
    key_id = _journal(world, token, action["id"])["new_key_id"]
    assert sorted(o["id"] for o in private_keys(token)) == sorted(["01", key_id])
    new_public = _public_key_on_token(token, key_id, world.dir)
    assert _spki(new_public) != _spki(old.cert)

    rsp_cert, expected = peer.certificate_for(old, new_public)
    mock = peer.start(rsp_cert)
    configure_cmp(world, peer)
    world.daemons[-1].stop()
    world.start_daemon()
    second = activate(world, token.serial, action["id"])
    assert second.rc == 0, second
    assert received(mock) == ["KUR", "CERTCONF"], mock.log()
    assert_holds(world, pki, token, expected, key_id)
    assert sorted(o["id"] for o in private_keys(token)) == sorted(["01", key_id]), \
        "a second new key was made"
    sign_and_verify(token, "01", old.cert)


def test_polling_is_honoured(world, pki, peer):
    token, old = token_with_pair(world, pki)
    rsp_cert, expected = peer.certificate_for(old, old.cert.public_key())
    mock = peer.start(rsp_cert, poll_count=2, check_after=1)
    configure_cmp(world, peer, key="same")
    world.start_daemon()
    run = activate(world, token.serial, the_action(world, token)["id"])
    assert run.rc == 0, run
    assert received(mock) == ["KUR", "POLLREQ", "POLLREQ", "CERTCONF"], mock.log()
    # The second poll waited the second the first pollRep asked for.
    assert run.seconds >= 1, run
    assert_holds(world, pki, token, expected, "01")


# --- the peer's faults: exit 5, one sentence, nothing written -------------------


FAULTS = [
    ({"pkistatus": 2, "failure": 9, "statusstring": STATUS_WORDS},
     ["The CA rejected the request", "badPOP", STATUS_WORDS]),
    ({"pkistatus": 2, "failurebits": failure_bits(["badRequest", "badCertTemplate"]),
      "statusstring": STATUS_WORDS},
     ["The CA rejected the request", "badRequest", "badCertTemplate", STATUS_WORDS]),
    # The mock's error message carries its own status (a rejection,
    # badRequest, "error processing message"): said as an error, not as a
    # refusal of the request.
    ({"send_error": True}, ["The CA answered with an error", "badRequest",
                            "error processing message"]),
    ({"send_unprotected": True}, ["The CA's answer is not protected"]),
]


@pytest.mark.parametrize("options,words", FAULTS,
                         ids=["rejection", "rejection-failurebits", "error", "unprotected"])
def test_a_mock_fault_is_one_clear_sentence_and_nothing_is_written(world, pki, peer, options,
                                                                   words):
    token, old = token_with_pair(world, pki)
    rsp_cert, _ = peer.certificate_for(old, old.cert.public_key())
    mock = peer.start(rsp_cert, **options)
    configure_cmp(world, peer, key="same")
    world.start_daemon()
    before = snapshot(token)
    run = activate(world, token.serial, the_action(world, token)["id"])
    assert run.rc == 5, run
    for w in words:
        assert_one_sentence(run, w)
    assert received(mock)[0] == "KUR", mock.log()
    assert "CERTCONF" not in received(mock), mock.log()
    assert_unchanged(token, before)
    sign_and_verify(token, "01", old.cert)


def test_a_server_cert_other_than_the_mock_s_is_refused(world, pki, peer):
    token, old = token_with_pair(world, pki)
    rsp_cert, _ = peer.certificate_for(old, old.cert.public_key())
    mock = peer.start(rsp_cert)
    other = _write(os.path.join(world.dir, "other-server.pem"), pki.issue(days_left=300).pem)
    configure_cmp(world, peer, key="same", server_cert=other)
    world.start_daemon()
    before = snapshot(token)
    run = activate(world, token.serial, the_action(world, token)["id"])
    assert run.rc == 5, run
    assert_one_sentence(run, "not protected by a certificate this profile trusts")
    assert received(mock) == ["KUR"], mock.log()
    assert_unchanged(token, before)


class SilentServer:
    """A loopback port that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)  # the request waits in its buffer

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        for c in self.accepted:
            c.close()
        self.sock.close()


def test_a_server_that_never_answers_times_out(world, pki, peer):
    token, old = token_with_pair(world, pki)
    silent = SilentServer()
    try:
        ca = types.SimpleNamespace(url=f"http://127.0.0.1:{silent.port}/pkix/",
                                   issuers_path=peer.issuers_path)
        configure_cmp(world, ca, key="same", timeout=3)
        world.start_daemon()
        before = snapshot(token)
        run = activate(world, token.serial, the_action(world, token)["id"])
        assert silent.accepted, "safecad never connected"
    finally:
        silent.close()
    assert run.rc == 5, run
    assert_one_sentence(run, "did not answer within 3")
    assert 3 <= run.seconds < 15, run
    assert_unchanged(token, before)
