"""A subscription's life: cancel, pause, resume, schedule or withdraw a cancellation, and the
rules that hold them back (the operations guide: "Subscription Cancellation", "Patient
Cancellation Limits", "Scheduled Subscription Cancellation"; clinic-platform-notes.md,
"Subscriptions").

Cancelling stops future billing and never refunds, never cancels paid orders already created,
never stops a shipment; CANCELLED is final. A financed recovery balance blocks a patient (and
CS, unless they may override it) from stopping early: the cancellation is scheduled instead,
and `subscriptions.scheduled` runs it after the final payment. Unanswered intake forms of
orders that will not go ahead are withdrawn when a subscription ends.

Starting a subscription is its first billing cycle: `subscriptions.billing_cycle`.
"""

from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.models import Invoice
from billing.states import InvoiceStatus
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import Forbidden, StateConflict
from emr.kernel.money import format_cents
from emr.kernel.services import require_reason, service_transaction
from emr.models import IntakeResponse, IntakeStatus
from emr.workflows.outbox import emit
from orders.models import Order
from orders.services import WAITING_FOR_PAYMENT
from orders.states import ACTION_ONLY
from subscriptions.models import PlanSwitch, Subscription
from subscriptions.states import (
    ENDED_STATUSES,
    OPEN_SWITCH_STATUSES,
    CancellationCause,
    SubscriptionStatus,
    SwitchStatus,
)

# --- Pending-intake cleanup when a subscription ends (or its order is rejected) -------------------


def withdraw_pending_intakes(*, orders: QuerySet[Order]) -> list[int]:
    """Delete the unanswered intake forms of `orders` that will not go ahead; returns their ids.

    Runs inside the caller's transaction and `acting(...)` block (the history rows carry them).
    """
    not_going_ahead = Q(order__status__in=ACTION_ONLY) | ~Q(
        order__invoice__status=InvoiceStatus.PAID
    )
    withdrawn = []
    pending = IntakeResponse.objects.select_for_update(of=("self",)).filter(
        not_going_ahead, order__in=orders, status=IntakeStatus.PENDING
    )
    for intake in pending:
        withdrawn.append(intake.pk)
        intake.delete()  # one by one, so each deletion gets its history row
    return withdrawn


# --- Who may stop a subscription that still has a financed recovery balance -----------------------

OVERRIDE_RECOVERY_BALANCE = "subscriptions.override_recovery_balance"
SWITCH_PLAN = "subscriptions.switch_plan"

# The guide's CS explanation, word for word: patients and CS read the same sentence.
RECOVERY_BALANCE_EXPLANATION = (
    "This subscription still has remaining financed balance. Cancellation can be scheduled "
    "after the remaining recovery payments are complete, or billing/admin can review the account."
)
ESCALATE = "Escalate to billing/admin operations if the account needs a manual review."


def is_patient(actor: Actor) -> bool:
    return actor.door == Door.PORTAL


def has_permission(actor: Actor, permission: str) -> bool:
    """Staff permission of the person acting; a patient's portal login never has one."""
    return not is_patient(actor) and actor.user is not None and actor.user.has_perm(permission)


def may_override_recovery_balance(actor: Actor) -> bool:
    return has_permission(actor, OVERRIDE_RECOVERY_BALANCE)


def check_may_stop(subscription: Subscription, *, actor: Actor, action: str) -> None:
    """Refuse `action` ("cancel", "pause") while a recovery balance remains, unless overridden."""
    remaining = subscription.recovery_cycles_remaining
    if remaining == 0 or may_override_recovery_balance(actor):
        return
    raise StateConflict(
        recovery_balance_refusal(subscription, actor=actor, action=action),
        code="subscription.recovery_balance",
    )


def recovery_balance_refusal(subscription: Subscription, *, actor: Actor, action: str) -> str:
    remaining = subscription.recovery_cycles_remaining
    plan = subscription.plan
    owed = (
        f"{remaining} payment{'s' if remaining != 1 else ''} of "
        f"{format_cents(plan.price_cents, plan.currency)} remain"
    )
    if action == "cancel":
        sentence = RECOVERY_BALANCE_EXPLANATION
    else:
        sentence = (
            f"This subscription still has remaining financed balance, so it cannot be {action}d "
            "until the remaining recovery payments are complete, or billing/admin can review "
            "the account."
        )
    sentence = f"{sentence} ({owed}.)"
    return sentence if is_patient(actor) else f"{sentence} {ESCALATE}"


