import itertools
from dataclasses import fields

import pytest
from django.utils import timezone

from billing.models import Invoice, Payment
from billing.states import Gateway, InvoiceStatus, PaymentKind, PaymentStatus
from emr.kernel.actors import Actor
from emr.models import IntakeResponse, IntakeStatus, Prescription
from orders import services
from orders.models import Order
from orders.recalculation import OrderFacts, derive_status
from orders.states import ACTION_ONLY, OrderStatus
from tests.factories import ProductFactory, make_order

S = OrderStatus
FACT_NAMES = [field.name for field in fields(OrderFacts)]


def _reference(facts: OrderFacts) -> OrderStatus:
    """The platform notes' rules, restated independently as a lookup in priority order."""
    rules = [
        (not facts.paid and facts.payment_failed, S.AWAITING_PAYMENT),
        (not facts.paid, S.PENDING),
        (facts.completed, S.COMPLETED),
        (facts.shipped, S.SHIPPED),
        (facts.sent_to_pharmacy, S.AWAITING_SHIPMENT),
        (facts.intake_required and not facts.intake_complete, S.AWAITING_REQUIREMENTS),
        (facts.documents_required and not facts.documents_signed, S.AWAITING_REQUIREMENTS),
        (facts.labs_required and not facts.requisition_sent, S.AWAITING_REQUISITION),
        (facts.labs_required and not facts.results_received, S.AWAITING_RESULTS),
        (facts.prescription_required and not facts.prescription_written, S.AWAITING_SCRIPT),
        (facts.prescription_written, S.AWAITING_FULFILLMENT),
    ]
    return next((status for applies, status in rules if applies), S.PROCESSING)


def test_every_combination_of_facts():
    for values in itertools.product([False, True], repeat=len(FACT_NAMES)):
        facts = OrderFacts(**dict(zip(FACT_NAMES, values, strict=True)))
        status = derive_status(facts)
        assert status == _reference(facts), facts
        assert status not in ACTION_ONLY


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (OrderFacts(), S.PENDING),
        (OrderFacts(payment_failed=True), S.AWAITING_PAYMENT),
        (OrderFacts(paid=True), S.PROCESSING),
        (OrderFacts(paid=True, intake_required=True), S.AWAITING_REQUIREMENTS),
        (
            OrderFacts(
                paid=True, intake_required=True, intake_complete=True, prescription_required=True
            ),
            S.AWAITING_SCRIPT,
        ),
        (OrderFacts(paid=True, labs_required=True), S.AWAITING_REQUISITION),
        (OrderFacts(paid=True, labs_required=True, requisition_sent=True), S.AWAITING_RESULTS),
        (
            OrderFacts(paid=True, prescription_required=True, prescription_written=True),
            S.AWAITING_FULFILLMENT,
        ),
        (
            OrderFacts(paid=True, prescription_written=True, sent_to_pharmacy=True),
            S.AWAITING_SHIPMENT,
        ),
        (OrderFacts(paid=True, sent_to_pharmacy=True, shipped=True), S.SHIPPED),
        # A payment that failed earlier and then succeeded counts as paid.
        (OrderFacts(paid=True, payment_failed=True), S.PROCESSING),
    ],
)
def test_the_platform_examples(facts, expected):
    assert derive_status(facts) == expected


ACTOR = Actor.system("recalculation-test")


def _pay(order: Order) -> None:
    invoice = Invoice.objects.get(order=order)
    Payment.objects.create(
        invoice=invoice, kind=PaymentKind.CHARGE, status=PaymentStatus.SUCCEEDED,
        gateway=Gateway.STRIPE, amount_cents=invoice.amount_cents, transaction_id="pi_test_1",
    )  # fmt: skip
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID)


@pytest.mark.django_db
def test_recalculation_follows_the_chart_from_payment_to_fulfilment():
    medication = ProductFactory(requires_intake=True, requires_prescription=True)
    order = make_order(products=[medication])
    intake = IntakeResponse.objects.create(
        patient=order.patient, order=order, questionnaire="GLP-1"
    )

    def recalc():
        return services.recalculate_status(order=order, actor=ACTOR, reason="facts changed").status

    assert recalc() == S.PENDING
    _pay(order)
    assert recalc() == S.AWAITING_REQUIREMENTS
    intake.status = IntakeStatus.SUBMITTED
    intake.save()
    assert recalc() == S.AWAITING_SCRIPT
    Prescription.objects.create(
        patient=order.patient, order=order, medication="Semaglutide", written_at=timezone.now()
    )
    assert recalc() == S.AWAITING_FULFILLMENT
    history = Order.history.filter(id=order.pk).order_by("history_id")
    assert [row.status for row in history] == [
        S.PENDING, S.AWAITING_REQUIREMENTS, S.AWAITING_SCRIPT, S.AWAITING_FULFILLMENT
    ]  # fmt: skip
    assert history.last().history_actor == "system:recalculation-test"


@pytest.mark.django_db
def test_a_failed_charge_means_awaiting_payment():
    order = make_order()
    Payment.objects.create(
        invoice=order.invoice, kind=PaymentKind.CHARGE, status=PaymentStatus.FAILED,
        gateway=Gateway.NMI, amount_cents=order.total_cents, failure_message="Declined",
    )  # fmt: skip
    assert services.recalculate_status(order=order, actor=ACTOR, reason="charge failed").status == (
        S.AWAITING_PAYMENT
    )


@pytest.mark.django_db
@pytest.mark.parametrize("status", sorted(ACTION_ONLY))
def test_recalculation_never_touches_action_statuses(status):
    order = make_order()
    _pay(order)
    Order.objects.filter(pk=order.pk).update(status=status)
    history_before = Order.history.filter(id=order.pk).count()

    assert services.recalculate_status(order=order, actor=ACTOR, reason="facts").status == status
    assert Order.objects.get(pk=order.pk).status == status
    assert Order.history.filter(id=order.pk).count() == history_before
