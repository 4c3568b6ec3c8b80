"""The admin: Beluga visits and logs are read-only. "Cancel visit…", from the visit list, the
visit's page and the Beluga logs, opens the order page's tool: the guide's checklist (payment,
prescription, fulfilment, subscription), a reason, then the service."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from integrations.beluga.models import BelugaLog, BelugaVisit
from integrations.beluga.states import VisitStatus
from tests.admin_tools import confirm_tool
from tests.fixtures.beluga import order_awaiting_script, submitted_visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(cs_user, grant, admin_client_for):
    grant(
        cs_user,
        "beluga.view_belugavisit",
        "beluga.view_belugalog",
        "beluga.cancel_belugavisit",
    )
    return admin_client_for(cs_user)


@pytest.fixture
def visit(beluga):
    return submitted_visit(order_awaiting_script())


def cancel_url(visit) -> str:
    return reverse("admin:orders_order_tool", args=[visit.order_id, "cancel_visit"])


def test_pages_render_and_are_read_only(staff_client, visit):
    assert staff_client.get("/admin/beluga/belugavisit/").status_code == 200
    page = staff_client.get(f"/admin/beluga/belugavisit/{visit.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert staff_client.get("/admin/beluga/belugalog/").status_code == 200


def test_every_page_leads_to_the_one_cancellation_with_its_checklist(staff_client, visit):
    link = f'href="{cancel_url(visit)}"'
    assert link in staff_client.get("/admin/beluga/belugavisit/").content.decode()
    visit_page = staff_client.get(f"/admin/beluga/belugavisit/{visit.pk}/change/")
    assert link in visit_page.content.decode()
    assert link in staff_client.get("/admin/beluga/belugalog/").content.decode()

    confirm = staff_client.get(cancel_url(visit)).content.decode()

    assert f"Before you cancel the Beluga visit of {visit.order}" in confirm
    for label in ("Payment", "Prescription", "Pharmacy fulfilment", "Subscription"):
        assert f"<td>{label}</td>" in confirm
    assert "escalate before cancelling the visit" in confirm
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING


def test_cancel_through_the_tool(staff_client, visit, beluga):
    response = confirm_tool(
        staff_client, cancel_url(visit), {"reason": "Patient asked"}, follow=True
    )

    assert response.status_code == 200
    assert (
        f"Beluga visit {visit.master_id} of {visit.order} is cancelled. The order, its payment "
        "and the subscription did not change."
    ) in response.content.decode()
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.CANCELED
    assert beluga.visits()[visit.master_id]["visitStatus"] == "canceled"
    assert BelugaLog.objects.filter(visit=visit, operation="cancel_visit").exists()


def test_a_cancelled_visit_offers_no_cancellation(staff_client, visit, beluga):
    confirm_tool(staff_client, cancel_url(visit), {"reason": "Patient asked"})
    assert "cancel-visit" not in staff_client.get("/admin/beluga/belugavisit/").content.decode()


def test_a_refusal_is_shown_on_the_page(staff_client, visit, beluga):
    beluga.inject("error_in_body", on="cancel", message="Visit locked by physician")

    response = confirm_tool(
        staff_client, cancel_url(visit), {"reason": "Patient asked"}, follow=True
    )

    assert b"Refused" in response.content
    assert b"Visit locked by physician" in response.content
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING


def test_the_cancellation_needs_the_permission(grant, admin_client_for, visit):
    viewer = grant(
        User.objects.create(username="viewer", is_staff=True),
        "beluga.view_belugavisit",
        "orders.view_order",
    )
    client = admin_client_for(viewer)

    response = confirm_tool(client, cancel_url(visit), {"reason": "Patient asked"}, follow=True)

    assert b"Your role does not allow this" in response.content
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING
