"""The admin: steps are checked against the trigger on save; a failed run is retried from its
failed step; a workflow is tested with sample data without sending anything."""

import pytest
from django.contrib.auth.models import User

from emr.workflows import dispatch, runner, sms
from emr.workflows.models import RunStatus, Workflow, WorkflowRun
from emr.workflows.outbox import emit
from tests.emr.workflows.helpers import make_workflow
from tests.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", "root@clinic.test", "pw-12345678"))
    return client


def workflow_form(**steps_config) -> dict:
    data = {
        "name": "Welcome",
        "trigger": "order.created",
        "active": "on",
        "description": "",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-position": "1",
        "steps-0-kind": "sms",
        "steps-0-config": '{"body": "Hi {{patient.firstName}}"}',
    }
    data.update(steps_config)
    return data


def test_a_valid_workflow_is_saved(admin_client):
    response = admin_client.post("/admin/workflows/workflow/add/", workflow_form())
    assert response.status_code == 302
    assert Workflow.objects.get().steps.get().config == {"body": "Hi {{patient.firstName}}"}


def test_a_merge_tag_that_does_not_resolve_is_refused_on_the_page(admin_client):
    form = workflow_form(**{"steps-0-config": '{"body": "Hi {{patient.frstName}}"}'})
    response = admin_client.post("/admin/workflows/workflow/add/", form)
    assert response.status_code == 200
    assert "the merge tag {{patient.frstName}} is not a field of order.created" in (
        response.content.decode()
    )
    assert not Workflow.objects.exists()


def test_test_with_sample_data_action(admin_client):
    workflow = make_workflow("order.created", ("sms", {"body": "Hi {{patient.firstName}}"}))
    response = admin_client.post(
        "/admin/workflows/workflow/",
        {"action": "test_with_sample_data", "_selected_action": [workflow.pk]},
        follow=True,
    )
    assert "would text +15555550100: Hi Alex" in response.content.decode()
    assert sms.outbox == []


def test_retry_a_failed_run_from_the_admin(admin_client, django_capture_on_commit_callbacks):
    make_workflow("order.updated", ("sms", {"body": "x"}))  # the patient has no phone: fails
    event = emit("order.updated", subject=make_order())
    dispatch.dispatch_event(event_id=event.pk, enqueue_run=lambda run_id: None)
    run = WorkflowRun.objects.get()
    runner.advance_run(run_id=run.pk)

    with django_capture_on_commit_callbacks() as enqueued:
        admin_client.post(
            "/admin/workflows/workflowrun/",
            {"action": "retry_failed_runs", "_selected_action": [run.pk]},
        )
    run.refresh_from_db()
    assert run.status == RunStatus.READY
    assert len(enqueued) == 1
    page = admin_client.get(f"/admin/workflows/workflowrun/{run.pk}/change/").content.decode()
    assert "Retried from step 1 by root" in page


def test_the_workflow_pages_render(admin_client):
    workflow = make_workflow("order.updated", ("sms", {"body": "x"}))
    event = emit("order.updated", subject=make_order())
    dispatch.dispatch_event(event_id=event.pk, enqueue_run=lambda run_id: None)
    run = WorkflowRun.objects.get()
    pages = [
        "/admin/workflows/workflow/",
        "/admin/workflows/workflow/add/",
        f"/admin/workflows/workflow/{workflow.pk}/change/",
        "/admin/workflows/workflowrun/",
        f"/admin/workflows/workflowrun/{run.pk}/change/",
        "/admin/workflows/workflowevent/?event_type=order.updated",
        f"/admin/workflows/workflowevent/{event.pk}/change/",
    ]
    for page in pages:
        assert admin_client.get(page).status_code == 200, page
    fields = admin_client.get(f"/admin/workflows/workflow/{workflow.pk}/change/").content
    assert b"paymentRecovery.recoveryUrl" in fields  # the trigger's fields, for merge tags
