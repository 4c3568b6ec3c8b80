"""Cancel now, cancel refused (recovery balance), scheduled cancellation, and every "does not
automatically" of the guide's "Subscription Cancellation"."""

from datetime import UTC, datetime, timedelta

import pytest

from billing.models import Payment
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus
from emr.kernel.errors import InvalidTransition, StateConflict
from emr.models import IntakeResponse, IntakeStatus
from emr.workflows.models import WorkflowEvent
from orders.services import change_status, record_fact
from orders.states import OrderKind, OrderStatus
from subscriptions import lifecycle
from subscriptions.billing_cycle import run_billing_cycle
from subscriptions.lifecycle import RECOVERY_BALANCE_EXPLANATION
from subscriptions.models import Subscription
from subscriptions.states import CancellationCause, SubscriptionStatus
from tests.subscriptions.conftest import make_plan, patient_actor

pytestmark = pytest.mark.django_db


def month(n: int) -> datetime:
    return datetime(2026, 1 + n, 15, 9, 0, tzinfo=UTC)


def cancelled_events(subscription) -> int:
    return WorkflowEvent.objects.filter(
        event_type="subscription.cancelled", subject_key=f"subscription:{subscription.pk}"
    ).count()


@pytest.fixture
def financed(subscribe):
    """A financed plan: treatment with the first payment, then two payment-only cycles."""
    return lambda: subscribe(plan=make_plan(name="Semaglutide (3 payments)", financed_cycles=3))


# --- Cancel now ----------------------------------------------------------------------------


def test_cancel_now_stops_billing_and_fires_the_workflow(clock, subscribe, system):
    subscription = subscribe()
    patient = patient_actor(subscription.patient)

    lifecycle.cancel_subscription(subscription=subscription, actor=patient, reason="Too costly")

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.cancelled_at == clock_now()
    assert subscription.cancellation_cause == CancellationCause.REQUESTED
    assert subscription.next_billing_at is None
    assert cancelled_events(subscription) == 1
    last = subscription.history.latest("history_id")
    assert (last.history_actor, last.history_door, last.history_change_reason) == (
        f"patient:{subscription.patient.user.username}",
        "portal",
        "Too costly",
    )
    clock.move_to(month(3), tick=False)
    assert run_billing_cycle().outcomes == {}
    assert subscription.orders.count() == 1


def clock_now():
    from django.utils import timezone

    return timezone.now()


def test_cancelling_twice_is_refused_and_changes_nothing(clock, subscribe, admin):
    subscription = subscribe()
    lifecycle.cancel_subscription(subscription=subscription, actor=admin, reason="Asked")
    cancelled_at = Subscription.objects.get(pk=subscription.pk).cancelled_at
    clock.shift(timedelta(days=1))

    with pytest.raises(InvalidTransition) as refused:
        lifecycle.cancel_subscription(subscription=subscription, actor=admin, reason="Again")

    assert refused.value.code == "subscription.already_cancelled"
    assert Subscription.objects.get(pk=subscription.pk).cancelled_at == cancelled_at
    assert cancelled_events(subscription) == 1


@pytest.mark.parametrize("service", ["resume_subscription", "pause_subscription"])
def test_nothing_reactivates_a_cancelled_subscription(clock, subscribe, admin, service):
    subscription = subscribe()
    lifecycle.cancel_subscription(subscription=subscription, actor=admin, reason="Asked")
    with pytest.raises(InvalidTransition) as refused:
        getattr(lifecycle, service)(subscription=subscription, actor=admin, reason="Come back")
    assert refused.value.code == "subscription.already_cancelled"
    with pytest.raises(StateConflict) as refused:
        lifecycle.withdraw_scheduled_cancellation(subscription=subscription, actor=admin)
    assert refused.value.code == "subscription.already_cancelled"


def test_a_reason_is_required(subscribe, admin):
    from emr.kernel.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        lifecycle.cancel_subscription(subscription=subscribe(), actor=admin, reason="  ")
    assert refused.value.code == "reason_required"


