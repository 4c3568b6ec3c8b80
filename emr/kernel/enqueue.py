"""Hand work to the Celery worker after commit, by task name, without ever failing the caller.

The database is the source of truth: if the broker is down or the process dies before the
message is sent, a beat sweep finds the committed rows and enqueues them again. So a failed
enqueue is logged, never raised into a request whose change already committed. Tasks are named
(`"workflows.dispatch_event"`), so a service never imports the tasks module that calls it.
"""

import logging
import threading
from functools import partial

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

_IMPORTING = threading.Lock()


def enqueue_after_commit(task_name: str, *args) -> None:
    """Send `task_name(*args)` once the current transaction commits (now, outside one)."""
    transaction.on_commit(partial(enqueue, task_name, *args))


def enqueue(task_name: str, *args) -> None:
    try:
        _task(task_name).delay(*args)
    except Exception:  # the broker's errors are many; the sweeps recover from all of them
        logger.exception("Could not enqueue %s%s; the beat sweep will pick it up.", task_name, args)


def _task(task_name: str):
    tasks = current_app.tasks
    if task_name not in tasks:
        # A web process imports the apps' tasks modules the first time it enqueues one, one
        # thread at a time: while a first thread imports them, Celery's autodiscovery answers a
        # second one with nothing (its guard against recursion), and the task would be missing.
        with _IMPORTING:
            if task_name not in tasks:
                current_app.loader.import_default_modules()
    return tasks[task_name]
