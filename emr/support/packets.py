"""The escalation packet (refunds-cancellations-guide.txt, "CS Escalation Checklist").

Three plain functions:
- `build_packet(order=… | subscription=…)` reads every fact the checklist asks for, in a fixed
  number of queries, into an `EscalationPacket` (plain data: codes, cents, datetimes);
- `suggest_route(packet)` applies the checklist's "escalate to … when" lines, as data;
- `render_packet(packet, …)` writes the copyable text CS pastes into a hand-off.

Nothing here writes: `emr.support.escalations` stores what these return.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q
from django.utils import timezone

from billing.refunds import original_payment
from billing.states import Gateway, InvoiceStatus, PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.kernel.errors import InvalidInput
from emr.kernel.money import format_cents
from emr.models import IntakeStatus
from emr.support.states import EscalationRoute
from integrations.beluga.states import (
    OPEN_VISIT_STATUSES,
    ResolvedStatus,
    SubmitStatus,
    VisitStatus,
)
from integrations.pharmacy.states import CLOSED_STATUSES, PharmacyOrderStatus, PharmacyType
from orders.models import Order
from orders.states import ACTION_ONLY, UNPAID, OrderKind, OrderStatus
from subscriptions.models import PlanSwitch, Subscription
from subscriptions.states import ENDED_STATUSES, CancellationCause, SubscriptionStatus

# --- The facts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentFacts:
    id: int
    kind: str  # PaymentKind
    status: str  # PaymentStatus
    gateway: str  # Gateway
    amount_cents: int
    currency: str
    transaction_id: str
    card_brand: str
    card_last4: str
    refund_of_id: int | None
    created_at: datetime
    # The gateway's failure message, or why the row needs review ("" when neither).
    note: str


@dataclass(frozen=True)
class RefundAttemptFacts:
    status: str  # RefundAttemptStatus
    gateway: str
    amount_cents: int
    currency: str
    requested_by: str
    error_code: str
    error_message: str
    created_at: datetime


@dataclass(frozen=True)
class SubscriptionFacts:
    id: int
    label: str  # "SUB-000042"
    status: str  # SubscriptionStatus
    plan: str
    next_billing_at: datetime | None
    cancelled_at: datetime | None
    cancellation_cause: str  # CancellationCause or ""
    cancellation_scheduled_at: datetime | None
    recovery_balance_cents: int
    currency: str
    # Part of a plan switch, as the old subscription or as the replacement.
    in_switch: bool


@dataclass(frozen=True)
class BelugaVisitFacts:
    master_id: str
    status: str  # VisitStatus ("" until Beluga reported one)
    resolved_status: str  # ResolvedStatus
    submit_status: str  # SubmitStatus
    submit_error: str


@dataclass(frozen=True)
class PharmacyOrderFacts:
    reference: str
    pharmacy: str  # PharmacyType
    status: str  # PharmacyOrderStatus
    shipped_at: datetime | None
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class IntakeFacts:
    questionnaire: str
    status: str  # IntakeStatus
    review_note: str


@dataclass(frozen=True)
class EscalationPacket:
    """Every fact the checklist asks for. An escalation from a subscription describes its
    latest order (the one the patient is asking about); order fields are empty if it has none."""

    built_at: datetime
    patient_id: int
    patient_name: str
    patient_email: str
    order_id: int | None
    order_number: str
    order_status: str  # OrderStatus, "" without an order
    order_kind: str  # OrderKind
    order_total_cents: int
    order_refunded_cents: int
    currency: str
    shipped_at: datetime | None
    invoice_number: str
    invoice_status: str  # InvoiceStatus, "" without an invoice
    # The gateway of the original payment: where any refund goes ("" when nothing was charged).
    gateway: str
    payments: tuple[PaymentFacts, ...]
    refund_attempts: tuple[RefundAttemptFacts, ...]  # newest first
    subscription: SubscriptionFacts | None
    beluga_visit: BelugaVisitFacts | None
    pharmacy_orders: tuple[PharmacyOrderFacts, ...]
    intakes: tuple[IntakeFacts, ...]
    prescriptions: tuple[str, ...]

    def as_json(self) -> dict:
        """Plain data for a JSONField with DjangoJSONEncoder (datetimes become ISO text)."""
        return dataclasses.asdict(self)

    @property
    def charges(self) -> list[PaymentFacts]:
        return [payment for payment in self.payments if payment.kind == PaymentKind.CHARGE]

    @property
    def original_charge(self) -> PaymentFacts | None:
        succeeded = [c for c in self.charges if c.status == PaymentStatus.SUCCEEDED]
        return succeeded[0] if succeeded else None


# --- Reading them --------------------------------------------------------------------------


def build_packet(
    *, order: Order | None = None, subscription: Subscription | None = None
) -> EscalationPacket:
    """The packet for an order (with its subscription, if linked) or for a subscription (with
    its latest order), in a fixed number of queries whatever the order's history."""
    if (order is None) == (subscription is None):
        raise InvalidInput(
            "Escalate either an order or a subscription (one of them).",
            code="escalation.subject_required",
        )
    if subscription is not None:
        subscription = Subscription.objects.select_related("patient", "plan").get(
            pk=subscription.pk
        )
        latest_id = (
            subscription.orders.order_by("-created_at", "-id").values_list("pk", flat=True).first()
        )
        order = _load_order(latest_id) if latest_id is not None else None
        patient = subscription.patient
    else:
        order = _load_order(order.pk)
        subscription = order.subscription
        patient = order.patient
    return EscalationPacket(
        built_at=timezone.now(),
        patient_id=patient.pk,
        patient_name=patient.full_name,
        patient_email=patient.email,
        **_order_facts(order),
        subscription=_subscription_facts(subscription),
    )


