"""`/api/v1/escalations/`: the same service as the admin, refusals as {"code", "detail"}."""

import pytest
from rest_framework.test import APIClient

from emr.support.models import Escalation
from emr.support.states import EscalationRoute
from tests.emr.support.conftest import link_subscription
from tests.factories import make_order

pytestmark = pytest.mark.django_db

URL = "/api/v1/escalations/"


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_open_with_the_suggested_route_then_list_and_resolve(db, cs_user, billing_admin):
    order = make_order()
    message = "  The app refused: exact words.  "
    created = api_for(cs_user).post(
        URL,
        {"order": order.pk, "patient_reason": "Wants a refund", "message": message},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    # An unpaid order matches no checklist line: billing/admin decides on the refund policy.
    assert body["route"] == body["suggested_route"] == EscalationRoute.BILLING
    assert body["order_number"] == order.number
    assert body["packet"]["invoice_number"] == order.invoice.number
    assert "The app refused: exact words." in body["packet_text"].splitlines()

    listed = api_for(cs_user).get(URL, {"route": "BILLING", "status": "OPEN"}).json()
    assert [row["number"] for row in listed["results"]] == [body["number"]]
    assert api_for(cs_user).get(URL, {"route": "MEDICAL"}).json()["results"] == []

    resolve = f"{URL}{body['id']}/resolve/"
    refused = api_for(cs_user).post(resolve, {"note": "done"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    done = api_for(billing_admin).post(resolve, {"note": "Refunded by hand."}, format="json")
    assert done.status_code == 200
    assert done.json()["status"] == "RESOLVED"
    again = api_for(billing_admin).post(resolve, {"note": "again"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "escalation.already_resolved")


def test_open_from_a_subscription_with_a_chosen_route(db, cs_user):
    order = make_order()
    subscription = link_subscription(order)
    created = api_for(cs_user).post(
        URL,
        {"subscription": subscription.pk, "route": "MEDICAL", "patient_reason": "Cancelled?"},
        format="json",
    )
    assert created.status_code == 201
    assert Escalation.objects.get().route == EscalationRoute.MEDICAL


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"patient_reason": "x"}, "escalation.subject_required"),
        ({"order": 1, "subscription": 1, "patient_reason": "x"}, "escalation.subject_required"),
        ({"order": 1, "patient_reason": "x", "route": "LEGAL"}, "invalid"),
        ({"order": 1}, "invalid"),
    ],
)
def test_bad_input_answers_400(db, cs_user, payload, code):
    response = api_for(cs_user).post(URL, payload, format="json")
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert not Escalation.objects.exists()


def test_an_unknown_order_is_404_and_roles_are_enforced(db, cs_user, medical_ops, nobody):
    missing = api_for(cs_user).post(URL, {"order": 999999, "patient_reason": "x"}, format="json")
    assert missing.status_code == 404
    order = make_order()
    refused = api_for(medical_ops).post(URL, {"order": order.pk, "patient_reason": "x"})
    assert refused.status_code == 403
    assert api_for(nobody).get(URL).status_code == 403
    assert api_for(medical_ops).get(URL).status_code == 200
