import pytest
from django.urls import reverse

from billing.models import Invoice
from billing.states import InvoiceStatus
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import InvalidInput, InvalidTransition, StateConflict
from orders import services
from orders.models import Order
from orders.states import OrderStatus
from tests.admin_tools import confirm_action
from tests.factories import PatientFactory, ProductFactory, make_order

pytestmark = pytest.mark.django_db


def _refunded_order() -> Order:
    # The refund flow is the only way to REFUNDED; here the row is written as it would leave it.
    order = make_order()
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.REFUNDED)
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def staff_actor(cs_user):
    return Actor.staff(cs_user, door=Door.API)


def test_create_order_issues_its_invoice_for_the_total():
    consult, kit = ProductFactory(price_cents=7500), ProductFactory(price_cents=1250)
    order = make_order(products=[consult, kit], quantities=[1, 3])

    assert order.status == OrderStatus.PENDING
    assert order.number.startswith("ORD-") and len(order.number) == 10
    assert order.total_cents == 7500 + 3 * 1250
    invoice = Invoice.objects.get(order=order)
    assert invoice.status == InvoiceStatus.SENT
    assert invoice.amount_cents == order.total_cents
    assert invoice.number.startswith("INV-")


def test_numbers_are_unique_and_increasing():
    first, second = make_order(), make_order()
    assert int(second.number[4:]) == int(first.number[4:]) + 1
    assert first.invoice.number != second.invoice.number


def test_inactive_product_is_refused_and_nothing_is_written():
    retired = ProductFactory(active=False)
    with pytest.raises(InvalidInput) as refused:
        make_order(products=[retired])
    assert refused.value.code == "order.product_inactive"
    assert not Order.objects.exists() and not Invoice.objects.exists()


def test_refunded_order_refuses_every_change_through_the_service(staff_actor):
    order = _refunded_order()
    for target in services.STAFF_MOVES:
        with pytest.raises(InvalidTransition) as refused:
            services.change_status(order=order, target=target, actor=staff_actor, reason="retry")
        assert refused.value.code == "order.locked"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


def test_refunded_order_refuses_a_raw_save():
    order = _refunded_order()
    order.status = OrderStatus.PROCESSING
    with pytest.raises(InvalidTransition):
        order.save()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


def test_refunded_order_refuses_the_admin_action(cs_user, admin_client_for):
    order = _refunded_order()
    client = admin_client_for(cs_user)
    response = confirm_action(
        client,
        reverse("admin:orders_order_changelist"),
        {
            "action": "cancel_orders",
            "_selected_action": [order.pk],
            "confirm": "yes",
            "reason": "Patient asked to cancel",
        },
        follow=True,
    )
    page = response.content.decode()
    assert f"{order.number}: refused." in page and "locked" in page
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


def test_admin_action_cancels_through_the_service(cs_user, admin_client_for):
    order = make_order()
    client = admin_client_for(cs_user)
    confirm_page = client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "cancel_orders", "_selected_action": [order.pk]},
    )
    assert "reason" in confirm_page.content.decode()  # asks why before doing anything
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING

    confirm_action(
        client,
        reverse("admin:orders_order_changelist"),
        {
            "action": "cancel_orders",
            "_selected_action": [order.pk],
            "confirm": "yes",
            "reason": "Created by mistake",
        },
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    last = order.history.latest("history_id")
    assert (last.history_actor, last.history_door) == ("cs-agent", "admin")
    assert last.history_change_reason == "Created by mistake"


def test_refunded_is_not_a_staff_move(staff_actor):
    order = make_order()
    with pytest.raises(StateConflict) as refused:
        services.change_status(
            order=order, target=OrderStatus.REFUNDED, actor=staff_actor, reason="money back"
        )
    assert refused.value.code == "order.refund_required"


def test_in_progress_statuses_cannot_be_set_by_hand(staff_actor):
    order = make_order()
    with pytest.raises(InvalidInput) as refused:
        services.change_status(
            order=order, target=OrderStatus.PROCESSING, actor=staff_actor, reason="skip ahead"
        )
    assert refused.value.code == "order.not_a_staff_move"


def test_a_reason_is_required(staff_actor):
    order = make_order()
    with pytest.raises(InvalidInput):
        services.change_status(
            order=order, target=OrderStatus.CANCELLED, actor=staff_actor, reason=" "
        )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING


def test_cancelling_an_unpaid_order_closes_its_invoice_and_moves_no_money(staff_actor):
    order = make_order()
    services.change_status(
        order=order, target=OrderStatus.CANCELLED, actor=staff_actor, reason="Created by mistake"
    )
    invoice = Invoice.objects.get(order=order)
    assert invoice.status == InvoiceStatus.CANCELLED
    assert not invoice.payments.exists()


def test_cancelling_a_paid_order_leaves_the_paid_invoice_alone(staff_actor):
    order = make_order()
    Invoice.objects.filter(order=order).update(status=InvoiceStatus.PAID)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PROCESSING)
    services.change_status(
        order=order, target=OrderStatus.CANCELLED, actor=staff_actor, reason="Stop fulfilment"
    )
    assert Invoice.objects.get(order=order).status == InvoiceStatus.PAID


def test_every_status_change_writes_history_with_actor_and_reason(staff_actor):
    patient = PatientFactory()
    order = make_order(patient=patient)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PROCESSING)
    for target, reason in [
        (OrderStatus.SHIPPED, "Tracking 1Z received"),
        (OrderStatus.COMPLETED, "Delivered"),
        (OrderStatus.RETURNED, "Parcel came back"),
    ]:
        services.change_status(order=order, target=target, actor=staff_actor, reason=reason)

    rows = list(Order.history.filter(id=order.pk).order_by("history_id"))
    changes = [
        (row.status, row.history_actor, row.history_door, row.history_change_reason)
        for row in rows[-3:]
    ]
    assert changes == [
        ("SHIPPED", "cs-agent", "api", "Tracking 1Z received"),
        ("COMPLETED", "cs-agent", "api", "Delivered"),
        ("RETURNED", "cs-agent", "api", "Parcel came back"),
    ]
    assert all(row.history_user_id == staff_actor.user.pk for row in rows[-3:])
    order.refresh_from_db()
    assert order.shipped_at is not None and order.completed_at is not None