def _load_order(order_id: int) -> Order:
    return (
        Order.objects.select_related("patient", "invoice", "subscription__plan", "beluga_visit")
        .prefetch_related(
            "invoice__payments", "refund_attempts", "pharmacy_orders", "intakes", "prescriptions"
        )
        .get(pk=order_id)
    )


def _order_facts(order: Order | None) -> dict:
    if order is None:
        return {
            "order_id": None,
            "order_number": "",
            "order_status": "",
            "order_kind": "",
            "order_total_cents": 0,
            "order_refunded_cents": 0,
            "currency": "usd",
            "shipped_at": None,
            "invoice_number": "",
            "invoice_status": "",
            "gateway": "",
            "payments": (),
            "refund_attempts": (),
            "beluga_visit": None,
            "pharmacy_orders": (),
            "intakes": (),
            "prescriptions": (),
        }
    # A missing reverse one-to-one raises a subclass of AttributeError: getattr's default applies.
    invoice = getattr(order, "invoice", None)
    visit = getattr(order, "beluga_visit", None)
    payments = tuple(_payment_facts(p) for p in invoice.payments.all()) if invoice else ()
    charges = [p for p in invoice.payments.all() if p.kind == PaymentKind.CHARGE] if invoice else []
    # Where a refund would go; failing a successful charge, where the patient tried to pay.
    original = original_payment(invoice) or next(iter(charges), None)
    return {
        "order_id": order.pk,
        "order_number": order.number,
        "order_status": order.status,
        "order_kind": order.kind,
        "order_total_cents": order.total_cents,
        "order_refunded_cents": order.refunded_cents,
        "currency": order.currency,
        "shipped_at": order.shipped_at,
        "invoice_number": invoice.number if invoice else "",
        "invoice_status": invoice.status if invoice else "",
        "gateway": original.gateway if original else "",
        "payments": payments,
        "refund_attempts": tuple(
            RefundAttemptFacts(
                status=attempt.status,
                gateway=attempt.gateway,
                amount_cents=attempt.amount_cents,
                currency=attempt.currency,
                requested_by=attempt.requested_by_label,
                error_code=attempt.error_code,
                error_message=attempt.error_message,
                created_at=attempt.created_at,
            )
            for attempt in order.refund_attempts.all()
        ),
        "beluga_visit": BelugaVisitFacts(
            master_id=visit.master_id,
            status=visit.status,
            resolved_status=visit.resolved_status,
            submit_status=visit.submit_status,
            submit_error=visit.submit_error,
        )
        if visit
        else None,
        "pharmacy_orders": tuple(
            PharmacyOrderFacts(
                reference=pharmacy_order.reference,
                pharmacy=pharmacy_order.pharmacy,
                status=pharmacy_order.status,
                shipped_at=pharmacy_order.shipped_at,
                carrier=pharmacy_order.carrier,
                tracking_number=pharmacy_order.tracking_number,
            )
            for pharmacy_order in order.pharmacy_orders.all()
        ),
        "intakes": tuple(
            IntakeFacts(
                questionnaire=intake.questionnaire,
                status=intake.status,
                review_note=intake.review_note,
            )
            for intake in order.intakes.all()
        ),
        "prescriptions": tuple(str(prescription) for prescription in order.prescriptions.all()),
    }


