"""Inbound pharmacy webhooks: POST /webhooks/dispensepro/ and the own pharmacy's partner
(POST /webhooks/pharmacy-partner/).

The contracts (ours; neither sender publishes one; integrations/fakes/dispensepro.py sends the
DispensePro one):

    DispensePro
    X-DispensePro-Timestamp: <unix seconds>
    X-DispensePro-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + raw body,
                                     key DISPENSEPRO_WEBHOOK_SECRET>
    {"id": "evt_…", "type": "order.shipped" | "order.voided" | "order.updated",
     "created": "<ISO 8601>", "data": {"order": <order, as in dispensepro.py>}}

    Own-pharmacy partner
    X-Pharmacy-Timestamp, X-Pharmacy-Signature: the same scheme, key OWN_PHARMACY_WEBHOOK_SECRET
    {"id": "…", "type": "shipment.shipped", "created": "<ISO 8601>",
     "data": {"reference": "<our pharmacy order reference>", "shippedAt", "carrier",
              "trackingNumber"}}

Answers: 200 {"eventId", "outcome", "duplicate"} once stored (processed, ignored or a replay);
400 for a bad or stale signature or a body that is not an event; 500 when processing failed
(the sender resends, and it is processed again); 503 when no secret is configured.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from emr.kernel.errors import InvalidInput
from integrations.pharmacy.states import WebhookOutcome, WebhookSource
from integrations.pharmacy.webhook_events import PharmacyEvent, receive_event
from integrations.signing import verify

logger = logging.getLogger(__name__)


def _receive(
    request: HttpRequest, *, source: WebhookSource, secret: str, header_prefix: str
) -> JsonResponse:
    if not secret:
        return _refuse(503, "webhook.not_configured", f"No webhook secret is set for {source}.")
    try:
        verify(
            secret=secret,
            timestamp=request.headers.get(f"{header_prefix}-Timestamp"),
            given=request.headers.get(f"{header_prefix}-Signature"),
            body=request.body,
        )
        event = PharmacyEvent.parse(json.loads(request.body), source=source)
    except (InvalidInput, ValueError) as refusal:
        code = getattr(refusal, "code", "webhook.invalid")
        logger.warning("%s webhook refused: %s", source, code)
        return _refuse(400, code, getattr(refusal, "detail", "The body is not JSON."))
    result = receive_event(event)
    logger.info("%s webhook %s %s: %s", source, event.event_type, event.event_id, result.outcome)
    return JsonResponse(
        {"eventId": event.event_id, "outcome": result.outcome, "duplicate": result.duplicate},
        status=500 if result.outcome == WebhookOutcome.FAILED else 200,
    )


def _refuse(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


@csrf_exempt
@require_POST
def receive_dispensepro(request: HttpRequest) -> JsonResponse:
    return _receive(
        request,
        source=WebhookSource.DISPENSE_PRO,
        secret=settings.DISPENSEPRO_WEBHOOK_SECRET,
        header_prefix="X-DispensePro",
    )


@csrf_exempt
@require_POST
def receive_own_partner(request: HttpRequest) -> JsonResponse:
    return _receive(
        request,
        source=WebhookSource.OWN_PARTNER,
        # Not in emr/settings.py yet (see the issue note); unset means refused with 503.
        secret=getattr(settings, "OWN_PHARMACY_WEBHOOK_SECRET", ""),
        header_prefix="X-Pharmacy",
    )
