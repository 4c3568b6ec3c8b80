"""Hand work to the Celery worker, after commit, without ever failing the caller.

The database is the source of truth: if the broker is down or the process dies before the
message is sent, the beat sweeps find the committed rows and enqueue them again. So a failed
enqueue is logged, never raised into a request whose change already committed.
"""

import logging

logger = logging.getLogger(__name__)


def dispatch_event(event_id: int) -> None:
    from emr.workflows import tasks  # tasks are doors; importing them lazily keeps emit low

    _send(tasks.dispatch_event, event_id)


def advance_run(run_id: int) -> None:
    from emr.workflows import tasks

    _send(tasks.advance_run, run_id)


def _send(task, object_id: int) -> None:
    try:
        task.delay(object_id)
    except Exception:  # the broker's errors are many; the sweep recovers from all of them
        logger.exception(
            "Could not enqueue %s(%s); the beat sweep will pick it up.", task.name, object_id
        )
