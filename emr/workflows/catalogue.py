"""The event catalogue: every event the app emits, what it is about, and its payload's fields.

This is the one place the events are documented. A workflow's trigger must be one of these
names, and its conditions and merge tags may only use the fields listed for that event's
payload (`validation.py` refuses anything else when the workflow is saved).

A payload is a dict of *sections* (`patient`, `order`, `lineItems` …) built from the database by
`payloads.py`, one builder per section. Which sections an event carries follows from its subject
type: an `order.*` event is about an order, so it carries the order's patient, line items,
invoice, recovery state and subscription, and `statusChange` (from what status to what this event
moved it). A section is `null` when the subject has none (a manual order has no subscription; an
event that moved no status has no statusChange): test for it with the `exists` operator.

Payloads never carry card data (no token, number, brand or last four) and no clinical notes.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.states import DisputeStatus, Gateway, InvoiceStatus, PaymentKind, PaymentStatus
from emr.models import IntakeStatus
from emr.workflows.errors import UnknownEventType
from orders.models import ProductKind
from orders.states import OrderKind, OrderStatus, RecoveryStatus
from subscriptions.states import BillingInterval, SubscriptionStatus


def _one_of(names) -> str:
    """'A, B or C': the names a field takes, from the enum that defines them."""
    *others, last = [str(name) for name in names]
    return f"{', '.join(others)} or {last}" if others else last


# --- Sections: the payload's objects and their fields ---------------------------------------
# field -> what it means. Money comes twice: formatted for messages ("$120.00") and as integer
# cents for conditions (`order.totalCents greater_than 10000`).

SECTION_FIELDS: dict[str, dict[str, str]] = {
    "event": {
        "id": "the event's id (also the webhook's event id)",
        "type": "the event name, e.g. order.refunded",
        "occurredAt": "when it was emitted (ISO 8601, UTC)",
        "subject": 'what it is about, e.g. "order:42"',
    },
    "patient": {
        "id": "patient id",
        "firstName": "first name",
        "lastName": "last name",
        "fullName": "first and last name",
        "email": "email address",
        "phone": "phone number (may be empty)",
    },
    "order": {
        "id": "order id",
        "orderNumber": "ORD-000123",
        "status": f"status name, e.g. {OrderStatus.AWAITING_PAYMENT}",
        "statusLabel": "status as people read it, e.g. Awaiting payment",
        "kind": _one_of(OrderKind.values),
        "total": "total, formatted ($120.00)",
        "totalCents": "total in cents",
        "refunded": "amount refunded so far, formatted",
        "refundedCents": "amount refunded so far, in cents",
        "currency": "three-letter currency code",
        "createdAt": "when the order was created",
    },
    "lineItems": {
        "name": "product name when sold",
        "productId": "product id",
        "productKind": _one_of(ProductKind.values),
        "quantity": "quantity",
        "unitPrice": "unit price, formatted",
        "unitPriceCents": "unit price in cents",
        "total": "line total, formatted",
        "totalCents": "line total in cents",
    },
    "invoice": {
        "id": "invoice id",
        "invoiceNumber": "INV-000123",
        "status": _one_of(InvoiceStatus.values),
        "amount": "amount, formatted",
        "amountCents": "amount in cents",
        "currency": "three-letter currency code",
        "issuedAt": "when it was issued",
        "paidAt": "when it was paid (empty if unpaid)",
    },
    "payment": {
        "id": "payment id",
        "kind": _one_of(PaymentKind.values),
        "status": _one_of(PaymentStatus.values),
        "amount": "amount, formatted",
        "amountCents": "amount in cents",
        "currency": "three-letter currency code",
        "gateway": _one_of(Gateway.values),
        "failureMessage": "the gateway's decline message (empty unless failed)",
        "refundOf": "for a refund: the id of the charge it returns money from",
        "createdAt": "when the money moved",
    },
    "paymentRecovery": {
        "active": "true while the order waits for payment",
        "status": _one_of(
            state.name
            for state in (
                RecoveryStatus.NONE,
                RecoveryStatus.CHARGE_FAILED,
                RecoveryStatus.NEEDS_PAYMENT_METHOD,
            )
        )
        + " (NONE: not waiting for payment)",
        "invoiceNumber": "the invoice to pay",
        "amountDue": "amount due, formatted",
        "amountDueCents": "amount due in cents",
        "recoveryUrl": "the portal page where the patient pays or updates the card",
        "lastFailureMessage": "the last decline message (empty if none)",
    },
    "subscription": {
        "id": "subscription id",
        "status": _one_of(SubscriptionStatus.values),
        "planName": "plan name",
        "price": "price per cycle, formatted",
        "priceCents": "price per cycle in cents",
        "interval": _one_of(BillingInterval.values),
        "intervalCount": "cycles per interval",
        "nextBillingAt": "next renewal (empty if none)",
        "daysUntilRenewal": "whole days until the next renewal (empty if none)",
        "cancelledAt": "when it was cancelled (empty if not)",
        "recoveryCyclesRemaining": "financed cycles still to pay",
    },
    "statusChange": {
        "from": "the order's status before this event (empty for a new order)",
        "to": "the status this event moved it to",
    },
    "package": {
        "id": "package id",
        "productName": "the package product's name when sold",
        "sessionsTotal": "sessions the package granted",
        "sessionsUsed": "sessions redeemed so far",
        "sessionsRemaining": "sessions left",
        "expiresAt": "when unused sessions expire (empty if never)",
        "daysUntilExpiry": "whole days until expiry (empty if never)",
    },
    "dispute": {
        "id": "dispute id",
        "gateway": _one_of(Gateway.values),
        "gatewayDisputeId": "the gateway's dispute id (Stripe dp_…, the NMI case number)",
        "amount": "disputed amount, formatted",
        "amountCents": "disputed amount in cents",
        "currency": "three-letter currency code",
        "reason": "the reason the card network gives (e.g. fraudulent, product_not_received)",
        "status": _one_of(DisputeStatus.values),
        "evidenceDueBy": "when the evidence is due (empty if the gateway gave no date)",
        "daysUntilDue": "whole days until the evidence is due (empty if no date)",
    },
    "intake": {
        "id": "intake id",
        "questionnaire": "questionnaire name",
        "status": _one_of(IntakeStatus.values),
        "submittedAt": "when it was submitted (empty if not)",
    },
}

# Sections that are lists of objects rather than one object.
LIST_SECTIONS = frozenset({"lineItems"})

# --- Subject types: what an event can be about, and the sections its payload carries --------

SUBJECT_SECTIONS: dict[str, tuple[str, ...]] = {
    "patient": ("patient",),
    "order": (
        "patient",
        "order",
        "lineItems",
        "invoice",
        "paymentRecovery",
        "subscription",
        "statusChange",
    ),
    "invoice": ("patient", "invoice", "order", "lineItems", "paymentRecovery", "subscription"),
    "payment": (
        "patient",
        "payment",
        "invoice",
        "order",
        "lineItems",
        "paymentRecovery",
        "subscription",
    ),
    "subscription": ("patient", "subscription"),
    "intake": ("patient", "intake", "order", "lineItems"),
    "package": ("patient", "package", "order"),
    "dispute": ("patient", "dispute", "payment", "invoice", "order", "lineItems"),
}


@dataclass(frozen=True)
class EventType:
    name: str
    subject_types: tuple[str, ...]  # the first is the usual one
    description: str

    @property
    def sections(self) -> tuple[str, ...]:
        """Every section any of this event's subject types can carry, plus `event`."""
        names = ["event"]
        for subject_type in self.subject_types:
            names += [s for s in SUBJECT_SECTIONS[subject_type] if s not in names]
        return tuple(names)

    def fields(self) -> dict[str, str]:
        """Every merge-tag / condition path of this event's payload, with its meaning."""
        paths = {}
        for section in self.sections:
            paths[section] = f"the {section} object" + (
                " (a list)" if section in LIST_SECTIONS else ""
            )
            if section in LIST_SECTIONS:
                continue  # items are addressed as lineItems.0.name, see validation
            for field, meaning in SECTION_FIELDS[section].items():
                paths[f"{section}.{field}"] = meaning
        return paths

    def has_path(self, path: str) -> bool:
        """Whether `path` names a field of this event's payload (list items by index)."""
        if path in self.fields():
            return True
        section, _, rest = path.partition(".")
        index, _, field = rest.partition(".")
        return (
            section in LIST_SECTIONS
            and section in self.sections
            and index.isdigit()
            and (not field or field in SECTION_FIELDS[section])
        )


