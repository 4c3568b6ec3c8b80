"""/api/v1/workflow-events/ and /api/v1/workflows/."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from emr.workflows import dispatch
from emr.workflows.models import Workflow
from emr.workflows.outbox import emit
from tests.emr.workflows.helpers import make_workflow
from tests.factories import UserFactory, make_order

pytestmark = pytest.mark.django_db

RECOVERY = {
    "name": "Payment recovery",
    "trigger": "payment.failed",
    "steps": [
        {"kind": "wait", "config": {"hours": 24}},
        {
            "kind": "condition",
            "config": {
                "path": "order.status",
                "operator": "equals",
                "value": "AWAITING_PAYMENT",
                "reread": True,
            },
        },
        {
            "kind": "email",
            "config": {
                "subject": "Pay {{order.orderNumber}}",
                "body": "{{paymentRecovery.recoveryUrl}}",
            },
        },
    ],
}


def client_for(*permissions: str) -> APIClient:
    user = UserFactory()
    for code in permissions:
        app_label, codename = code.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def editor():
    return client_for(
        "workflows.view_workflow",
        "workflows.add_workflow",
        "workflows.change_workflow",
        "workflows.delete_workflow",
    )


def test_workflow_events_filtered_by_type_and_subject_with_dispatch_state():
    order, other = make_order(), make_order()
    refunded = emit("order.refunded", subject=order)
    emit("order.updated", subject=order)
    emit("order.refunded", subject=other)
    dispatch.dispatch_event(event_id=refunded.pk, enqueue_run=lambda run_id: None)

    response = client_for("workflows.view_workflowevent").get(
        "/api/v1/workflow-events/", {"type": "order.refunded", "subject": f"order:{order.pk}"}
    )

    assert response.status_code == 200
    [event] = response.json()["results"]
    assert event["id"] == refunded.pk
    assert event["type"] == "order.refunded"
    assert event["subject"] == f"order:{order.pk}"
    assert event["dispatch_status"] == "DISPATCHED"
    assert event["payload"]["order"]["orderNumber"] == order.number


def test_an_unknown_event_type_filter_is_a_400_not_an_empty_list():
    response = client_for("workflows.view_workflowevent").get(
        "/api/v1/workflow-events/", {"type": "order.refundd"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "workflow.unknown_event"


def test_create_read_update_delete_a_workflow(editor):
    created = editor.post("/api/v1/workflows/", RECOVERY, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["trigger"] == "payment.failed"
    assert [step["kind"] for step in body["steps"]] == ["wait", "condition", "email"]
    assert body["steps"][2]["config"]["to"] == "{{patient.email}}"  # default filled in
    assert body["signing_secret"]

    url = f"/api/v1/workflows/{body['id']}/"
    assert editor.patch(url, {"active": False}, format="json").json()["active"] is False
    assert editor.get(url).json()["steps"] == body["steps"]
    assert editor.delete(url).status_code == 204
    assert not Workflow.objects.exists()


def test_an_invalid_workflow_is_refused_with_its_code_and_nothing_is_saved(editor):
    bad = {**RECOVERY, "steps": [{"kind": "sms", "config": {"body": "Hi {{patient.nickname}}"}}]}
    response = editor.post("/api/v1/workflows/", bad, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "workflow.unknown_merge_tag"
    assert "{{patient.nickname}}" in response.json()["detail"]
    assert not Workflow.objects.exists()


def test_a_workflow_that_ran_cannot_be_deleted(editor):
    workflow = make_workflow("order.updated", ("sms", {"body": "x"}))
    event = emit("order.updated", subject=make_order())
    dispatch.dispatch_event(event_id=event.pk, enqueue_run=lambda run_id: None)

    response = editor.delete(f"/api/v1/workflows/{workflow.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "workflow.has_runs"


def test_test_with_sample_data_sends_nothing(editor, mailoutbox):
    workflow_id = editor.post("/api/v1/workflows/", RECOVERY, format="json").json()["id"]
    response = editor.post(f"/api/v1/workflows/{workflow_id}/test/")
    assert response.status_code == 200
    lines = response.json()
    assert [line["outcome"] for line in lines] == ["WAITING", "PASSED", "SENT"]
    assert lines[2]["detail"].startswith("would email alex.sample@example.test: Pay ORD-000001")
    assert mailoutbox == []


def test_the_catalogue_lists_events_and_their_fields(editor):
    events = {event["name"]: event for event in editor.get("/api/v1/workflows/catalogue/").json()}
    assert "paymentRecovery.recoveryUrl" in events["payment.failed"]["fields"]


def test_workflows_need_the_workflow_permissions():
    response = client_for().post("/api/v1/workflows/", RECOVERY, format="json")
    assert response.status_code == 403


def test_a_staff_account_without_the_role_reads_no_event_payloads():
    """Payloads carry the patient's email and phone: reading them is a role's, not any staff's."""
    response = client_for().get("/api/v1/workflow-events/")
    assert response.status_code == 403
    assert set(response.json()) == {"code", "detail"}
