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

Answers: as every signed webhook's (integrations/webhooks.py).
"""

from functools import partial

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.pharmacy.states import WebhookSource
from integrations.pharmacy.webhook_events import PharmacyEvent, receive_event
from integrations.webhooks import receive_signed, signed_with_timestamp


@csrf_exempt
@require_POST
def receive_dispensepro(request: HttpRequest) -> JsonResponse:
    return receive_signed(
        request,
        sender="DispensePro",
        key_setting="DISPENSEPRO_WEBHOOK_SECRET",
        signature=signed_with_timestamp("X-DispensePro"),
        parse=partial(PharmacyEvent.parse, source=WebhookSource.DISPENSE_PRO),
        receive=receive_event,
    )


@csrf_exempt
@require_POST
def receive_own_partner(request: HttpRequest) -> JsonResponse:
    return receive_signed(
        request,
        sender="Own pharmacy partner",
        key_setting="OWN_PHARMACY_WEBHOOK_SECRET",
        signature=signed_with_timestamp("X-Pharmacy"),
        parse=partial(PharmacyEvent.parse, source=WebhookSource.OWN_PARTNER),
        receive=receive_event,
    )
