"""Subscription statuses. CANCELLED is final: no door, no person, no job reactivates it."""

from django.db import models

from emr.errors import InvalidTransition
from emr.statemachine import TransitionTable


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


class BillingInterval(models.TextChoices):
    MONTH = "MONTH", "Month"
    WEEK = "WEEK", "Week"
