# SPDX-License-Identifier: LGPL-2.1-or-later
"""CMP messages (RFC 4210) read from their DER with no ASN.1 library: just
enough to take a recorded PKIMessage apart, and to check its protection,
its proof of possession and a certConf's certHash with python3-cryptography,
so that a test holds a client's messages to the standard itself rather than
to what one implementation or the other reports.

The CMP module uses explicit tags (a header field [4] holds an OCTET
STRING); CRMF's are implicit (a template's [6] publicKey is a
SubjectPublicKeyInfo with its tag replaced)."""

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

# PKIBody choice tags (RFC 4210 section 5.1.2), as the first octet of a body.
BODY_TAGS = {0xA0 | n: name for n, name in enumerate([
    "ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr", "kur", "kup", "krr", "krp",
    "rr", "rp", "ccr", "ccp", "ckuann", "cann", "rann", "crlann", "pkiconf", "nested",
    "genm", "genp", "error", "certConf", "pollReq", "pollRep"])}
HEADER_FIELDS = {"messageTime": 0, "protectionAlg": 1, "senderKID": 2, "recipKID": 3,
                 "transactionID": 4, "senderNonce": 5, "recipNonce": 6, "freeText": 7,
                 "generalInfo": 8}
IMPLICIT_CONFIRM = "1.3.6.1.5.5.7.4.13"
OLD_CERT_ID = "1.3.6.1.5.5.7.5.1.5"
# The signature algorithms a CMP client may protect or prove with, and the
# hash each uses (RFC 4055, RFC 5758).
SIGNATURES = {
    "1.2.840.113549.1.1.11": ("rsa", hashes.SHA256),
    "1.2.840.113549.1.1.12": ("rsa", hashes.SHA384),
    "1.2.840.113549.1.1.13": ("rsa", hashes.SHA512),
    "1.2.840.10045.4.3.2": ("ec", hashes.SHA256),
    "1.2.840.10045.4.3.3": ("ec", hashes.SHA384),
    "1.2.840.10045.4.3.4": ("ec", hashes.SHA512),
}


# --- DER ----------------------------------------------------------------------

def _element(data, offset=0):
    """(header length, content length) of the element at offset."""
    length = data[offset + 1]
    if length < 0x80:
        return 2, length
    n = length & 0x7F
    return 2 + n, int.from_bytes(data[offset + 2:offset + 2 + n], "big")


def children(element):
    """The elements inside a constructed element."""
    header, length = _element(element)
    out, position = [], header
    while position < header + length:
        h, n = _element(element, position)
        out.append(element[position:position + h + n])
        position += h + n
    return out


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def content(element):
    header, length = _element(element)
    return element[header:header + length]


def oid(element):
    """An OBJECT IDENTIFIER element in dotted form."""
    assert element[0] == 0x06, f"not an OBJECT IDENTIFIER: {element[:4].hex()}"
    octets = content(element)
    arcs, value = [], 0
    for octet in octets:
        value = value << 7 | octet & 0x7F
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def bit_string(element):
    """A BIT STRING's octets (with no unused bits, as signatures have)."""
    assert element[0] == 0x03, f"not a BIT STRING: {element[:4].hex()}"
    octets = content(element)
    assert octets[0] == 0, f"{octets[0]} unused bits in a signature"
    return octets[1:]


# --- a PKIMessage ---------------------------------------------------------------

def header_field(message, name_or_number):
    """An optional header field as the element inside its explicit tag, or
    None; the OCTET STRING ones (transactionID, nonces, KIDs) as bytes."""
    number = HEADER_FIELDS.get(name_or_number, name_or_number)
    for field in children(children(message)[0])[3:]:
        if field[0] == 0xA0 | number:
            inner = content(field)
            return content(inner) if inner[0] == 0x04 else inner
    return None


def body_type(message):
    return BODY_TAGS.get(children(message)[1][0], f"body {children(message)[1][0]:#x}")


def body_content(message):
    """What the body's explicit tag holds (CertReqMessages, CertConfirmContent, …)."""
    return content(children(message)[1])


def extra_certs(message):
    """The certificates of extraCerts, in order (cryptography x509)."""
    for part in children(message)[2:]:
        if part[0] == 0xA1:
            return [x509.load_der_x509_certificate(c) for c in children(content(part))]
    return []


def general_info(message):
    """The infoType OIDs of the header's generalInfo."""
    info = header_field(message, "generalInfo")
    return [] if info is None else [oid(children(item)[0]) for item in children(info)]


