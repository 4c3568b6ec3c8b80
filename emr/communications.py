"""The communication log: every message the app sends is recorded here, by the code that sent
it, right after the mail server or SMS provider answered (workflow email and SMS steps, portal
invitations, password resets). Receipts and recovery links are workflow messages.

A message is recorded outside the sender's transaction on purpose: it left the building, so
it is logged even when what follows fails. A workflow step attempted again (after a crash or a
refusal) updates its one row (same idempotency key): status, detail and the attempt count.
The patient opening a message on the portal's messages page is `mark_opened`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from emr.models import DeliveryStatus, MessageChannel, MessageKind, Patient, SentMessage
from orders.models import Order


def body_sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Delivery:
    """What the sender knows once the server answered."""

    sent: bool
    detail: str = ""
    provider_message_id: str = ""


def record_message(
    *,
    channel: MessageChannel,
    kind: MessageKind,
    recipient: str,
    subject: str,
    body: str,
    delivery: Delivery,
    sent_by: str,
    patient_id: int | None = None,
    order_id: int | None = None,
    idempotency_key: str | None = None,
    keep_body: bool = True,
) -> SentMessage:
    """Record one message (or one more attempt of it, by `idempotency_key`)."""
    values = {
        "channel": channel,
        "kind": kind,
        "recipient": recipient[:254],
        "subject": subject[:300],
        "body": body if keep_body else "",
        "body_sha256": body_sha256(body),
        "body_length": len(body),
        "sent_by": sent_by[:200],
        "status": DeliveryStatus.SENT if delivery.sent else DeliveryStatus.FAILED,
        "status_detail": delivery.detail[:300],
        "provider_message_id": delivery.provider_message_id[:200],
        "sent_at": timezone.now(),
        "patient_id": _existing(Patient, patient_id),
        "order_id": _existing(Order, order_id),
    }
    with transaction.atomic():
        if idempotency_key:
            existing = (
                SentMessage.objects.select_for_update()
                .filter(idempotency_key=idempotency_key)
                .first()
            )
            if existing is not None:
                for field, value in values.items():
                    setattr(existing, field, value)
                existing.attempts = F("attempts") + 1
                existing.save()
                existing.refresh_from_db()
                return existing
        return SentMessage.objects.create(idempotency_key=idempotency_key or None, **values)


def _existing(model, pk) -> int | None:
    # A workflow payload is as old as its event; a sample payload names no real record.
    if not isinstance(pk, int) or isinstance(pk, bool):
        return None
    return pk if model.objects.filter(pk=pk).exists() else None


def messages_for(*, patient: Patient | None = None, order=None) -> QuerySet[SentMessage]:
    """A patient's (or an order's) log, newest first."""
    queryset = SentMessage.objects.select_related("order")
    if patient is not None:
        queryset = queryset.filter(patient=patient)
    if order is not None:
        # The order's own messages, and what the patient was sent since it was placed that
        # names no order (a portal invitation, a password reset).
        queryset = queryset.filter(
            Q(order=order)
            | Q(order__isnull=True, patient_id=order.patient_id, sent_at__gte=order.created_at)
        )
    return queryset.order_by("-sent_at", "-id")


def mark_opened(*, patient: Patient, message_ids: list[int]) -> int:
    """The patient opened these messages in the portal: the first opening is kept."""
    opened = 0
    with transaction.atomic():
        for message in SentMessage.objects.select_for_update().filter(
            patient=patient, pk__in=message_ids, opened_at__isnull=True
        ):
            message.opened_at = timezone.now()
            message.save(update_fields=["opened_at"])
            opened += 1
    return opened