def _event(name: str, subject_types: str | tuple[str, ...], description: str) -> EventType:
    if isinstance(subject_types, str):
        subject_types = (subject_types,)
    return EventType(name=name, subject_types=subject_types, description=description)


EVENTS: dict[str, EventType] = {
    event.name: event
    for event in [
        _event("order.created", "order", "An order and its invoice were created (PENDING)."),
        _event(
            "order.updated",
            "order",
            "An order's status changed (statusChange says from what to what; once per change), "
            "or a refund changed its refunded amount (statusChange is empty).",
        ),
        _event("order.cancelled", "order", "An order was cancelled. No money moved."),
        _event(
            "order.rejected",
            "order",
            "An order was rejected (by staff, or because its intake was rejected). No money moved.",
        ),
        _event("order.shipped", "order", "An order shipped."),
        _event("order.completed", "order", "An order was completed."),
        _event(
            "order.returned",
            "order",
            "A shipped or completed order was returned. No money moved: refunding is separate.",
        ),
        _event(
            "order.refunded",
            "order",
            "The refund flow refunded an order through its original gateway.",
        ),
        _event("invoice.paid", "invoice", "An invoice was paid."),
        _event(
            "payment.failed",
            ("payment", "order"),
            "A charge failed, or no usable card exists (subject: the order). The order waits "
            "for payment; paymentRecovery.recoveryUrl is the link to send.",
        ),
        _event("payment.refunded", "payment", "A refund payment row was recorded."),
        _event("subscription.created", "subscription", "A subscription started."),
        _event(
            "subscription.renewal_order_created",
            "order",
            "A renewal cycle created its order and invoice (the subject is that order).",
        ),
        _event("subscription.paused", "subscription", "A subscription was paused."),
        _event("subscription.resumed", "subscription", "A paused subscription was resumed."),
        _event("subscription.cancelled", "subscription", "A subscription was cancelled."),
        _event(
            "subscription.cancellation_scheduled",
            "subscription",
            "A cancellation was scheduled to run after the last required recovery cycle.",
        ),
        _event(
            "subscription.cancellation_withdrawn",
            "subscription",
            "A scheduled cancellation was withdrawn before it executed.",
        ),
        _event(
            "subscription.upcoming_renewal",
            "subscription",
            "A renewal is coming up; subscription.daysUntilRenewal says how soon.",
        ),
        _event(
            "package.expiring",
            "package",
            "A session package expires soon (PACKAGE_EXPIRY_NOTICE_DAYS ahead); "
            "package.sessionsRemaining says what would be lost.",
        ),
        _event("package.expired", "package", "A session package expired; unused sessions lapse."),
        _event(
            "dispute.opened",
            "dispute",
            "A patient's bank disputed a charge (a Stripe webhook, or an NMI chargeback a billing "
            "admin entered); dispute.evidenceDueBy says by when the evidence must be in.",
        ),
        _event("intake.pending", "intake", "An intake form waits for the patient."),
        _event("intake.rejected", "intake", "Medical staff rejected an intake."),
        _event(
            "beluga.visit_cancelled",
            "order",
            "The order's Beluga telehealth visit was cancelled (nothing else changed).",
        ),
        _event(
            "pharmacy.order_voided",
            "order",
            "The order's DispensePro pharmacy order was voided before shipment.",
        ),
    ]
}

EVENT_CHOICES = [(name, name) for name in EVENTS]


def get_event_type(name: str) -> EventType:
    try:
        return EVENTS[name]
    except KeyError:
        raise UnknownEventType(
            f'"{name}" is not an event the app emits. Known events: {", ".join(EVENTS)}.'
        ) from None


def describe() -> list[dict]:
    """The catalogue as data, for the API and the admin's help text."""
    return [
        {
            "name": event.name,
            "subjectTypes": list(event.subject_types),
            "description": event.description,
            "fields": event.fields(),
        }
        for event in EVENTS.values()
    ]
