"""One order from AWAITING_SCRIPT to SHIPPED through both fakes: Beluga's RX_WRITTEN, routing to
DispensePro, DispensePro's shipment webhook."""

import pytest
from django.test import Client

from emr.kernel.actors import Actor
from integrations.pharmacy import services
from integrations.pharmacy.models import ProductPharmacyRoute
from integrations.pharmacy.states import PharmacyType
from orders.models import Order
from orders.states import OrderStatus
from tests.fixtures.beluga import order_awaiting_script, submitted_visit

pytestmark = pytest.mark.django_db


def deliver(url, webhook):
    response = Client().post(
        url, webhook.body, content_type="application/json", headers=webhook.headers
    )
    assert response.status_code == 200, response.content
    return response


def status_of(order) -> str:
    return Order.objects.get(pk=order.pk).status


def test_from_prescription_to_shipment(
    beluga, dispensepro, celery_eager, django_capture_on_commit_callbacks
):
    order = order_awaiting_script()
    ProductPharmacyRoute.objects.create(
        product=order.items.get().product, pharmacy=PharmacyType.DISPENSE_PRO
    )
    visit = submitted_visit(order)

    rx = {"prescriptions": [{"medication": "Semaglutide 0.25 mg", "prescriber": "Dr. Lee"}]}
    with django_capture_on_commit_callbacks(execute=True):
        deliver("/webhooks/beluga/", beluga.event("RX_WRITTEN", visit.master_id, rx))
        assert status_of(order) == OrderStatus.AWAITING_FULFILLMENT
        # What the order-recalculation hook does on AWAITING_FULFILLMENT (a no-op once wired).
        pharmacy_order = services.route_order_if_needed(
            order=order, actor=Actor.system("order-recalculation")
        )
    pharmacy_order.refresh_from_db()
    assert pharmacy_order.status == "submitted"
    assert status_of(order) == OrderStatus.AWAITING_SHIPMENT

    deliver("/webhooks/dispensepro/", dispensepro.ship(pharmacy_order.external_id))
    assert status_of(order) == OrderStatus.SHIPPED
    statuses = (
        Order.history.filter(id=order.pk).order_by("history_id").values_list("status", flat=True)
    )
    moves = [status for i, status in enumerate(statuses) if i == 0 or statuses[i - 1] != status]
    assert moves[-4:] == [
        OrderStatus.AWAITING_SCRIPT,
        OrderStatus.AWAITING_FULFILLMENT,
        OrderStatus.AWAITING_SHIPMENT,
        OrderStatus.SHIPPED,
    ]
