"""What a Beluga webhook event does here. The view (webhooks.py) verifies the sender; the inbox
(integrations/inbox.py) stores the event, processes it once with the handlers below, and records
the outcome; each delivery, as answered, goes to the visit's Beluga log.

Events (the contract is in webhooks.py):
- VISIT_STATUS_CHANGED: Beluga moved the visit (data.visitStatus, data.resolvedStatus).
- VISIT_CANCELED: Beluga cancelled the visit: recorded like our own cancellation, with the same
  `beluga.visit_cancelled` event, and nothing else.
- VISIT_CONCLUDED: the prescriber concluded the visit: resolved, closed.
- RX_WRITTEN: the prescription boundary: the prescriptions go into the chart and the order is
  recalculated (AWAITING_SCRIPT -> AWAITING_FULFILLMENT).
- DOCTOR_CHAT / ADMIN_CHAT: a message for the patient's inbox / the internal CS-admin channel.
Anything else (appointment, lab, pharmacy and shipment updates) is recorded as ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import InvalidInput
from emr.models import Prescription
from integrations.beluga.logs import log_webhook
from integrations.beluga.models import BelugaMessage, BelugaVisit, BelugaWebhookEvent
from integrations.beluga.services import mark_cancelled
from integrations.beluga.states import MessageChannel, ResolvedStatus, VisitStatus
from integrations.inbox import Ignored, Outcome, Receipt, receive
from orders.services import recalculate_status

WEBHOOK_ACTOR = Actor.system("beluga-webhook", door=Door.WEBHOOK)


@dataclass(frozen=True)
class BelugaEvent:
    event_id: str
    event_type: str
    master_id: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)  # as sent: what the log keeps, redacted

    @classmethod
    def parse(cls, body: Any) -> BelugaEvent:
        if not isinstance(body, dict):
            raise InvalidInput("A Beluga event is a JSON object.", code="webhook.invalid")
        event_id, event_type = body.get("eventId"), body.get("event")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise InvalidInput("A Beluga event needs eventId and event.", code="webhook.invalid")
        data = body.get("data")
        return cls(
            event_id=event_id[:100],
            event_type=event_type[:100],
            master_id=str(body.get("masterId") or "")[:64],
            occurred_at=_moment(body.get("occurredAt")) or timezone.now(),
            data=data if isinstance(data, dict) else {},
            body=body,
        )


def receive_event(event: BelugaEvent, *, path: str) -> Receipt:
    """Store, deduplicate, process and record the event (integrations/inbox.py), then log the
    delivery as it is answered. `path` is where it arrived."""
    visit = _visit_for(event)
    receipt = receive(
        events=BelugaWebhookEvent,
        key={"event_id": event.event_id},
        defaults={"event_type": event.event_type, "master_id": event.master_id},
        actor=WEBHOOK_ACTOR,
        reason=f"Beluga {event.event_type}",
        handle=partial(_handle, event, visit),
    )
    log_webhook(
        event_type=event.event_type,
        master_id=event.master_id,
        body=event.body,
        visit=visit,
        http_status=receipt.http_status,
        outcome=f"{receipt.outcome}: {receipt.detail}",
        path=path,
    )
    return receipt


def _handle(event: BelugaEvent, visit: BelugaVisit | None) -> tuple[str, str]:
    handler = HANDLERS.get(event.event_type)
    if handler is None:
        raise Ignored(f"{event.event_type} events are not acted on here")
    if visit is None:
        raise Ignored(f"no visit with masterId {event.master_id!r} here")
    return Outcome.PROCESSED, handler(
        event, BelugaVisit.objects.select_for_update().get(pk=visit.pk)
    )


def _visit_for(event: BelugaEvent) -> BelugaVisit | None:
    if not event.master_id:
        return None
    return BelugaVisit.objects.filter(master_id=event.master_id).first()


# --- Handlers: each gets the locked visit, returns what it did, or raises Ignored ----------


def visit_status_changed(event: BelugaEvent, visit: BelugaVisit) -> str:
    status = event.data.get("visitStatus")
    if status == VisitStatus.CANCELED:
        return visit_canceled(event, visit)
    if status == VisitStatus.RESOLVED:
        return visit_concluded(event, visit)
    if status not in VisitStatus.values or not status:
        raise Ignored(f"unknown visit status {status!r}")
    _check_move(visit, status)
    visit.status = status
    resolved = event.data.get("resolvedStatus")
    if resolved in ResolvedStatus.values and resolved:
        visit.resolved_status = resolved
    visit.save()
    return f"visit status {status}"


def visit_canceled(event: BelugaEvent, visit: BelugaVisit) -> str:
    _check_move(visit, VisitStatus.CANCELED)
    mark_cancelled(visit, actor=WEBHOOK_ACTOR)
    return "visit cancelled at Beluga"


def visit_concluded(event: BelugaEvent, visit: BelugaVisit) -> str:
    _check_move(visit, VisitStatus.RESOLVED)
    visit.status = VisitStatus.RESOLVED
    visit.resolved_status = ResolvedStatus.CLOSED
    visit.save()
    return "visit resolved and closed"


def rx_written(event: BelugaEvent, visit: BelugaVisit) -> str:
    prescriptions = event.data.get("prescriptions")
    if not isinstance(prescriptions, list) or not prescriptions:
        raise Ignored("RX_WRITTEN without prescriptions")
    order = visit.order
    for written in prescriptions:
        Prescription.objects.create(
            patient_id=order.patient_id,
            order=order,
            medication=str(written.get("medication") or "")[:200],
            prescriber=str(written.get("prescriber") or "")[:200],
            written_at=_moment(written.get("writtenAt")) or event.occurred_at,
        )
    recalculate_status(
        order=order, actor=WEBHOOK_ACTOR, reason="Beluga: prescription written (RX_WRITTEN)"
    )
    return f"{len(prescriptions)} prescription(s) added to the chart; order recalculated"


def chat_message(channel: MessageChannel) -> Callable[[BelugaEvent, BelugaVisit], str]:
    def store(event: BelugaEvent, visit: BelugaVisit) -> str:
        external_id = str(event.data.get("messageId") or "")[:100]
        body = event.data.get("body")
        if not external_id or not isinstance(body, str) or not body:
            raise Ignored("a chat event needs data.messageId and data.body")
        _, created = BelugaMessage.objects.get_or_create(
            external_id=external_id,
            defaults={
                "visit": visit,
                "channel": channel,
                "sender": str(event.data.get("sender") or "")[:200],
                "body": body,
                "sent_at": _moment(event.data.get("sentAt")) or event.occurred_at,
            },
        )
        if not created:
            raise Ignored(f"message {external_id} is already stored")
        return f"{MessageChannel(channel).label} message stored"

    return store


HANDLERS: dict[str, Callable[[BelugaEvent, BelugaVisit], str]] = {
    "VISIT_STATUS_CHANGED": visit_status_changed,
    "VISIT_CANCELED": visit_canceled,
    "VISIT_CONCLUDED": visit_concluded,
    "RX_WRITTEN": rx_written,
    "DOCTOR_CHAT": chat_message(MessageChannel.DOCTOR_PATIENT),
    "ADMIN_CHAT": chat_message(MessageChannel.CS_ADMIN),
}


def _check_move(visit: BelugaVisit, status: str) -> None:
    """Beluga's report is followed unless it repeats what we know or the table forbids it."""
    if visit.status == status:
        raise Ignored(f"the visit is already {status}")
    if not visit.transitions.can(visit.status, status):
        raise Ignored(f"a {visit.status or 'new'} visit does not move to {status}")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment
