"""Dispatch: start the workflows an emitted event triggers, once.

Dispatch is enqueued on commit of the event (`emr.workflows.outbox.emit`); when that enqueue is
lost (the process died between commit and enqueue, or the broker was down) the beat sweep
`dispatch_pending()` picks the row up. Both paths claim the row with `SELECT … FOR UPDATE SKIP
LOCKED` and flip it to DISPATCHED in the same transaction that creates the runs, so a
redelivered task or a second sweep finds nothing to do. These are plain transactions, not
services: claiming a row acts for no one, and the sweep's savepoint per event rolls back only
that event's runs when it fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from emr.workflows.models import DispatchStatus, WorkflowEvent
from emr.workflows.runner import start_runs

logger = logging.getLogger(__name__)

# An event younger than this is left to its on-commit enqueue; older and still pending means
# that enqueue was lost.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 200


def dispatch_event(*, event_id: int, enqueue_run: Callable[[int], None] | None = None) -> list:
    """Start the runs `event_id` triggers, unless it was dispatched already (or is being)."""
    with transaction.atomic():
        event = (
            WorkflowEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, dispatch_status=DispatchStatus.PENDING)
            .first()
        )
        if event is None:
            return []
        return _dispatch_claimed(event, enqueue_run=enqueue_run)


def dispatch_pending(
    *,
    older_than: timedelta = SWEEP_GRACE,
    limit: int = SWEEP_BATCH,
    enqueue_run: Callable[[int], None] | None = None,
) -> list[int]:
    """The beat sweep: dispatch events committed but never dispatched. Returns their ids.

    One transaction per event, each claimed under SKIP LOCKED: concurrent sweeps (or an
    on-commit dispatch running now) take different rows, and one event that cannot be
    dispatched does not hold back the others.
    """
    cutoff = timezone.now() - older_than
    dispatched: list[int] = []
    failed: list[int] = []
    while len(dispatched) + len(failed) < limit:
        with transaction.atomic():
            event = (
                WorkflowEvent.objects.select_for_update(skip_locked=True)
                .filter(dispatch_status=DispatchStatus.PENDING, occurred_at__lte=cutoff)
                .exclude(pk__in=failed)
                .order_by("occurred_at", "id")
                .first()
            )
            if event is None:
                break
            try:
                with transaction.atomic():
                    _dispatch_claimed(event, enqueue_run=enqueue_run)
            except Exception:  # logged and left PENDING: the next sweep tries it again
                logger.exception("Could not dispatch workflow event %s", event.pk)
                failed.append(event.pk)
                continue
        dispatched.append(event.pk)
    return dispatched


def _dispatch_claimed(event: WorkflowEvent, *, enqueue_run) -> list:
    runs = start_runs(event=event, enqueue_run=enqueue_run)
    event.dispatch_status = DispatchStatus.DISPATCHED
    event.dispatched_at = timezone.now()
    event.dispatch_attempts += 1
    event.save(update_fields=["dispatch_status", "dispatched_at", "dispatch_attempts"])
    return runs
