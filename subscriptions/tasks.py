"""Celery entry points. Thin: each calls one service.

Every task is safe to run twice at once or again after a crash: the services claim their rows
in the database (`SKIP LOCKED` and the date they saw). The sweeps work in batches within the
task time limit and queue themselves again while more is due.
"""

from celery import shared_task

from emr.kernel.errors import DomainError
from subscriptions import billing_cycle, scheduled, switching
from subscriptions.billing_cycle import system_actor
from subscriptions.models import PlanSwitch

# Renewals call the gateway once each: a batch must finish well inside the 120 s soft limit.
BATCH = 200


@shared_task(name="subscriptions.run_billing_cycle")
def run_billing_cycle() -> str:
    summary = billing_cycle.run_billing_cycle(limit=BATCH)
    if summary.more_due:
        run_billing_cycle.delay()
    return str(summary)


@shared_task(name="subscriptions.retry_recovery_charges")
def retry_recovery_charges() -> str:
    summary = billing_cycle.retry_recovery_charges(limit=BATCH)
    if summary.more_due:
        retry_recovery_charges.delay()
    return str(summary)


@shared_task(name="subscriptions.send_upcoming_renewal_notices")
def send_upcoming_renewal_notices() -> int:
    return billing_cycle.send_upcoming_renewal_notices()


@shared_task(name="subscriptions.run_scheduled_changes")
def run_scheduled_changes() -> dict:
    return scheduled.run_scheduled_changes()


@shared_task(name="subscriptions.run_switch")
def run_switch(switch_id: int) -> str:
    switch = PlanSwitch.objects.filter(pk=switch_id).first()
    if switch is None:
        return "gone"
    try:
        switch = switching.run_switch(switch=switch, actor=system_actor("plan-switch"))
    except DomainError as refused:  # recorded on the switch, or left PENDING for the sweep
        return refused.code
    return switch.status