def _payment_facts(payment) -> PaymentFacts:
    return PaymentFacts(
        id=payment.pk,
        kind=payment.kind,
        status=payment.status,
        gateway=payment.gateway,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        transaction_id=payment.transaction_id,
        card_brand=payment.card_brand,
        card_last4=payment.card_last4,
        refund_of_id=payment.refund_of_id,
        created_at=payment.created_at,
        note=payment.review_note if payment.needs_review else payment.failure_message,
    )


def _subscription_facts(subscription: Subscription | None) -> SubscriptionFacts | None:
    if subscription is None:
        return None
    in_switch = PlanSwitch.objects.filter(
        Q(subscription=subscription) | Q(replacement=subscription)
    ).exists()
    return SubscriptionFacts(
        id=subscription.pk,
        label=str(subscription),
        status=subscription.status,
        plan=subscription.plan.name,
        next_billing_at=subscription.next_billing_at,
        cancelled_at=subscription.cancelled_at,
        cancellation_cause=subscription.cancellation_cause,
        cancellation_scheduled_at=subscription.cancellation_scheduled_at,
        recovery_balance_cents=subscription.recovery_balance_cents,
        currency=subscription.plan.currency,
        in_switch=in_switch,
    )


# --- Routing: the checklist's "escalate to billing/admin, fulfilment, or medical ops when" ----


@dataclass(frozen=True)
class RouteSuggestion:
    route: EscalationRoute
    reason: str  # the checklist line that matched


@dataclass(frozen=True)
class RoutingRule:
    route: EscalationRoute
    reason: str
    applies: Callable[[EscalationPacket], bool]


def _gateway_refund_failed(p: EscalationPacket) -> bool:
    # The newest attempt decides: a failure followed by a successful retry is history.
    return (
        bool(p.refund_attempts)
        and p.refund_attempts[0].status == RefundAttemptStatus.FAILED
        and p.order_status != OrderStatus.REFUNDED
    )


def _refunded_but_fulfilment_active(p: EscalationPacket) -> bool:
    fulfilment_active = p.shipped_at is not None or any(
        pharmacy_order.status not in CLOSED_STATUSES for pharmacy_order in p.pharmacy_orders
    )
    return p.order_status == OrderStatus.REFUNDED and fulfilment_active


def _intake_rejection(p: EscalationPacket) -> bool:
    return (
        p.order_status == OrderStatus.REJECTED
        or any(intake.status == IntakeStatus.REJECTED for intake in p.intakes)
        or (
            p.subscription is not None
            and p.subscription.cancellation_cause == CancellationCause.INTAKE_REJECTED
        )
    )


def _beluga_disagrees(p: EscalationPacket) -> bool:
    visit = p.beluga_visit
    if visit is None:
        return False
    stopped = p.order_status in ACTION_ONLY or (
        p.subscription is not None and p.subscription.status == SubscriptionStatus.CANCELLED
    )
    # A visit still worked on for an order or subscription that stopped; or an order still
    # waiting for a prescription from a visit that was cancelled. (A cancelled visit with an
    # order otherwise active is expected: the guide says so.)
    return (visit.status in OPEN_VISIT_STATUSES and stopped) or (
        visit.status == VisitStatus.CANCELED and p.order_status == OrderStatus.AWAITING_SCRIPT
    )


def _switch_related(p: EscalationPacket) -> bool:
    return p.order_kind == OrderKind.PAYOFF or (
        p.subscription is not None and p.subscription.in_switch
    )


def _billed_after_cancellation(p: EscalationPacket) -> bool:
    cancelled_at = p.subscription.cancelled_at if p.subscription else None
    return cancelled_at is not None and any(
        charge.status == PaymentStatus.SUCCEEDED and charge.created_at > cancelled_at
        for charge in p.charges
    )


