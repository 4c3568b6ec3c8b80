"""Runs in this process: what each step does, what it logs, and what is never done twice."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from emr.workflows import dispatch, runner, sms
from emr.workflows.errors import RunNotRetryable
from emr.workflows.models import RunStatus, StepOutcome, WorkflowRun
from emr.workflows.outbox import emit
from emr.workflows.steps import workflow_actor
from orders.models import Order
from orders.states import OrderStatus
from tests.emr.workflows.helpers import RECOVERY_STEPS, TESTS, fail_charge, make_workflow, pay
from tests.factories import PatientFactory, make_order

pytestmark = pytest.mark.django_db


def outcomes(run: WorkflowRun) -> list[tuple[int, str]]:
    return [(log.step_number, log.outcome) for log in run.logs.order_by("id")]


def failed_payment_event():
    order = make_order()
    payment = fail_charge(order)
    return order, emit("payment.failed", subject=payment, actor=TESTS)


def test_each_matching_active_workflow_runs_once_per_event(run_event):
    recovery = make_workflow("payment.failed", *RECOVERY_STEPS)
    make_workflow("order.refunded", ("sms", {"body": "refunded"}), name="Other trigger")
    inactive = make_workflow("payment.failed", ("sms", {"body": "x"}), name="Off")
    inactive.active = False
    inactive.save()
    _, event = failed_payment_event()

    runs = run_event(event)
    redelivered = run_event(event)  # the same event dispatched again starts nothing

    assert [run.workflow for run in runs] == [recovery]
    assert redelivered == runs
    assert WorkflowRun.objects.count() == 1


def test_recovery_email_after_the_wait_when_the_order_is_still_unpaid(run_event, resume_due):
    make_workflow("payment.failed", *RECOVERY_STEPS)
    order, event = failed_payment_event()

    [run] = run_event(event)
    assert run.status == RunStatus.WAITING
    assert outcomes(run) == [(1, StepOutcome.PASSED), (2, StepOutcome.WAITING)]
    assert resume_due() == []  # not due yet

    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        assert resume_due() == [run.pk]

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert outcomes(run)[2:] == [(3, StepOutcome.PASSED), (4, StepOutcome.SENT)]
    sent = run.logs.get(outcome=StepOutcome.SENT)
    [message] = mail.outbox
    assert message.to == [order.patient.email]
    assert message.subject == f"Payment needed for {order.number}"
    assert f"Hi {order.patient.first_name}, pay $50.00 here: " in message.body
    assert f"/patient/invoices?recovery=1&invoice={order.invoice.number}" in message.body
    assert message.extra_headers["Message-ID"] == f"<{sent.idempotency_key}@clinic.example>"
    assert sent.idempotency_key == f"wf{run.workflow_id}-run{run.pk}-step4"


def test_no_recovery_email_when_the_order_was_paid_during_the_wait(run_event, resume_due):
    make_workflow("payment.failed", *RECOVERY_STEPS)
    order, event = failed_payment_event()
    [run] = run_event(event)

    pay(order)
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        resume_due()

    run.refresh_from_db()
    assert run.status == RunStatus.STOPPED
    skipped = run.logs.get(outcome=StepOutcome.SKIPPED)
    assert skipped.step_number == 3
    assert "latest payload" in skipped.detail and "PROCESSING" in skipped.detail
    assert run.payload["order"]["status"] == OrderStatus.PROCESSING  # what the re-read saw
    assert mail.outbox == []


def test_sms_with_merge_tags_through_the_backend():
    patient = PatientFactory(first_name="Sam", phone="+15555550123")
    order = make_order(patient=patient)
    make_workflow("order.updated", ("sms", {"body": "Hi {{patient.firstName}}: {{order.total}}"}))
    event = emit("order.updated", subject=order)
    _dispatch_and_advance(event)

    [message] = sms.outbox
    assert (message.to, message.body) == ("+15555550123", "Hi Sam: $50.00")
    assert message.idempotency_key.endswith("-step1")


def test_sms_without_a_phone_number_fails_the_run_with_a_reason():
    make_workflow("order.updated", ("sms", {"body": "hello"}))
    event = emit("order.updated", subject=make_order(patient=PatientFactory(phone="")))
    [run] = _dispatch_and_advance(event)
    assert run.status == RunStatus.FAILED
    assert "no phone number" in run.last_error


def test_status_update_goes_through_change_status_and_its_history():
    order = make_order()
    workflow = make_workflow(
        "order.updated", ("status_update", {"status": "CANCELLED", "reason": "Abandoned"})
    )
    [run] = _dispatch_and_advance(emit("order.updated", subject=order))

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert run.status == RunStatus.SUCCEEDED
    latest = order.history.latest()
    assert latest.history_actor == f"system:workflow:{workflow.pk}"
    assert latest.history_change_reason == "Abandoned"


def test_a_refused_status_update_is_the_step_failing_not_a_crash():
    order = make_order()
    make_workflow("order.updated", ("status_update", {"status": "SHIPPED"}))  # PENDING can't ship
    [run] = _dispatch_and_advance(emit("order.updated", subject=order))

    assert run.status == RunStatus.FAILED
    failure = run.logs.get(outcome=StepOutcome.FAILED)
    assert "order.invalid_transition" in failure.detail
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING


def test_webhook_is_signed_and_its_response_logged(receiver):
    workflow = make_workflow("order.updated", ("webhook", {"url": receiver.url}))
    receiver.secret = workflow.signing_secret
    order = make_order()
    [run] = _dispatch_and_advance(emit("order.updated", subject=order))

    assert run.status == RunStatus.SUCCEEDED
    [request] = receiver.requests
    assert receiver.signature_valid(request)
    assert request.headers["Idempotency-Key"] == f"wf{workflow.pk}-run{run.pk}-step1"
    body = json.loads(request.body)
    assert body["event"]["type"] == "order.updated"
    assert body["data"]["order"]["orderNumber"] == order.number
    sent = run.logs.get(outcome=StepOutcome.SENT)
    assert (sent.response_status, sent.response_body) == (200, "ok")


def test_a_webhook_whose_address_turned_private_is_not_sent(receiver, settings):
    """Checked again at send time: a name may resolve to a private address after the save."""
    make_workflow("order.updated", ("webhook", {"url": receiver.url}))
    settings.WORKFLOW_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    [run] = _dispatch_and_advance(emit("order.updated", subject=make_order()))

    assert run.status == RunStatus.FAILED
    assert receiver.requests == []
    failed = run.logs.get(outcome=StepOutcome.FAILED)
    assert "public hosts only" in failed.detail


def test_a_failing_receiver_is_retried_with_backoff_and_each_attempt_logged(
    receiver, resume_due, settings
):
    settings.WORKFLOW_RETRY_DELAYS = [10, 60]
    receiver.statuses = [500, 503, 500]
    make_workflow("order.updated", ("webhook", {"url": receiver.url}))
    [run] = _dispatch_and_advance(emit("order.updated", subject=make_order()))

    for _ in range(2):
        run.refresh_from_db()
        assert run.status == RunStatus.WAITING
        with time_machine.travel(run.due_at + timedelta(seconds=1)):
            resume_due()

    run.refresh_from_db()
    logs = list(run.logs.order_by("id"))
    assert [(log.attempt, log.outcome, log.response_status) for log in logs] == [
        (1, StepOutcome.RETRYING, 500),
        (2, StepOutcome.RETRYING, 503),
        (3, StepOutcome.FAILED, 500),
    ]
    backoffs = [(log.retry_at - log.finished_at).total_seconds() for log in logs[:2]]
    assert backoffs[0] == pytest.approx(10, abs=1) and backoffs[1] == pytest.approx(60, abs=1)
    assert run.status == RunStatus.FAILED
    assert "gave up after 3 attempts" in run.last_error
    assert len({request.headers["Idempotency-Key"] for request in receiver.requests}) == 1


def test_a_failed_run_is_retried_from_the_failed_step(receiver, settings):
    settings.WORKFLOW_RETRY_DELAYS = []
    receiver.statuses = [500]
    make_workflow(
        "order.updated",
        ("sms", {"body": "first", "to": "+15555550100"}),
        ("webhook", {"url": receiver.url}),
    )
    [run] = _dispatch_and_advance(emit("order.updated", subject=make_order()))
    assert (run.status, run.next_step) == (RunStatus.FAILED, 2)

    runner.retry_run(run=run, actor=TESTS, enqueue_run=lambda run_id: None)
    runner.advance_run(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert len(sms.outbox) == 1  # step 1 is not repeated
    assert outcomes(run)[-3:] == [
        (2, StepOutcome.FAILED),
        (2, StepOutcome.RETRY_REQUESTED),
        (2, StepOutcome.SENT),
    ]
    with pytest.raises(RunNotRetryable):
        runner.retry_run(run=run, actor=TESTS)


def test_an_attempt_interrupted_mid_send_is_sent_again_with_the_same_key(receiver, resume_due):
    make_workflow("order.updated", ("webhook", {"url": receiver.url}))
    event = emit("order.updated", subject=make_order())
    [run] = _dispatch_and_advance(event, advance=False)
    # A worker claimed the run and committed its STARTED log, then died before the answer.
    claimed = runner._claim(run.pk)
    run.logs.create(
        step_number=1,
        kind="webhook",
        attempt=1,
        outcome=StepOutcome.STARTED,
        idempotency_key=claimed.current_step_key,
    )
    claimed.attempt = 1
    claimed.lease_expires_at = timezone.now() - timedelta(seconds=1)
    claimed.save()

    assert resume_due() == [run.pk]

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert outcomes(run) == [(1, StepOutcome.INTERRUPTED), (1, StepOutcome.SENT)]
    key = f"wf{run.workflow_id}-run{run.pk}-step1"
    assert [request.headers["Idempotency-Key"] for request in receiver.requests] == [key]
    assert {log.idempotency_key for log in run.logs.all()} == {key}


def test_a_run_claimed_elsewhere_is_left_alone():
    make_workflow("order.updated", ("sms", {"body": "once", "to": "+15555550100"}))
    [run] = _dispatch_and_advance(emit("order.updated", subject=make_order()), advance=False)
    runner._claim(run.pk)  # another worker has it

    assert runner.advance_run(run_id=run.pk) is None  # a redelivered task
    assert sms.outbox == []


def test_editing_a_workflow_does_not_change_a_waiting_run(resume_due):
    workflow = make_workflow(
        "order.updated", ("wait", {"minutes": 5}), ("sms", {"body": "old", "to": "+15555550100"})
    )
    _dispatch_and_advance(emit("order.updated", subject=make_order()))
    step = workflow.steps.get(position=2)
    step.config = {"body": "new", "to": "+15555550100"}
    step.save()

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        resume_due()
    assert [message.body for message in sms.outbox] == ["old"]


def _dispatch_and_advance(event, *, advance=True) -> list[WorkflowRun]:

    dispatch.dispatch_event(event_id=event.pk, enqueue_run=lambda run_id: None)
    runs = list(WorkflowRun.objects.filter(event=event))
    if advance:
        for run in runs:
            runner.advance_run(run_id=run.pk)
    return [WorkflowRun.objects.get(pk=run.pk) for run in runs]


def test_a_workflow_is_not_triggered_by_its_own_changes(run_event):
    workflow = make_workflow("order.updated", ("sms", {"body": "x", "to": "+15555550100"}))
    own_change = emit("order.updated", subject=make_order(), actor=workflow_actor(workflow.pk))
    assert run_event(own_change) == []
