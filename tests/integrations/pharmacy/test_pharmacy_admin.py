"""The admin: pharmacy orders are read-only; "Void pharmacy order…" and "Record what the
pharmacy said…" call the services and show their refusals."""

import pytest

from integrations.pharmacy.models import FulfilmentCheck, PharmacyOrder
from integrations.pharmacy.states import PharmacyType
from tests.admin_tools import confirm_action
from tests.fixtures.dispensepro import order_at_pharmacy

pytestmark = pytest.mark.django_db

URL = "/admin/pharmacy/pharmacyorder/"


@pytest.fixture
def staff_client(cs_user, grant, admin_client_for):
    grant(
        cs_user,
        "pharmacy.view_pharmacyorder",
        "pharmacy.void_pharmacyorder",
        "pharmacy.record_fulfilment_check",
    )
    return admin_client_for(cs_user)


def run_action(client, action, objects, reason="Patient cancelled", **extra):
    return confirm_action(
        client,
        URL,
        {
            "action": action,
            "_selected_action": [obj.pk for obj in objects],
            "confirm": "yes",
            "reason": reason,
            **extra,
        },
        follow=True,
    )


def test_pages_render_and_are_read_only(staff_client, dispensepro):
    pharmacy_order = order_at_pharmacy(PharmacyType.DISPENSE_PRO)

    assert staff_client.get(URL, {"q": pharmacy_order.order.number}).status_code == 200
    page = staff_client.get(f"{URL}{pharmacy_order.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def test_void_from_the_list_and_the_manual_answer_for_other_pharmacies(staff_client, dispensepro):
    dispensepro_order = order_at_pharmacy(PharmacyType.DISPENSE_PRO)
    own_order = order_at_pharmacy(PharmacyType.OWN)

    response = run_action(staff_client, "void_pharmacy_order", [dispensepro_order, own_order])

    assert PharmacyOrder.objects.get(pk=dispensepro_order.pk).status == "voided"
    assert PharmacyOrder.objects.get(pk=own_order.pk).status == "submitted"
    assert b"verify the fulfilment state" in response.content.replace(b"Verify", b"verify")
    assert (
        f"{dispensepro_order.reference} ({dispensepro_order.order}) is voided at DispensePro. "
        "This is not a refund, and the order&#x27;s status did not change."
    ) in response.content.decode()


def test_record_what_the_pharmacy_said(staff_client, dispensepro):
    pharmacy_order = order_at_pharmacy(PharmacyType.BELMAR_LIFEFILE)

    response = run_action(
        staff_client,
        "record_fulfilment_check",
        [pharmacy_order],
        reason="Belmar: cancelled before compounding",
        target="NOT_SHIPPED_CANCELLED",
    )

    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == "cancelled"
    assert (
        f"{pharmacy_order.reference} ({pharmacy_order.order}): recorded “Not shipped: the "
        "pharmacy cancelled it”. Its status is now “Cancelled at the pharmacy"
    ) in response.content.decode()
    assert FulfilmentCheck.objects.get().note == "Belmar: cancelled before compounding"
