"""Every order status change is announced to the clinic's automations, once, in the transaction
of the change: `order.updated` and the status's own event (order.cancelled, order.rejected …),
each saying from what status to what (the outbox rows a workflow is triggered by)."""

import pytest
from rest_framework.test import APIClient

from billing.refunds import refund_order
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import InvalidTransition
from emr.workflows.models import WorkflowEvent
from orders import services
from orders.models import Order
from orders.states import OrderStatus
from tests.emr.workflows.helpers import pay
from tests.factories import PatientFactory, ProductFactory, make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(cs_user):
    return Actor.staff(cs_user, door=Door.API)


def events_of(order: Order, *, after: int = 0) -> list[tuple[str, dict]]:
    """(event name, statusChange) of the order's outbox rows after row id `after`, in order."""
    rows = WorkflowEvent.objects.filter(subject_key=f"order:{order.pk}", pk__gt=after)
    return [(row.event_type, row.payload["statusChange"]) for row in rows.order_by("id")]


def last_event_id() -> int:
    return WorkflowEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def moved(old: str, new: str) -> dict:
    return {"from": old, "to": new}


def test_an_order_created_through_the_api_emits_order_created(cs_user):
    api = APIClient()
    api.force_authenticate(cs_user)
    body = {
        "patient": PatientFactory().pk,
        "items": [{"product": ProductFactory().pk, "quantity": 1}],
    }

    response = api.post("/api/v1/orders/", body, format="json")

    assert response.status_code == 201, response.json()
    order = Order.objects.get(pk=response.json()["id"])
    assert events_of(order) == [("order.created", moved(None, "PENDING"))]
    created = WorkflowEvent.objects.get(subject_key=f"order:{order.pk}")
    assert created.payload["order"]["orderNumber"] == order.number
    assert created.actor == "cs-agent"


def test_an_order_created_by_a_service_emits_order_created():
    order = make_order()
    assert events_of(order) == [("order.created", moved(None, "PENDING"))]


@pytest.mark.parametrize(
    ("start", "target", "named"),
    [
        (OrderStatus.PENDING, OrderStatus.CANCELLED, "order.cancelled"),
        (OrderStatus.PROCESSING, OrderStatus.CANCELLED, "order.cancelled"),
        (OrderStatus.AWAITING_SCRIPT, OrderStatus.REJECTED, "order.rejected"),
        (OrderStatus.AWAITING_SHIPMENT, OrderStatus.SHIPPED, "order.shipped"),
        (OrderStatus.SHIPPED, OrderStatus.COMPLETED, "order.completed"),
        (OrderStatus.SHIPPED, OrderStatus.RETURNED, "order.returned"),
        (OrderStatus.COMPLETED, OrderStatus.RETURNED, "order.returned"),
    ],
)
def test_each_staff_move_emits_its_event_and_order_updated_once(staff, start, target, named):
    order = make_order()
    Order.objects.filter(pk=order.pk).update(status=start)
    before = last_event_id()

    services.change_status(order=order, target=target, actor=staff, reason="Staff move")

    assert events_of(order, after=before) == [
        (named, moved(start, target)),
        ("order.updated", moved(start, target)),
    ]
    updated = WorkflowEvent.objects.filter(event_type="order.updated", pk__gt=before).get()
    assert updated.payload["order"]["status"] == target
    assert (updated.actor, updated.actor_door) == ("cs-agent", "api")


def test_a_refused_move_emits_nothing(staff):
    order = make_order()
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.SHIPPED)
    before = last_event_id()

    with pytest.raises(InvalidTransition):
        services.change_status(order=order, target=OrderStatus.CANCELLED, actor=staff, reason="x")

    assert events_of(order, after=before) == []


def test_a_recalculation_to_a_new_status_emits_order_updated_once_and_a_no_op_nothing(staff):
    order = make_order()
    before = last_event_id()

    pay(order)  # recalculated: paid, nothing clinical waits

    assert events_of(order, after=before) == [("order.updated", moved("PENDING", "PROCESSING"))]
    before = last_event_id()
    services.recalculate_status(order=order, actor=staff, reason="Nothing new")
    assert events_of(order, after=before) == []


def test_a_fact_that_moves_the_status_emits_the_status_event(staff):
    order = make_order()
    pay(order)
    before = last_event_id()

    services.record_fact(order=order, fact="shipped", actor=staff, reason="Tracking received")

    assert events_of(order, after=before) == [
        ("order.shipped", moved("PROCESSING", "SHIPPED")),
        ("order.updated", moved("PROCESSING", "SHIPPED")),
    ]


def test_a_refund_emits_order_refunded_and_order_updated_once(paid_order, system):
    order = paid_order("stripe", 4000)
    before = last_event_id()

    refund_order(order=order, actor=system, reason="Patient changed their mind")

    assert events_of(order, after=before) == [
        ("order.refunded", moved("PROCESSING", "REFUNDED")),
        ("order.updated", moved("PROCESSING", "REFUNDED")),
    ]


def test_a_partial_refund_emits_order_updated_without_a_status_change(paid_order, system):
    order = paid_order("stripe", 4000)
    before = last_event_id()

    refund_order(order=order, actor=system, reason="One item unused", amount_cents=1000)

    assert events_of(order, after=before) == [("order.updated", None)]
    updated = WorkflowEvent.objects.get(event_type="order.updated", pk__gt=before)
    assert updated.payload["order"]["refundedCents"] == 1000