def check_may_switch(actor: Actor) -> None:
    if is_patient(actor) or (actor.user is not None and not has_permission(actor, SWITCH_PLAN)):
        raise Forbidden(
            "Switching plans is done by billing admins. Escalate the request to billing/admin "
            "operations.",
            code="subscription.switch_not_allowed",
        )


# --- Status changes, locks and reasons shared by every subscription service -----------------------

S = SubscriptionStatus


def lock_subscription(subscription_id: int) -> Subscription:
    """The subscription row, locked until the surrounding transaction ends (its plan is read
    along, not locked: `of=("self",)`, so subscriptions of one plan never wait for each other)."""
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "patient")
        .get(pk=subscription_id)
    )


# The audit history's change-reason column holds 100 characters.


def set_subscription_status(subscription: Subscription, target: str) -> Subscription:
    """Move a locked subscription along its transition table, with what the move implies."""
    subscription.transitions.check(subscription.status, target)
    previous = subscription.status
    subscription.status = target
    now = timezone.now()
    if target == S.CANCELLED:
        subscription.cancelled_at = now
    if target in ENDED_STATUSES:
        # Future billing stops: nothing is due any more.
        subscription.next_billing_at = None
    if previous == S.PAUSED and target != S.PAUSED:
        subscription.awaiting_payment = False
    if previous == S.PAUSED and target == S.ACTIVE and subscription.next_billing_at is not None:
        # Billing resumes from now: the paused time is never billed after the fact.
        subscription.next_billing_at = max(subscription.next_billing_at, now)
    subscription.save()
    return subscription


# --- Cancel --------------------------------------------------------------------------------


def cancel_subscription(
    *,
    subscription: Subscription,
    actor: Actor,
    reason: str,
    cause: CancellationCause = CancellationCause.REQUESTED,
) -> Subscription:
    """Cancel now: CANCELLED, `cancelled_at`, future billing stops, `subscription.cancelled`,
    pending-intake cleanup. Final: nothing reactivates a cancelled subscription.

    A requested cancellation is refused while a financed recovery balance remains, unless a
    billing admin overrides it (`subscription.recovery_balance`; schedule it instead). An
    intake rejection is a medical decision and is not subject to that rule.
    """
    reason = require_reason(reason)
    with service_transaction(actor, reason=reason):
        _lock_orders_awaiting_retry(subscription.pk)
        subscription = lock_subscription(subscription.pk)
        subscription.transitions.check(subscription.status, S.CANCELLED)
        if cause == CancellationCause.REQUESTED:
            check_may_stop(subscription, actor=actor, action="cancel")
        return close_subscription(subscription, cause=cause, actor=actor)


def close_subscription(
    subscription: Subscription, *, cause: CancellationCause, actor: Actor
) -> Subscription:
    """The cancellation itself, on a locked subscription inside the caller's transaction."""
    subscription.cancellation_cause = cause
    set_subscription_status(subscription, S.CANCELLED)
    _withdraw_scheduled_switch(subscription)
    _stop_retries(subscription.pk)
    withdraw_pending_intakes(orders=Order.objects.filter(subscription=subscription))
    if cause != CancellationCause.NOT_STARTED:
        # A subscription whose first payment was declined never started: nothing to announce.
        emit("subscription.cancelled", subject=subscription, actor=actor)
    return subscription


def _lock_orders_awaiting_retry(subscription_id: int) -> list[Order]:
    return list(
        Order.objects.select_for_update()
        .filter(subscription_id=subscription_id, recovery_next_retry_at__isnull=False)
        .order_by("pk")
    )


def _stop_retries(subscription_id: int) -> None:
    # Future billing stops, retries included. The open invoice itself stays as it is: CS checks
    # whether the patient only needs to pay it, and closes the order if not.
    for order in _lock_orders_awaiting_retry(subscription_id):
        order.recovery_next_retry_at = None
        order.save(update_fields=["recovery_next_retry_at", "updated_at"])


def _withdraw_scheduled_switch(subscription: Subscription) -> None:
    scheduled = PlanSwitch.objects.select_for_update().filter(
        subscription=subscription, status=SwitchStatus.SCHEDULED
    )
    for switch in scheduled:
        switch.status = SwitchStatus.WITHDRAWN
        switch.save()


# --- Pause, resume, expire -----------------------------------------------------------------