# --- What cancelling does not do automatically ---------------------------------------------


def test_cancelling_does_not_refund_cancel_paid_orders_or_stop_shipments(clock, subscribe, admin):
    subscription = subscribe()
    first = subscription.orders.get()
    record_fact(order=first, fact="shipped", actor=admin, reason="Left the pharmacy")
    clock.move_to(month(1), tick=False)
    run_billing_cycle()
    renewal = subscription.orders.get(kind=OrderKind.RECURRING)

    lifecycle.cancel_subscription(subscription=subscription, actor=admin, reason="Patient asked")

    first.refresh_from_db()
    renewal.refresh_from_db()
    # Past orders keep their money: no refund row, invoices still PAID.
    assert not Payment.objects.filter(kind=PaymentKind.REFUND).exists()
    assert set(
        Payment.objects.filter(invoice__order__subscription=subscription).values_list(
            "status", flat=True
        )
    ) == {PaymentStatus.SUCCEEDED}
    assert first.invoice.status == renewal.invoice.status == InvoiceStatus.PAID
    # Paid orders are not cancelled, and a shipment in progress is not stopped.
    assert renewal.status == OrderStatus.PROCESSING
    assert first.status == OrderStatus.SHIPPED
    assert first.refunded_cents == renewal.refunded_cents == 0


def test_pending_intake_cleanup_withdraws_only_forms_that_cannot_go_ahead(clock, subscribe, admin):
    subscription = subscribe()
    paid = subscription.orders.get()
    clock.move_to(month(1), tick=False)
    from tests.subscriptions.test_recovery import failing_renewal

    failing_renewal(clock, subscription)  # an unpaid renewal order
    unpaid = subscription.orders.get(kind=OrderKind.RECURRING)
    patient = subscription.patient
    keep = IntakeResponse.objects.create(patient=patient, order=paid, questionnaire="Refill")
    submitted = IntakeResponse.objects.create(
        patient=patient, order=unpaid, questionnaire="Check-in", status=IntakeStatus.SUBMITTED
    )
    withdrawn = IntakeResponse.objects.create(patient=patient, order=unpaid, questionnaire="Refill")

    lifecycle.cancel_subscription(subscription=subscription, actor=admin, reason="Patient asked")

    remaining = set(IntakeResponse.objects.values_list("pk", flat=True))
    # The paid order still needs its answers to be fulfilled; answered forms are never touched.
    assert remaining == {keep.pk, submitted.pk}
    deletion = IntakeResponse.history.get(id=withdrawn.pk, history_type="-")
    assert (deletion.history_actor, deletion.history_change_reason) == (
        "billing-admin",
        "Patient asked",
    )
    assert not WorkflowEvent.objects.filter(event_type="intake.rejected").exists()
    # The unpaid recovery invoice stays open for CS to review; its retries stopped.
    unpaid.refresh_from_db()
    assert unpaid.invoice.status == InvoiceStatus.SENT
    assert unpaid.recovery_next_retry_at is None


# --- Patient cancellation limits (financed recovery balance) -------------------------------


def test_a_patient_with_a_recovery_balance_is_refused_and_offered_scheduling(clock, financed):
    subscription = financed()
    patient = patient_actor(subscription.patient)

    with pytest.raises(StateConflict) as refused:
        lifecycle.cancel_subscription(subscription=subscription, actor=patient, reason="Stop")

    assert refused.value.code == "subscription.recovery_balance"
    assert refused.value.detail.startswith(RECOVERY_BALANCE_EXPLANATION)
    assert "2 payments of $99.00 remain" in refused.value.detail
    assert "Escalate" not in refused.value.detail  # the patient is not told to escalate
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


