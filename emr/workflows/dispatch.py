"""Dispatch: start the workflows an emitted event triggers, once.

Delivery is enqueued once on commit of a transaction's events (`emr.workflows.outbox.emit`):
`deliver_pending()` claims up to DELIVERY_BATCH pending events in one transaction, starts their
runs in bulk and takes their steps that need no outside call right there
(`runner.start_batch`). When that enqueue is lost (the process died between commit and
enqueue, or the broker was down) the beat sweep `dispatch_pending()` picks the rows up. Every
path claims rows with `SELECT … FOR UPDATE SKIP LOCKED` and flips them to DISPATCHED in the
same transaction that creates the runs, so a redelivered task or a second sweep finds nothing
to do. Claiming a row acts for no one; the sweep's savepoint per event rolls back only that
event's runs when it fails, and a failed batch is dispatched again one event at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from emr.kernel.actors import Actor
from emr.kernel.enqueue import enqueue_after_commit
from emr.kernel.services import service_transaction
from emr.workflows.models import DispatchStatus, WorkflowEvent
from emr.workflows.runner import start_batch, start_runs

logger = logging.getLogger(__name__)

# An event younger than this is left to its on-commit enqueue; older and still pending means
# that enqueue was lost.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 200
# Events one delivery task claims; a full batch queues the next task.
DELIVERY_BATCH = 100
DELIVERY_TASK = "workflows.dispatch_event"
# Who delivery acts as; a step's own writes are stamped with its workflow's actor.
DELIVERY_ACTOR = Actor.system("workflow-delivery")


def deliver_pending(
    *, limit: int = DELIVERY_BATCH, enqueue_run: Callable[[int], None] | None = None
) -> list[int]:
    """Dispatch up to `limit` pending events, oldest first, in one transaction. Returns their
    ids.

    The events are claimed under SKIP LOCKED (concurrent deliveries, the sweep and
    `dispatch_event` take disjoint rows) and flipped to DISPATCHED in the transaction that
    creates their runs and takes their local steps. If the batch fails, its events are
    dispatched one at a time, so one event that cannot be dispatched holds back no other.
    """
    claimed: list[int] = []
    try:
        # A service transaction: the local steps' own services (a status update) join it.
        with service_transaction(DELIVERY_ACTOR, reason="Workflow delivery"):
            events = list(
                WorkflowEvent.objects.select_for_update(skip_locked=True)
                .filter(dispatch_status=DispatchStatus.PENDING)
                .order_by("occurred_at", "id")[:limit]
            )
            claimed = [event.pk for event in events]
            if not events:
                return []
            start_batch(events=events, enqueue_run=enqueue_run)
            WorkflowEvent.objects.filter(pk__in=claimed).update(
                dispatch_status=DispatchStatus.DISPATCHED,
                dispatched_at=timezone.now(),
                dispatch_attempts=F("dispatch_attempts") + 1,
            )
            if len(events) == limit:  # more may be waiting
                enqueue_after_commit(DELIVERY_TASK)
    except Exception:
        if not claimed:
            raise
        logger.exception("Could not deliver %s events at once; one at a time now", len(claimed))
        return _dispatch_each(claimed, enqueue_run=enqueue_run)
    return claimed


def _dispatch_each(event_ids: list[int], *, enqueue_run) -> list[int]:
    dispatched = []
    for event_id in event_ids:
        try:
            dispatch_event(event_id=event_id, enqueue_run=enqueue_run)
        except Exception:  # logged and left PENDING: the sweep tries it again
            logger.exception("Could not dispatch workflow event %s", event_id)
            continue
        dispatched.append(event_id)
    return dispatched


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
