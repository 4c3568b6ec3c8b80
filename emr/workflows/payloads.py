"""Payloads: what a workflow sees of an event's subject, rebuilt from the database on demand.

One builder per section (`patient`, `order`, `lineItems`, `invoice`, `payment`, `paymentRecovery`,
`subscription`, `intake`, and `statusChange` for an event that moved an order), each returning
exactly the fields `catalogue.SECTION_FIELDS` documents, and one function per subject type
composing the sections its events carry. Because everything is
read from the database, the same call gives the *latest payload* later (a condition after a wait
re-reads it to see whether the order was paid meanwhile).

Never in a payload: card tokens, card numbers, brand or last four, gateway transaction ids,
clinical notes. `refuse_card_data()` guards payloads callers pass in themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Model
from django.utils import timezone

from billing.models import (
    Dispute,
    GatewaySettings,
    Invoice,
    Payment,
    PaymentMethod,
    SessionPackage,
)
from billing.states import DisputeStatus, Gateway, InvoiceStatus, PaymentKind, PaymentStatus
from emr.kernel.errors import InvalidInput
from emr.kernel.money import format_cents
from emr.models import IntakeResponse, IntakeStatus, Patient
from emr.workflows.catalogue import EventType
from orders.models import Order, ProductKind
from orders.states import OrderKind, OrderStatus, RecoveryStatus
from subscriptions.models import Subscription
from subscriptions.states import BillingInterval, SubscriptionStatus

Payload = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- Section builders ----------------------------------------------------------------------


def patient_section(patient: Patient) -> Payload:
    return {
        "id": patient.pk,
        "firstName": patient.first_name,
        "lastName": patient.last_name,
        "fullName": patient.full_name,
        "email": patient.email,
        "phone": patient.phone,
    }


def order_section(order: Order) -> Payload:
    return {
        "id": order.pk,
        "orderNumber": order.number,
        "status": order.status,
        "statusLabel": order.get_status_display(),
        "kind": order.kind,
        "total": format_cents(order.total_cents, order.currency),
        "totalCents": order.total_cents,
        "refunded": format_cents(order.refunded_cents, order.currency),
        "refundedCents": order.refunded_cents,
        "currency": order.currency,
        "createdAt": _iso(order.created_at),
    }


def line_items_section(order: Order) -> list[Payload]:
    return [
        {
            "name": item.description,
            "productId": item.product_id,
            "productKind": item.product.kind,
            "quantity": item.quantity,
            "unitPrice": format_cents(item.unit_price_cents, order.currency),
            "unitPriceCents": item.unit_price_cents,
            "total": format_cents(item.total_cents, order.currency),
            "totalCents": item.total_cents,
        }
        for item in order.items.select_related("product").order_by("id")
    ]


def invoice_section(invoice: Invoice) -> Payload:
    return {
        "id": invoice.pk,
        "invoiceNumber": invoice.number,
        "status": invoice.status,
        "amount": format_cents(invoice.amount_cents, invoice.currency),
        "amountCents": invoice.amount_cents,
        "currency": invoice.currency,
        "issuedAt": _iso(invoice.issued_at),
        "paidAt": _iso(invoice.paid_at),
    }


def payment_section(payment: Payment) -> Payload:
    # Deliberately not: card_brand, card_last4, transaction_id, payment_method (card data).
    return {
        "id": payment.pk,
        "kind": payment.kind,
        "status": payment.status,
        "amount": format_cents(payment.amount_cents, payment.currency),
        "amountCents": payment.amount_cents,
        "currency": payment.currency,
        "gateway": payment.gateway,
        "failureMessage": payment.failure_message,
        "refundOf": payment.refund_of_id,
        "createdAt": _iso(payment.created_at),
    }


def payment_recovery_section(order: Order, invoice: Invoice | None) -> Payload:
    """Where the order stands in payment recovery, and the link the patient pays through."""
    active = order.status == OrderStatus.AWAITING_PAYMENT
    last_failure = _last_failed_charge(invoice)
    if not active:
        state = RecoveryStatus.NONE
    elif _has_usable_card(order.patient):
        state = RecoveryStatus.CHARGE_FAILED
    else:
        state = RecoveryStatus.NEEDS_PAYMENT_METHOD
    due_cents = invoice.amount_cents if invoice and invoice.status == InvoiceStatus.SENT else 0
    return {
        "active": active,
        "status": state.name,
        "invoiceNumber": invoice.number if invoice else None,
        "amountDue": format_cents(due_cents, order.currency),
        "amountDueCents": due_cents,
        "recoveryUrl": recovery_url(invoice),
        "lastFailureMessage": last_failure.failure_message if last_failure else "",
    }


def subscription_section(subscription: Subscription) -> Payload:
    plan = subscription.plan
    return {
        "id": subscription.pk,
        "status": subscription.status,
        "planName": plan.name,
        "price": format_cents(plan.price_cents, plan.currency),
        "priceCents": plan.price_cents,
        "interval": plan.interval,
        "intervalCount": plan.interval_count,
        "nextBillingAt": _iso(subscription.next_billing_at),
        "daysUntilRenewal": _days_until(subscription.next_billing_at),
        "cancelledAt": _iso(subscription.cancelled_at),
        "recoveryCyclesRemaining": subscription.recovery_cycles_remaining,
    }


def package_section(package: SessionPackage) -> Payload:
    used = package.redemptions.count()
    return {
        "id": package.pk,
        "productName": package.order_item.description,
        "sessionsTotal": package.sessions_total,
        "sessionsUsed": used,
        "sessionsRemaining": package.sessions_total - used,
        "expiresAt": _iso(package.expires_at),
        "daysUntilExpiry": _days_until(package.expires_at),
    }


def dispute_section(dispute: Dispute) -> Payload:
    return {
        "id": dispute.pk,
        "gateway": dispute.gateway,
        "gatewayDisputeId": dispute.gateway_dispute_id,
        "amount": format_cents(dispute.amount_cents, dispute.currency),
        "amountCents": dispute.amount_cents,
        "currency": dispute.currency,
        "reason": dispute.reason,
        "status": dispute.status,
        "evidenceDueBy": _iso(dispute.evidence_due_by),
        "daysUntilDue": _days_until(dispute.evidence_due_by),
    }


def intake_section(intake: IntakeResponse) -> Payload:
    # The answers and the reviewer's note are clinical: they stay in the chart.
    return {
        "id": intake.pk,
        "questionnaire": intake.questionnaire,
        "status": intake.status,
        "submittedAt": _iso(intake.submitted_at),
    }


def recovery_url(invoice: Invoice | None) -> str:
    base = getattr(settings, "PORTAL_BASE_URL", "http://localhost:8000").rstrip("/")
    url = f"{base}/patient/invoices?recovery=1"
    return f"{url}&invoice={invoice.number}" if invoice else url


def _days_until(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return max(math.ceil((moment - timezone.now()).total_seconds() / 86400), 0)


def _last_failed_charge(invoice: Invoice | None) -> Payment | None:
    if invoice is None:
        return None
    return (
        invoice.payments.filter(kind=PaymentKind.CHARGE, status=PaymentStatus.FAILED)
        .order_by("-created_at", "-id")
        .first()
    )


def _has_usable_card(patient: Patient) -> bool:
    # Read, never create, the gateway settings row: building a payload must not write.
    gateway_settings = GatewaySettings.objects.filter(id=1).first()
    active_gateway = gateway_settings.active_gateway if gateway_settings else Gateway.STRIPE
    return PaymentMethod.objects.filter(
        patient=patient, gateway=active_gateway, removed_at__isnull=True
    ).exists()


# --- Subject payloads ----------------------------------------------------------------------


def _invoice_of(order: Order) -> Invoice | None:
    return Invoice.objects.filter(order=order).first()


def _order_sections(order: Order) -> Payload:
    """What every event about an order, or its invoice or payment, carries of the order."""
    invoice = _invoice_of(order)
    return {
        "patient": patient_section(order.patient),
        "order": order_section(order),
        "lineItems": line_items_section(order),
        "invoice": invoice_section(invoice) if invoice else None,
        "paymentRecovery": payment_recovery_section(order, invoice),
        "subscription": subscription_section(order.subscription) if order.subscription else None,
    }


def order_payload(order: Order) -> Payload:
    return {**_order_sections(order), "statusChange": None}


def status_change_payload(order: Order, previous_status: str | None) -> Payload:
    """The payload of an event that moved the (saved) order from `previous_status` (None: the
    order is new) to the status it has now."""
    return {
        **_order_sections(order),
        "statusChange": {"from": previous_status, "to": order.status},
    }


def invoice_payload(invoice: Invoice) -> Payload:
    return {**_order_sections(invoice.order), "invoice": invoice_section(invoice)}


def payment_payload(payment: Payment) -> Payload:
    return {**invoice_payload(payment.invoice), "payment": payment_section(payment)}


def patient_payload(patient: Patient) -> Payload:
    return {"patient": patient_section(patient)}


def subscription_payload(subscription: Subscription) -> Payload:
    return {
        "patient": patient_section(subscription.patient),
        "subscription": subscription_section(subscription),
    }


def intake_payload(intake: IntakeResponse) -> Payload:
    order = intake.order
    return {
        "patient": patient_section(intake.patient),
        "intake": intake_section(intake),
        "order": order_section(order) if order else None,
        "lineItems": line_items_section(order) if order else [],
    }


def package_payload(package: SessionPackage) -> Payload:
    order = package.order_item.order
    return {
        "patient": patient_section(package.patient),
        "package": package_section(package),
        "order": order_section(order),
    }


def dispute_payload(dispute: Dispute) -> Payload:
    return {**payment_payload(dispute.payment), "dispute": dispute_section(dispute)}


# model class -> (subject type name, payload builder)
SUBJECT_BUILDERS: dict[type[Model], tuple[str, Callable[[Any], Payload]]] = {
    Patient: ("patient", patient_payload),
    Order: ("order", order_payload),
    Invoice: ("invoice", invoice_payload),
    Payment: ("payment", payment_payload),
    Subscription: ("subscription", subscription_payload),
    IntakeResponse: ("intake", intake_payload),
    SessionPackage: ("package", package_payload),
    Dispute: ("dispute", dispute_payload),
}


class NoPayloadBuilder(InvalidInput):
    code = "workflow.unsupported_subject"


def subject_type_of(subject: Model) -> str:
    return _builder_for(subject)[0]


def build_payload(subject: Model) -> Payload:
    """The subject's payload as the database says it is now."""
    _, builder = _builder_for(subject)
    return builder(subject)


