"""The guide's escalation checklist as routing rules, and the packet's text. Pure: packets are
plain data, so every case is built here without a database."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from billing.states import InvoiceStatus, PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.models import IntakeStatus
from emr.support.packets import (
    BelugaVisitFacts,
    EscalationPacket,
    IntakeFacts,
    PaymentFacts,
    PharmacyOrderFacts,
    RefundAttemptFacts,
    SubscriptionFacts,
    render_packet,
    suggest_route,
)
from emr.support.states import EscalationRoute
from integrations.beluga.states import VisitStatus
from integrations.pharmacy.states import PharmacyOrderStatus
from orders.states import OrderKind, OrderStatus
from subscriptions.states import CancellationCause, SubscriptionStatus

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

CHARGE = PaymentFacts(
    id=7,
    kind=PaymentKind.CHARGE,
    status=PaymentStatus.SUCCEEDED,
    gateway="stripe",
    amount_cents=5000,
    currency="usd",
    transaction_id="pi_123",
    card_brand="visa",
    card_last4="4242",
    refund_of_id=None,
    created_at=NOW - timedelta(days=3),
    note="",
)
SUBSCRIPTION = SubscriptionFacts(
    id=3,
    label="SUB-000003",
    status=SubscriptionStatus.ACTIVE,
    plan="Monthly care",
    next_billing_at=NOW + timedelta(days=20),
    cancelled_at=None,
    cancellation_cause="",
    cancellation_scheduled_at=None,
    recovery_balance_cents=0,
    currency="usd",
    in_switch=False,
)
BASE = EscalationPacket(
    built_at=NOW,
    patient_id=1,
    patient_name="Ada Patient",
    patient_email="ada@example.test",
    order_id=1,
    order_number="ORD-000001",
    order_status=OrderStatus.PROCESSING,
    order_kind=OrderKind.CHECKOUT,
    order_total_cents=5000,
    order_refunded_cents=0,
    currency="usd",
    shipped_at=None,
    invoice_number="INV-000001",
    invoice_status=InvoiceStatus.PAID,
    gateway="stripe",
    payments=(CHARGE,),
    refund_attempts=(),
    subscription=None,
    beluga_visit=None,
    pharmacy_orders=(),
    intakes=(),
    prescriptions=(),
)


def packet(**changes) -> EscalationPacket:
    return dataclasses.replace(BASE, **changes)


def attempt(status, code="") -> RefundAttemptFacts:
    return RefundAttemptFacts(
        status=status,
        gateway="stripe",
        amount_cents=5000,
        currency="usd",
        requested_by="cs-agent",
        error_code=code,
        error_message="The gateway refused the refund." if code else "",
        created_at=NOW,
    )


def visit(status) -> BelugaVisitFacts:
    return BelugaVisitFacts(
        master_id="visit-1",
        status=status,
        resolved_status="open",
        submit_status="SUBMITTED",
        submit_error="",
    )


def pharmacy(status) -> PharmacyOrderFacts:
    return PharmacyOrderFacts(
        reference="rx-1",
        pharmacy="DISPENSE_PRO",
        status=status,
        shipped_at=None,
        carrier="",
        tracking_number="",
    )


def subscription(**changes) -> SubscriptionFacts:
    return dataclasses.replace(SUBSCRIPTION, **changes)


B, F, M = EscalationRoute.BILLING, EscalationRoute.FULFILMENT, EscalationRoute.MEDICAL

CASES = {
    "gateway refund failed": (
        packet(refund_attempts=(attempt(RefundAttemptStatus.FAILED, "refund.gateway_failed"),)),
        B,
        "Gateway refund failed",
    ),
    "refunded but the pharmacy still fulfils": (
        packet(
            order_status=OrderStatus.REFUNDED,
            pharmacy_orders=(pharmacy(PharmacyOrderStatus.SUBMITTED),),
        ),
        F,
        "shipment/pharmacy still appears active",
    ),
    "refunded but shipped": (
        packet(order_status=OrderStatus.REFUNDED, shipped_at=NOW),
        F,
        "shipment/pharmacy still appears active",
    ),
    "intake rejected the order": (
        packet(
            order_status=OrderStatus.REJECTED,
            intakes=(IntakeFacts("Weight care", IntakeStatus.REJECTED, "BMI too low"),),
        ),
        M,
        "Intake rejection",
    ),
    "intake rejection cancelled the subscription": (
        packet(
            subscription=subscription(
                status=SubscriptionStatus.CANCELLED,
                cancelled_at=NOW,
                cancellation_cause=CancellationCause.INTAKE_REJECTED,
            )
        ),
        M,
        "Intake rejection",
    ),
    "visit still open for a cancelled order": (
        packet(order_status=OrderStatus.CANCELLED, beluga_visit=visit(VisitStatus.ACTIVE)),
        M,
        "statuses disagree",
    ),
    "order waits for a script from a cancelled visit": (
        packet(order_status=OrderStatus.AWAITING_SCRIPT, beluga_visit=visit(VisitStatus.CANCELED)),
        M,
        "statuses disagree",
    ),
    "payoff order": (packet(order_kind=OrderKind.PAYOFF), B, "Switch payoff"),
    "replacement subscription": (
        packet(subscription=subscription(in_switch=True)),
        B,
        "Switch payoff",
    ),
    "cancelled subscription billed again": (
        packet(
            subscription=subscription(
                status=SubscriptionStatus.CANCELLED, cancelled_at=NOW - timedelta(days=10)
            )
        ),
        B,
        "billed again",
    ),
    "recovery balance blocks cancelling": (
        packet(subscription=subscription(recovery_balance_cents=19800)),
        B,
        "recovery balance",
    ),
    "nothing refundable": (
        packet(
            payments=(dataclasses.replace(CHARGE, status=PaymentStatus.FAILED),),
            invoice_status=InvoiceStatus.SENT,
        ),
        B,
        "no refundable payment",
    ),
    "nothing else applies": (packet(), B, "Refund policy decision is unclear"),
}


@pytest.mark.parametrize(("facts", "route", "reason"), CASES.values(), ids=CASES.keys())
def test_the_checklist_suggests_the_route(facts, route, reason):
    suggestion = suggest_route(facts)
    assert suggestion.route == route
    assert reason in suggestion.reason


def test_a_failed_refund_retried_successfully_is_not_a_failed_refund():
    retried = packet(
        order_status=OrderStatus.REFUNDED,
        refund_attempts=(
            attempt(RefundAttemptStatus.SUCCEEDED),
            attempt(RefundAttemptStatus.FAILED, "refund.gateway_failed"),
        ),
    )
    assert suggest_route(retried).reason == "Refund policy decision is unclear."


def test_a_cancelled_visit_with_an_active_order_is_expected_not_escalated_to_medical():
    # The guide: "Beluga visit canceled but order still active: that can be expected."
    assert suggest_route(packet(beluga_visit=visit(VisitStatus.CANCELED))).route == B


def test_the_text_carries_the_reason_and_message_verbatim_on_their_own_lines():
    message = "The gateway refused the refund: Authentication Failed. Do not mark it refunded."
    text = render_packet(
        packet(),
        route=B,
        patient_reason="Moved abroad, wants the last charge back.",
        message=message,
        number="ESC-000009",
        opened_by="cs-agent",
    )
    lines = text.splitlines()
    assert lines[0] == "ESCALATION ESC-000009 -> Billing/admin operations"
    assert "Opened by cs-agent. Facts as of 2025-03-01 12:00 UTC." in lines
    assert message in lines
    assert "Moved abroad, wants the last charge back." in lines
    assert (
        "  - payment id 7: Charge, Succeeded, Stripe, $50.00, transaction id pi_123, "
        "visa ····4242, 2025-02-26 12:00 UTC" in lines
    )


def test_a_subscription_without_orders_still_renders():
    text = render_packet(
        packet(
            order_id=None,
            order_number="",
            order_status="",
            order_kind="",
            invoice_number="",
            invoice_status="",
            gateway="",
            payments=(),
            subscription=SUBSCRIPTION,
        ),
        route=B,
        patient_reason="Never used it.",
        message="",
    )
    assert "Order: none (the subscription has no order yet)" in text
    assert "Gateway: none (nothing was charged)" in text
    assert "Subscription: SUB-000003 (id 3), status Active" in text
    assert "(none given)" in text
