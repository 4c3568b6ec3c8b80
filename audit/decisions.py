"""Decision records: what staff saw when they confirmed a refund, cancellation, void, intake
rejection or subscription action (emr/kernel/decisions.py explains how a page's checklist gets
here), and how a timeline reads them back."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from audit.models import DecisionRecord


def record_decision(*, record, shown, actor, reason: str, seen: bool) -> DecisionRecord:
    """Store `shown` (a kernel `Shown`) for `record`; called inside the change's transaction."""
    order, subscription, patient = _concerned(record)
    return DecisionRecord.objects.create(
        action=shown.action,
        content_type=ContentType.objects.get_for_model(type(record)),
        object_id=str(record.pk),
        record_label=str(record)[:200],
        order_id=order,
        subscription_id=subscription,
        patient_id=patient,
        actor=actor.label,
        door=actor.door,
        reason=reason,
        at=timezone.now(),
        heading=shown.heading[:300],
        consequence=shown.consequence,
        items=shown.items,
        will_not_do=shown.will_not_do,
        shown_sha256=shown.sha256,
        seen=seen,
    )


def _concerned(record) -> tuple[int | None, int | None, int | None]:
    """The order, subscription and patient ids a decision on `record` belongs to."""
    label = record._meta.label_lower
    order = record.pk if label == "orders.order" else getattr(record, "order_id", None)
    if label == "subscriptions.subscription":
        subscription = record.pk
    else:
        subscription = getattr(record, "subscription_id", None)
        if subscription is None and order is not None and label != "orders.order":
            subscription = getattr(record.order, "subscription_id", None)
    patient = record.pk if label == "emr.patient" else getattr(record, "patient_id", None)
    return order, subscription, patient


@dataclass(frozen=True)
class DecisionEntry:
    at: datetime
    actor: str
    door: str
    reason: str
    action: str
    record: str
    heading: str
    items: list[dict[str, str]]
    shown_sha256: str
    seen: bool


def decisions_for(*, order=None, subscription=None, patient=None) -> list[DecisionEntry]:
    """Decisions about an order, a subscription or a patient (any one), newest first."""
    given = {"order": order, "subscription": subscription, "patient": patient}
    filters = {f"{name}_id": value.pk for name, value in given.items() if value is not None}
    if len(filters) != 1:
        raise TypeError("decisions_for takes exactly one of order, subscription, patient.")
    return [
        DecisionEntry(
            at=row.at,
            actor=row.actor,
            door=row.door,
            reason=row.reason,
            action=row.action,
            record=row.record_label,
            heading=row.heading,
            items=row.items,
            shown_sha256=row.shown_sha256,
            seen=row.seen,
        )
        for row in DecisionRecord.objects.filter(**filters).order_by("-at", "-id")
    ]
