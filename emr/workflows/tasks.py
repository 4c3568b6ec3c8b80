"""Celery entry points. Thin: load ids and call the service.

Every task is safe to run twice at once or again after a crash (acks_late redelivers it): the
work is claimed in the database, so a duplicate finds nothing left to do. The beat schedule runs
`workflows.sweep_outbox` and `workflows.resume_waits`; running two beats is harmless.
"""

from celery import shared_task

from emr.workflows import dispatch, runner


@shared_task(name="workflows.dispatch_event")
def dispatch_event(event_id: int | None = None) -> None:
    # Queued once per committed transaction with events (the first one's id, for the logs):
    # it delivers that event with whatever else is pending, in batches.
    dispatch.deliver_pending()


@shared_task(name="workflows.advance_run")
def advance_run(run_id: int) -> None:
    runner.advance_run(run_id=run_id)


@shared_task(name="workflows.sweep_outbox")
def sweep_outbox() -> None:
    dispatch.dispatch_pending()


@shared_task(name="workflows.resume_waits")
def resume_waits() -> None:
    runner.resume_due_runs()
