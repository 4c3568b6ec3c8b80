"""The admin: Beluga visits and logs are read-only; "Cancel Beluga visit…" calls the service,
from the visit list and from the Beluga logs."""

import pytest
from django.contrib.auth.models import User

from integrations.beluga.models import BelugaLog, BelugaVisit
from integrations.beluga.states import VisitStatus
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


def run_action(client, url, action, objects, reason="Patient asked"):
    return client.post(
        url,
        {
            "action": action,
            "_selected_action": [obj.pk for obj in objects],
            "confirm": "yes",
            "reason": reason,
        },
        follow=True,
    )


def test_pages_render_and_are_read_only(staff_client, visit):
    assert staff_client.get("/admin/beluga/belugavisit/").status_code == 200
    page = staff_client.get(f"/admin/beluga/belugavisit/{visit.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert staff_client.get("/admin/beluga/belugalog/").status_code == 200


def test_cancel_from_the_visit_list(staff_client, visit, beluga):
    response = run_action(
        staff_client, "/admin/beluga/belugavisit/", "cancel_beluga_visit", [visit]
    )

    assert response.status_code == 200
    assert b"done." in response.content
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.CANCELED
    assert beluga.visits()[visit.master_id]["visitStatus"] == "canceled"


def test_cancel_from_the_beluga_logs(staff_client, visit):
    log = BelugaLog.objects.get(visit=visit)

    run_action(staff_client, "/admin/beluga/belugalog/", "cancel_logged_beluga_visit", [log])

    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.CANCELED


def test_a_refusal_is_shown_on_the_page(staff_client, visit, beluga):
    beluga.inject("error_in_body", on="cancel", message="Visit locked by physician")

    response = run_action(
        staff_client, "/admin/beluga/belugavisit/", "cancel_beluga_visit", [visit]
    )

    assert b"refused" in response.content
    assert b"Visit locked by physician" in response.content
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING


def test_the_action_needs_the_permission(grant, admin_client_for, visit):
    viewer = grant(User.objects.create(username="viewer", is_staff=True), "beluga.view_belugavisit")
    client = admin_client_for(viewer)

    response = run_action(client, "/admin/beluga/belugavisit/", "cancel_beluga_visit", [visit])

    assert b"Your role does not allow this action" in response.content
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING
