"""Switching plans: never editing the old subscription, payoff and replacement as separate money
(the guide, "Subscription Switching and Payoff Refunds")."""

from datetime import UTC, datetime

import pytest

from billing.models import Payment
from billing.refunds import refund_order
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus
from emr.kernel.errors import DomainError, Forbidden, StateConflict
from emr.workflows.models import WorkflowEvent
from orders.states import OrderKind, OrderStatus
from subscriptions.billing_cycle import cycle_kind, run_billing_cycle
from subscriptions.models import PlanSwitch, Subscription
from subscriptions.scheduled import run_scheduled_changes
from subscriptions.states import CancellationCause, SubscriptionStatus, SwitchStatus, SwitchTiming
from subscriptions.switching import switch_plan, withdraw_scheduled_switch
from tests.subscriptions.conftest import make_plan, patient_actor

pytestmark = pytest.mark.django_db


def month(n: int) -> datetime:
    return datetime(2026, 1 + n, 15, 9, 0, tzinfo=UTC)


def snapshot(subscription: Subscription) -> dict:
    """What "the old subscription as it was" means: status, plan, schedule, card, cycles."""
    fresh = Subscription.objects.get(pk=subscription.pk)
    return {
        field: getattr(fresh, field)
        for field in [
            "status",
            "plan_id",
            "next_billing_at",
            "payment_method_id",
            "cycles_billed",
            "cancelled_at",
            "cancellation_cause",
        ]
    }


def test_a_failed_replacement_charge_leaves_the_old_subscription_and_keeps_the_payoff(
    clock, subscribe, admin
):
    # NMI declines amounts under 1.00: the payoff (2 x 99.00) goes through, the replacement
    # (0.50) is declined, with the same card.
    old = subscribe(plan=make_plan(financed_cycles=3), gateway="nmi")
    before = snapshot(old)
    cheap = make_plan(name="Maintenance", price_cents=50)

    with pytest.raises(DomainError) as refused:
        switch_plan(subscription=old, plan=cheap, actor=admin, reason="Dose change")

    assert refused.value.code == "payment.declined"
    assert "the old subscription is unchanged" in refused.value.detail
    assert "is not refunded automatically" in refused.value.detail
    switch = PlanSwitch.objects.get()
    assert switch.status == SwitchStatus.FAILED
    # The old subscription: same status, plan, schedule, card; not cancelled.
    assert snapshot(old) == before
    # The payoff was paid and is not refunded: it settled the old plan's balance.
    payoff = switch.payoff_order
    assert payoff.kind == OrderKind.PAYOFF and payoff.subscription_id == old.pk
    assert payoff.total_cents == 2 * 9900
    assert payoff.invoice.status == InvoiceStatus.PAID
    assert payoff.status == OrderStatus.COMPLETED
    assert not Payment.objects.filter(kind=PaymentKind.REFUND).exists()
    assert Subscription.objects.get(pk=old.pk).recovery_cycles_remaining == 0
    # The replacement never started; its unpaid order and invoice are closed.
    replacement = Subscription.objects.get(pk=switch.replacement_id)
    assert replacement.status == SubscriptionStatus.CANCELLED
    assert replacement.cancellation_cause == CancellationCause.NOT_STARTED
    replacement_order = replacement.orders.get()
    assert replacement_order.status == OrderStatus.CANCELLED
    assert replacement_order.invoice.status == InvoiceStatus.CANCELLED
    assert Payment.objects.get(invoice=replacement_order.invoice).status == PaymentStatus.FAILED
    assert not WorkflowEvent.objects.filter(event_type="subscription.cancelled").exists()
    # The old subscription keeps billing on its plan; its balance paid off, as regular cycles.
    assert cycle_kind(Subscription.objects.get(pk=old.pk), number=2) == OrderKind.RECURRING


def test_a_successful_switch_pays_off_then_replaces_then_cancels_the_old(clock, subscribe, admin):
    old = subscribe(plan=make_plan(name="Financed", financed_cycles=3))
    target = make_plan(name="Maintenance", price_cents=4900)

    switch = switch_plan(subscription=old, plan=target, actor=admin, reason="Maintenance dose")

    assert switch.status == SwitchStatus.COMPLETED
    old.refresh_from_db()
    assert old.status == SubscriptionStatus.CANCELLED
    assert old.cancellation_cause == CancellationCause.SWITCHED
    assert old.plan.name == "Financed"  # never edited: a new subscription replaces it
    replacement = switch.replacement
    assert (replacement.status, replacement.plan, replacement.patient) == (
        SubscriptionStatus.ACTIVE,
        target,
        old.patient,
    )
    assert replacement.next_billing_at == month(1)
    # Separate money: two orders, two invoices, two charges.
    payoff, first = switch.payoff_order, replacement.orders.get()
    assert (payoff.total_cents, first.total_cents) == (2 * 9900, 4900)
    assert payoff.invoice.pk != first.invoice.pk
    assert payoff.invoice.status == first.invoice.status == InvoiceStatus.PAID
    charges = Payment.objects.filter(invoice__in=[payoff.invoice, first.invoice])
    assert sorted(charges.values_list("amount_cents", flat=True)) == [4900, 19800]
    # The old one was cancelled only after the replacement's charge: its history says so.
    replacement_paid = first.invoice.paid_at
    assert old.cancelled_at >= replacement_paid
    events = list(WorkflowEvent.objects.values_list("event_type", "subject_key"))
    assert ("subscription.created", f"subscription:{replacement.pk}") in events
    assert ("subscription.cancelled", f"subscription:{old.pk}") in events


