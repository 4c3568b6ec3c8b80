"""The transactional outbox: `emit()` records an event in the caller's transaction and asks
for its dispatch (`emr.workflows.dispatch`) after commit.

    with service_transaction(actor, reason=reason):
        ...change the order...
        emit("order.refunded", subject=order, actor=actor)

The event row commits or rolls back with the change, so a rolled-back change emits nothing.
Emitting is low in the house: any service may call it; it imports no workflow runner.

Inside a service transaction a transaction's events are collected: each payload is built when
it is emitted (the state it reports), the rows are inserted together in one statement just
before the outermost service commits, and delivery is published once after the commit. An event
emitted inside a savepoint that rolled back (a nested service whose refusal its caller handled)
is left out, exactly as its row would have been rolled back. Outside a service (a shell, a plain
`transaction.atomic()`), the row is inserted at once.
"""

from __future__ import annotations

import logging

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Model

from emr.kernel.actors import Actor, current_stamp
from emr.kernel.enqueue import enqueue
from emr.kernel.services import collected_until_commit
from emr.workflows import catalogue, payloads
from emr.workflows.errors import WrongSubject
from emr.workflows.models import WorkflowEvent

logger = logging.getLogger(__name__)

DISPATCH_TASK = "workflows.dispatch_event"


def emit(
    event_type: str,
    *,
    subject: Model,
    payload: dict | None = None,
    actor: Actor | None = None,
) -> WorkflowEvent:
    """Record `event_type` about `subject` in the current transaction; dispatch after commit.

    `payload` defaults to the subject's payload as the database has it now (call `emit` after
    saving the change). `actor` defaults to the one of the enclosing `service_transaction(...)`.
    Inside a service transaction the returned event gets its id when the service commits.
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
    event = WorkflowEvent(
        event_type=event_type,
        subject_type=ContentType.objects.get_for_model(subject),
        subject_id=subject.pk,
        subject_key=f"{subject_type}:{subject.pk}",
        payload=payload,
        actor=actor.label if actor else "",
        actor_door=actor.door if actor else "",
    )
    batch = collected_until_commit("workflows.outbox", _write)
    if batch is None:
        event.save()
        transaction.on_commit(_Delivery([event]))
    else:
        # Its on-commit callback doubles as the record of whether this emit survived: Django
        # drops the callbacks registered inside a savepoint that rolls back.
        delivery = _Delivery([])
        transaction.on_commit(delivery)
        batch.append((event, delivery))
    return event


class _Delivery:
    """The on-commit callback of each emitted event. The first of a transaction's to run
    publishes one dispatch task for all its events; the others find it done."""

    def __init__(self, events: list[WorkflowEvent], state: dict | None = None) -> None:
        self.events = events
        self.state = state if state is not None else {"sent": False}

    def __call__(self) -> None:
        if self.state["sent"] or not self.events:
            return
        self.state["sent"] = True
        enqueue(DISPATCH_TASK, self.events[0].pk)


def _write(batch: list[tuple[WorkflowEvent, _Delivery]]) -> None:
    """Insert the events that survived (see `emit`), in emit order, in one statement."""
    registered = {id(callback) for _, callback, _ in connection.run_on_commit}
    events = [event for event, delivery in batch if id(delivery) in registered]
    if not events:
        return
    WorkflowEvent.objects.bulk_create(events)
    state = {"sent": False}
    for _, delivery in batch:
        delivery.events, delivery.state = events, state


def _actor_in_force() -> Actor | None:
    stamp = current_stamp()
    return stamp.actor if stamp else None
