"""Every change of a subscription's status goes through here, shared by the admin, the API, the
portal, tasks and the intake review: cancel, pause, resume, expire, and the scheduled
cancellation (request, withdraw).

Each public function takes keyword-only arguments and an `actor`, validates first, runs in one
transaction with the subscription's row locked, and emits its workflow event in that
transaction. Lock order, everywhere: orders before their subscription (the charge recorder
holds the order's lock when it reaches the subscription).

None of this moves money: cancelling never refunds, never cancels orders already created and
never stops a shipment (the guide, "Subscription Cancellation").
"""

from django.utils import timezone

from billing.models import Invoice
from billing.states import InvoiceStatus
from emr.kernel.actors import Actor
from emr.kernel.errors import InvalidInput, StateConflict
from emr.kernel.services import service_transaction
from emr.workflows.outbox import emit
from orders.models import Order
from orders.services import WAITING_FOR_PAYMENT
from subscriptions.intake_cleanup import withdraw_pending_intakes
from subscriptions.models import PlanSwitch, Subscription
from subscriptions.policies import check_may_stop, may_override_recovery_balance
from subscriptions.states import (
    OPEN_SWITCH_STATUSES,
    CancellationCause,
    SubscriptionStatus,
    SwitchStatus,
)

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


def require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why: a reason is required.", code="reason_required")
    return reason


def set_subscription_status(subscription: Subscription, target: str) -> Subscription:
    """Move a locked subscription along its transition table, with what the move implies."""
    subscription.transitions.check(subscription.status, target)
    previous = subscription.status
    subscription.status = target
    now = timezone.now()
    if target == S.CANCELLED:
        subscription.cancelled_at = now
    if target in {S.CANCELLED, S.EXPIRED}:
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