def _builder_for(subject: Model) -> tuple[str, Callable[[Any], Payload]]:
    try:
        return SUBJECT_BUILDERS[type(subject)]
    except KeyError:
        raise NoPayloadBuilder(
            f"Events cannot be about a {type(subject).__name__}: no payload builder exists "
            f"for it. Subjects: {', '.join(name for name, _ in SUBJECT_BUILDERS.values())}."
        ) from None


def latest_payload(event) -> Payload:
    """The event's payload rebuilt from the database; the stored one if the subject is gone.

    `statusChange` is what the event itself did, not the subject's state: it stays as stored.
    """
    subject = event.subject
    if subject is None:
        return event.payload
    payload = build_payload(subject)
    if "statusChange" in payload:
        payload["statusChange"] = event.payload.get("statusChange")
    return payload


def event_section(event) -> Payload:
    return {
        "id": event.pk,
        "type": event.event_type,
        "occurredAt": _iso(event.occurred_at),
        "subject": event.subject_key,
    }


# --- Sample data ("test with sample data"): invented, no real patient --------------------------

SAMPLE_SECTIONS: dict[str, Any] = {
    "event": {"id": 0, "type": "", "occurredAt": "2025-01-15T10:00:00+00:00", "subject": ""},
    "patient": {
        "id": 1,
        "firstName": "Alex",
        "lastName": "Sample",
        "fullName": "Alex Sample",
        "email": "alex.sample@example.test",
        "phone": "+15555550100",
    },
    "order": {
        "id": 1,
        "orderNumber": "ORD-000001",
        "status": OrderStatus.AWAITING_PAYMENT.value,
        "statusLabel": OrderStatus.AWAITING_PAYMENT.label,
        "kind": OrderKind.RECURRING.value,
        "total": "$99.00",
        "totalCents": 9900,
        "refunded": "$0.00",
        "refundedCents": 0,
        "currency": "usd",
        "createdAt": "2025-01-15T09:58:00+00:00",
    },
    "lineItems": [
        {
            "name": "Monthly membership",
            "productId": 1,
            "productKind": ProductKind.MEMBERSHIP.value,
            "quantity": 1,
            "unitPrice": "$99.00",
            "unitPriceCents": 9900,
            "total": "$99.00",
            "totalCents": 9900,
        }
    ],
    "invoice": {
        "id": 1,
        "invoiceNumber": "INV-000001",
        "status": InvoiceStatus.SENT.value,
        "amount": "$99.00",
        "amountCents": 9900,
        "currency": "usd",
        "issuedAt": "2025-01-15T09:58:00+00:00",
        "paidAt": None,
    },
    "payment": {
        "id": 1,
        "kind": PaymentKind.CHARGE.value,
        "status": PaymentStatus.FAILED.value,
        "amount": "$99.00",
        "amountCents": 9900,
        "currency": "usd",
        "gateway": Gateway.STRIPE.value,
        "failureMessage": "Your card was declined.",
        "refundOf": None,
        "createdAt": "2025-01-15T10:00:00+00:00",
    },
    "paymentRecovery": {
        "active": True,
        "status": RecoveryStatus.CHARGE_FAILED.name,
        "invoiceNumber": "INV-000001",
        "amountDue": "$99.00",
        "amountDueCents": 9900,
        "recoveryUrl": "http://localhost:8000/patient/invoices?recovery=1&invoice=INV-000001",
        "lastFailureMessage": "Your card was declined.",
    },
    "subscription": {
        "id": 1,
        "status": SubscriptionStatus.ACTIVE.value,
        "planName": "Monthly membership",
        "price": "$99.00",
        "priceCents": 9900,
        "interval": BillingInterval.MONTH.value,
        "intervalCount": 1,
        "nextBillingAt": "2025-02-15T10:00:00+00:00",
        "daysUntilRenewal": 31,
        "cancelledAt": None,
        "recoveryCyclesRemaining": 0,
    },
    "statusChange": {
        "from": OrderStatus.PENDING.value,
        "to": OrderStatus.AWAITING_PAYMENT.value,
    },
    "package": {
        "id": 1,
        "productName": "Six physiotherapy sessions",
        "sessionsTotal": 6,
        "sessionsUsed": 2,
        "sessionsRemaining": 4,
        "expiresAt": "2025-04-15T10:00:00+00:00",
        "daysUntilExpiry": 7,
    },
    "dispute": {
        "id": 1,
        "gateway": Gateway.STRIPE.value,
        "gatewayDisputeId": "dp_sample",
        "amount": "$99.00",
        "amountCents": 9900,
        "currency": "usd",
        "reason": "product_not_received",
        "status": DisputeStatus.NEEDS_RESPONSE.value,
        "evidenceDueBy": "2025-02-05T23:59:59+00:00",
        "daysUntilDue": 21,
    },
    "intake": {
        "id": 1,
        "questionnaire": "Weight management intake",
        "status": IntakeStatus.PENDING.value,
        "submittedAt": None,
    },
}


def sample_payload(event_type: EventType) -> Payload:
    """Invented data in the shape of `event_type`'s payload, for dry runs and the docs."""
    payload = {section: SAMPLE_SECTIONS[section] for section in event_type.sections}
    payload["event"] = {**SAMPLE_SECTIONS["event"], "type": event_type.name}
    return payload


# --- Card data guard -----------------------------------------------------------------------

# Keys that mean card data, however a caller spells them.
_CARD_KEYS = frozenset(
    {
        "token",
        "gatewaytoken",
        "cardnumber",
        "pan",
        "cvc",
        "cvv",
        "last4",
        "cardlast4",
        "cardbrand",
        "expmonth",
        "expyear",
        "securitykey",
    }
)


def refuse_card_data(payload: Any, *, path: str = "") -> None:
    """Refuse a caller-built payload that carries card data anywhere in it."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            normalised = str(key).replace("_", "").replace("-", "").lower()
            if normalised in _CARD_KEYS:
                raise InvalidInput(
                    f"Workflow payloads never carry card data: remove {path}{key}.",
                    code="workflow.card_data_in_payload",
                )
            refuse_card_data(value, path=f"{path}{key}.")
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            refuse_card_data(value, path=f"{path}{index}.")
