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

Answers: as every signed webhook's (integrations/webhooks.py).
"""

from functools import partial

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.beluga.webhook_events import BelugaEvent, receive_event
from integrations.webhooks import receive_signed, signed_with_timestamp


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> JsonResponse:
    return receive_signed(
        request,
        sender="Beluga",
        key_setting="BELUGA_WEBHOOK_SECRET",
        signature=signed_with_timestamp("X-Beluga"),
        parse=BelugaEvent.parse,
        receive=partial(receive_event, path=request.path),
    )
