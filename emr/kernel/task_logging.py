"""One JSON line, a counter and a duration per Celery task, under the request id of whatever
queued it.

Publishing copies the current request id into the message's headers (`before_task_publish`,
in the publishing process: web, worker or beat); the worker binds it while the task runs
(`task_prerun` … `task_postrun`), so the task's own log lines, the gateway calls it makes and the
tasks it queues carry it too. A task queued with no request around it (a beat tick) is its own
story: its task id is the request id. These are Celery's signals, wired once by emr/celery.py:
infrastructure, not business reactions.
"""

import logging
import time
from contextvars import Token

from celery import signals

from emr.kernel import metrics, request_id

logger = logging.getLogger("emr.tasks")

HEADER = "request_id"

# task id -> (the contextvar token to reset, when it started); one entry per running task.
_running: dict[str, tuple[Token, float]] = {}


def connect() -> None:
    signals.before_task_publish.connect(_stamp, weak=False, dispatch_uid="emr.request_id")
    signals.task_prerun.connect(_started, weak=False, dispatch_uid="emr.task_started")
    signals.task_postrun.connect(_finished, weak=False, dispatch_uid="emr.task_finished")


def _stamp(headers=None, **_):
    current = request_id.current()
    if headers is not None and current:
        headers[HEADER] = current


def _started(task_id=None, task=None, **_):
    given = getattr(task.request, HEADER, None) or (task.request.headers or {}).get(HEADER)
    # No header: an eager task runs inside its caller's request; a beat tick's task is its own.
    token = request_id.enter(request_id.accept(given) if given else request_id.current() or task_id)
    _running[task_id] = (token, time.perf_counter())


def _finished(task_id=None, task=None, state=None, **_):
    token, started = _running.pop(task_id, (None, None))
    if token is None:
        return
    seconds = time.perf_counter() - started
    outcome = str(state or "UNKNOWN")
    metrics.TASKS.labels(task.name, outcome).inc()
    metrics.TASK_SECONDS.labels(task.name).observe(seconds)
    logger.info(
        "task %s %s",
        task.name,
        outcome,
        extra={
            "fields": {
                "kind": "task",
                "task": task.name,
                "task_id": task_id,
                "outcome": outcome,
                "duration_ms": round(seconds * 1000, 1),
            }
        },
    )
    request_id.leave(token)
