"""The staff API for pharmacy orders: POST /api/v1/pharmacy-orders/{id}/void/ and friends."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from emr.kernel.actors import Actor
from integrations.pharmacy import services
from integrations.pharmacy.models import PharmacyOrder
from integrations.pharmacy.states import ALREADY_SHIPPED, PharmacyType
from tests.fixtures.beluga import order_awaiting_script, snapshot, write_prescription
from tests.fixtures.dispensepro import order_at_pharmacy

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api, cs_user, grant):
    grant(
        cs_user,
        "pharmacy.void_pharmacyorder",
        "pharmacy.submit_pharmacyorder",
        "pharmacy.record_fulfilment_check",
    )
    return api


@pytest.fixture
def pharmacy_order(dispensepro):
    return order_at_pharmacy(PharmacyType.DISPENSE_PRO)


def void(api, pharmacy_order, reason="Patient cancelled"):
    return api.post(
        f"/api/v1/pharmacy-orders/{pharmacy_order.pk}/void/", {"reason": reason}, format="json"
    )


def test_void_answers_voided_and_nothing_else_changes(api, pharmacy_order):
    order = pharmacy_order.order
    before = snapshot(order, order.invoice, order.subscription)

    response = void(api, pharmacy_order)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["pharmacy"]) == ("voided", "DISPENSE_PRO")
    assert body["cancellation"]["how"] == "void"
    assert snapshot(order, order.invoice, order.subscription) == before


def test_void_after_shipment_is_a_409_with_the_guides_sentence(api, pharmacy_order, dispensepro):
    services.record_shipment(
        pharmacy_order=pharmacy_order, actor=Actor.system("tests"), reason="Shipped"
    )

    response = void(api, pharmacy_order)

    assert response.status_code == 409
    assert response.json() == {"code": "pharmacy.already_shipped", "detail": ALREADY_SHIPPED}


def test_voiding_a_manual_pharmacy_order_says_to_verify_with_the_pharmacy(api, dispensepro):
    pharmacy_order = order_at_pharmacy(PharmacyType.OWN)

    response = void(api, pharmacy_order)

    assert response.status_code == 409
    assert response.json()["code"] == "pharmacy.manual_verification_required"
    read = api.get(f"/api/v1/pharmacy-orders/{pharmacy_order.pk}/").json()
    assert read["cancellation"]["how"] == "verify_with_pharmacy"
    assert read["cancellation"]["detail"] == response.json()["detail"]


def test_dispensepro_failure_is_a_502(api, pharmacy_order, dispensepro):
    dispensepro.inject("http_error", on="void")

    response = void(api, pharmacy_order)

    assert response.status_code == 502
    assert response.json()["code"] == "pharmacy.error"
    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == "submitted"


def test_void_needs_a_reason_and_the_permission(api, pharmacy_order):
    assert void(api, pharmacy_order, reason="").status_code == 400

    client = APIClient()
    client.force_authenticate(User.objects.create(username="staff-without-void", is_staff=True))
    response = client.post(
        f"/api/v1/pharmacy-orders/{pharmacy_order.pk}/void/", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == "submitted"


def test_record_a_fulfilment_check(api, dispensepro):
    pharmacy_order = order_at_pharmacy(PharmacyType.BELMAR_LIFEFILE)

    response = api.post(
        f"/api/v1/pharmacy-orders/{pharmacy_order.pk}/fulfilment-checks/",
        {"finding": "NOT_SHIPPED_CANCELLED", "note": "Belmar confirmed by phone"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["checked_by"] == "cs-agent"
    read = api.get("/api/v1/pharmacy-orders/", {"order": pharmacy_order.order_id}).json()
    (row,) = read["results"]
    assert row["status"] == "cancelled"
    assert row["fulfilment_checks"][0]["finding"] == "NOT_SHIPPED_CANCELLED"


def test_send_records_a_manual_pharmacy_as_sent(api, dispensepro):
    order = order_awaiting_script()
    write_prescription(order)
    pharmacy_order = services.route_order_if_needed(order=order, actor=Actor.system("tests"))

    response = api.post(
        f"/api/v1/pharmacy-orders/{pharmacy_order.pk}/send/",
        {"reason": "Handed over"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "submitted"