def _recovery_balance(p: EscalationPacket) -> bool:
    return (
        p.subscription is not None
        and p.subscription.status not in ENDED_STATUSES
        and p.subscription.recovery_balance_cents > 0
    )


def _nothing_refundable(p: EscalationPacket) -> bool:
    # The order moved past payment (or was closed) as if paid, yet no charge succeeded: there
    # is nothing the app can refund. An order still unpaid is not this case.
    return (
        bool(p.invoice_number) and p.original_charge is None and p.order_status not in {*UNPAID, ""}
    )


# First match wins: the most specific hand-off first.
ROUTING_RULES = (
    RoutingRule(EscalationRoute.BILLING, "Gateway refund failed.", _gateway_refund_failed),
    RoutingRule(
        EscalationRoute.FULFILMENT,
        "Order is refunded but shipment/pharmacy still appears active.",
        _refunded_but_fulfilment_active,
    ),
    RoutingRule(
        EscalationRoute.MEDICAL,
        "Intake rejection cancellation may be incorrect.",
        _intake_rejection,
    ),
    RoutingRule(
        EscalationRoute.MEDICAL,
        "Beluga visit/order/subscription statuses disagree.",
        _beluga_disagrees,
    ),
    RoutingRule(
        EscalationRoute.BILLING,
        "Switch payoff or replacement subscription refund.",
        _switch_related,
    ),
    RoutingRule(
        EscalationRoute.BILLING, "Cancelled subscription billed again.", _billed_after_cancellation
    ),
    RoutingRule(
        EscalationRoute.BILLING,
        "Patient cannot cancel due to recovery balance: needs manual review.",
        _recovery_balance,
    ),
    RoutingRule(
        EscalationRoute.BILLING,
        "Patient was charged but no refundable payment is found.",
        _nothing_refundable,
    ),
)
NO_RULE_MATCHED = RouteSuggestion(EscalationRoute.BILLING, "Refund policy decision is unclear.")


def suggest_route(packet: EscalationPacket) -> RouteSuggestion:
    for rule in ROUTING_RULES:
        if rule.applies(packet):
            return RouteSuggestion(rule.route, rule.reason)
    return NO_RULE_MATCHED


# --- The copyable text ---------------------------------------------------------------------


def render_packet(
    packet: EscalationPacket,
    *,
    route: str,
    patient_reason: str,
    message: str,
    number: str = "",
    opened_by: str = "",
) -> str:
    """The hand-off as plain text, in the checklist's order. The reason and the message are
    written verbatim on lines of their own, so a copy carries them exactly."""
    heading = f"ESCALATION {number}".rstrip() + f" -> {EscalationRoute(route).label}"
    opened = f"Opened by {opened_by}. " if opened_by else ""
    return "\n".join(
        [
            heading,
            f"{opened}Facts as of {_when(packet.built_at)}.",
            "",
            *render_facts(packet),
            "",
            "Reason the patient is requesting refund/cancellation:",
            patient_reason,
            "",
            "Exact patient/staff-facing message:",
            message or "(none given)",
        ]
    )


def render_facts(packet: EscalationPacket) -> list[str]:
    """The facts part of the text (the creation page previews it before CS adds their part)."""
    p = packet
    return [
        f"Patient: {p.patient_name} <{p.patient_email}>",
        _order_line(p),
        _invoice_line(p),
        f"Gateway: {Gateway(p.gateway).label if p.gateway else 'none (nothing was charged)'}",
        "Payments and refunds:",
        *(_payment_line(payment) for payment in p.payments),
        *([] if p.payments else ["  none"]),
        *(
            ["Refund attempts:", *(_attempt_line(attempt) for attempt in p.refund_attempts)]
            if p.refund_attempts
            else ["Refund attempts: none"]
        ),
        _subscription_line(p.subscription),
        _visit_line(p.beluga_visit),
        _fulfilment_line(p),
        "Intake: "
        + (
            "; ".join(
                f"{intake.questionnaire}: {IntakeStatus(intake.status).label}"
                + (f" ({intake.review_note})" if intake.review_note else "")
                for intake in p.intakes
            )
            or "none"
        ),
        "Prescriptions: " + ("; ".join(p.prescriptions) or "none"),
    ]


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _money(cents: int, currency: str) -> str:
    return format_cents(cents, currency)


