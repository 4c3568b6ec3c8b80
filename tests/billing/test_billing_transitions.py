import itertools

import pytest

from billing.states import (
    InvoiceStatus,
    PaymentKind,
    PaymentStatus,
    invoice_transitions,
    payment_transitions,
)
from emr.kernel.errors import InvalidTransition

INVOICE_ALLOWED = {("SENT", "PAID"), ("SENT", "CANCELLED"), ("PAID", "CANCELLED")}
CHARGE_ALLOWED = {("PENDING", "SUCCEEDED"), ("PENDING", "FAILED")}
REFUND_ALLOWED = {("PENDING", "REFUNDED"), ("PENDING", "FAILED"), ("REFUNDED", "FAILED")}


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(InvoiceStatus.values, repeat=2))
)
def test_invoice_moves(source, target):
    assert invoice_transitions.can(source, target) is ((source, target) in INVOICE_ALLOWED)
    if (source, target) not in INVOICE_ALLOWED:
        with pytest.raises(InvalidTransition) as refused:
            invoice_transitions.check(source, target)
        assert refused.value.code == "invoice.invalid_transition"


@pytest.mark.parametrize(
    ("kind", "allowed"),
    [(PaymentKind.CHARGE, CHARGE_ALLOWED), (PaymentKind.REFUND, REFUND_ALLOWED)],
)
def test_payment_moves(kind, allowed):
    for source, target in itertools.product(PaymentStatus.values, repeat=2):
        table = payment_transitions[kind]
        assert table.can(source, target) is ((source, target) in allowed), (kind, source, target)
        if (source, target) not in allowed:
            with pytest.raises(InvalidTransition) as refused:
                table.check(source, target)
            assert refused.value.code == "payment.invalid_transition"


def test_a_successful_charge_is_never_rewritten():
    # The original charge row stays as it was: a refund is a new row, never a status change.
    assert payment_transitions[PaymentKind.CHARGE].targets(PaymentStatus.SUCCEEDED) == frozenset()
