# SPDX-License-Identifier: LGPL-2.1-or-later
"""The reference CA's PKI: names as protocol-v1.md writes them, the CA keys
kept in the state folder, and the certificates it issues.

State folder layout (PEM, keys unencrypted PKCS#8: this is a test CA):
  root.pem, root.key         "SAFE-CA Root CA", self-signed
  issuing.pem, issuing.key   "SAFE-CA SHA-256 2020", signed by the root
  issuers.pem                issuing CA then root: the daemon profile's
                             `issuers` file
  impostor.pem, impostor.key a CA with the issuing CA's very name but its
                             own key, trusted by nobody (the
                             `untrusted_issuer` fault)
A test harness may write root.* and issuing.* itself before starting the
server; the rest is made from them.
"""

import datetime
import hashlib
import os

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ObjectIdentifier

# OpenSSL's short names (OBJ_nid2sn) for the attributes a subject carries.
SHORT_NAMES = {
    "2.5.4.6": "C",
    "2.5.4.8": "ST",
    "2.5.4.7": "L",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.3": "CN",
    "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "emailAddress",
    "2.5.4.5": "serialNumber",
    "2.5.4.12": "title",
    "2.5.4.4": "SN",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.9": "street",
    "2.5.4.17": "postalCode",
    "2.5.4.15": "businessCategory",
    "2.5.4.13": "description",
    "2.5.4.41": "name",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
}
_OIDS = {short: oid for oid, short in SHORT_NAMES.items()}

# protocol-v1.md, Identifiers: the string types of a certificate request.
PRINTABLE = {"C", "serialNumber", "dnQualifier"}
IA5 = {"emailAddress", "DC"}

SAFE_ORG = "CÔNG TY CỔ PHẦN SAFE-CA"
ROOT_SUBJECT = [["C", "VN"], ["O", SAFE_ORG], ["CN", "SAFE-CA Root CA"]]
ISSUING_SUBJECT = [["C", "VN"], ["O", SAFE_ORG], ["CN", "SAFE-CA SHA-256 2020"]]


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def rfc3339(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    """RFC 3339 in UTC with Z; fractional seconds are dropped."""
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    body = text[:-1].split(".")[0]
    dt = datetime.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    return dt.replace(tzinfo=datetime.timezone.utc)


def cert_not_before(cert):
    return cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def cert_not_after(cert):
    return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def serial_hex(cert_or_int):
    n = cert_or_int if isinstance(cert_or_int, int) else cert_or_int.serial_number
    return format(n, "x")


def short_name(oid):
    return SHORT_NAMES.get(oid.dotted_string, oid.dotted_string)


def name_pairs(name):
    """[attr, value] per RDN, in DER order (protocol-v1.md, Identifiers)."""
    return [[short_name(attr.oid), attr.value] for rdn in name.rdns for attr in rdn]


def expected_type(attr):
    if attr in PRINTABLE:
        return _ASN1Type.PrintableString
    if attr in IA5:
        return _ASN1Type.IA5String
    return _ASN1Type.UTF8String


def wrong_string_types(name):
    """The attributes of a request's subject whose ASN.1 string type is not
    the one protocol-v1.md fixes, as [(attr, found type name)]."""
    bad = []
    for rdn in name.rdns:
        for attr in rdn:
            short = short_name(attr.oid)
            if attr._type != expected_type(short):
                bad.append((short, attr._type.name))
    return bad


def make_name(pairs):
    """An x509.Name from [attr, value] pairs, with the contract's string
    types; attributes are short names or dotted OIDs."""
    if not isinstance(pairs, list) or not pairs:
        raise ValueError("a name is a non-empty list of [attribute, value] pairs")
    rdns = []
    for pair in pairs:
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(p, str) for p in pair)):
            raise ValueError(f"not an [attribute, value] pair: {pair!r}")
        attr, value = pair
        dotted = _OIDS.get(attr, attr)
        try:
            oid = ObjectIdentifier(dotted)
        except ValueError:
            raise ValueError(f"unknown attribute {attr!r}") from None
        rdns.append(x509.RelativeDistinguishedName(
            [x509.NameAttribute(oid, value, expected_type(attr))]))
    return x509.Name(rdns)