def _order_line(p: EscalationPacket) -> str:
    if not p.order_number:
        return "Order: none (the subscription has no order yet)"
    return (
        f"Order: {p.order_number}, status {OrderStatus(p.order_status).label} "
        f"({OrderKind(p.order_kind).label}); total {_money(p.order_total_cents, p.currency)}, "
        f"refunded {_money(p.order_refunded_cents, p.currency)}"
    )


def _invoice_line(p: EscalationPacket) -> str:
    if not p.invoice_number:
        return "Invoice: none"
    return f"Invoice: {p.invoice_number}, status {InvoiceStatus(p.invoice_status).label}"


def _payment_line(payment: PaymentFacts) -> str:
    parts = [
        f"  - payment id {payment.id}: {PaymentKind(payment.kind).label}",
        PaymentStatus(payment.status).label,
        Gateway(payment.gateway).label,
        _money(payment.amount_cents, payment.currency),
        f"transaction id {payment.transaction_id or 'none recorded'}",
    ]
    if payment.card_last4:
        parts.append(f"{payment.card_brand} ····{payment.card_last4}")
    if payment.refund_of_id:
        parts.append(f"refund of payment id {payment.refund_of_id}")
    parts.append(_when(payment.created_at))
    line = ", ".join(parts)
    return f"{line}: {payment.note}" if payment.note else line


def _attempt_line(attempt: RefundAttemptFacts) -> str:
    line = (
        f"  - {_when(attempt.created_at)}: {RefundAttemptStatus(attempt.status).label}, "
        f"{_money(attempt.amount_cents, attempt.currency)} through "
        f"{Gateway(attempt.gateway).label}, asked by {attempt.requested_by}"
    )
    if attempt.error_code:
        line += f": {attempt.error_code}: {attempt.error_message}"
    return line


def _subscription_line(subscription: SubscriptionFacts | None) -> str:
    if subscription is None:
        return "Subscription: not linked"
    s = subscription
    parts = [
        f"Subscription: {s.label} (id {s.id}), status {SubscriptionStatus(s.status).label}",
        f"plan {s.plan}",
        f"next billing {_when(s.next_billing_at)}",
        f"recovery balance {_money(s.recovery_balance_cents, s.currency)}",
    ]
    if s.cancelled_at:
        cause = CancellationCause(s.cancellation_cause).label if s.cancellation_cause else ""
        parts.append(f"cancelled {_when(s.cancelled_at)}" + (f" ({cause})" if cause else ""))
    if s.cancellation_scheduled_at:
        parts.append(f"cancellation scheduled {_when(s.cancellation_scheduled_at)}")
    if s.in_switch:
        parts.append("part of a plan switch")
    return "; ".join(parts)


def _visit_line(visit: BelugaVisitFacts | None) -> str:
    if visit is None:
        return "Beluga visit: none"
    line = (
        f"Beluga visit: {visit.master_id}, status {VisitStatus(visit.status).label}, "
        f"resolved {ResolvedStatus(visit.resolved_status).label}, "
        f"submission {SubmitStatus(visit.submit_status).label}"
    )
    return f"{line} ({visit.submit_error})" if visit.submit_error else line


def _fulfilment_line(p: EscalationPacket) -> str:
    shipped = f"order shipped {_when(p.shipped_at)}" if p.shipped_at else "order not shipped"
    pharmacy = "; ".join(
        f"{PharmacyType(po.pharmacy).label} {po.reference}: "
        f"{PharmacyOrderStatus(po.status).label}"
        + (f", shipped {_when(po.shipped_at)}" if po.shipped_at else "")
        + (f", tracking {_tracking(po)}" if po.tracking_number else "")
        for po in p.pharmacy_orders
    )
    return f"Pharmacy/fulfilment: {pharmacy or 'no pharmacy order'}; {shipped}"


def _tracking(pharmacy_order: PharmacyOrderFacts) -> str:
    return " ".join(filter(None, [pharmacy_order.carrier, pharmacy_order.tracking_number]))
