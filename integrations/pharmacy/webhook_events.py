"""What a pharmacy webhook event does here. The views (webhooks.py) verify the sender; the inbox
(integrations/inbox.py) stores the event, processes it once with the handlers below, and records
the outcome.

DispensePro: `order.shipped` (-> shipment recorded, order SHIPPED), `order.voided` (voided at
DispensePro: recorded as a void, with `pharmacy.order_voided`); anything else is recorded as
ignored. Own-pharmacy partner: `shipment.shipped`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError, InvalidInput
from integrations.inbox import Ignored, Outcome, Receipt, receive
from integrations.pharmacy import dispensepro, services
from integrations.pharmacy.models import PharmacyOrder, PharmacyWebhookEvent
from integrations.pharmacy.states import PharmacyType, WebhookSource

ACTORS = {
    WebhookSource.DISPENSE_PRO: Actor.system("dispensepro-webhook", door=Door.WEBHOOK),
    WebhookSource.OWN_PARTNER: Actor.system("pharmacy-partner-webhook", door=Door.WEBHOOK),
}


@dataclass(frozen=True)
class PharmacyEvent:
    source: WebhookSource
    event_id: str
    event_type: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: Any, *, source: WebhookSource) -> PharmacyEvent:
        if not isinstance(body, dict):
            raise InvalidInput("A pharmacy event is a JSON object.", code="webhook.invalid")
        event_id, event_type = body.get("id"), body.get("type")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise InvalidInput("A pharmacy event needs id and type.", code="webhook.invalid")
        data = body.get("data")
        return cls(
            source=source,
            event_id=event_id[:100],
            event_type=event_type[:100],
            data=data if isinstance(data, dict) else {},
        )


def receive_event(event: PharmacyEvent) -> Receipt:
    """Store, deduplicate, process and record the event (integrations/inbox.py)."""
    pharmacy_order = _pharmacy_order_for(event)
    return receive(
        events=PharmacyWebhookEvent,
        key={"source": event.source, "event_id": event.event_id},
        defaults={"event_type": event.event_type, "pharmacy_order": pharmacy_order},
        actor=ACTORS[event.source],
        reason=f"Pharmacy {event.event_type}",
        handle=partial(_handle, event, pharmacy_order),
    )


def _handle(event: PharmacyEvent, pharmacy_order: PharmacyOrder | None) -> tuple[str, str]:
    handler = HANDLERS.get((event.source, event.event_type))
    if handler is None:
        raise Ignored(f"{event.event_type} events are not acted on here")
    if pharmacy_order is None:
        raise Ignored("no pharmacy order here matches this event")
    return Outcome.PROCESSED, handler(event, pharmacy_order)


def _pharmacy_order_for(event: PharmacyEvent) -> PharmacyOrder | None:
    if event.source == WebhookSource.DISPENSE_PRO:
        remote = event.data.get("order")
        if not isinstance(remote, dict):
            return None
        found = PharmacyOrder.objects.filter(pharmacy=PharmacyType.DISPENSE_PRO)
        if remote.get("id"):
            by_id = found.filter(external_id=str(remote["id"])).first()
            if by_id is not None:
                return by_id
        return found.filter(reference=str(remote.get("reference") or "")).first()
    reference = str(event.data.get("reference") or "")
    if not reference:
        return None
    return PharmacyOrder.objects.filter(reference=reference, pharmacy=PharmacyType.OWN).first()


# --- Handlers: each returns what it did, or raises Ignored ---------------------------------


def dispensepro_order_changed(event: PharmacyEvent, pharmacy_order: PharmacyOrder) -> str:
    try:
        remote = dispensepro.DispenseProOrder.from_json(event.data.get("order"))
    except DomainError:
        raise Ignored("the event carries no usable order") from None
    if remote.status not in {dispensepro.SHIPPED, dispensepro.VOIDED}:
        raise Ignored(f"DispensePro status {remote.status} changes nothing here")
    services.apply_dispensepro_state(
        pharmacy_order=pharmacy_order,
        remote=remote,
        actor=ACTORS[event.source],
        reason=f"DispensePro {event.event_type}",
    )
    return f"pharmacy order {remote.status}"


def partner_shipped(event: PharmacyEvent, pharmacy_order: PharmacyOrder) -> str:
    services.record_shipment(
        pharmacy_order=pharmacy_order,
        actor=ACTORS[event.source],
        reason=f"Pharmacy partner {event.event_type}",
        shipped_at=services.parse_moment(event.data.get("shippedAt")),
        carrier=str(event.data.get("carrier") or ""),
        tracking_number=str(event.data.get("trackingNumber") or ""),
    )
    return "shipment recorded"


HANDLERS: dict[tuple[str, str], Callable[[PharmacyEvent, PharmacyOrder], str]] = {
    (WebhookSource.DISPENSE_PRO, "order.shipped"): dispensepro_order_changed,
    (WebhookSource.DISPENSE_PRO, "order.voided"): dispensepro_order_changed,
    (WebhookSource.OWN_PARTNER, "shipment.shipped"): partner_shipped,
}
