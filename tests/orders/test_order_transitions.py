"""Every allowed and every forbidden order move, checked against a grid written from the spec
(clinic-platform-notes.md and the refunds guide), through the table, save() and the service."""

import itertools

import pytest

from emr.kernel.errors import InvalidTransition
from orders.models import Order
from orders.states import OrderStatus, order_transitions
from tests.factories import PatientFactory

S = OrderStatus
COLUMNS = [
    "PENDING", "AWAITING_PAYMENT", "PROCESSING", "AWAITING_REQUIREMENTS", "AWAITING_REQUISITION",
    "AWAITING_RESULTS", "AWAITING_SCRIPT", "AWAITING_FULFILLMENT", "AWAITING_SHIPMENT", "SHIPPED",
    "COMPLETED", "CANCELLED", "REJECTED", "RETURNED", "REFUNDED",
]  # fmt: skip
# Row: from. Column: to, in COLUMNS order. "x" allowed, "." forbidden.
GRID = """
PENDING                . x x x x x x x x . . x x . .
AWAITING_PAYMENT       x . x x x x x x x . . x x . .
PROCESSING             . . . x x x x x x x x x x . x
AWAITING_REQUIREMENTS  . . x . x x x x x x x x x . x
AWAITING_REQUISITION   . . x x . x x x x x x x x . x
AWAITING_RESULTS       . . x x x . x x x x x x x . x
AWAITING_SCRIPT        . . x x x x . x x x x x x . x
AWAITING_FULFILLMENT   . . x x x x x . x x x x x . x
AWAITING_SHIPMENT      . . x x x x x x . x x x x . x
SHIPPED                . . . . . . . . . . x . . x x
COMPLETED              . . . . . . . . . . . . . x x
CANCELLED              . . . . . . . . . . . . . . x
REJECTED               . . . . . . . . . . . . . . x
RETURNED               . . . . . . . . . . . . . . x
REFUNDED               . . . . . . . . . . . . . . .
"""


def _expected() -> dict[tuple[str, str], bool]:
    expected = {}
    for line in GRID.strip().splitlines():
        source, *marks = line.split()
        assert len(marks) == len(COLUMNS), source
        for target, mark in zip(COLUMNS, marks, strict=True):
            expected[(source, target)] = mark == "x"
    return expected


EXPECTED = _expected()
ALL_PAIRS = list(itertools.product(COLUMNS, COLUMNS))


def test_grid_covers_every_status():
    assert set(COLUMNS) == set(OrderStatus.values)
    assert len(EXPECTED) == len(OrderStatus.values) ** 2


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS)
def test_table_matches_the_spec(source, target):
    assert order_transitions.can(source, target) is EXPECTED[(source, target)]


def test_refunded_is_locked_with_its_own_code():
    for target in COLUMNS:
        with pytest.raises(InvalidTransition) as refused:
            order_transitions.check(S.REFUNDED, target)
        assert refused.value.code == "order.locked"


def test_other_refusals_name_both_statuses():
    with pytest.raises(InvalidTransition) as refused:
        order_transitions.check(S.SHIPPED, S.CANCELLED)
    assert refused.value.code == "order.invalid_transition"
    assert "Shipped" in refused.value.detail and "Cancelled" in refused.value.detail


@pytest.mark.django_db
def test_save_enforces_every_pair_against_the_stored_status():
    patient = PatientFactory()
    for number, (source, target) in enumerate(ALL_PAIRS):
        if source == target:
            continue
        order = Order.objects.create(number=f"T-{number}", patient=patient, status=source)
        order = Order.objects.get(pk=order.pk)
        order.status = target
        if EXPECTED[(source, target)]:
            order.save()
            assert Order.objects.get(pk=order.pk).status == target
        else:
            with pytest.raises(InvalidTransition):
                order.save()
            assert Order.objects.get(pk=order.pk).status == source
