"""The real worker keeps its PostgreSQL connection across tasks, and replaces it when the server
drops it (a failover, a restart, an administrator's pg_terminate_backend)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from emr.workflows.models import RunStatus, WorkflowRun
from emr.workflows.outbox import emit
from tests.emr.workflows.helpers import make_workflow
from tests.emr.workflows.test_worker import wait_until
from tests.factories import make_order

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BURST = 60
LISTENER = ("condition", {"path": "order.status", "operator": "exists"})


def own_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def other_sessions(*, besides: int | None = None) -> set[tuple[int, float]]:
    """(pid, start) of every session on the test database but this thread's own (and
    `besides`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, extract(epoch FROM backend_start) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
            [besides or 0],
        )
        return {(pid, float(start)) for pid, start in cursor.fetchall()}


def succeeded(count: int):
    return lambda: WorkflowRun.objects.filter(status=RunStatus.SUCCEEDED).count() >= count


class SessionSampler(threading.Thread):
    """Every session it sees on the test database while it runs (a new connection per task
    shows up as a stream of new pids)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.test_pid = own_pid()  # the test's session, seen from this thread's own
        self.seen: set[tuple[int, float]] = set()
        self.done = threading.Event()

    def run(self) -> None:
        from django.db import connections

        try:
            while not self.done.is_set():
                self.seen |= other_sessions(besides=self.test_pid)
                time.sleep(0.002)
        finally:
            connections.close_all()

    def stop(self) -> set[tuple[int, float]]:
        self.done.set()
        self.join(timeout=10)
        return self.seen


def test_a_burst_of_events_reuses_the_workers_connection(celery_worker):
    make_workflow("order.updated", LISTENER)
    order = make_order()  # its order.created triggers nothing
    emit("order.updated", subject=order)
    wait_until(succeeded(1), worker=celery_worker)
    before = other_sessions()
    assert len(before) == 1, before  # the worker's one connection, kept after its task

    sampler = SessionSampler()
    sampler.start()
    for _ in range(BURST):
        emit("order.updated", subject=order)  # each its own transaction (autocommit)
    wait_until(succeeded(BURST + 1), worker=celery_worker)
    seen = sampler.stop()

    # One session per task would show dozens of new pids here (two tasks per event before).
    assert seen - before == set()
    assert before <= other_sessions()  # still the same session after the burst


def test_a_terminated_backend_is_replaced_and_the_next_task_succeeds(celery_worker):
    make_workflow("order.updated", LISTENER)
    order = make_order()
    emit("order.updated", subject=order)
    wait_until(succeeded(1), worker=celery_worker)
    [(worker_pid, _)] = other_sessions()

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [worker_pid])
        assert cursor.fetchone() == (True,)
    wait_until(lambda: not other_sessions(), worker=celery_worker)

    emit("order.updated", subject=order)
    wait_until(succeeded(2), worker=celery_worker)
    [(new_pid, _)] = other_sessions()
    assert new_pid != worker_pid
    assert "Traceback" not in celery_worker.log()


def test_a_restarted_worker_delivers_with_a_new_connection(celery_worker):
    make_workflow("order.updated", LISTENER)
    order = make_order()
    emit("order.updated", subject=order)
    wait_until(succeeded(1), worker=celery_worker)

    celery_worker.stop()
    wait_until(lambda: not other_sessions(), worker=celery_worker)
    emit("order.updated", subject=order)  # queued while no worker runs
    celery_worker.start()

    wait_until(succeeded(2), worker=celery_worker)
    assert len(other_sessions()) == 1
