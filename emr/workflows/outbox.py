"""The transactional outbox: `emit()` records an event in the caller's transaction; dispatch
starts the workflows it triggers, once.

    with transaction.atomic():
        ...change the order...
        emit("order.refunded", subject=order, actor=actor)

The event row commits or rolls back with the change, so a rolled-back change emits nothing.
Dispatch is enqueued on commit; when that enqueue is lost (the process died between commit and
enqueue, or the broker was down) the beat sweep `dispatch_pending()` picks the row up. Both paths
claim the row with `SELECT … FOR UPDATE SKIP LOCKED` and flip it to DISPATCHED in the same
transaction that creates the runs, so a redelivered task or a second sweep finds nothing to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from audit.actors import Actor
from audit.context import current_stamp
from emr.workflows import catalogue, enqueue, payloads
from emr.workflows.errors import WrongSubject
from emr.workflows.models import DispatchStatus, WorkflowEvent

logger = logging.getLogger(__name__)

# An event younger than this is left to its on-commit enqueue; older and still pending means
# that enqueue was lost.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 200


def emit(
    event_type: str,
    *,
    subject: Model,
    payload: dict | None = None,
    actor: Actor | None = None,
) -> WorkflowEvent:
    """Record `event_type` about `subject` in the current transaction; dispatch after commit.

    `payload` defaults to the subject's payload as the database has it now (call `emit` after
    saving the change). `actor` defaults to the one of the enclosing `acting(...)` block.
    """
    event_kind = catalogue.get_event_type(event_type)
    subject_type = payloads.subject_type_of(subject)
    if subject_type not in event_kind.subject_types:
        raise WrongSubject(
            f"{event_type} is about a {' or '.join(event_kind.subject_types)}, "
            f"not a {subject_type}."
        )
    if payload is None:
        payload = payloads.build_payload(subject)
    else:
        payloads.refuse_card_data(payload)
    actor = actor or _actor_in_force()
    event = WorkflowEvent.objects.create(
        event_type=event_type,
        subject_type=ContentType.objects.get_for_model(subject),
        subject_id=subject.pk,
        subject_key=f"{subject_type}:{subject.pk}",
        payload=payload,
        actor=actor.label if actor else "",
        actor_door=actor.door if actor else "",
    )
    transaction.on_commit(partial(enqueue.dispatch_event, event.pk))
    return event


def _actor_in_force() -> Actor | None:
    stamp = current_stamp()
    return stamp.actor if stamp else None


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
    # Imported here: the runner depends on steps, which depend on services that emit events.
    from emr.workflows.runner import start_runs

    runs = start_runs(event=event, enqueue_run=enqueue_run)
    event.dispatch_status = DispatchStatus.DISPATCHED
    event.dispatched_at = timezone.now()
    event.dispatch_attempts += 1
    event.save(update_fields=["dispatch_status", "dispatched_at", "dispatch_attempts"])
    return runs