def test_cs_is_refused_too_and_told_to_escalate(clock, financed, cs):
    subscription = financed()
    for service in (lifecycle.cancel_subscription, lifecycle.pause_subscription):
        with pytest.raises(StateConflict) as refused:
            service(subscription=subscription, actor=cs, reason="Patient insists")
        assert refused.value.code == "subscription.recovery_balance"
        assert "Escalate to billing/admin" in refused.value.detail
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


def test_a_billing_admin_may_cancel_anyway_with_a_reason(clock, financed, admin):
    subscription = financed()
    lifecycle.cancel_subscription(
        subscription=subscription, actor=admin, reason="Reviewed: hardship waiver"
    )
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.history.latest("history_id").history_change_reason == (
        "Reviewed: hardship waiver"
    )


def test_a_patient_with_a_balance_cannot_pause_either(clock, financed):
    subscription = financed()
    with pytest.raises(StateConflict) as refused:
        lifecycle.pause_subscription(
            subscription=subscription, actor=patient_actor(subscription.patient), reason="Break"
        )
    assert refused.value.code == "subscription.recovery_balance"
    assert "cannot be paused" in refused.value.detail


def test_without_a_balance_the_patient_may_pause_resume_and_cancel(clock, subscribe):
    subscription = subscribe()
    patient = patient_actor(subscription.patient)
    lifecycle.pause_subscription(subscription=subscription, actor=patient, reason="Holiday")
    clock.move_to(month(2), tick=False)
    lifecycle.resume_subscription(subscription=subscription, actor=patient, reason="Back")
    subscription.refresh_from_db()
    # Billing resumes now; the paused month is never billed after the fact.
    assert subscription.next_billing_at == month(2)
    assert run_billing_cycle().outcomes == {"paid": 1}
    subscription.refresh_from_db()
    assert subscription.next_billing_at == month(3)
    lifecycle.cancel_subscription(subscription=subscription, actor=patient, reason="Done")
    events = set(WorkflowEvent.objects.values_list("event_type", flat=True))
    assert {"subscription.paused", "subscription.resumed", "subscription.cancelled"} <= events


# --- Scheduled cancellation ----------------------------------------------------------------


def test_a_scheduled_cancellation_bills_the_payment_only_cycles_then_cancels(clock, financed):
    subscription = financed()
    patient = patient_actor(subscription.patient)
    with pytest.raises(StateConflict):
        lifecycle.cancel_subscription(subscription=subscription, actor=patient, reason="Stop")

    lifecycle.schedule_cancellation(
        subscription=subscription, actor=patient, reason="Moving abroad"
    )
    subscription.refresh_from_db()
    assert subscription.cancellation_scheduled_at == month(0)
    assert subscription.cancellation_scheduled_by == f"patient:{subscription.patient.user}"
    assert subscription.cancellation_scheduled_reason == "Moving abroad"
    assert WorkflowEvent.objects.filter(event_type="subscription.cancellation_scheduled").count()

    clock.move_to(month(1), tick=False)
    assert run_billing_cycle().outcomes == {"paid": 1}
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.recovery_cycles_remaining == 1
    assert cancelled_events(subscription) == 0

    clock.move_to(month(2), tick=False)
    assert run_billing_cycle().outcomes == {"paid": 1}
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.cancellation_cause == CancellationCause.SCHEDULED
    assert subscription.cancelled_at == month(2)
    assert cancelled_events(subscription) == 1

    # Both later cycles only collected money: payment-only orders, completed once paid.
    payment_only = subscription.orders.filter(kind=OrderKind.RECOVERY_CYCLE)
    assert payment_only.count() == 2
    assert set(payment_only.values_list("status", flat=True)) == {OrderStatus.COMPLETED}
    assert set(payment_only.values_list("invoice__status", flat=True)) == {InvoiceStatus.PAID}
    # And nothing is billed after it.
    clock.move_to(month(3), tick=False)
    assert run_billing_cycle().outcomes == {}
    assert subscription.orders.count() == 3


