"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" with the workflow's secret.

The receiver recomputes it from the `X-Workflow-Timestamp` header and the raw body, compares in
constant time, and refuses timestamps too far from its clock (a replayed request is old).
"""

from integrations.signing import TOLERANCE_SECONDS, BadSignature, sign
from integrations.signing import verify as verify_or_refuse

SIGNATURE_HEADER = "X-Workflow-Signature"
TIMESTAMP_HEADER = "X-Workflow-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = TOLERANCE_SECONDS

__all__ = ["sign", "verify"]


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
        verify_or_refuse(
            secret=secret,
            timestamp=timestamp,
            given=signature,
            body=body,
            tolerance=tolerance,
            now=now,
        )
    except BadSignature:
        return False
    return True
