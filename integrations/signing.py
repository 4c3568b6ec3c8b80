"""Signed webhooks, one scheme for every sender we define the contract of (Beluga, DispensePro,
the own pharmacy's partner) and for the clinic's outbound workflow webhooks:

    signature = "sha256=" + hex(HMAC-SHA256(secret, "<unix timestamp>." + raw body))

A receiver recomputes it, compares in constant time, and refuses a timestamp too far from its
clock, so a captured request cannot be replayed later (event ids catch replays within it).

NMI signs its webhooks its own way (NMI's webhook documentation):

    Webhook-Signature: t=<nonce>,s=<hex(HMAC-SHA256(signing key, "<nonce>." + raw body))>

The nonce is random per delivery, not a time, so there is no age to check: the event id is
what makes a replayed delivery harmless.
"""

import hashlib
import hmac
import time

from emr.kernel.errors import InvalidInput

TOLERANCE_SECONDS = 300


class BadSignature(InvalidInput):
    code = "webhook.bad_signature"


def sign(*, secret: str, timestamp: int | str, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    *,
    secret: str,
    timestamp: str | None,
    given: str | None,
    body: bytes,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise BadSignature unless `given` signs this timestamp and body and the timestamp is
    recent."""
    if not timestamp or not given:
        raise BadSignature("The request is not signed.")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise BadSignature("The signature timestamp is not a number.") from None
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        raise BadSignature("The signature timestamp is too old (or in the future).")
    if not hmac.compare_digest(sign(secret=secret, timestamp=sent_at, body=body), given):
        raise BadSignature("The signature does not match.")


def sign_nmi(*, secret: str, nonce: str, body: bytes) -> str:
    """The `Webhook-Signature` header NMI sends with `body`."""
    return f"t={nonce},s={_nmi_digest(secret, nonce, body)}"


def verify_nmi(*, secret: str, header: str | None, body: bytes) -> None:
    """Raise BadSignature unless `header` is NMI's signature of this body with `secret`."""
    parts = dict(part.strip().partition("=")[::2] for part in (header or "").split(","))
    nonce, given = parts.get("t"), parts.get("s")
    if not nonce or not given:
        raise BadSignature("The request is not signed.")
    # As bytes: compare_digest refuses a str with non-ASCII characters, and a header may hold any.
    if not hmac.compare_digest(_nmi_digest(secret, nonce, body).encode(), given.encode()):
        raise BadSignature("The signature does not match.")


def _nmi_digest(secret: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), nonce.encode() + b"." + body, hashlib.sha256).hexdigest()