def spki_der(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_sha256(public_key):
    """SHA-256 of the SubjectPublicKeyInfo DER, hex: how the log names keys."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def cert_sha256(cert):
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_description(public_key):
    """The `key` member that describes an existing key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return {"type": "rsa", "bits": public_key.key_size}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return {"type": "ec", "curve": curve.get(public_key.curve.name, public_key.curve.name)}
    return {"type": "unknown"}


def key_matches(public_key, key):
    """Whether a public key is what a `generate: true` key member asks for;
    returns None when it is, else the reason."""
    kind = key.get("type")
    if kind == "rsa":
        if not isinstance(public_key, rsa.RSAPublicKey):
            return "the action asks for an RSA key"
        if public_key.key_size != key.get("bits"):
            return f"the action asks for RSA {key.get('bits')} bits, not {public_key.key_size}"
        if public_key.public_numbers().e != 65537:
            return "the RSA public exponent must be 65537"
        return None
    if kind == "ec":
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            return "the action asks for an EC key"
        want = {"P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1"}.get(
            key.get("curve"))
        if public_key.curve.name != want:
            return f"the action asks for curve {key.get('curve')}, not {public_key.curve.name}"
        return None
    return f"the action's key type {kind!r} cannot be issued"


def signature_ok(cert, issuer_public_key):
    """Whether `cert`'s signature verifies with `issuer_public_key`
    (cryptography 38 has no verify_directly_issued_by)."""
    try:
        if isinstance(issuer_public_key, rsa.RSAPublicKey):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes,
                                     padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(issuer_public_key, ec.EllipticCurvePublicKey):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes,
                                     ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _write(path, data, mode=0o644):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _ca_cert(subject_pairs, key, issuer_name=None, issuer_key=None, path_len=None):
    now = utcnow()
    subject = make_name(subject_pairs)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(issuer_key or key, hashes.SHA256())
    )


def _load_pair(directory, name):
    with open(os.path.join(directory, name + ".pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(directory, name + ".key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    return cert, key


class PKI:
    """The CA keys and certificates of one state folder."""

    def __init__(self, directory, init=False):
        self.directory = directory
        paths = [os.path.join(directory, n) for n in
                 ("root.pem", "root.key", "issuing.pem", "issuing.key")]
        if not all(os.path.exists(p) for p in paths):
            if not init:
                raise FileNotFoundError(
                    f"{directory} holds no CA (root.pem, issuing.pem and their keys); "
                    "run with --init to make one")
            self._create()
        self.root, self.root_key = _load_pair(directory, "root")
        self.issuing, self.issuing_key = _load_pair(directory, "issuing")
        self.issuers_pem = os.path.join(directory, "issuers.pem")
        issuers = (pem(self.issuing) + pem(self.root)).encode()
        if not os.path.exists(self.issuers_pem) or open(self.issuers_pem, "rb").read() != issuers:
            _write(self.issuers_pem, issuers)
        if not os.path.exists(os.path.join(directory, "impostor.pem")):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _ca_cert(name_pairs(self.issuing.subject), key, path_len=0)
            _write(os.path.join(directory, "impostor.key"), _key_pem(key), 0o600)
            _write(os.path.join(directory, "impostor.pem"), cert.public_bytes(
                serialization.Encoding.PEM))
        self.impostor, self.impostor_key = _load_pair(directory, "impostor")
        self.issuer_pairs = name_pairs(self.issuing.subject)

    def _create(self):
        os.makedirs(self.directory, exist_ok=True)
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = _ca_cert(ROOT_SUBJECT, root_key, path_len=1)
        issuing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        issuing = _ca_cert(ISSUING_SUBJECT, issuing_key, issuer_name=root.subject,
                           issuer_key=root_key, path_len=0)
        for name, cert, key in (("root", root, root_key), ("issuing", issuing, issuing_key)):
            _write(os.path.join(self.directory, name + ".key"), _key_pem(key), 0o600)
            _write(os.path.join(self.directory, name + ".pem"),
                   cert.public_bytes(serialization.Encoding.PEM))

    def signed_by_issuing(self, cert):
        """Whether `cert` was signed by this CA's issuing key."""
        if cert.issuer != self.issuing.subject:
            return False
        return signature_ok(cert, self.issuing.public_key())

    def issue(self, subject, public_key, not_before, not_after, serial=None, impostor=False):
        """An end-entity certificate. `subject` is an x509.Name (kept as it
        is, string types included) or [attr, value] pairs."""
        if not isinstance(subject, x509.Name):
            subject = make_name(subject)
        ca_cert, ca_key = ((self.impostor, self.impostor_key) if impostor
                           else (self.issuing, self.issuing_key))
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(public_key)
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=True, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(ca_key, hashes.SHA256())
        )


def fresh_key_like(public_key):
    """A new key pair of the same kind (the `wrong_key` fault)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=public_key.key_size)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(public_key.curve)
    return ec.generate_private_key(ec.SECP256R1())

