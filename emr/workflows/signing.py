"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" with the workflow's secret.

The receiver recomputes it from the `X-Workflow-Timestamp` header and the raw body, compares in
constant time, and refuses timestamps too far from its clock (a replayed request is old).
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Workflow-Signature"
TIMESTAMP_HEADER = "X-Workflow-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    *,
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver runs: the signature matches and the timestamp is recent."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - sent_at) > tolerance:
        return False
    expected = sign(secret=secret, timestamp=sent_at, body=body)
    return hmac.compare_digest(expected, signature or "")
