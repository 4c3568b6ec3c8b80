"""With a real `celery worker` process against Redis: the outbox, waits, emails and webhooks end
to end, including a worker killed with SIGKILL in the middle of a step."""

from __future__ import annotations

import email
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.utils import timezone

from emr.workflows import runner
from emr.workflows.models import RunStatus, StepOutcome, WorkflowRun
from emr.workflows.outbox import emit
from orders.states import OrderStatus
from tests.emr.workflows.helpers import RECOVERY_STEPS, fail_charge, make_workflow, pay
from tests.factories import make_order

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DEADLINE_SECONDS = 30


@pytest.fixture
def celery_worker_env() -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": "tests.emr.workflows.worker_settings"}


def wait_until(condition: Callable[[], bool], *, worker, tick: Callable[[], object] | None = None):
    """Poll the database until `condition()` holds; `tick` plays beat between polls."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        if tick is not None:
            tick()
        time.sleep(0.05)
    raise AssertionError(f"not reached within {DEADLINE_SECONDS} s; worker log:\n{worker.log()}")


def beat() -> None:
    runner.resume_due_runs()


def runs_in(*statuses: str) -> Callable[[], bool]:
    return lambda: (
        WorkflowRun.objects.exclude(status__in=statuses).count() == 0
        and (WorkflowRun.objects.exists())
    )


def sent_emails(mail_dir: Path) -> list[email.message.Message]:
    """What Django's file-based backend wrote: messages separated by a line of dashes."""
    messages = []
    for path in sorted(mail_dir.iterdir()):
        for chunk in path.read_text().split("\n" + "-" * 79 + "\n"):
            if chunk.strip():
                messages.append(email.message_from_string(chunk))
    return messages


def test_recovery_email_once_and_none_when_paid_during_the_wait(celery_worker):
    make_workflow("payment.failed", *RECOVERY_STEPS)
    unpaid, paid_meanwhile = make_order(), make_order()
    fail_charge(unpaid)
    fail_charge(paid_meanwhile)  # each commit enqueues its payment.failed dispatch

    wait_until(
        lambda: WorkflowRun.objects.filter(status=RunStatus.WAITING).count() == 2,
        worker=celery_worker,
    )
    pay(paid_meanwhile)
    for run in WorkflowRun.objects.all():  # the 24 hours pass
        run.due_at = timezone.now()
        run.save(update_fields=["due_at"])
    wait_until(runs_in(RunStatus.SUCCEEDED, RunStatus.STOPPED), worker=celery_worker, tick=beat)

    [message] = sent_emails(celery_worker.mail_dir)
    assert message["To"] == unpaid.patient.email
    assert message["Subject"] == f"Payment needed for {unpaid.number}"
    assert f"invoice={unpaid.invoice.number}" in message.get_payload()
    stopped = WorkflowRun.objects.get(event__subject_key__startswith="payment:", status="STOPPED")
    assert stopped.payload["order"]["orderNumber"] == paid_meanwhile.number
    assert stopped.payload["order"]["status"] == OrderStatus.PROCESSING


def test_sigkill_mid_webhook_then_restart_does_each_side_effect_once(celery_worker, receiver):
    workflow = make_workflow(
        "order.updated",
        ("email", {"subject": "before {{order.orderNumber}}", "body": "one"}),
        ("webhook", {"url": receiver.url}),
        ("email", {"subject": "after {{order.orderNumber}}", "body": "two"}),
    )
    receiver.secret = workflow.signing_secret
    receiver.hold = True
    order = make_order()
    emit("order.updated", subject=order)

    assert receiver.holding.wait(DEADLINE_SECONDS), celery_worker.log()
    celery_worker.kill()  # inside the webhook step, the request in flight
    receiver.release()
    celery_worker.start()
    wait_until(runs_in(RunStatus.SUCCEEDED), worker=celery_worker, tick=beat)

    subjects = sorted(message["Subject"] for message in sent_emails(celery_worker.mail_dir))
    assert subjects == [f"after {order.number}", f"before {order.number}"]
    run = WorkflowRun.objects.get()
    key = f"wf{workflow.pk}-run{run.pk}-step2"
    assert [request.headers["Idempotency-Key"] for request in receiver.requests] == [key, key]
    assert receiver.applied == [key]  # delivered twice, applied once
    assert all(receiver.signature_valid(request) for request in receiver.requests)
    assert [(log.step_number, log.outcome) for log in run.logs.order_by("id")] == [
        (1, StepOutcome.SENT),
        (2, StepOutcome.INTERRUPTED),
        (2, StepOutcome.SENT),
        (3, StepOutcome.SENT),
    ]


def test_a_receiver_answering_500_is_retried_with_backoff_and_every_attempt_logged(
    celery_worker, receiver
):
    workflow = make_workflow("order.updated", ("webhook", {"url": receiver.url}))
    receiver.secret = workflow.signing_secret
    receiver.statuses = [500, 500]
    emit("order.updated", subject=make_order())

    wait_until(runs_in(RunStatus.SUCCEEDED), worker=celery_worker, tick=beat)

    logs = list(WorkflowRun.objects.get().logs.order_by("id"))
    assert [(log.attempt, log.outcome, log.response_status) for log in logs] == [
        (1, StepOutcome.RETRYING, 500),
        (2, StepOutcome.RETRYING, 500),
        (3, StepOutcome.SENT, 200),
    ]
    backoffs = [log.retry_at - log.finished_at for log in logs[:2]]
    assert backoffs[0] < backoffs[1]  # 0.5 s, then 1 s (tests/emr/workflows/worker_settings.py)
    assert len(receiver.requests) == 3
    assert all(receiver.signature_valid(request) for request in receiver.requests)
