"""The demo tells one consistent story per flow of the guide, reached through the services and
the partners' fakes, and every action the guide describes can be tried on some demo record."""

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from billing import payments
from billing.models import Payment, RefundAttempt
from billing.refunds import refund_order
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.intake import reject_intake, send_back_for_correction
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import StateConflict
from emr.models import IntakeResponse, IntakeStatus, Patient
from integrations.beluga.models import BelugaVisit
from integrations.beluga.services import cancel_visit
from integrations.beluga.states import OPEN_VISIT_STATUSES, SubmitStatus, VisitStatus
from integrations.pharmacy.models import PharmacyOrder
from integrations.pharmacy.services import record_sent_manually, void_pharmacy_order
from integrations.pharmacy.states import PharmacyOrderStatus as P
from orders.models import Order
from orders.services import change_status
from orders.states import PAYMENT_ONLY_KINDS, UNPAID, OrderKind, OrderStatus, RecoveryStatus
from subscriptions import lifecycle
from subscriptions.models import PlanSwitch, Subscription
from subscriptions.states import CancellationCause, SubscriptionStatus, SwitchStatus
from subscriptions.switching import switch_plan, withdraw_scheduled_switch

pytestmark = pytest.mark.django_db

# What each order status says about the order's pharmacy orders (None: it has none).
PHARMACY_ORDER_FOR = {
    OrderStatus.AWAITING_FULFILLMENT: {P.PENDING},
    OrderStatus.AWAITING_SHIPMENT: {P.SUBMITTED},
    OrderStatus.SHIPPED: {P.SHIPPED},
    OrderStatus.COMPLETED: {P.SHIPPED},
    OrderStatus.RETURNED: {P.SHIPPED},
    OrderStatus.CANCELLED: {P.VOIDED},  # voided before shipment, then the order cancelled
}


@pytest.fixture
def demo(gateways, beluga, dispensepro, capsys):
    call_command("seed_demo")
    return capsys.readouterr().out


def order_of(last_name: str) -> Order:
    """The patient's first order (the one their story is about)."""
    return Order.objects.filter(patient__last_name=last_name).order_by("pk").first()


def subscription_of(last_name: str) -> Subscription:
    return Subscription.objects.filter(patient__last_name=last_name).order_by("pk").first()


