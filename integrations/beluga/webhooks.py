"""POST /webhooks/beluga/: visit events from Beluga.

The contract (ours; Beluga publishes none, and integrations/fakes/beluga.py sends exactly this):

    POST <our URL>
    Content-Type: application/json
    X-Beluga-Timestamp: <unix seconds>
    X-Beluga-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + raw body,
                               key BELUGA_WEBHOOK_SECRET>

    {"eventId": "evt_…", "event": "RX_WRITTEN", "masterId": "…", "occurredAt": "<ISO 8601>",
     "data": {…}}

    data by event:
      VISIT_STATUS_CHANGED  {"visitStatus", "resolvedStatus"}
      VISIT_CANCELED, VISIT_CONCLUDED  {}
      RX_WRITTEN            {"prescriptions": [{"medication", "prescriber", "writtenAt"}]}
      DOCTOR_CHAT, ADMIN_CHAT  {"messageId", "sender", "body", "sentAt"}

Answers: 200 {"eventId", "outcome", "duplicate"} once stored (processed, ignored, or a replay);
400 for a bad signature, a timestamp outside the tolerance, or a body that is not an event;
500 when processing failed (Beluga resends, and the event is processed again); 503 when no
webhook secret is configured (we cannot tell Beluga from anyone else).
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from emr.kernel.errors import InvalidInput
from integrations.beluga.logs import log_webhook
from integrations.beluga.states import WebhookOutcome
from integrations.beluga.webhook_events import BelugaEvent, receive_event
from integrations.signing import verify

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Beluga-Timestamp"
SIGNATURE_HEADER = "X-Beluga-Signature"


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> JsonResponse:
    secret = settings.BELUGA_WEBHOOK_SECRET
    if not secret:
        return _refuse(503, "webhook.not_configured", "BELUGA_WEBHOOK_SECRET is not set.")
    try:
        verify(
            secret=secret,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            given=request.headers.get(SIGNATURE_HEADER),
            body=request.body,
        )
        payload = json.loads(request.body)
        event = BelugaEvent.parse(payload)
    except (InvalidInput, ValueError) as refusal:
        code = getattr(refusal, "code", "webhook.invalid")
        detail = getattr(refusal, "detail", "The body is not JSON.")
        logger.warning("Beluga webhook refused: %s", code)
        return _refuse(400, code, detail)

    result = receive_event(event)
    http_status = 500 if result.outcome == WebhookOutcome.FAILED else 200
    log_webhook(
        event_type=event.event_type,
        master_id=event.master_id,
        body=payload,
        visit=result.visit,
        http_status=http_status,
        outcome=f"{result.outcome}: {result.detail}",
        path=request.path,
    )
    return JsonResponse(
        {"eventId": event.event_id, "outcome": result.outcome, "duplicate": result.duplicate},
        status=http_status,
    )


def _refuse(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)
