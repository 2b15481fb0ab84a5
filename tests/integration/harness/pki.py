# SPDX-License-Identifier: LGPL-2.1-or-later
"""A test PKI made with python3-cryptography.

SAFE-CA: a root and an issuing CA (the issuers file of the SAFE-CA profile
holds both). OTHER-CA: an unrelated root that issues directly. End-entity
certificates carry a Vietnamese subject and a chosen validity; each comes
with what the daemon must report for it (serial, names, times, SHA-256).
"""

import datetime
import hashlib
import itertools
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# OpenSSL short names of the attributes these tests use (protocol-v1.md:
# "Attribute names are OpenSSL short names").
SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.USER_ID: "UID",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.TITLE: "title",
}

_OIDS = {v: k for k, v in SHORT_NAMES.items()}

SUBJECT_AN_PHAT = [
    ("C", "VN"),
    ("ST", "Hà Nội"),
    ("L", "Quận Cầu Giấy"),
    ("O", "CÔNG TY TNHH AN PHÁT"),
    ("CN", "CÔNG TY TNHH AN PHÁT"),
    ("UID", "MST:0101234567"),
]

_serials = itertools.count(0x5401A3 << 40)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def make_name(pairs):
    return x509.Name(
        [x509.RelativeDistinguishedName([x509.NameAttribute(_OIDS[a], v)]) for a, v in pairs]
    )


def name_pairs(name):
    """A name as protocol-v1.md writes it: [attr, value] per RDN, DER order."""
    out = []
    for rdn in name.rdns:
        for attr in rdn:
            out.append([SHORT_NAMES.get(attr.oid, attr.oid.dotted_string), attr.value])
    return out


def rfc3339(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_left(not_after, now=None):
    """Whole days from now to not_after, rounded down (floor)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return int((not_after - now).total_seconds() // 86400)


def new_key(kind="rsa"):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(kind)


class Issued:
    """An end-entity certificate, its key, and what status must show."""

    def __init__(self, cert, key):
        self.cert = cert
        self.key = key
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.pem = cert.public_bytes(serialization.Encoding.PEM)
        # A key made on a card is known by its public half only.
        self.key_pkcs8_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ) if hasattr(key, "private_bytes") else None
        self.serial = format(cert.serial_number, "x")
        self.subject = name_pairs(cert.subject)
        self.issuer = name_pairs(cert.issuer)
        self.not_before_dt = cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
        self.not_after_dt = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        self.not_before = rfc3339(self.not_before_dt)
        self.not_after = rfc3339(self.not_after_dt)
        self.sha256 = hashlib.sha256(self.der).hexdigest()

    def days_left(self):
        return days_left(self.not_after_dt)

    def expected(self, key_id, current):
        """The status JSON entry this certificate must have."""
        return {
            "serial": self.serial,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "sha256": self.sha256,
            "key_id": key_id.lower(),
            "current": current,
        }


class _CA:
    def __init__(self, subject_pairs, key, cert):
        self.subject_pairs = subject_pairs
        self.key = key
        self.cert = cert
        self.pem = cert.public_bytes(serialization.Encoding.PEM)


def _ca_cert(subject_pairs, key, issuer=None, path_len=None):
    now = utcnow()
    subject = make_name(subject_pairs)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=3650))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer = issuer.key if issuer else key
    return builder.sign(signer, hashes.SHA256())


class PKI:
    """SAFE-CA (root + issuing CA) and OTHER-CA, written to `directory`."""

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        root_key = new_key()
        root_subject = [("C", "VN"), ("O", "CÔNG TY CỔ PHẦN SAFE-CA"), ("CN", "SAFE-CA Root CA")]
        self.safe_root = _CA(root_subject, root_key, _ca_cert(root_subject, root_key, path_len=1))
        issuing_key = new_key()
        issuing_subject = [
            ("C", "VN"), ("O", "CÔNG TY CỔ PHẦN SAFE-CA"), ("CN", "SAFE-CA SHA-256 2020"),
        ]
        self.safe_issuing = _CA(
            issuing_subject, issuing_key,
            _ca_cert(issuing_subject, issuing_key, issuer=self.safe_root, path_len=0),
        )
        other_key = new_key()
        other_subject = [("C", "VN"), ("O", "CÔNG TY OTHER-CA"), ("CN", "OTHER-CA Root")]
        self.other = _CA(other_subject, other_key, _ca_cert(other_subject, other_key, path_len=0))

        self.safe_issuers_pem = os.path.join(directory, "safe-ca-issuers.pem")
        with open(self.safe_issuers_pem, "wb") as f:
            f.write(self.safe_issuing.pem + self.safe_root.pem)
        self.other_issuers_pem = os.path.join(directory, "other-ca-issuers.pem")
        with open(self.other_issuers_pem, "wb") as f:
            f.write(self.other.pem)
        self._keys = {}

    def key(self, kind="rsa", reuse=None):
        """A fresh key, or the one stored under the name `reuse`."""
        if reuse is not None:
            if reuse not in self._keys:
                self._keys[reuse] = new_key(kind)
            return self._keys[reuse]
        return new_key(kind)

    def issue(self, days_left=20.0, starts_in_days=-30.0, ca="safe", key=None, key_kind="rsa",
              subject=SUBJECT_AN_PHAT, serial=None, not_before=None, not_after=None):
        """An end-entity certificate whose not_after is `days_left` days from
        now (an extra hour so the floor is stable) and whose not_before is
        `starts_in_days` from now (negative: already valid); not_before and
        not_after (datetimes) override both. `key` may be a public key (one
        made on a card)."""
        now = utcnow()
        issuer = {"safe": self.safe_issuing, "other": self.other}[ca]
        key = key or new_key(key_kind)
        not_after_default = now + datetime.timedelta(days=days_left, hours=1)
        not_before_default = now + datetime.timedelta(days=starts_in_days)
        not_after = not_after or not_after_default
        not_before = not_before or not_before_default
        if not_before >= not_after:
            not_before = not_after - datetime.timedelta(days=1)
        cert = (
            x509.CertificateBuilder()
            .subject_name(make_name(subject))
            .issuer_name(issuer.cert.subject)
            .public_key(key.public_key() if hasattr(key, "public_key") else key)
            .serial_number(serial if serial is not None else next(_serials))
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
            .sign(issuer.key, hashes.SHA256())
        )
        return Issued(cert, key)
