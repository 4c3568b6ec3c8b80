"""The charge janitor: a charge whose answer was lost is resolved by asking the gateway, and
money moves once.

The fakes apply the charge and then drop the connection unanswered, as a timeout or a broken
link would: the payment stays PENDING and every other charge of the invoice is refused until
`reconcile_charges` (beat, or `manage.py reconcile_charges`) finds out what happened.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from billing import payments
from billing.models import Payment
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus
from emr.kernel.errors import DomainError
from emr.workflows.models import WorkflowEvent
from orders.models import Order
from orders.services import change_status
from orders.states import OrderStatus
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import NMI_CARD, STRIPE_CARD

pytestmark = pytest.mark.django_db

NOW = timedelta(0)
CARDS = {"stripe": STRIPE_CARD, "nmi": NMI_CARD}


@pytest.fixture
def order_with_card(gateways, system):
    """An unpaid order and a saved card of its patient at `gateway` (the active one)."""

    def make(gateway: str, cents: int = 8000):
        payments.set_active_gateway(gateway=gateway, actor=system, reason="test setup")
        patient = PatientFactory()
        card = payments.save_card(
            patient=patient, gateway=gateway, token=CARDS[gateway], actor=system
        )
        return make_order(patient=patient, products=[ProductFactory(price_cents=cents)]), card

    return make


def lose_the_next_charge_answer(gateways, gateway: str) -> None:
    if gateway == "nmi":
        gateways.nmi.inject("drop_after_apply", on="sale")
    else:
        gateways.stripe.fault("drop_after_apply")


def charges_at(gateways, gateway: str) -> list[int]:
    if gateway == "nmi":
        return [row["amount_cents"] for row in gateways.nmi.transactions() if row["type"] == "sale"]
    return [intent["amount"] for intent in gateways.stripe.payment_intents()]


def charge(order, card, actor):
    return payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=actor)


@pytest.mark.parametrize("gateway", ["nmi", "stripe"])
def test_a_charge_applied_at_the_gateway_is_recorded_once(
    gateway, order_with_card, gateways, system
):
    order, card = order_with_card(gateway, 8000)
    lose_the_next_charge_answer(gateways, gateway)
    with pytest.raises(DomainError) as lost:
        charge(order, card, system)
    assert lost.value.code == "payment.outcome_unknown"
    pending = Payment.objects.get(invoice=order.invoice, kind=PaymentKind.CHARGE)
    assert pending.status == PaymentStatus.PENDING
    with pytest.raises(DomainError) as again:
        charge(order, card, system)
    assert again.value.code == "payment.in_progress"

    assert payments.reconcile_charges(older_than=NOW) == 1

    pending.refresh_from_db()
    assert pending.status == PaymentStatus.SUCCEEDED
    assert pending.transaction_id
    order = Order.objects.get(pk=order.pk)
    assert order.invoice.status == InvoiceStatus.PAID
    assert order.status == OrderStatus.PROCESSING
    assert charges_at(gateways, gateway) == [8000]  # one charge, and it was not repeated
    history = pending.history.first()
    assert history.history_actor == "system:charge-reconciler"
    assert history.history_change_reason == (
        "Charge confirmed by the gateway after its answer was lost"
    )
    assert WorkflowEvent.objects.filter(event_type="invoice.paid").count() == 1
    assert payments.reconcile_charges(older_than=NOW) == 0


@pytest.mark.parametrize("gateway", ["nmi", "stripe"])
def test_a_charge_the_gateway_never_received_fails_and_can_be_charged_again(
    gateway, order_with_card, gateways, settings, system
):
    order, card = order_with_card(gateway, 6000)
    # The server is unreachable: the request never arrives, so nothing can have moved.
    setting = "NMI_API_URL" if gateway == "nmi" else "STRIPE_API_BASE"
    reachable = getattr(settings, setting)
    setattr(settings, setting, "http://127.0.0.1:9")
    with pytest.raises(DomainError) as lost:
        charge(order, card, system)
    assert lost.value.code == "payment.outcome_unknown"
    setattr(settings, setting, reachable)

    assert payments.reconcile_charges(older_than=NOW) == 1

    failed = Payment.objects.get(invoice=order.invoice, kind=PaymentKind.CHARGE)
    assert failed.status == PaymentStatus.FAILED
    assert failed.failure_message == payments.NO_CHARGE_AT_THE_GATEWAY
    assert Order.objects.get(pk=order.pk).invoice.status == InvoiceStatus.SENT
    assert WorkflowEvent.objects.filter(event_type="payment.failed").count() == 1
    charge(order, card, system)  # nothing moved, so CS may charge again: once
    assert charges_at(gateways, gateway) == [6000]
    assert Order.objects.get(pk=order.pk).invoice.status == InvoiceStatus.PAID


def test_a_charge_still_waiting_for_its_answer_is_left_alone(order_with_card, gateways, system):
    order, card = order_with_card("nmi")
    lose_the_next_charge_answer(gateways, "nmi")
    with pytest.raises(DomainError):
        charge(order, card, system)
    # Younger than CHARGE_RECONCILE_AFTER_SECONDS: its answer may still be on the way.
    assert payments.reconcile_charges() == 0
    assert Payment.objects.get(invoice=order.invoice).status == PaymentStatus.PENDING


def test_a_gateway_that_cannot_answer_now_is_asked_again_later(
    order_with_card, gateways, settings, system
):
    order, card = order_with_card("nmi")
    lose_the_next_charge_answer(gateways, "nmi")
    with pytest.raises(DomainError):
        charge(order, card, system)
    query_url = settings.NMI_QUERY_URL
    settings.NMI_QUERY_URL = "http://127.0.0.1:9"
    assert payments.reconcile_charges(older_than=NOW) == 0
    assert Payment.objects.get(invoice=order.invoice).status == PaymentStatus.PENDING

    settings.NMI_QUERY_URL = query_url
    assert payments.reconcile_charges(older_than=NOW) == 1
    assert Payment.objects.get(invoice=order.invoice).status == PaymentStatus.SUCCEEDED


def test_the_command_resolves_and_says_how_many(order_with_card, gateways, system):
    order, card = order_with_card("nmi")
    lose_the_next_charge_answer(gateways, "nmi")
    with pytest.raises(DomainError):
        charge(order, card, system)
    output = StringIO()
    call_command("reconcile_charges", "--older-than-seconds", "0", stdout=output)
    assert output.getvalue().strip() == "Resolved 1 pending charge(s)."
    payment = Payment.objects.get(invoice=order.invoice)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.history.first().history_door == "command"


def test_a_charge_whose_order_was_cancelled_meanwhile_is_flagged_and_the_sweep_goes_on(
    order_with_card, gateways, system
):
    cancelled, card = order_with_card("nmi", 4000)
    lose_the_next_charge_answer(gateways, "nmi")
    with pytest.raises(DomainError):
        charge(cancelled, card, system)
    change_status(order=cancelled, target=OrderStatus.CANCELLED, actor=system, reason="Mistake")
    other = make_order(patient=cancelled.patient, products=[ProductFactory(price_cents=2500)])
    lose_the_next_charge_answer(gateways, "nmi")
    with pytest.raises(DomainError):
        charge(other, card, system)

    assert payments.reconcile_charges(older_than=NOW) == 1  # the other one

    flagged = Payment.objects.get(invoice=cancelled.invoice)
    assert flagged.status == PaymentStatus.PENDING
    assert flagged.needs_review is True
    assert flagged.review_note.startswith("The gateway took this charge, but it could not be")
    assert "Billing/admin operations must decide" in flagged.review_note
    assert Payment.objects.get(invoice=other.invoice).status == PaymentStatus.SUCCEEDED
    assert Order.objects.get(pk=cancelled.pk).invoice.status == InvoiceStatus.CANCELLED