def test_a_scheduled_cancellation_can_be_withdrawn_before_it_runs(clock, financed, cs):
    subscription = financed()
    patient = patient_actor(subscription.patient)
    lifecycle.schedule_cancellation(subscription=subscription, actor=patient, reason="Unsure")
    clock.move_to(month(1), tick=False)
    run_billing_cycle()

    lifecycle.withdraw_scheduled_cancellation(
        subscription=subscription, actor=patient, reason="Changed my mind"
    )

    subscription.refresh_from_db()
    assert subscription.cancellation_scheduled_at is None
    assert WorkflowEvent.objects.filter(event_type="subscription.cancellation_withdrawn").count()
    clock.move_to(month(2), tick=False)
    run_billing_cycle()  # the final financed payment
    clock.move_to(month(3), tick=False)
    run_billing_cycle()  # and a regular renewal after it
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.orders.filter(kind=OrderKind.RECURRING).count() == 1
    assert cancelled_events(subscription) == 0
    with pytest.raises(StateConflict) as refused:
        lifecycle.withdraw_scheduled_cancellation(subscription=subscription, actor=cs)
    assert refused.value.code == "subscription.no_scheduled_cancellation"


def test_scheduling_needs_a_balance_and_only_one_request(clock, subscribe, financed, cs):
    with pytest.raises(StateConflict) as refused:
        lifecycle.schedule_cancellation(subscription=subscribe(), actor=cs, reason="Stop")
    assert refused.value.code == "subscription.no_recovery_balance"

    subscription = financed()
    lifecycle.schedule_cancellation(subscription=subscription, actor=cs, reason="Stop")
    with pytest.raises(StateConflict) as refused:
        lifecycle.schedule_cancellation(subscription=subscription, actor=cs, reason="Stop again")
    assert refused.value.code == "subscription.cancellation_already_scheduled"


def test_a_scheduled_cancellation_waits_for_a_late_final_payment(clock, financed, cs_user):
    """Billed through the recovery of the last payment-only cycle: it runs when that is paid."""
    from rest_framework.test import APIClient

    from tests.subscriptions.conftest import save_card
    from tests.subscriptions.test_recovery import failing_renewal

    subscription = financed()
    lifecycle.schedule_cancellation(
        subscription=subscription, actor=patient_actor(subscription.patient), reason="Stop"
    )
    clock.move_to(month(1), tick=False)
    run_billing_cycle()
    failing_renewal(clock, subscription, at=month(2))
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PAUSED

    last = subscription.orders.filter(kind=OrderKind.RECOVERY_CYCLE).latest("id")
    api = APIClient()
    api.force_authenticate(cs_user)
    card = save_card(subscription.patient)
    response = api.post(
        f"/api/v1/invoices/{last.invoice.pk}/pay/", {"payment_method": card.pk}, format="json"
    )
    assert response.status_code == 201
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert cancelled_events(subscription) == 1
    assert not WorkflowEvent.objects.filter(event_type="subscription.resumed").exists()


def test_change_status_of_a_cycle_order_does_not_touch_the_subscription(clock, subscribe, admin):
    subscription = subscribe()
    change_status(
        order=subscription.orders.get(),
        target=OrderStatus.CANCELLED,
        actor=admin,
        reason="Duplicate shipment request",
    )
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


def test_the_beat_sweep_runs_a_scheduled_cancellation_whose_balance_was_settled(clock, financed):
    from subscriptions.scheduled import run_scheduled_changes

    subscription = financed()
    lifecycle.schedule_cancellation(
        subscription=subscription, actor=patient_actor(subscription.patient), reason="Stop"
    )
    # The balance settled without passing through the payment hook (e.g. a billing admin
    # corrected the financing): the sweep is the safety net.
    subscription.refresh_from_db()
    subscription.financed_cycles_paid = 3
    subscription.save()

    assert run_scheduled_changes()["cancelled"] == 1
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.cancellation_cause == CancellationCause.SCHEDULED
    assert cancelled_events(subscription) == 1
    assert run_scheduled_changes()["cancelled"] == 0