def test_refunding_the_payoff_does_not_refund_the_replacement(clock, subscribe, admin):
    old = subscribe(plan=make_plan(financed_cycles=2))
    switch = switch_plan(subscription=old, plan=make_plan(name="Next"), actor=admin)

    refund_order(order=switch.payoff_order, actor=admin, reason="Billing review: goodwill")

    first = switch.replacement.orders.get()
    first.refresh_from_db()
    assert first.invoice.status == InvoiceStatus.PAID
    assert first.refunded_cents == 0
    assert Subscription.objects.get(pk=switch.replacement_id).status == SubscriptionStatus.ACTIVE


def test_a_switch_without_a_balance_has_no_payoff(clock, subscribe, admin):
    old = subscribe()
    switch = switch_plan(subscription=old, plan=make_plan(name="Other"), actor=admin)
    assert switch.status == SwitchStatus.COMPLETED
    assert switch.payoff_order is None
    assert Subscription.objects.get(pk=old.pk).status == SubscriptionStatus.CANCELLED


def test_without_payoff_switching_the_switch_waits_for_the_final_recovery_payment(
    clock, subscribe, admin
):
    old = subscribe(plan=make_plan(financed_cycles=2, payoff_switch_allowed=False))
    target = make_plan(name="Maintenance", price_cents=4900)

    with pytest.raises(StateConflict) as refused:
        switch_plan(subscription=old, plan=target, actor=admin)
    assert refused.value.code == "subscription.recovery_balance"
    assert "scheduled" in refused.value.detail

    switch = switch_plan(
        subscription=old, plan=target, actor=admin, timing=SwitchTiming.AFTER_RECOVERY
    )
    assert switch.status == SwitchStatus.SCHEDULED and switch.replacement is None
    assert Subscription.objects.get(pk=old.pk).status == SubscriptionStatus.ACTIVE

    clock.move_to(month(1), tick=False)
    assert run_billing_cycle().outcomes == {"paid": 1}  # the final recovery payment
    switch.refresh_from_db()
    assert switch.status == SwitchStatus.PENDING  # handed to a worker after commit
    run_scheduled_changes()  # what the worker (or the beat sweep) runs

    switch.refresh_from_db()
    assert switch.status == SwitchStatus.COMPLETED
    assert switch.payoff_order is None  # nothing left to pay off
    assert switch.replacement.status == SubscriptionStatus.ACTIVE
    assert Subscription.objects.get(pk=old.pk).status == SubscriptionStatus.CANCELLED
    old_orders = Subscription.objects.get(pk=old.pk).orders
    assert list(old_orders.values_list("kind", flat=True).order_by("id")) == [
        OrderKind.SUBSCRIPTION_FIRST,
        OrderKind.RECOVERY_CYCLE,
    ]


def test_a_scheduled_switch_can_be_withdrawn(clock, subscribe, admin):
    old = subscribe(plan=make_plan(financed_cycles=2, payoff_switch_allowed=False))
    switch_plan(
        subscription=old,
        plan=make_plan(name="Other"),
        actor=admin,
        timing=SwitchTiming.AFTER_RECOVERY,
    )
    withdraw_scheduled_switch(subscription=old, actor=admin, reason="Patient stays")
    clock.move_to(month(1), tick=False)
    run_billing_cycle()
    run_scheduled_changes()
    assert PlanSwitch.objects.get().status == SwitchStatus.WITHDRAWN
    assert Subscription.objects.get(pk=old.pk).status == SubscriptionStatus.ACTIVE


def test_only_billing_admins_switch_plans(clock, subscribe, cs):
    old = subscribe()
    for actor in (cs, patient_actor(old.patient)):
        with pytest.raises(Forbidden) as refused:
            switch_plan(subscription=old, plan=make_plan(name="Other"), actor=actor)
        assert refused.value.code == "subscription.switch_not_allowed"
    assert not PlanSwitch.objects.exists()
