"""Payment recovery (clinic-platform-notes.md, "Payment recovery").

A cycle charge failed, or no compatible card exists: the order waits for payment
(AWAITING_PAYMENT) with its recovery metadata, the subscription pauses, `payment.failed` fires,
and retries follow `RECOVERY_RETRY_DAYS`. A successful payment of that invoice (a retry, CS, or
the patient in the portal) marks the invoice PAID, recalculates the order and reactivates the
subscription: `reactivate_after_payment`, which billing calls inside the transaction that records
every successful charge.

This module never imports `billing.payments` (billing imports it): it only records states.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from billing.states import InvoiceStatus
from emr.kernel.actors import Actor
from emr.kernel.enqueue import enqueue_after_commit
from emr.kernel.services import service_transaction
from emr.workflows.outbox import emit
from orders.models import Order
from orders.services import WAITING_FOR_PAYMENT, lock_order, recalculate_status, set_status
from orders.states import IN_PROGRESS, OrderKind, OrderStatus, RecoveryStatus
from subscriptions.lifecycle import (
    close_subscription,
    lock_subscription,
    open_cycle_invoices,
    set_subscription_status,
)
from subscriptions.models import PlanSwitch, Subscription, SubscriptionCycle
from subscriptions.states import ENDED_STATUSES, CancellationCause, SubscriptionStatus, SwitchStatus

S = SubscriptionStatus

DEFAULT_RETRY_DAYS = (1, 3, 7)
# Orders that only collect money: once paid there is nothing left to do for them.
PAYMENT_ONLY_KINDS = frozenset({OrderKind.RECOVERY_CYCLE, OrderKind.PAYOFF})


def retry_delay(attempts: int) -> timedelta | None:
    """How long after failed attempt number `attempts` the next one runs (None: no more).

    `RECOVERY_RETRY_DAYS = [1, 3, 7]`: the renewal attempt fails, retry a day later, then three
    days after that, then seven; after the fourth failure the invoice waits for CS or the patient.
    """
    days = list(getattr(settings, "RECOVERY_RETRY_DAYS", DEFAULT_RETRY_DAYS))
    if attempts > len(days):
        return None
    return timedelta(days=days[attempts - 1])


# --- Entering recovery ---------------------------------------------------------------------


def record_failed_attempt(
    *,
    order: Order,
    status: RecoveryStatus,
    message: str,
    failure_announced: bool,
    actor: Actor,
) -> Order:
    """A charge of a subscription's order failed (or found no compatible card).

    The order waits for payment with its recovery status, attempts and next retry; the
    subscription pauses until the invoice is paid. `payment.failed` is emitted here unless
    billing already emitted it for the FAILED payment it recorded.
    """
    reason = f"Payment recovery: {RecoveryStatus(status).label.lower()}"
    with service_transaction(actor, reason=reason):
        order = lock_order(order.pk)
        if order.invoice.status != InvoiceStatus.SENT:
            return order  # paid (or closed) meanwhile: nothing to recover
        order.recovery_status = status
        order.recovery_attempts += 1
        delay = retry_delay(order.recovery_attempts)
        order.recovery_next_retry_at = timezone.now() + delay if delay else None
        order.save()
        order = recalculate_status(order=order, actor=actor, reason=reason)
        if not failure_announced:
            emit("payment.failed", subject=order, actor=actor)
        subscription = lock_subscription(order.subscription_id)
        pause_for_payment(subscription, actor=actor)
    return order


def pause_for_payment(subscription: Subscription, *, actor: Actor) -> None:
    """PAUSED until the open invoice is paid (an already paused or ended one stays as it is)."""
    if subscription.status != S.ACTIVE:
        return
    subscription.awaiting_payment = True
    set_subscription_status(subscription, S.PAUSED)
    emit("subscription.paused", subject=subscription, actor=actor)


# --- Leaving recovery: the hook billing calls for every successful charge ------------------


def reactivate_after_payment(*, order: Order, actor: Actor) -> None:
    """Everything a successful charge of `order` means for its subscription. Idempotent.

    Called by `billing.payments.record_successful_charge` inside its transaction, with the
    order's row locked, after the invoice is PAID and the order recalculated. For an order of a
    subscription it:
    - clears the order's recovery (RECOVERED, no further retry);
    - counts the cycle as paid (financed cycles reduce the recovery balance; a payoff settles it)
      and completes a payment-only order (nothing ships for it);
    - runs a scheduled cancellation once the final required payment is in (CANCELLED, with
      `subscription.cancelled`), or else reactivates a subscription paused for this payment
      (`subscription.created` for a first payment, `subscription.resumed` after recovery);
    - completes a plan switch whose replacement this first payment was (the old subscription is
      cancelled only now), and hands a scheduled switch that just became due to a worker (it
      charges, so it runs after this transaction commits).
    A cancelled or expired subscription is never reactivated.
    """
    if order.subscription_id is None:
        return
    with (
        service_transaction(actor, reason=f"Payment received for {order.number}"),
    ):
        _clear_recovery(order)
        subscription = lock_subscription(order.subscription_id)
        _count_payment(order, subscription)
        _complete_if_payment_only(order)
        if subscription.status in ENDED_STATUSES:
            return
        if _scheduled_cancellation_due(subscription):
            close_subscription(subscription, cause=CancellationCause.SCHEDULED, actor=actor)
            return
        _reactivate(subscription, paid_order=order, actor=actor)
        if order.kind == OrderKind.SUBSCRIPTION_FIRST:
            _complete_switch_replaced_by(subscription, actor=actor)
        elif subscription.plan.financed_cycles:
            _start_scheduled_switch_if_due(subscription)


def _clear_recovery(order: Order) -> None:
    if order.recovery_status in WAITING_FOR_PAYMENT:
        order.recovery_status = RecoveryStatus.RECOVERED
    if order.recovery_status == RecoveryStatus.RECOVERED or order.recovery_next_retry_at:
        order.recovery_next_retry_at = None
        order.save(update_fields=["recovery_status", "recovery_next_retry_at", "updated_at"])


def _count_payment(order: Order, subscription: Subscription) -> None:
    financed_cycles = subscription.plan.financed_cycles or 0
    if order.kind == OrderKind.PAYOFF:
        # The payoff settles every remaining financed payment at once.
        if subscription.financed_cycles_paid < financed_cycles:
            subscription.financed_cycles_paid = financed_cycles
            subscription.save()
        return
    cycle = SubscriptionCycle.objects.select_for_update().filter(order=order).first()
    if cycle is None or cycle.paid_at is not None:
        return
    cycle.paid_at = timezone.now()
    cycle.save()
    if cycle.financed and subscription.financed_cycles_paid < financed_cycles:
        subscription.financed_cycles_paid += 1
        subscription.save()


def _complete_if_payment_only(order: Order) -> None:
    if order.kind not in PAYMENT_ONLY_KINDS:
        return
    order.refresh_from_db(fields=["status"])  # recalculated since the caller loaded it
    if order.status in IN_PROGRESS:
        set_status(order, OrderStatus.COMPLETED)


def _scheduled_cancellation_due(subscription: Subscription) -> bool:
    return subscription.has_scheduled_cancellation and subscription.recovery_cycles_remaining == 0


def _reactivate(subscription: Subscription, *, paid_order: Order, actor: Actor) -> None:
    if subscription.status != S.PAUSED or not subscription.awaiting_payment:
        return  # active already, or paused by a person: a payment does not overrule them
    if any(invoice.order_id != paid_order.pk for invoice in open_cycle_invoices(subscription)):
        return  # another cycle still waits for payment
    first_payment = paid_order.kind == OrderKind.SUBSCRIPTION_FIRST
    set_subscription_status(subscription, S.ACTIVE)
    event = "subscription.created" if first_payment else "subscription.resumed"
    emit(event, subject=subscription, actor=actor)


def _complete_switch_replaced_by(replacement: Subscription, *, actor: Actor) -> None:
    switch = (
        PlanSwitch.objects.select_for_update()
        .filter(replacement=replacement, status=SwitchStatus.PENDING)
        .first()
    )
    if switch is None or replacement.status != S.ACTIVE:
        return
    old = lock_subscription(switch.subscription_id)
    if old.status not in ENDED_STATUSES:
        close_subscription(old, cause=CancellationCause.SWITCHED, actor=actor)
    switch.status = SwitchStatus.COMPLETED
    switch.completed_at = timezone.now()
    switch.save()


def _start_scheduled_switch_if_due(subscription: Subscription) -> None:
    if subscription.recovery_cycles_remaining > 0:
        return
    switch = (
        PlanSwitch.objects.select_for_update()
        .filter(subscription=subscription, status=SwitchStatus.SCHEDULED)
        .first()
    )
    if switch is None:
        return
    switch.status = SwitchStatus.PENDING
    switch.save()
    enqueue_after_commit("subscriptions.run_switch", switch.pk)
