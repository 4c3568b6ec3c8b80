"""Opening a subscription's next billing cycle: its order and invoice, and the cycle row that
makes billing one period twice impossible."""

from emr.kernel.actors import Actor
from emr.workflows.outbox import emit
from orders.services import OrderLine, create_order
from orders.states import OrderKind
from subscriptions.models import Plan, Subscription, SubscriptionCycle
from subscriptions.periods import next_period_start


def plan_line(plan: Plan, *, quantity: int = 1) -> OrderLine:
    """An order line at the plan's price per cycle (not the product's list price)."""
    return OrderLine(plan.product, quantity, unit_price_cents=plan.price_cents)


def cycle_kind(subscription: Subscription, *, number: int) -> OrderKind:
    """The first cycle ships the treatment; while financed payments remain, later cycles only
    collect money (payment-only recovery cycles); after that each cycle is a regular renewal."""
    if number == 1:
        return OrderKind.SUBSCRIPTION_FIRST
    if subscription.recovery_cycles_remaining > 0:
        return OrderKind.RECOVERY_CYCLE
    return OrderKind.RECURRING


def open_next_cycle(subscription: Subscription, *, period_start, actor: Actor) -> SubscriptionCycle:
    """Create the next cycle's order (PENDING, invoice SENT) and advance the billing date.

    The caller holds the subscription's row lock inside its transaction and charges the invoice
    after committing.
    """
    number = subscription.cycles_billed + 1
    kind = cycle_kind(subscription, number=number)
    order = create_order(
        patient=subscription.patient,
        lines=[plan_line(subscription.plan)],
        actor=actor,
        kind=kind,
        subscription=subscription,
        reason=f"{subscription} cycle {number}",
    )
    cycle = SubscriptionCycle.objects.create(
        subscription=subscription,
        number=number,
        period_start=period_start,
        order=order,
        financed=subscription.recovery_cycles_remaining > 0,
    )
    subscription.cycles_billed = number
    subscription.next_billing_at = next_period_start(
        period_start, plan=subscription.plan, started_at=subscription.started_at
    )
    subscription.save()
    if number > 1:
        emit("subscription.renewal_order_created", subject=order, actor=actor)
    return cycle
