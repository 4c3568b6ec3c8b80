"""Beluga visit states (clinic-platform-notes.md, "Beluga").

A visit carries three independent states:
- `SubmitStatus`: did *we* get the visit to Beluga (empty until tried, SUBMITTED, FAILED with the
  error). Staff may retry a failed submission; a submitted visit is never sent again.
- `VisitStatus`: the medical visit's status as *Beluga* reports it. Beluga moves it; the one
  move we make ourselves is the cancellation, through Beluga's cancel endpoint.
- `ResolvedStatus`: open while the visit is worked on, closed once it is concluded or cancelled.

None of them is an order, invoice, payment, subscription or pharmacy state: changing a visit
never changes those (refunds-cancellations-guide.txt, "Beluga Visit Cancellation").
"""

from django.db import models

from emr.kernel.errors import InvalidTransition
from emr.kernel.transitions import TransitionTable


class SubmitStatus(models.TextChoices):
    NOT_SUBMITTED = "", "Not submitted"
    SUBMITTED = "SUBMITTED", "Submitted"
    FAILED = "FAILED", "Failed"


# A submission can fail and be retried until it succeeds; once submitted, it stays submitted.
SUBMIT_TRANSITIONS = {
    SubmitStatus.NOT_SUBMITTED: {SubmitStatus.SUBMITTED, SubmitStatus.FAILED},
    SubmitStatus.FAILED: {SubmitStatus.SUBMITTED, SubmitStatus.FAILED},
    SubmitStatus.SUBMITTED: set(),
}

submit_transitions = TransitionTable(
    SUBMIT_TRANSITIONS,
    refuse=lambda current, target: InvalidTransition(
        "This visit was already submitted to Beluga; it is never sent twice.",
        code="beluga.already_submitted",
        current=current,
        target=target,
    ),
)


class VisitStatus(models.TextChoices):
    # Empty until Beluga has the visit and told us its status.
    UNKNOWN = "", "Not at Beluga yet"
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    ADMIN = "admin", "Admin review"
    HOLDING = "holding", "Holding"
    RESOLVED = "resolved", "Resolved"
    CANCELED = "canceled", "Canceled"


V = VisitStatus

# Visits Beluga still works on: it may move them between each other in any order.
OPEN_VISIT_STATUSES = frozenset({V.PENDING, V.ACTIVE, V.ADMIN, V.HOLDING})

VISIT_TRANSITIONS = {
    V.UNKNOWN: {*OPEN_VISIT_STATUSES, V.RESOLVED, V.CANCELED},
    **{
        status: {*(OPEN_VISIT_STATUSES - {status}), V.RESOLVED, V.CANCELED}
        for status in OPEN_VISIT_STATUSES
    },
    # Concluded by the prescriber, or cancelled: both final.
    V.RESOLVED: set(),
    V.CANCELED: set(),
}


def _refuse_visit_move(current: str, target: str) -> InvalidTransition:
    if current == V.CANCELED:
        return InvalidTransition(
            "This Beluga visit is already cancelled. Nothing was changed.",
            code="beluga.already_cancelled",
            current=current,
            target=target,
        )
    if current == V.RESOLVED:
        return InvalidTransition(
            "This Beluga visit is already resolved (the prescriber concluded it), so it can no "
            "longer be cancelled. If the patient wants to stop, review the order, prescription "
            "and fulfilment, and escalate if their impact is unclear.",
            code="beluga.already_resolved",
            current=current,
            target=target,
        )
    return InvalidTransition(
        f"A Beluga visit cannot move from {V(current).label} to {V(target).label}.",
        code="beluga.invalid_transition",
        current=current,
        target=target,
    )


visit_transitions = TransitionTable(VISIT_TRANSITIONS, refuse=_refuse_visit_move)


class ResolvedStatus(models.TextChoices):
    UNKNOWN = "", "Not at Beluga yet"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class MessageChannel(models.TextChoices):
    # The patient sees these in their inbox.
    DOCTOR_PATIENT = "doctor_patient", "Doctor ↔ patient"
    # Internal: clinic support and Beluga's admin team. Never shown to the patient.
    CS_ADMIN = "cs_admin", "CS ↔ Beluga admin"
