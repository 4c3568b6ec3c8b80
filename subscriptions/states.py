"""Subscription statuses. CANCELLED is final: no door, no person, no job reactivates it."""

from django.db import models

from emr.kernel.errors import InvalidTransition
from emr.kernel.transitions import TransitionTable


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    PAUSED = "PAUSED", "Paused"
    CANCELLED = "CANCELLED", "Cancelled"
    EXPIRED = "EXPIRED", "Expired"


S = SubscriptionStatus

SUBSCRIPTION_TRANSITIONS = {
    S.ACTIVE: {S.PAUSED, S.CANCELLED, S.EXPIRED},
    S.PAUSED: {S.ACTIVE, S.CANCELLED, S.EXPIRED},
    S.CANCELLED: set(),
    S.EXPIRED: set(),
}


def _refuse(current: str, target: str) -> InvalidTransition:
    if current == S.CANCELLED:
        return InvalidTransition(
            "This subscription is cancelled. Cancelled subscriptions cannot be reactivated; "
            "start a new subscription instead.",
            code="subscription.already_cancelled",
            current=current,
            target=target,
        )
    return InvalidTransition(
        f"A subscription cannot move from {S(current).label} to {S(target).label}.",
        code="subscription.invalid_transition",
        current=current,
        target=target,
    )


subscription_transitions = TransitionTable(SUBSCRIPTION_TRANSITIONS, refuse=_refuse)

# Subscriptions that will still be billed (a paused one resumes, or is reactivated by a payment).
LIVE_STATUSES = frozenset({S.ACTIVE, S.PAUSED})
# Subscriptions that are over: nothing is billed or changed any more.
ENDED_STATUSES = frozenset({S.CANCELLED, S.EXPIRED})


class BillingInterval(models.TextChoices):
    MONTH = "MONTH", "Month"
    WEEK = "WEEK", "Week"


class CancellationCause(models.TextChoices):
    """Why a subscription ended as CANCELLED, so CS can answer "why was I cancelled?"."""

    REQUESTED = "REQUESTED", "Requested by the patient or staff"
    SCHEDULED = "SCHEDULED", "Scheduled cancellation, run after the final recovery payment"
    INTAKE_REJECTED = "INTAKE_REJECTED", "Intake rejected by medical staff"
    SWITCHED = "SWITCHED", "Replaced by another plan (switch)"
    # The first payment was declined: the subscription never started, nothing was cancelled
    # from the patient's point of view, so no cancellation workflow fires.
    NOT_STARTED = "NOT_STARTED", "Never started: first payment declined"


class SwitchTiming(models.TextChoices):
    NOW = "NOW", "Now (paying off any remaining balance)"
    AFTER_RECOVERY = "AFTER_RECOVERY", "After the final recovery payment"


class SwitchStatus(models.TextChoices):
    # Waiting for the old subscription's final recovery payment.
    SCHEDULED = "SCHEDULED", "Scheduled after the final recovery payment"
    # Payoff and replacement are being charged (or are due to be).
    PENDING = "PENDING", "In progress"
    COMPLETED = "COMPLETED", "Completed"
    FAILED = "FAILED", "Failed (old subscription unchanged)"
    WITHDRAWN = "WITHDRAWN", "Withdrawn"


W = SwitchStatus

SWITCH_TRANSITIONS = {
    W.SCHEDULED: {W.PENDING, W.WITHDRAWN},
    W.PENDING: {W.COMPLETED, W.FAILED},
    W.COMPLETED: set(),
    W.FAILED: set(),
    W.WITHDRAWN: set(),
}
OPEN_SWITCH_STATUSES = frozenset({W.SCHEDULED, W.PENDING})

switch_transitions = TransitionTable(
    SWITCH_TRANSITIONS,
    refuse=lambda current, target: InvalidTransition(
        f"A plan switch cannot move from {W(current).label} to {W(target).label}.",
        code="switch.invalid_transition",
        current=current,
        target=target,
    ),
)
