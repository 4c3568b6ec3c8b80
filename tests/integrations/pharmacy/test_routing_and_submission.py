"""Routing an order to its product's default pharmacy once the prescription is confirmed, and
sending it: DispensePro through its API, the others recorded by staff. Either way the order
moves to AWAITING_SHIPMENT."""

import pytest

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from integrations.pharmacy import services
from integrations.pharmacy.models import PharmacyOrder, ProductPharmacyRoute
from integrations.pharmacy.states import PharmacyOrderStatus, PharmacyType
from orders.models import Order
from orders.services import change_status
from orders.states import OrderStatus
from tests.fixtures.beluga import order_awaiting_script, write_prescription

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("order-recalculation")


@pytest.fixture
def staff(cs_user):
    return Actor.staff(cs_user, door=Door.ADMIN)


def prescribed_order(pharmacy: PharmacyType | None = None) -> Order:
    order = order_awaiting_script()
    if pharmacy is not None:
        ProductPharmacyRoute.objects.create(product=order.items.get().product, pharmacy=pharmacy)
    write_prescription(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_FULFILLMENT
    return order


def test_an_order_goes_to_its_products_pharmacy_or_the_own_one():
    routed = services.route_order_if_needed(
        order=prescribed_order(PharmacyType.BELMAR_LIFEFILE), actor=SYSTEM
    )
    default = services.route_order_if_needed(order=prescribed_order(), actor=SYSTEM)

    assert (routed.pharmacy, routed.status) == (PharmacyType.BELMAR_LIFEFILE, "pending")
    assert default.pharmacy == PharmacyType.OWN
    assert routed.reference.startswith(routed.order.number)


def test_routing_waits_for_the_prescription_and_happens_once():
    with pytest.raises(DomainError) as refused:
        services.route_order_if_needed(order=order_awaiting_script(), actor=SYSTEM)
    assert refused.value.code == "pharmacy.prescription_required"

    order = prescribed_order()
    first = services.route_order_if_needed(order=order, actor=SYSTEM)
    assert services.route_order_if_needed(order=order, actor=SYSTEM) == first
    assert PharmacyOrder.objects.count() == 1


def test_dispensepro_orders_are_sent_after_commit_and_the_order_awaits_shipment(
    dispensepro, celery_eager, django_capture_on_commit_callbacks
):
    # Everything the prescription sets off runs after this block "commits".
    with django_capture_on_commit_callbacks(execute=True):
        order = prescribed_order(PharmacyType.DISPENSE_PRO)
        pharmacy_order = services.route_order_if_needed(order=order, actor=SYSTEM)
        assert dispensepro.requests() == []

    pharmacy_order.refresh_from_db()
    order.refresh_from_db()
    assert pharmacy_order.status == PharmacyOrderStatus.SUBMITTED
    assert pharmacy_order.external_id in dispensepro.orders()
    assert order.sent_to_pharmacy_at is not None
    assert order.status == OrderStatus.AWAITING_SHIPMENT
    sent = dispensepro.requests()[0]["body"]
    assert sent["reference"] == pharmacy_order.reference
    assert sent["items"] == [{"medication": "Semaglutide 0.25 mg", "quantity": 1}]
    last = order.history.latest("history_id")
    assert last.history_actor == "system:dispensepro-submission"


def test_a_failed_submission_is_recorded_and_retried_once_at_dispensepro(dispensepro, staff):
    order = prescribed_order(PharmacyType.DISPENSE_PRO)
    pharmacy_order = services.route_order_if_needed(order=order, actor=SYSTEM)
    dispensepro.inject("drop", on="submit")  # DispensePro took it; we never heard back

    with pytest.raises(DomainError) as failed:
        services.send_to_dispensepro(pharmacy_order=pharmacy_order, actor=SYSTEM)

    pharmacy_order.refresh_from_db()
    assert failed.value.code == "pharmacy.timeout"
    assert (pharmacy_order.status, pharmacy_order.submit_attempts) == ("failed", 1)
    assert "closed the connection" in pharmacy_order.last_error
    assert Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_FULFILLMENT

    services.send_to_dispensepro(pharmacy_order=pharmacy_order, actor=staff, reason="Retry")

    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == "submitted"
    assert len(dispensepro.orders()) == 1  # the retry found the same order
    assert Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_SHIPMENT


def test_not_configured_is_recorded_as_a_failure(settings):
    settings.DISPENSEPRO_API_URL = ""
    pharmacy_order = services.route_order_if_needed(
        order=prescribed_order(PharmacyType.DISPENSE_PRO), actor=SYSTEM
    )

    with pytest.raises(DomainError) as failed:
        services.send_to_dispensepro(pharmacy_order=pharmacy_order, actor=SYSTEM)

    assert failed.value.code == "pharmacy.not_configured"
    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == "failed"


def test_a_closed_order_is_not_sent(dispensepro, staff):
    order = prescribed_order(PharmacyType.DISPENSE_PRO)
    pharmacy_order = services.route_order_if_needed(order=order, actor=SYSTEM)
    change_status(order=order, target=OrderStatus.CANCELLED, actor=staff, reason="Patient left")

    with pytest.raises(DomainError) as refused:
        services.send_to_dispensepro(pharmacy_order=pharmacy_order, actor=SYSTEM)

    assert refused.value.code == "pharmacy.order_closed"
    assert dispensepro.requests() == []
    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == "pending"


def test_staff_record_sending_to_a_pharmacy_without_an_api(staff, dispensepro):
    order = prescribed_order(PharmacyType.BELMAR_LIFEFILE)
    pharmacy_order = services.route_order_if_needed(order=order, actor=SYSTEM)

    services.record_sent_manually(
        pharmacy_order=pharmacy_order, actor=staff, reason="Faxed to Belmar"
    )

    order.refresh_from_db()
    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == "submitted"
    assert order.status == OrderStatus.AWAITING_SHIPMENT
    assert order.history.latest("history_id").history_change_reason == "Faxed to Belmar"
    assert dispensepro.requests() == []
    with pytest.raises(DomainError) as refused:
        services.send_to_dispensepro(pharmacy_order=pharmacy_order, actor=staff)
    assert refused.value.code == "pharmacy.manual_submission"
