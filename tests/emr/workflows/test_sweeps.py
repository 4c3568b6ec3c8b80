"""Two beats at once: work is claimed in the database, so each wait is resumed once and each
event dispatched once, whichever sweep gets there."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from emr.workflows import dispatch, runner
from emr.workflows.models import DispatchStatus, RunStatus, WorkflowEvent, WorkflowRun
from tests.emr.workflows.helpers import make_workflow
from tests.factories import make_order

pytestmark = pytest.mark.django_db(transaction=True)


def committed_event(**fields) -> WorkflowEvent:
    order = make_order()
    return WorkflowEvent.objects.create(
        event_type="order.updated", subject=order, subject_key=f"order:{order.pk}", **fields
    )


def waiting_runs(count: int) -> list[WorkflowRun]:
    workflow = make_workflow("order.updated", ("wait", {"minutes": 5}), ("sms", {"body": "x"}))
    runs = []
    for _ in range(count):
        event = committed_event(dispatch_status=DispatchStatus.DISPATCHED)
        runs.append(
            WorkflowRun.objects.create(
                workflow=workflow,
                event=event,
                steps=runner.snapshot_steps(workflow),
                status=RunStatus.WAITING,
                next_step=2,
                due_at=timezone.now() - timedelta(seconds=1),
            )
        )
    return runs


def in_thread(target, *args):
    """Run `target` on its own database connection, as a second beat process would."""
    result: dict = {}

    def work():
        try:
            result["value"] = target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, result


def test_a_sweep_skips_the_runs_another_sweep_holds():
    runs = waiting_runs(3)
    first_holds, second_done = threading.Event(), threading.Event()
    queued: list[int] = []

    def first_sweep():
        # Held open until the second sweep has run, so the two truly overlap.
        with transaction.atomic():
            claimed = runner.resume_due_runs(enqueue_run=queued.append)
            first_holds.set()
            second_done.wait(10)
        return claimed

    first, first_result = in_thread(first_sweep)
    assert first_holds.wait(10)
    second, second_result = in_thread(lambda: runner.resume_due_runs(enqueue_run=queued.append))
    second.join(10)
    second_done.set()
    first.join(10)

    assert sorted(first_result["value"]) == sorted(run.pk for run in runs)
    assert second_result["value"] == []
    assert sorted(queued) == sorted(run.pk for run in runs)
    assert set(WorkflowRun.objects.values_list("status", flat=True)) == {RunStatus.READY}


def test_sweeps_racing_freely_resume_every_wait_exactly_once():
    runs = waiting_runs(20)
    start = threading.Barrier(2)
    queued: list[int] = []

    def sweep():
        start.wait(10)
        return runner.resume_due_runs(enqueue_run=queued.append, limit=7)

    threads = [in_thread(sweep) for _ in range(2)]
    for thread, _ in threads:
        thread.join(10)
    while True:  # later beats pick up what the batch limit left
        more = runner.resume_due_runs(enqueue_run=queued.append, limit=7)
        if not more:
            break

    assert Counter(queued) == Counter({run.pk: 1 for run in runs})


def test_two_outbox_sweeps_dispatch_each_event_once():
    make_workflow("order.updated", ("sms", {"body": "x"}))
    events = [committed_event(occurred_at=timezone.now() - timedelta(minutes=5)) for _ in range(10)]
    start = threading.Barrier(2)

    def sweep():
        start.wait(10)
        return dispatch.dispatch_pending(enqueue_run=lambda run_id: None)

    threads = [in_thread(sweep) for _ in range(2)]
    for thread, _ in threads:
        thread.join(10)

    dispatched = [event_id for _, result in threads for event_id in result["value"]]
    assert Counter(dispatched) == Counter({event.pk: 1 for event in events})
    assert WorkflowRun.objects.count() == 10
    swept = WorkflowEvent.objects.filter(pk__in=[event.pk for event in events])
    assert set(swept.values_list("dispatch_attempts", flat=True)) == {1}
