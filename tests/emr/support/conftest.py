"""Support tests: staff roles with the support permissions, and patients whose charts have
every kind of record the support pages show. Payments go through the local gateway servers
(`paid_order`, `gateways` from tests/fixtures); nothing of ours is patched."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing import payments
from billing.refunds import refund_order
from emr.kernel.actors import Actor, Door
from emr.models import IntakeResponse, IntakeStatus, Prescription
from integrations.beluga.models import BelugaMessage, BelugaVisit
from integrations.beluga.states import MessageChannel, ResolvedStatus, SubmitStatus, VisitStatus
from integrations.pharmacy.models import PharmacyOrder
from integrations.pharmacy.states import PharmacyOrderStatus, PharmacyType
from orders.models import Order
from orders.services import recalculate_status
from orders.states import RecoveryStatus
from tests.factories import PatientFactory, SubscriptionFactory, UserFactory, make_order
from tests.fixtures.gateways import STRIPE_CARD

# A card the Stripe fake saves, then declines on every charge.
DECLINED_CARD = "pm_card_chargeCustomerFail"


@pytest.fixture
def nobody(db):
    """Staff with no role at all."""
    return UserFactory(username="temp-staff")


@pytest.fixture
def client_for():
    def login(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login


def link_subscription(order: Order, subscription=None):
    subscription = subscription or SubscriptionFactory(patient=order.patient)
    order.subscription = subscription
    order.save()
    return subscription


def add_visit(order: Order, *, status=VisitStatus.ACTIVE) -> BelugaVisit:
    return BelugaVisit.objects.create(
        order=order,
        master_id=f"visit-{order.number}",
        submit_status=SubmitStatus.SUBMITTED,
        status=status,
        resolved_status=ResolvedStatus.OPEN,
    )


def add_pharmacy_order(order: Order, *, status=PharmacyOrderStatus.SUBMITTED) -> PharmacyOrder:
    return PharmacyOrder.objects.create(
        order=order,
        pharmacy=PharmacyType.DISPENSE_PRO,
        reference=f"rx-{order.number}",
        external_id=f"dp-{order.number}",
        status=status,
        carrier="UPS",
        tracking_number=f"1Z{order.pk:08d}",
    )


@pytest.fixture
def chart(gateways, system):
    """chart(orders=n) -> a patient with n orders, each paid by card through Stripe, partly
    refunded, linked to a subscription, with a Beluga visit, both kinds of message, a pharmacy
    order, an intake and a prescription: every row kind the profile shows, n times."""

    def build(*, orders: int):
        payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")
        patient = PatientFactory()
        card = payments.save_card(
            patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system
        )
        subscription = SubscriptionFactory(patient=patient)
        for _ in range(orders):
            order = make_order(patient=patient)
            payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
            refund_order(order=order, actor=system, reason="goodwill", amount_cents=500)
            link_subscription(Order.objects.get(pk=order.pk), subscription)
            visit = add_visit(order)
            for channel in MessageChannel:
                BelugaMessage.objects.create(
                    visit=visit,
                    channel=channel,
                    sender="Dr. Lee" if channel == MessageChannel.DOCTOR_PATIENT else "Beluga ops",
                    body=f"{channel.label} note about {order.number}",
                    sent_at=timezone.now(),
                    external_id=f"msg-{channel}-{order.number}",
                )
            add_pharmacy_order(order)
            IntakeResponse.objects.create(
                patient=patient,
                order=order,
                questionnaire="Weight care",
                status=IntakeStatus.APPROVED,
            )
            Prescription.objects.create(
                patient=patient, order=order, medication="Semaglutide", written_at=timezone.now()
            )
        return patient

    return build


@pytest.fixture
def failed_payment(gateways, system):
    """failed_payment(recovery=…) -> an order waiting for payment.

    CHARGE_FAILED: the card was declined at Stripe (a FAILED payment row). NEEDS_PAYMENT_METHOD:
    no compatible card, so nothing was charged. NONE: a one-off charge declined, no recovery.
    The recovery bookkeeping is written as the renewal job writes it.
    """

    def build(*, recovery=RecoveryStatus.CHARGE_FAILED, attempts: int = 1, subscription=True):
        payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")
        patient = PatientFactory()
        order = make_order(patient=patient)
        if recovery != RecoveryStatus.NEEDS_PAYMENT_METHOD:
            card = payments.save_card(
                patient=patient, gateway="stripe", token=DECLINED_CARD, actor=system
            )
            with pytest.raises(payments.PaymentRequired):
                payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
        order = Order.objects.get(pk=order.pk)
        if subscription:
            link_subscription(order)
        if recovery:
            order.recovery_status = recovery
            order.recovery_attempts = attempts
            order.recovery_next_retry_at = timezone.now() + timedelta(days=attempts)
            order.save()
        return recalculate_status(order=order, actor=system, reason="test setup")

    return build


@pytest.fixture
def staff_actor():
    def actor(user) -> Actor:
        return Actor.staff(user, door=Door.ADMIN)

    return actor