def test_every_status_is_shown_and_a_second_run_adds_nothing(demo, gateways, capsys):
    assert set(Order.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    assert set(Subscription.objects.values_list("status", flat=True)) == set(
        SubscriptionStatus.values
    )
    assert {"cs", "billing", "medops", "admin"} <= set(
        User.objects.values_list("username", flat=True)
    )
    assert "demo-cs-pass" in demo and "Rita Refunded" in demo
    # Money really went through the local gateways: real transaction ids, both gateways used.
    charges = Payment.objects.filter(kind=PaymentKind.CHARGE, status=PaymentStatus.SUCCEEDED)
    assert {payment.gateway for payment in charges} == {"stripe", "nmi"}
    assert all(payment.transaction_id for payment in charges)
    assert len(gateways.stripe.refunds()) == 1

    counts = (Order.objects.count(), Payment.objects.count(), Subscription.objects.count())
    call_command("seed_demo")
    assert "already present" in capsys.readouterr().out
    assert (Order.objects.count(), Payment.objects.count(), Subscription.objects.count()) == counts


def test_no_real_patient_data(demo):
    for patient in Patient.objects.all():
        assert patient.email.endswith("@example.com")
        assert patient.phone.startswith("555-01")


def test_pharmacy_orders_agree_with_their_orders(demo, dispensepro):
    prescription_orders = Order.objects.filter(items__product__requires_prescription=True).exclude(
        kind__in=PAYMENT_ONLY_KINDS
    )
    others = Order.objects.exclude(pk__in=prescription_orders)
    assert not others.filter(pharmacy_orders__isnull=False).exists()
    for order in prescription_orders.prefetch_related("pharmacy_orders"):
        statuses = {p.status for p in order.pharmacy_orders.all()}
        assert statuses == PHARMACY_ORDER_FOR.get(order.status, set()), order.patient
    # Before and after shipment, as DispensePro itself has them.
    at_dispensepro = {o["reference"]: o["status"] for o in dispensepro.orders().values()}
    ours = {p.reference: p.status for p in PharmacyOrder.objects.filter(pharmacy="DISPENSE_PRO")}
    assert sorted(at_dispensepro.values()) == sorted(
        {"submitted": "received", "shipped": "shipped", "voided": "voided"}[s]
        for s in ours.values()
    )
    assert set(ours.values()) == {P.SUBMITTED, P.SHIPPED, P.VOIDED}
    shipped = PharmacyOrder.objects.get(order__patient__last_name="Shipped")
    assert shipped.tracking_number and shipped.order.subscription is not None


def test_every_paid_order_has_its_invoice_paid_and_unpaid_ones_are_open_or_closed(demo):
    for order in Order.objects.select_related("invoice"):
        if order.status == OrderStatus.REFUNDED:
            assert order.invoice.status == InvoiceStatus.CANCELLED
        elif order.status in UNPAID:
            assert order.invoice.status == InvoiceStatus.SENT
        elif order.status == OrderStatus.CANCELLED and order.patient.last_name == "Cancelled":
            assert order.invoice.status == InvoiceStatus.CANCELLED  # unpaid, closed
        else:
            assert order.invoice.status == InvoiceStatus.PAID, order.patient


def test_the_refunded_and_the_failed_refund(demo):
    refunded = order_of("Refunded")
    charge = refunded.invoice.payments.get(kind=PaymentKind.CHARGE)
    assert refunded.status == OrderStatus.REFUNDED
    assert refunded.refunded_cents == charge.amount_cents == refunded.total_cents
    assert refunded.invoice.payments.get(kind=PaymentKind.REFUND).status == PaymentStatus.REFUNDED

    failed = RefundAttempt.objects.get(status=RefundAttemptStatus.FAILED)
    assert failed.error_code == "refund.gateway_failed" and "escalate" in failed.error_message
    assert failed.gateway == "nmi" and failed.order.patient.last_name == "Failed-Refund"
    assert failed.order.status == OrderStatus.PROCESSING
    assert failed.order.invoice.status == InvoiceStatus.PAID


def test_the_clinical_path(demo):
    pending = IntakeResponse.objects.get(status=IntakeStatus.PENDING)
    assert pending.order.status == OrderStatus.AWAITING_REQUIREMENTS
    open_visit = BelugaVisit.objects.get(order__patient__last_name="Visit")
    assert open_visit.submit_status == SubmitStatus.SUBMITTED
    assert open_visit.status in OPEN_VISIT_STATUSES
    cancelled = BelugaVisit.objects.get(order__patient__last_name="Cancelled-Visit")
    assert cancelled.status == VisitStatus.CANCELED
    assert cancelled.order.status == OrderStatus.AWAITING_SCRIPT
    # Past the script, the prescriber concluded the visit and the prescription is in the chart.
    for visit in BelugaVisit.objects.exclude(order__status__in=["AWAITING_SCRIPT", "REJECTED"]):
        assert visit.status == VisitStatus.RESOLVED, visit.order.patient
        assert visit.order.prescriptions.exists()
    rejected = IntakeResponse.objects.get(status=IntakeStatus.REJECTED)
    assert rejected.order.status == OrderStatus.REJECTED
    assert rejected.order.beluga_visit.status == VisitStatus.CANCELED
    assert rejected.order.subscription.status == SubscriptionStatus.CANCELLED
    assert rejected.order.subscription.cancellation_cause == CancellationCause.INTAKE_REJECTED


def test_the_subscriptions(demo):
    recovery = subscription_of("Recovery")
    assert recovery.status == SubscriptionStatus.PAUSED and recovery.awaiting_payment
    open_invoice = recovery.orders.get(kind=OrderKind.RECURRING)
    assert open_invoice.status == OrderStatus.AWAITING_PAYMENT
    assert open_invoice.invoice.status == InvoiceStatus.SENT
    assert open_invoice.recovery_status == RecoveryStatus.NEEDS_PAYMENT_METHOD

    financed = subscription_of("Financed")
    assert financed.status == SubscriptionStatus.ACTIVE
    assert financed.recovery_cycles_remaining == 5
    assert subscription_of("Scheduled").has_scheduled_cancellation

    waiting = PlanSwitch.objects.get(subscription__patient__last_name="Switch-Pending")
    assert waiting.status == SwitchStatus.SCHEDULED
    switched = PlanSwitch.objects.get(subscription__patient__last_name="Switched")
    assert switched.status == SwitchStatus.COMPLETED
    payoff = switched.payoff_order
    assert payoff.kind == OrderKind.PAYOFF and payoff.invoice.status == InvoiceStatus.PAID
    assert payoff.total_cents == 5 * switched.subscription.plan.price_cents
    replacement_first = switched.replacement.orders.get()
    assert replacement_first.invoice.status == InvoiceStatus.PAID
    assert replacement_first.invoice != payoff.invoice
    assert switched.subscription.cancellation_cause == CancellationCause.SWITCHED
    assert Subscription.objects.filter(orders__isnull=False).count() >= 10


def test_every_order_action_of_the_guide_is_offered_where_the_story_says(demo, roles):
    admin = User.objects.get(username="admin")

    def offered(last_name: str) -> set[str]:
        order_page = django_admin.site._registry[Order]
        return {tool.name for tool in order_page.tools_for(order_of(last_name), admin)}

    assert {"refund", "cancel", "reject"} <= offered("Paid")
    assert "cancel" in offered("Pending") and "refund" not in offered("Pending")
    assert "cancel_visit" in offered("Visit")
    assert "void_pharmacy" in offered("Dispensepro")
    assert "void_pharmacy" not in offered("Own-Pharmacy")  # no void: CS verifies
    assert "void_pharmacy" not in offered("Shipped") and "cancel" not in offered("Shipped")
    assert {"refund", "complete", "return"} <= offered("Shipped")
    assert "refund" in offered("Voided")  # cancelled, but the money is still with the clinic
    assert "refund" in offered("Failed-Refund")  # the retry
    assert offered("Refunded") == set()  # locked


def test_each_action_of_the_guide_can_be_tried_on_its_demo_record(demo, roles):
    """What CS would do in `make run`, through the services every door calls."""
    staff = Actor.staff(User.objects.get(username="admin"), door=Door.ADMIN)
    reason = "Tried in the demo"

    refund_order(order=order_of("Paid"), actor=staff, reason=reason)
    refund_order(order=order_of("Nmi"), actor=staff, reason=reason)  # back through NMI
    refund_order(order=order_of("Failed-Refund"), actor=staff, reason=reason)  # the retry
    change_status(
        order=order_of("Pending"), target=OrderStatus.CANCELLED, actor=staff, reason=reason
    )
    cancel_visit(
        visit=BelugaVisit.objects.get(order__patient__last_name="Visit"), actor=staff, reason=reason
    )
    void_pharmacy_order(
        pharmacy_order=PharmacyOrder.objects.get(order__patient__last_name="Dispensepro"),
        actor=staff,
        reason=reason,
    )
    record_sent_manually(
        pharmacy_order=PharmacyOrder.objects.get(order__patient__last_name="Fulfilment"),
        actor=staff,
        reason=reason,
    )
    with pytest.raises(StateConflict) as too_late:
        change_status(
            order=order_of("Shipped"), target=OrderStatus.CANCELLED, actor=staff, reason=reason
        )
    assert too_late.value.code == "order.invalid_transition"
    send_back_for_correction(
        intake=IntakeResponse.objects.get(order__patient__last_name="Cancelled-Visit"),
        actor=staff,
        note=reason,
    )
    reject_intake(
        intake=IntakeResponse.objects.get(order__patient__last_name="Visit"),
        actor=staff,
        note=reason,
    )

    lifecycle.cancel_subscription(
        subscription=subscription_of("Member"), actor=staff, reason=reason
    )
    resumed = lifecycle.resume_subscription(
        subscription=subscription_of("Paused"), actor=staff, reason=reason
    )
    switched = switch_plan(
        subscription=resumed,
        plan=subscription_of("Financed").plan,
        actor=staff,
        reason=reason,
    )
    assert switched.status == SwitchStatus.COMPLETED
    lifecycle.schedule_cancellation(
        subscription=subscription_of("Financed"), actor=staff, reason=reason
    )
    lifecycle.withdraw_scheduled_cancellation(
        subscription=subscription_of("Scheduled"), actor=staff, reason=reason
    )
    withdraw_scheduled_switch(subscription=subscription_of("Switch-Pending"), actor=staff)
    rob = subscription_of("Recovery")
    card = payments.save_card(
        patient=rob.patient, gateway="stripe", token="pm_card_visa", actor=staff
    )
    payments.charge_invoice(
        invoice=rob.orders.get(kind=OrderKind.RECURRING).invoice, payment_method=card, actor=staff
    )

    rob.refresh_from_db()
    assert rob.status == SubscriptionStatus.ACTIVE  # out of recovery
    assert Order.objects.filter(status=OrderStatus.REFUNDED).count() == 4
    assert not RefundAttempt.objects.filter(status=RefundAttemptStatus.PENDING).exists()


def test_the_demo_explains_missing_gateways(settings, db):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(CommandError, match="make run"):
        call_command("seed_demo")
