"""The beat sweep for scheduled changes: the safety net behind the payment hook.

A scheduled cancellation normally runs, and a scheduled switch normally starts, inside the
transaction that records the final recovery payment (`recovery.reactivate_after_payment`). This
sweep runs whatever is due but did not run (a balance settled another way, a switch whose
worker message was lost or whose process died mid-way).
"""

import contextlib
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from emr.kernel.actors import Actor, acting
from emr.kernel.errors import DomainError
from subscriptions.billing_cycle import next_period_start, system_actor
from subscriptions.lifecycle import close_subscription, lock_subscription
from subscriptions.models import PlanSwitch, Subscription
from subscriptions.states import ENDED_STATUSES, CancellationCause, SubscriptionStatus, SwitchStatus
from subscriptions.switching import run_switch

S = SubscriptionStatus
# A switch started by a request is left to that request for this long.
IN_FLIGHT_GRACE = timedelta(minutes=10)
NOTHING_OWED = Q(plan__financed_cycles__isnull=True) | Q(
    financed_cycles_paid__gte=F("plan__financed_cycles")
)


# Financed cycles billed and not paid yet: they are part of the balance but have a date already.
UNPAID_FINANCED_CYCLES = Count(
    "cycles", filter=Q(cycles__financed=True, cycles__paid_at__isnull=True)
)


def unpaid_financed_cycles(subscription: Subscription) -> int:
    return subscription.cycles.filter(financed=True, paid_at__isnull=True).count()


def scheduled_cancellation_due_at(
    subscription: Subscription, *, unpaid_financed_cycles: int
) -> datetime | None:
    """When a scheduled cancellation will run if every payment is made on its date: the billing
    date of the last required payment not billed yet. None when that payment is already billed
    (its invoice is open): the cancellation runs as soon as it is paid.

    A pause moves the date: billing, and so the last payment, resumes later.
    """
    to_bill = subscription.recovery_cycles_remaining - unpaid_financed_cycles
    if to_bill <= 0 or subscription.next_billing_at is None:
        return None
    due = subscription.next_billing_at
    for _ in range(to_bill - 1):
        due = next_period_start(due, plan=subscription.plan, started_at=subscription.started_at)
    return due


def run_scheduled_changes(*, as_of: datetime | None = None, actor: Actor | None = None) -> dict:
    as_of = as_of or timezone.now()
    actor = actor or system_actor("scheduled-changes")
    return {
        "cancelled": _run_due_cancellations(actor=actor),
        "switches_started": _start_due_switches(actor=actor),
        "switches_run": _resume_pending_switches(as_of=as_of, actor=actor),
    }


def _run_due_cancellations(*, actor: Actor) -> int:
    due = Subscription.objects.filter(
        NOTHING_OWED,
        status__in=[S.ACTIVE, S.PAUSED],
        cancellation_scheduled_at__isnull=False,
    ).values_list("pk", flat=True)
    cancelled = 0
    for subscription_id in due:
        with transaction.atomic():
            subscription = lock_subscription(subscription_id)
            if subscription.status in ENDED_STATUSES or (subscription.recovery_cycles_remaining):
                continue
            reason = f"Scheduled cancellation: {subscription.cancellation_scheduled_reason}"
            with acting(actor, reason=reason):
                close_subscription(subscription, cause=CancellationCause.SCHEDULED, actor=actor)
            cancelled += 1
    return cancelled


def _start_due_switches(*, actor: Actor) -> int:
    due = PlanSwitch.objects.filter(
        status=SwitchStatus.SCHEDULED,
        subscription__in=Subscription.objects.filter(NOTHING_OWED),
    ).values_list("pk", flat=True)
    started = 0
    for switch_id in due:
        with transaction.atomic():
            switch = PlanSwitch.objects.select_for_update().get(pk=switch_id)
            if switch.status != SwitchStatus.SCHEDULED:
                continue
            switch.status = SwitchStatus.PENDING
            with acting(actor, reason="Final recovery payment made: scheduled switch starts"):
                switch.save()
        _run(switch, actor=actor)
        started += 1
    return started


def _resume_pending_switches(*, as_of: datetime, actor: Actor) -> int:
    stalled = PlanSwitch.objects.filter(
        status=SwitchStatus.PENDING, requested_at__lte=as_of - IN_FLIGHT_GRACE
    )
    count = 0
    for switch in stalled:
        _run(switch, actor=actor)
        count += 1
    return count


def _run(switch: PlanSwitch, *, actor: Actor) -> None:
    # A refusal is recorded on the switch (FAILED), or leaves it PENDING until billing knows the
    # outcome of a charge; either way the sweep moves on to the next one.
    with contextlib.suppress(DomainError):
        run_switch(switch=switch, actor=actor)
