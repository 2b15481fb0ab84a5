# SPDX-License-Identifier: LGPL-2.1-or-later
"""What `safectl --json status` must show, and comparisons that ignore the
members a reader does not know (PRODUCT.md: more may be added)."""

TOKEN_MEMBERS = {
    "serial", "label", "manufacturer", "model", "present", "pin", "pin_must_change",
    "profile", "days_left", "certificates", "pending", "activation",
}
CERT_MEMBERS = {
    "serial", "subject", "issuer", "not_before", "not_after", "sha256", "key_id", "current",
}

SOFTHSM_MANUFACTURER = "SoftHSM project"
SOFTHSM_MODEL = "SoftHSM v2"


def cert_view(cert):
    missing = CERT_MEMBERS - set(cert)
    assert not missing, f"certificate entry lacks {sorted(missing)}: {cert}"
    return {k: cert[k] for k in CERT_MEMBERS}


def token_view(token):
    missing = TOKEN_MEMBERS - set(token)
    assert not missing, f"token entry lacks {sorted(missing)}: {token}"
    view = {k: token[k] for k in TOKEN_MEMBERS}
    view["certificates"] = [cert_view(c) for c in token["certificates"]]
    return view


def expected_token(token, certificates, profile, days_left, present=True):
    """`certificates`: [(Issued, key_id, current)] in the order status must
    list them (newest not_after first)."""
    return {
        "serial": token.serial,
        "label": token.label,
        "manufacturer": SOFTHSM_MANUFACTURER,
        "model": SOFTHSM_MODEL,
        "present": present,
        "pin": "ok",
        "pin_must_change": False,
        "profile": profile,
        "days_left": days_left,
        "certificates": [issued.expected(key_id, current)
                         for issued, key_id, current in certificates],
        "pending": [],
        "activation": None,
    }


def assert_token(actual, expected):
    view = token_view(actual)
    if view != expected:
        lines = []
        for k in sorted(TOKEN_MEMBERS):
            if view.get(k) != expected.get(k):
                lines.append(f"  {k}: got {view.get(k)!r}\n  {' ' * len(k)}  want {expected.get(k)!r}")
        raise AssertionError(f"token {expected['serial']} differs:\n" + "\n".join(lines))
