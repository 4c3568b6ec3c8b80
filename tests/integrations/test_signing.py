"""NMI's webhook signature (integrations/signing.py), checked against a digest computed here as
NMI's documentation describes it, not with the module's own signer."""

import hashlib
import hmac

import pytest

from integrations.signing import BadSignature, verify_nmi

KEY = "signing-key-for-tests"
BODY = b'{"event_id": "e1", "event_type": "transaction.sale.success", "event_body": {}}'


def _nmi_header(nonce: str, body: bytes) -> str:
    digest = hmac.new(KEY.encode(), f"{nonce}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={nonce},s={digest}"


def test_nmis_signature_of_the_raw_body_is_accepted_whatever_the_nonce():
    verify_nmi(secret=KEY, header=_nmi_header("f3c1e9a2b7d84c15", BODY), body=BODY)
    verify_nmi(secret=KEY, header=_nmi_header("1", BODY), body=BODY)  # a nonce, not a time


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "t=abc",
        "s=00",
        _nmi_header("abc", BODY + b" "),  # the body was changed (or re-serialised)
        _nmi_header("abc", BODY).replace("t=abc", "t=abd"),
        "t=abc,s=\u00e9",
    ],
    ids=["none", "empty", "no-signature", "no-nonce", "other-body", "other-nonce", "non-ascii"],
)
def test_anything_else_is_a_bad_signature(header):
    with pytest.raises(BadSignature):
        verify_nmi(secret=KEY, header=header, body=BODY)
