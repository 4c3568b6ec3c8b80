"""The staff API for Beluga visits: POST /api/v1/beluga-visits/{id}/cancel/ and the reads."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from integrations.beluga.models import BelugaVisit
from integrations.beluga.states import VisitStatus
from orders.states import OrderStatus
from tests.fixtures.beluga import order_awaiting_script, snapshot, submitted_visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def visit(beluga):
    return submitted_visit(order_awaiting_script(with_subscription=True))


@pytest.fixture
def api(api, cs_user, grant):
    grant(cs_user, "beluga.cancel_belugavisit", "beluga.submit_belugavisit")
    return api


def cancel_url(visit):
    return f"/api/v1/beluga-visits/{visit.pk}/cancel/"


def test_cancel_answers_the_cancelled_visit_and_nothing_else_changes(api, visit, beluga):
    around = snapshot(visit.order, visit.order.invoice, visit.order.subscription)

    response = api.post(cancel_url(visit), {"reason": "Patient asked"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["resolved_status"], body["cancellable"]) == (
        "canceled",
        "closed",
        False,
    )
    assert body["order_number"] == visit.order.number
    assert beluga.visits()[visit.master_id]["visitStatus"] == "canceled"
    assert snapshot(visit.order, visit.order.invoice, visit.order.subscription) == around
    assert visit.order.status == OrderStatus.AWAITING_SCRIPT
    assert visit.history.latest("history_id").history_door == "api"


def test_beluga_failure_is_a_502_with_its_message(api, visit, beluga):
    beluga.inject("error_in_body", on="cancel", message="Visit locked by physician")

    response = api.post(cancel_url(visit), {"reason": "Patient asked"}, format="json")

    assert response.status_code == 502
    assert response.json()["code"] == "beluga.error"
    assert "Visit locked by physician" in response.json()["detail"]
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING


def test_cancelling_again_is_a_409(api, visit):
    api.post(cancel_url(visit), {"reason": "Patient asked"}, format="json")

    response = api.post(cancel_url(visit), {"reason": "again"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "beluga.already_cancelled"


@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "x" * 501}])
def test_a_reason_is_required(api, visit, beluga, payload):
    response = api.post(cancel_url(visit), payload, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert len(beluga.requests()) == 1  # the submission only


def test_cancelling_needs_the_permission(visit):
    client = APIClient()
    client.force_authenticate(User.objects.create(username="viewer", is_staff=True))

    response = client.post(cancel_url(visit), {"reason": "Patient asked"}, format="json")

    assert response.status_code == 403
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING


def test_read_visits_by_order_and_their_logs(api, visit):
    other = submitted_visit(order_awaiting_script())

    listed = api.get("/api/v1/beluga-visits/", {"order": visit.order_id}).json()["results"]
    logs = api.get("/api/v1/beluga-logs/", {"visit": visit.pk}).json()["results"]

    assert [row["id"] for row in listed] == [visit.pk]
    assert listed[0]["cancellable"] is True
    assert [row["operation"] for row in logs] == ["submit_visit"]
    assert other.pk not in {row["visit"] for row in logs}
    assert api.get("/api/v1/beluga-visits/", {"order": "abc"}).status_code == 400


def test_retry_submission_endpoint(api, beluga):
    from emr.kernel.actors import Actor
    from integrations.beluga import services

    visit = services.submit_visit_if_needed(
        order=order_awaiting_script(), actor=Actor.system("tests")
    )

    response = api.post(
        f"/api/v1/beluga-visits/{visit.pk}/retry-submission/", {"reason": "retry"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["submit_status"] == "SUBMITTED"