def pause_subscription(*, subscription: Subscription, actor: Actor, reason: str) -> Subscription:
    """Billing stops until resumed; refused to patients (and CS) while a balance remains."""
    reason = require_reason(reason)
    with service_transaction(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        subscription.transitions.check(subscription.status, S.PAUSED)
        check_may_stop(subscription, actor=actor, action="pause")
        set_subscription_status(subscription, S.PAUSED)
        emit("subscription.paused", subject=subscription, actor=actor)
    return subscription


def resume_subscription(*, subscription: Subscription, actor: Actor, reason: str) -> Subscription:
    """Billing resumes from now. A subscription paused by a failed payment resumes when its
    recovery invoice is paid; only a billing admin may resume it before that."""
    reason = require_reason(reason)
    with service_transaction(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        subscription.transitions.check(subscription.status, S.ACTIVE)
        if subscription.awaiting_payment and not may_override_recovery_balance(actor):
            raise StateConflict(
                _awaiting_payment_refusal(subscription), code="subscription.recovery_invoice_open"
            )
        set_subscription_status(subscription, S.ACTIVE)
        emit("subscription.resumed", subject=subscription, actor=actor)
    return subscription


def open_cycle_invoices(subscription: Subscription) -> list[Invoice]:
    """The subscription's invoices still waiting for payment in payment recovery."""
    return list(
        Invoice.objects.filter(
            order__subscription=subscription,
            order__recovery_status__in=WAITING_FOR_PAYMENT,
            status=InvoiceStatus.SENT,
        ).order_by("pk")
    )


def _awaiting_payment_refusal(subscription: Subscription) -> str:
    numbers = ", ".join(invoice.number for invoice in open_cycle_invoices(subscription))
    return (
        f"This subscription is paused because a payment failed. Pay the open recovery invoice "
        f"{numbers or '(see the subscription orders)'}: paying it reactivates the subscription. "
        "Billing/admin can resume it without the payment."
    )


def expire_subscription(*, subscription: Subscription, actor: Actor, reason: str) -> Subscription:
    """A fixed-term subscription reached its end date."""
    reason = require_reason(reason)
    with service_transaction(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        return set_subscription_status(subscription, S.EXPIRED)


# --- Scheduled cancellation ----------------------------------------------------------------


def schedule_cancellation(*, subscription: Subscription, actor: Actor, reason: str) -> Subscription:
    """Store a cancellation to run after the final required recovery payment (the guide,
    "Scheduled Subscription Cancellation"). Billing continues through the payment-only cycles."""
    reason = require_reason(reason)
    with service_transaction(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        subscription.transitions.check(subscription.status, S.CANCELLED)
        _check_may_schedule(subscription)
        subscription.cancellation_scheduled_at = timezone.now()
        subscription.cancellation_scheduled_by = actor.label
        subscription.cancellation_scheduled_reason = reason
        subscription.save()
        emit("subscription.cancellation_scheduled", subject=subscription, actor=actor)
    return subscription


def _check_may_schedule(subscription: Subscription) -> None:
    if subscription.recovery_cycles_remaining == 0:
        raise StateConflict(
            "Nothing remains to pay on this subscription, so there is nothing to wait for: "
            "cancel it now instead.",
            code="subscription.no_recovery_balance",
        )
    if subscription.has_scheduled_cancellation:
        raise StateConflict(
            f"A cancellation is already scheduled (requested by "
            f"{subscription.cancellation_scheduled_by} on "
            f"{subscription.cancellation_scheduled_at:%Y-%m-%d}).",
            code="subscription.cancellation_already_scheduled",
        )
    if PlanSwitch.objects.filter(
        subscription=subscription, status__in=OPEN_SWITCH_STATUSES
    ).exists():
        raise StateConflict(
            "A plan switch is pending for this subscription. Withdraw the switch before "
            "scheduling a cancellation.",
            code="subscription.switch_pending",
        )


def withdraw_scheduled_cancellation(
    *, subscription: Subscription, actor: Actor, reason: str = "Scheduled cancellation withdrawn"
) -> Subscription:
    """Withdraw a scheduled cancellation before it runs; the request stays in the history."""
    reason = require_reason(reason)
    with service_transaction(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        if subscription.status == S.CANCELLED:
            raise StateConflict(
                "This subscription is already cancelled (a scheduled cancellation that already "
                "ran cannot be withdrawn). Cancelled subscriptions cannot be reactivated; start "
                "a new subscription instead.",
                code="subscription.already_cancelled",
            )
        if not subscription.has_scheduled_cancellation:
            raise StateConflict(
                "No cancellation is scheduled for this subscription.",
                code="subscription.no_scheduled_cancellation",
            )
        subscription.cancellation_scheduled_at = None
        subscription.cancellation_scheduled_by = ""
        subscription.cancellation_scheduled_reason = ""
        subscription.save()
        emit("subscription.cancellation_withdrawn", subject=subscription, actor=actor)
    return subscription
