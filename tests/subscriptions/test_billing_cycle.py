from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from billing.models import Payment
from billing.states import InvoiceStatus, PaymentStatus
from emr.workflows.models import WorkflowEvent
from orders import states as order_states
from orders.models import Order
from orders.states import OrderKind, OrderStatus, RecoveryStatus
from subscriptions import lifecycle
from subscriptions.billing_cycle import run_billing_cycle, send_upcoming_renewal_notices
from subscriptions.models import Subscription, SubscriptionCycle
from subscriptions.states import BillingInterval, SubscriptionStatus
from tests.subscriptions.conftest import START, make_plan

pytestmark = pytest.mark.django_db

ONE_MONTH_LATER = datetime(2026, 2, 15, 9, 0, tzinfo=UTC)


def events(event_type: str, subject) -> int:
    return WorkflowEvent.objects.filter(
        event_type=event_type, subject_key__endswith=f":{subject.pk}"
    ).count()


def test_subscribing_bills_the_first_cycle_and_schedules_the_next(clock, subscribe):
    subscription = subscribe()

    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.next_billing_at == ONE_MONTH_LATER
    first = subscription.orders.get()
    assert (first.kind, first.status, first.invoice.status) == (
        OrderKind.SUBSCRIPTION_FIRST,
        OrderStatus.PROCESSING,
        InvoiceStatus.PAID,
    )
    assert events("subscription.created", subscription) == 1


def test_a_due_renewal_is_charged_and_the_next_date_advances(clock, subscribe):
    subscription = subscribe()
    clock.move_to(ONE_MONTH_LATER + timedelta(hours=1), tick=False)

    summary = run_billing_cycle()

    assert summary.outcomes == {"paid": 1}
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.cycles_billed == 2
    assert subscription.next_billing_at == datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
    renewal = subscription.orders.get(kind=OrderKind.RECURRING)
    assert renewal.status == OrderStatus.PROCESSING
    assert renewal.invoice.status == InvoiceStatus.PAID
    assert renewal.recovery_status == RecoveryStatus.NONE
    assert renewal.recovery_next_retry_at is None
    assert renewal.subscription_cycle.period_start == ONE_MONTH_LATER
    charge = Payment.objects.get(invoice=renewal.invoice)
    assert charge.status == PaymentStatus.SUCCEEDED and charge.transaction_id.startswith("pi_")
    assert events("subscription.renewal_order_created", renewal) == 1


def test_a_paid_renewal_s_history_ends_with_the_status_it_has(clock, subscribe):
    # Found by bench/soak.py: clearing the renewal's retry lease saved a stale copy of the order,
    # so its audit history said it went back to PENDING after it was paid.
    subscription = subscribe()
    clock.move_to(ONE_MONTH_LATER + timedelta(hours=1), tick=False)

    run_billing_cycle()

    renewal = subscription.orders.get(kind=OrderKind.RECURRING)
    statuses = list(renewal.history.order_by("history_date").values_list("status", flat=True))
    assert renewal.status == OrderStatus.PROCESSING
    assert statuses[-1] == OrderStatus.PROCESSING
    assert OrderStatus.PENDING not in statuses[statuses.index(OrderStatus.PROCESSING) :]


def test_nothing_is_billed_before_the_date(clock, subscribe):
    subscription = subscribe()
    clock.move_to(ONE_MONTH_LATER - timedelta(minutes=1), tick=False)
    assert run_billing_cycle().outcomes == {}
    assert subscription.orders.count() == 1


def test_running_the_cycle_twice_for_one_date_bills_once(clock, subscribe):
    subscription = subscribe()
    clock.move_to(ONE_MONTH_LATER, tick=False)

    first = run_billing_cycle(as_of=ONE_MONTH_LATER)
    second = run_billing_cycle(as_of=ONE_MONTH_LATER)

    assert first.outcomes == {"paid": 1}
    assert second.outcomes == {}
    assert subscription.orders.count() == 2
    assert Payment.objects.filter(invoice__order__subscription=subscription).count() == 2


