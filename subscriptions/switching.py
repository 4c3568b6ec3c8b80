"""Switching a patient to another plan (the guide, "Subscription Switching and Payoff Refunds").

A switch never edits the old subscription: it creates a new one.
- Now: a payoff order/invoice for the old plan's remaining financed balance (if any) and the
  replacement subscription's first order/invoice, two separate amounts of money, charged in
  that order. The old subscription is cancelled only when the replacement's charge succeeds
  (in the same transaction that records that payment). A failed replacement charge leaves the
  old subscription as it was, and the payoff, if it was paid, is not refunded automatically:
  it settled the old plan's balance, and any refund is a billing/admin decision.
- After the final recovery payment: while a balance remains and the old plan does not allow a
  payoff (or on request), the switch is stored as SCHEDULED and runs once the final recovery
  payment succeeds.
"""

from django.utils import timezone

from billing.models import PaymentMethod
from billing.states import InvoiceStatus
from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError, InvalidInput, StateConflict
from emr.kernel.money import format_cents
from emr.kernel.services import service_transaction
from orders.models import Order
from orders.services import change_status, create_order
from orders.states import OrderKind, OrderStatus
from subscriptions.billing_cycle import (
    NO_CARD_MESSAGE,
    ChargeAttempt,
    Outcome,
    billing_card_for,
    charge_order,
    check_plan_available,
    close_never_started,
    create_awaiting_first_payment,
    first_order_of,
    plan_line,
    with_sentence,
)
from subscriptions.lifecycle import (
    check_may_switch,
    lock_subscription,
    open_cycle_invoices,
    require_reason,
)
from subscriptions.models import Plan, PlanSwitch, Subscription
from subscriptions.states import (
    ENDED_STATUSES,
    OPEN_SWITCH_STATUSES,
    SubscriptionStatus,
    SwitchStatus,
    SwitchTiming,
)

S = SubscriptionStatus


def switch_plan(
    *,
    subscription: Subscription,
    plan: Plan,
    actor: Actor,
    timing: SwitchTiming = SwitchTiming.NOW,
    reason: str = "",
) -> PlanSwitch:
    """Switch now (payoff + replacement, charged at once) or after the final recovery payment.

    Returns the switch: COMPLETED when both charges succeeded, SCHEDULED when it waits. A failed
    charge raises its error (402 `payment.declined` …) after marking the switch FAILED.
    """
    check_may_switch(actor)
    check_plan_available(plan)
    reason = require_reason(reason or f"Switch to {plan.name}")
    with service_transaction(actor, reason=reason):
        old = lock_subscription(subscription.pk)
        _check_switchable(old, plan=plan, timing=timing)
        card = None
        if timing == SwitchTiming.NOW:
            card = billing_card_for(old)
            if card is None:
                raise StateConflict(NO_CARD_MESSAGE, code="subscription.no_compatible_card")
        switch = PlanSwitch.objects.create(
            subscription=old,
            target_plan=plan,
            status=SwitchStatus.PENDING if timing == SwitchTiming.NOW else SwitchStatus.SCHEDULED,
            requested_by=actor.label,
            reason=reason,
        )
        if timing == SwitchTiming.NOW:
            _open_payoff_and_replacement(switch, old=old, card=card, actor=actor)
    if timing == SwitchTiming.AFTER_RECOVERY:
        return switch
    return run_switch(switch=switch, actor=actor)


def _check_switchable(old: Subscription, *, plan: Plan, timing: SwitchTiming) -> None:
    if old.status == S.CANCELLED:
        old.transitions.check(old.status, S.ACTIVE)  # `subscription.already_cancelled`
    if old.status == S.EXPIRED:
        raise StateConflict(
            "This subscription has expired: start a new subscription instead.",
            code="subscription.ended",
        )
    if plan.pk == old.plan_id:
        raise InvalidInput(
            "The subscription is already on this plan.", code="subscription.same_plan"
        )
    if PlanSwitch.objects.filter(subscription=old, status__in=OPEN_SWITCH_STATUSES).exists():
        raise StateConflict(
            "A plan switch is already pending for this subscription.",
            code="subscription.switch_pending",
        )
    if old.has_scheduled_cancellation:
        raise StateConflict(
            "A cancellation is scheduled for this subscription. Withdraw it before switching.",
            code="subscription.cancellation_scheduled",
        )
    balance = old.recovery_cycles_remaining
    if timing == SwitchTiming.AFTER_RECOVERY:
        if balance == 0:
            raise StateConflict(
                "Nothing remains to pay on this subscription: switch now instead.",
                code="subscription.no_recovery_balance",
            )
        return
    if old.status != S.ACTIVE or open_cycle_invoices(old):
        raise StateConflict(
            "This subscription is paused or has an unpaid recovery invoice. Resume it, or have "
            "the open invoice paid, before switching now; or schedule the switch after the "
            "final recovery payment.",
            code="subscription.not_active",
        )
    if balance and not old.plan.payoff_switch_allowed:
        raise StateConflict(
            f"This subscription still has remaining financed balance "
            f"({format_cents(old.recovery_balance_cents, old.plan.currency)}) and its plan does "
            "not allow paying it off to switch. The switch can be scheduled to run after the "
            "final recovery payment.",
            code="subscription.recovery_balance",
        )


