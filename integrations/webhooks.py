"""The door of every signed webhook whose contract is ours (Beluga, DispensePro, the own
pharmacy's partner; the signature scheme is in integrations/signing.py): refuse what its sender
did not sign, hand the event to the sender's inbox, answer what became of it.

Answers: 200 {"eventId", "outcome", "duplicate"} once stored (processed, ignored or a replay);
400 for a bad or stale signature or a body that is not an event; 500 when processing failed
(the sender resends, and it is processed again); 503 when no secret is configured (we cannot
tell the sender from anyone else).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from emr.kernel.errors import InvalidInput
from integrations.inbox import Receipt
from integrations.signing import verify

logger = logging.getLogger(__name__)


def receive_signed(
    request: HttpRequest,
    *,
    sender: str,
    key_setting: str,
    header_prefix: str,
    parse: Callable[[Any], Any],
    receive: Callable[[Any], Receipt],
) -> JsonResponse:
    """`parse` turns the JSON body into the sender's event (InvalidInput when it is not one);
    `receive` stores and processes it. Headers: `<header_prefix>-Timestamp` and `-Signature`."""
    secret = getattr(settings, key_setting)
    if not secret:
        return _refuse(503, "webhook.not_configured", f"{key_setting} is not set.")
    try:
        verify(
            secret=secret,
            timestamp=request.headers.get(f"{header_prefix}-Timestamp"),
            given=request.headers.get(f"{header_prefix}-Signature"),
            body=request.body,
        )
        event = parse(json.loads(request.body))
    except ValueError:
        logger.warning("%s webhook refused: not JSON", sender)
        return _refuse(400, "webhook.invalid", "The body is not JSON.")
    except InvalidInput as refusal:
        logger.warning("%s webhook refused: %s", sender, refusal.code)
        return _refuse(400, refusal.code, refusal.detail)
    receipt = receive(event)
    logger.info("%s webhook %s: %s", sender, receipt.event_id, receipt.outcome)
    return JsonResponse(
        {"eventId": receipt.event_id, "outcome": receipt.outcome, "duplicate": receipt.duplicate},
        status=receipt.http_status,
    )


def _refuse(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)