def test_the_management_command_runs_the_same_cycle(clock, subscribe, capsys):
    subscription = subscribe()
    clock.move_to(ONE_MONTH_LATER + timedelta(days=1), tick=False)

    call_command("run_billing_cycle", "--as-of", "2026-02-15T09:00:00")
    call_command("run_billing_cycle", "--as-of", "2026-02-15T09:00:00+00:00")

    out = capsys.readouterr().out
    assert "1 paid" in out and "nothing due" in out
    assert subscription.orders.count() == 2


def test_a_second_order_for_one_period_is_refused_by_the_database(clock, subscribe):
    from django.db import IntegrityError, transaction

    subscription = subscribe()
    first_cycle = subscription.cycles.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionCycle.objects.create(
            subscription=subscription,
            number=1,
            period_start=START + timedelta(days=1),
            order=Order.objects.create(number="ORD-DUP", patient=subscription.patient),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionCycle.objects.create(
            subscription=subscription,
            number=2,
            period_start=first_cycle.period_start,
            order=Order.objects.create(number="ORD-DUP2", patient=subscription.patient),
        )


def test_monthly_billing_keeps_the_day_of_the_month(time_machine, subscribe):
    started = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    time_machine.move_to(started, tick=False)
    subscription = subscribe()
    dates = [subscription.next_billing_at]
    for _ in range(2):
        time_machine.move_to(dates[-1], tick=False)
        run_billing_cycle()
        subscription.refresh_from_db()
        dates.append(subscription.next_billing_at)
    assert [d.date().isoformat() for d in dates] == ["2026-02-28", "2026-03-31", "2026-04-30"]


def test_weekly_plans_bill_every_n_weeks(clock, subscribe):
    subscription = subscribe(plan=make_plan(interval=BillingInterval.WEEK, interval_count=2))
    assert subscription.next_billing_at == START + timedelta(weeks=2)


def test_a_fixed_term_plan_expires_after_its_last_cycle(clock, subscribe):
    subscription = subscribe(plan=make_plan(term_cycles=2))
    clock.move_to(ONE_MONTH_LATER, tick=False)
    assert run_billing_cycle().outcomes == {"paid": 1}  # cycle 2, the last

    end = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
    clock.move_to(end, tick=False)
    assert send_upcoming_renewal_notices(as_of=end - timedelta(days=2)) == 0  # it ends, no renewal
    assert run_billing_cycle().outcomes == {"expired": 1}

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.EXPIRED
    assert subscription.next_billing_at is None
    assert subscription.orders.count() == 2
    assert run_billing_cycle(as_of=end + timedelta(days=40)).outcomes == {}


def test_upcoming_renewal_is_announced_once_the_configured_days_ahead(clock, subscribe, settings):
    settings.UPCOMING_RENEWAL_DAYS = 5
    subscription = subscribe()

    clock.move_to(ONE_MONTH_LATER - timedelta(days=6), tick=False)
    assert send_upcoming_renewal_notices() == 0
    clock.move_to(ONE_MONTH_LATER - timedelta(days=5), tick=False)
    assert send_upcoming_renewal_notices() == 1
    assert send_upcoming_renewal_notices() == 0

    event = WorkflowEvent.objects.get(event_type="subscription.upcoming_renewal")
    assert event.subject_key == f"subscription:{subscription.pk}"
    assert event.payload["subscription"]["daysUntilRenewal"] == 5


def test_the_next_renewal_is_announced_again(clock, subscribe):
    subscribe()
    clock.move_to(ONE_MONTH_LATER - timedelta(days=3), tick=False)
    assert send_upcoming_renewal_notices() == 1
    clock.move_to(ONE_MONTH_LATER, tick=False)
    run_billing_cycle()
    clock.move_to(datetime(2026, 3, 12, 9, 0, tzinfo=UTC), tick=False)
    assert send_upcoming_renewal_notices() == 1
    assert WorkflowEvent.objects.filter(event_type="subscription.upcoming_renewal").count() == 2


def test_paused_and_cancelled_subscriptions_are_not_billed(clock, subscribe, admin):
    paused, cancelled = subscribe(), subscribe()
    lifecycle.pause_subscription(subscription=paused, actor=admin, reason="Travelling")
    lifecycle.cancel_subscription(subscription=cancelled, actor=admin, reason="Moving away")
    clock.move_to(ONE_MONTH_LATER, tick=False)

    assert run_billing_cycle().outcomes == {}
    assert Subscription.objects.get(pk=paused.pk).orders.count() == 1
    assert Subscription.objects.get(pk=cancelled.pk).orders.count() == 1


def test_one_subscription_that_cannot_be_billed_does_not_stop_the_sweep(clock, subscribe):
    stuck, fine = subscribe(), subscribe()
    product = stuck.plan.product
    product.active = False  # no longer sold: create_order refuses it
    product.save()
    clock.move_to(ONE_MONTH_LATER, tick=False)

    summary = run_billing_cycle()

    assert summary.outcomes == {"paid": 1, "refused:order.product_inactive": 1}
    assert Subscription.objects.get(pk=stuck.pk).orders.count() == 1  # nothing half-written
    assert Subscription.objects.get(pk=fine.pk).orders.count() == 2


def test_cycles_bill_the_plan_price_not_the_product_list_price(clock, subscribe):
    plan = make_plan(price_cents=9900, financed_cycles=3)
    plan.product.price_cents = 5000
    plan.product.save()
    subscription = subscribe(plan=plan)
    assert subscription.orders.get().total_cents == 9900
    clock.move_to(ONE_MONTH_LATER, tick=False)
    run_billing_cycle()
    assert subscription.orders.get(kind=OrderKind.RECOVERY_CYCLE).invoice.amount_cents == 9900


@pytest.mark.skipif(
    not hasattr(order_states, "PAYMENT_ONLY_KINDS"),
    reason="needs payment-only orders without clinical requirements (issue note, orders)",
)
def test_a_payment_only_cycle_of_a_medication_never_waits_for_a_prescription(clock, subscribe):
    plan = make_plan(financed_cycles=2)
    plan.product.requires_prescription = True
    plan.product.requires_intake = True
    plan.product.save()
    subscription = subscribe(plan=plan)
    clock.move_to(ONE_MONTH_LATER, tick=False)

    run_billing_cycle()

    payment_only = subscription.orders.get(kind=OrderKind.RECOVERY_CYCLE)
    statuses = set(payment_only.history.values_list("status", flat=True))
    assert payment_only.status == OrderStatus.COMPLETED
    assert statuses <= {OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.COMPLETED}


def test_a_batch_counts_real_work_only_and_says_when_more_is_due(clock, subscribe):
    stuck, first, second = subscribe(), subscribe(), subscribe()
    stuck.plan.product.active = False
    stuck.plan.product.save()
    clock.move_to(ONE_MONTH_LATER, tick=False)

    batch = run_billing_cycle(limit=1)
    assert batch.outcomes == {"refused:order.product_inactive": 1, "paid": 1}
    assert batch.more_due

    rest = run_billing_cycle(limit=1)
    assert rest.outcomes == {"refused:order.product_inactive": 1, "paid": 1}
    assert not rest.more_due
    billed = {s.pk: Subscription.objects.get(pk=s.pk).orders.count() for s in (first, second)}
    assert billed == {first.pk: 2, second.pk: 2}


def test_the_beat_task_runs_the_same_sweep(clock, subscribe):
    from subscriptions import tasks

    subscribe()
    clock.move_to(ONE_MONTH_LATER, tick=False)
    assert tasks.run_billing_cycle() == f"as of {ONE_MONTH_LATER.isoformat()}: 1 paid"
    assert tasks.retry_recovery_charges().endswith("nothing due")
    assert tasks.send_upcoming_renewal_notices() == 0
    assert tasks.run_scheduled_changes() == {
        "cancelled": 0,
        "switches_started": 0,
        "switches_run": 0,
    }