def _verify(public_key, algorithm, signature, data):
    """Verifies a signature with the algorithm an AlgorithmIdentifier names;
    raises cryptography's InvalidSignature when it does not verify."""
    name = oid(children(algorithm)[0])
    assert name in SIGNATURES, f"signature algorithm {name} is not one of {list(SIGNATURES)}"
    kind, digest = SIGNATURES[name]
    if kind == "rsa":
        assert isinstance(public_key, rsa.RSAPublicKey), f"{name} with {public_key}"
        public_key.verify(signature, data, padding.PKCS1v15(), digest())
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey), f"{name} with {public_key}"
        public_key.verify(signature, data, ec.ECDSA(digest()))
    return name


def verify_protection(message, public_key):
    """Verifies a signature-protected message (ProtectedPart: header and
    body) with `public_key`; returns the protectionAlg's OID."""
    parts = children(message)
    protection = [p for p in parts[2:] if p[0] == 0xA0]
    assert protection, f"{body_type(message)} is not protected"
    algorithm = header_field(message, "protectionAlg")
    assert algorithm is not None, f"{body_type(message)} has no protectionAlg"
    return _verify(public_key, algorithm, bit_string(content(protection[0])),
                   tlv(0x30, parts[0] + parts[1]))


def cert_req_msg(message):
    """The one CertReqMsg of an ir, cr or kur."""
    requests = children(body_content(message))
    assert len(requests) == 1, f"{len(requests)} certificate requests"
    return requests[0]


def template_public_key(message):
    """The SubjectPublicKeyInfo (DER) of the request's certTemplate."""
    cert_request = children(cert_req_msg(message))[0]
    template = children(cert_request)[1]
    for field in children(template):
        if field[0] == 0xA6:
            return tlv(0x30, content(field))
    return None


def old_cert_id(message):
    """The oldCertID control of a kur as (issuer Name DER, serial), or None."""
    cert_request = children(cert_req_msg(message))[0]
    for controls in children(cert_request)[2:]:
        for control in children(controls):
            kind, value = children(control)
            if oid(kind) == OLD_CERT_ID:
                issuer, serial = children(value)
                name = content(issuer)  # GeneralName [4] directoryName, explicit
                return name, int.from_bytes(content(serial), "big", signed=True)
    return None


def verify_popo(message, public_key):
    """Verifies a request's signature proof of possession (POPOSigningKey
    over the DER of certReq, RFC 4211 section 4.1) with `public_key`;
    returns its algorithm's OID."""
    parts = children(cert_req_msg(message))
    assert len(parts) >= 2 and parts[1][0] == 0xA1, "no signature proof of possession"
    popo = children(parts[1])
    assert len(popo) == 2, "a proof of possession with poposkInput"
    algorithm, signature = popo
    return _verify(public_key, algorithm, bit_string(signature), parts[0])


def cert_statuses(message):
    """A certConf's CertStatus entries as (certHash, certReqId, statusInfo
    element or None)."""
    out = []
    for status in children(body_content(message)):
        fields = children(status)
        assert fields[0][0] == 0x04 and fields[1][0] == 0x02, status.hex()
        info = fields[2] if len(fields) > 2 and fields[2][0] == 0x30 else None
        out.append((content(fields[0]), int.from_bytes(content(fields[1]), "big"), info))
    return out


def cert_responses(message):
    """An ip/cp/kup's CertResponse entries as (certReqId, PKIStatus,
    certificate or None)."""
    out = []
    for response in children(children(body_content(message))[-1]):
        fields = children(response)
        request_id = int.from_bytes(content(fields[0]), "big")
        status = int.from_bytes(content(children(fields[1])[0]), "big")
        certificate = None
        if len(fields) > 2 and fields[2][0] == 0x30:
            certificate = x509.load_der_x509_certificate(
                content(children(fields[2])[0]))
        out.append((request_id, status, certificate))
    return out


def cert_hash(certificate):
    """certHash of a certificate as a CMP2000 client computes it: with the
    hash of the certificate's own signature algorithm."""
    digest = hashes.Hash(certificate.signature_hash_algorithm)
    digest.update(certificate.public_bytes(serialization.Encoding.DER))
    return digest.finalize()


def spki(key_or_cert):
    """The SubjectPublicKeyInfo DER of a public key, private key or certificate."""
    if isinstance(key_or_cert, x509.Certificate):
        key_or_cert = key_or_cert.public_key()
    if hasattr(key_or_cert, "public_key"):
        key_or_cert = key_or_cert.public_key()
    return key_or_cert.public_bytes(serialization.Encoding.DER,
                                    serialization.PublicFormat.SubjectPublicKeyInfo)