def _open_payoff_and_replacement(
    switch: PlanSwitch, *, old: Subscription, card: PaymentMethod, actor: Actor
) -> None:
    """Inside the caller's transaction: the payoff order (if a balance remains) and the
    replacement subscription with its first order, each with its own invoice."""
    balance_cycles = old.recovery_cycles_remaining
    if balance_cycles:
        switch.payoff_order = create_order(
            patient=old.patient,
            lines=[plan_line(old.plan, quantity=balance_cycles)],
            actor=actor,
            kind=OrderKind.PAYOFF,
            subscription=old,
            reason=f"Payoff of {old} for a switch to {switch.target_plan.name}",
        )
    switch.replacement = create_awaiting_first_payment(
        patient=old.patient, plan=switch.target_plan, payment_method=card, actor=actor
    )
    switch.save()


def run_switch(*, switch: PlanSwitch, actor: Actor) -> PlanSwitch:
    """Charge what a PENDING switch still has to charge: the payoff, then the replacement.

    Safe to run again (the beat sweep resumes a switch whose process died): paid invoices are
    not charged again, and billing refuses a second charge of an invoice in flight.
    """
    switch = PlanSwitch.objects.get(pk=switch.pk)
    if switch.status != SwitchStatus.PENDING:
        return switch
    if switch.replacement_id is None and not _prepare_due_switch(switch, actor=actor):
        return PlanSwitch.objects.get(pk=switch.pk)
    switch = PlanSwitch.objects.select_related("replacement").get(pk=switch.pk)
    card = billing_card_for(switch.subscription)
    for order, what in _charges_of(switch):
        if order.invoice.status == InvoiceStatus.PAID:
            continue  # charged by an earlier run
        attempt = charge_order(order=order, card=card, actor=actor, reason=what)
        if attempt.outcome == Outcome.ALREADY_HANDLED:
            break  # another run is charging it; the payoff always goes first
        if attempt.outcome == Outcome.UNKNOWN:
            raise attempt.error  # stays PENDING; resumed once billing knows the outcome
        if attempt.outcome != Outcome.PAID:
            _fail(switch, attempt=attempt, failed_charge=what, actor=actor)
            raise with_sentence(attempt.error or _no_card(), _failure_sentence(switch, what))
    return PlanSwitch.objects.get(pk=switch.pk)


def _prepare_due_switch(switch: PlanSwitch, *, actor: Actor) -> bool:
    """A scheduled switch whose final recovery payment came in: open its replacement now."""
    with (
        service_transaction(actor, reason=f"Scheduled switch to {switch.target_plan}"),
    ):
        old = lock_subscription(switch.subscription_id)
        switch = PlanSwitch.objects.select_for_update().get(pk=switch.pk)
        if switch.status != SwitchStatus.PENDING or switch.replacement_id is not None:
            return switch.status == SwitchStatus.PENDING
        card = billing_card_for(old)
        problem = ""
        if old.status in ENDED_STATUSES:
            problem = "The subscription ended before the scheduled switch ran."
        elif card is None:
            problem = NO_CARD_MESSAGE
        if problem:
            switch.status = SwitchStatus.FAILED
            switch.failure_message = problem[:300]
            switch.completed_at = timezone.now()
            switch.save()
            return False
        _open_payoff_and_replacement(switch, old=old, card=card, actor=actor)
    return True


def _charges_of(switch: PlanSwitch) -> list[tuple[Order, str]]:
    charges = []
    if switch.payoff_order_id is not None:
        payoff = Order.objects.select_related("invoice").get(pk=switch.payoff_order_id)
        charges.append((payoff, "Switch payoff"))
    charges.append((first_order_of(switch.replacement), "Replacement subscription payment"))
    return charges


def _fail(switch: PlanSwitch, *, attempt: ChargeAttempt, failed_charge: str, actor: Actor) -> None:
    """The old subscription stays as it was; what was not paid is closed; nothing is refunded."""
    reason = f"Plan switch failed ({failed_charge.lower()}): {attempt.message}"[:500]
    with service_transaction(actor, reason=reason):
        payoff = switch.payoff_order
        if payoff is not None and payoff.status in {
            OrderStatus.PENDING,
            OrderStatus.AWAITING_PAYMENT,
        }:
            change_status(order=payoff, target=OrderStatus.CANCELLED, actor=actor, reason=reason)
        close_never_started(switch.replacement, actor=actor, detail=attempt.message)
        switch = PlanSwitch.objects.select_for_update().get(pk=switch.pk)
        switch.status = SwitchStatus.FAILED
        switch.failure_message = reason[:300]
        switch.completed_at = timezone.now()
        switch.save()


def _failure_sentence(switch: PlanSwitch, failed_charge: str) -> str:
    sentence = (
        f"The plan switch failed at the {failed_charge.lower()}; the old subscription is unchanged."
    )
    payoff = switch.payoff_order
    if payoff is not None and failed_charge != "Switch payoff":
        sentence += (
            f" The payoff {payoff.number} was paid and is not refunded automatically: escalate a "
            "refund request to billing/admin operations."
        )
    return sentence


def _no_card() -> DomainError:
    return StateConflict(NO_CARD_MESSAGE, code="subscription.no_compatible_card")


def withdraw_scheduled_switch(
    *, subscription: Subscription, actor: Actor, reason: str = "Scheduled switch withdrawn"
) -> PlanSwitch:
    reason = require_reason(reason)
    with service_transaction(actor, reason=reason):
        switch = (
            PlanSwitch.objects.select_for_update()
            .filter(subscription=subscription, status=SwitchStatus.SCHEDULED)
            .first()
        )
        if switch is None:
            raise StateConflict(
                "No scheduled plan switch to withdraw for this subscription.",
                code="subscription.no_scheduled_switch",
            )
        switch.status = SwitchStatus.WITHDRAWN
        switch.save()
    return switch
