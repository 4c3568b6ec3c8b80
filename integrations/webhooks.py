"""The door of every signed webhook that is not Stripe's: the senders whose contract is ours
(Beluga, DispensePro, the own pharmacy's partner; the house scheme in integrations/signing.py)
and NMI (its own scheme, also there). It refuses what the sender did not sign, hands the event
to the sender's inbox, and answers what became of it.

Answers: 200 {"eventId", "outcome", "duplicate"} once stored (processed, ignored or a replay);
400 {"code", "detail"} for a bad or stale signature, a body that is not an event, or a signed
event that is malformed (stored, and recorded FAILED with the reason); 500 when processing
failed (the sender resends, and it is processed again); 503 when no secret is configured (we
cannot tell the sender from anyone else).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from emr.kernel import metrics
from emr.kernel.errors import InvalidInput
from integrations.inbox import Malformed, Receipt
from integrations.signing import verify, verify_nmi

logger = logging.getLogger(__name__)

# Raises BadSignature unless the request is signed with the secret.
Verify = Callable[[HttpRequest, str], None]


def signed_with_timestamp(header_prefix: str) -> Verify:
    """The house scheme, in headers `<header_prefix>-Timestamp` and `<header_prefix>-Signature`."""

    def check(request: HttpRequest, secret: str) -> None:
        verify(
            secret=secret,
            timestamp=request.headers.get(f"{header_prefix}-Timestamp"),
            given=request.headers.get(f"{header_prefix}-Signature"),
            body=request.body,
        )

    return check


def signed_like_nmi(request: HttpRequest, secret: str) -> None:
    verify_nmi(secret=secret, header=request.headers.get("Webhook-Signature"), body=request.body)


def receive_signed(
    request: HttpRequest,
    *,
    sender: str,
    key_setting: str,
    signature: Verify,
    parse: Callable[[Any], Any],
    receive: Callable[[Any], Receipt],
) -> JsonResponse:
    """`parse` turns the JSON body into the sender's event (InvalidInput when it is not one);
    `receive` stores and processes it."""
    secret = getattr(settings, key_setting)
    if not secret:
        count_webhook(sender, "webhook.not_configured")
        return _refuse(503, "webhook.not_configured", f"{key_setting} is not set.")
    try:
        signature(request, secret)
        event = parse(json.loads(request.body))
    except ValueError:
        logger.warning("%s webhook refused: not JSON", sender)
        count_webhook(sender, "webhook.invalid")
        return _refuse(400, "webhook.invalid", "The body is not JSON.")
    except InvalidInput as refusal:
        logger.warning("%s webhook refused: %s", sender, refusal.code)
        count_webhook(sender, refusal.code)
        return _refuse(400, refusal.code, refusal.detail)
    receipt = receive(event)
    logger.info("%s webhook %s: %s", sender, receipt.event_id, receipt.outcome)
    count_webhook(sender, receipt_outcome(receipt))
    if receipt.malformed:
        return _refuse(400, Malformed.code, receipt.detail)
    return JsonResponse(
        {"eventId": receipt.event_id, "outcome": receipt.outcome, "duplicate": receipt.duplicate},
        status=receipt.http_status,
    )


def receipt_outcome(receipt: Receipt) -> str:
    """The outcome a webhook counter records: the stored outcome, or that it was a replay."""
    return "duplicate" if receipt.duplicate else str(receipt.outcome).lower()


def count_webhook(sender: str, outcome: str) -> None:
    metrics.WEBHOOKS.labels(sender.lower(), outcome).inc()


def _refuse(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)
