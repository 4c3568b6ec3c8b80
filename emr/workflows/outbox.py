"""The transactional outbox: `emit()` records an event in the caller's transaction and asks
for its dispatch (`emr.workflows.dispatch`) after commit.

    with service_transaction(actor, reason=reason):
        ...change the order...
        emit("order.refunded", subject=order, actor=actor)

The event row commits or rolls back with the change, so a rolled-back change emits nothing.
Emitting is low in the house: any service may call it; it imports no workflow runner.
"""

from __future__ import annotations

import logging

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from emr.kernel.actors import Actor, current_stamp
from emr.kernel.enqueue import enqueue_after_commit
from emr.workflows import catalogue, payloads
from emr.workflows.errors import WrongSubject
from emr.workflows.models import WorkflowEvent

logger = logging.getLogger(__name__)


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
    enqueue_after_commit("workflows.dispatch_event", event.pk)
    return event


def _actor_in_force() -> Actor | None:
    stamp = current_stamp()
    return stamp.actor if stamp else None
