"""What one refund costs the database: the same statements however many orders and payments
there are, no more than REFUND_STATEMENTS, and one history row per audited save."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice, Payment, RefundAttempt
from billing.refunds import refund_order
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus
from orders.models import Order
from orders.states import OrderStatus
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

# Both transactions of a full refund (decide and commit the attempt; record the answer), the
# three events included (inserted together in one statement). Of these, 10 are still the events'
# payload reads (built per event from the database): lower this when they are built once.
REFUND_STATEMENTS = 32


def _refund_statements(order: Order, actor) -> int:
    with CaptureQueriesContext(connection) as captured:
        refund_order(order=order, actor=actor, reason="Counted refund")
    return len(captured.captured_queries)


def _add_unrelated_paid_orders(count: int) -> None:
    patient = PatientFactory()
    orders = Order.objects.bulk_create(
        Order(number=f"FILL-{i}", patient=patient, status=OrderStatus.PROCESSING, total_cents=900)
        for i in range(count)
    )
    invoices = Invoice.objects.bulk_create(
        Invoice(number=f"FINV-{o.pk}", order=o, amount_cents=900, status=InvoiceStatus.PAID)
        for o in orders
    )
    Payment.objects.bulk_create(
        Payment(
            invoice=i, kind=PaymentKind.CHARGE, status=PaymentStatus.SUCCEEDED, gateway="nmi",
            amount_cents=900, transaction_id=f"filler-{i.pk}", reference=uuid.uuid4(),
        )
        for i in invoices
    )  # fmt: skip


@pytest.mark.parametrize("gateway", ["nmi", "stripe"])
def test_a_refund_costs_the_same_statements_at_any_database_size(paid_order, system, gateway):
    # The first refund in a process also looks up content types once (cached afterwards).
    refund_order(order=paid_order(gateway, 4900), actor=system, reason="Warm-up refund")
    small = _refund_statements(paid_order(gateway, 5000), system)
    _add_unrelated_paid_orders(300)
    # Another amount: the NMI fake refuses the same card charged the same amount as a duplicate.
    large = _refund_statements(paid_order(gateway, 5100), system)

    assert small == large, (small, large)
    assert large <= REFUND_STATEMENTS, large


def test_a_refund_writes_one_history_row_per_audited_save(paid_order, system):
    order = paid_order("nmi", 5000)
    charge = Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)
    before = (order.history.count(), order.invoice.history.count(), charge.history.count())

    refund = refund_order(order=order, actor=system, reason="Counted refund")

    order.refresh_from_db()
    # The order saved once (refunded amount and status together), the invoice once.
    assert (order.history.count(), order.invoice.history.count()) == (before[0] + 1, before[1] + 1)
    assert order.history.first().status == "REFUNDED"
    assert order.history.first().refunded_cents == 5000
    assert charge.history.count() == before[2]  # the original charge is never rewritten
    assert refund.history.count() == 1  # created once, REFUNDED
    attempt = RefundAttempt.objects.get(refund_payment=refund)
    assert [h.status for h in attempt.history.order_by("history_id")] == ["PENDING", "SUCCEEDED"]
