from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from billing import payments
from billing.models import Payment
from billing.states import InvoiceStatus, PaymentStatus
from emr.workflows.models import WorkflowEvent
from orders.states import OrderKind, OrderStatus, RecoveryStatus
from subscriptions import lifecycle
from subscriptions.billing_cycle import retry_recovery_charges, run_billing_cycle
from subscriptions.models import Subscription
from subscriptions.recovery import reactivate_after_payment
from subscriptions.states import SubscriptionStatus
from tests.subscriptions.conftest import (
    DECLINING_STRIPE_CARD,
    remove_card,
    save_card,
)

pytestmark = pytest.mark.django_db

RENEWAL = datetime(2026, 2, 15, 9, 0, tzinfo=UTC)


def failing_renewal(clock, subscription, *, at=RENEWAL):
    """The patient's only usable card now declines every charge; the renewal comes due."""
    subscription.refresh_from_db()
    remove_card(subscription.payment_method)
    save_card(subscription.patient, token=DECLINING_STRIPE_CARD)
    clock.move_to(at, tick=False)
    return run_billing_cycle()


def renewal_order(subscription):
    return subscription.orders.exclude(kind=OrderKind.SUBSCRIPTION_FIRST).get()


def test_a_declined_renewal_goes_into_recovery(clock, subscribe, settings):
    settings.RECOVERY_RETRY_DAYS = [2, 5]
    subscription = subscribe()

    assert failing_renewal(clock, subscription).outcomes == {"charge_failed": 1}

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PAUSED and subscription.awaiting_payment
    order = renewal_order(subscription)
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert order.invoice.status == InvoiceStatus.SENT
    assert order.recovery_status == RecoveryStatus.CHARGE_FAILED
    assert order.recovery_attempts == 1
    assert order.recovery_next_retry_at == RENEWAL + timedelta(days=2)
    failed = Payment.objects.get(invoice=order.invoice)
    assert failed.status == PaymentStatus.FAILED
    # One payment.failed (billing's, about the failed payment) and the pause.
    assert WorkflowEvent.objects.filter(event_type="payment.failed").count() == 1
    assert WorkflowEvent.objects.filter(event_type="subscription.paused").count() == 1


def test_paying_the_recovery_invoice_reactivates_the_subscription(
    clock, subscribe, cs_user, system
):
    subscription = subscribe()
    failing_renewal(clock, subscription)
    order = renewal_order(subscription)
    clock.shift(timedelta(hours=5))
    new_card = save_card(subscription.patient)  # the patient gives CS a working card

    api = APIClient()
    api.force_authenticate(cs_user)
    response = api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/", {"payment_method": new_card.pk}, format="json"
    )

    assert response.status_code == 201, response.json()
    order.refresh_from_db()
    assert order.invoice.status == InvoiceStatus.PAID
    assert order.status == OrderStatus.PROCESSING
    assert order.recovery_status == RecoveryStatus.RECOVERED
    assert order.recovery_next_retry_at is None
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE and not subscription.awaiting_payment
    assert WorkflowEvent.objects.filter(event_type="subscription.resumed").count() == 1
    # The schedule is unchanged: the next period still starts a month after the failed one.
    assert subscription.next_billing_at == datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
    # And a later retry sweep finds nothing to do.
    clock.shift(timedelta(days=10))
    assert retry_recovery_charges().outcomes == {}
    # Idempotent: the hook running again changes nothing and announces nothing.
    reactivate_after_payment(order=order, actor=system)
    assert WorkflowEvent.objects.filter(event_type="subscription.resumed").count() == 1


def test_retries_follow_the_schedule_and_then_stop(clock, subscribe, settings):
    settings.RECOVERY_RETRY_DAYS = [1, 3]
    subscription = subscribe()
    failing_renewal(clock, subscription)
    order = renewal_order(subscription)

    clock.move_to(RENEWAL + timedelta(hours=23), tick=False)
    assert retry_recovery_charges().outcomes == {}  # not yet
    clock.move_to(RENEWAL + timedelta(days=1), tick=False)
    assert retry_recovery_charges().outcomes == {"charge_failed": 1}
    order.refresh_from_db()
    assert order.recovery_attempts == 2
    assert order.recovery_next_retry_at == RENEWAL + timedelta(days=4)

    clock.move_to(RENEWAL + timedelta(days=4), tick=False)
    assert retry_recovery_charges().outcomes == {"charge_failed": 1}
    order.refresh_from_db()
    assert order.recovery_attempts == 3 and order.recovery_next_retry_at is None
    clock.move_to(RENEWAL + timedelta(days=30), tick=False)
    assert retry_recovery_charges().outcomes == {}
    # The invoice stays open for CS or the patient; nothing was billed twice for the period.
    assert order.invoice.status == InvoiceStatus.SENT
    assert Payment.objects.filter(invoice=order.invoice).count() == 3
    assert subscription.orders.count() == 2


def test_no_compatible_card_after_the_active_gateway_changed(clock, subscribe, system):
    subscription = subscribe()  # a Stripe card
    payments.set_active_gateway(gateway="nmi", actor=system, reason="Processor changed")
    clock.move_to(RENEWAL, tick=False)

    assert run_billing_cycle().outcomes == {"no_card": 1}

    order = renewal_order(subscription)
    assert order.recovery_status == RecoveryStatus.NEEDS_PAYMENT_METHOD
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert not Payment.objects.filter(invoice=order.invoice).exists()  # nothing was charged
    failed = WorkflowEvent.objects.get(event_type="payment.failed")
    assert failed.subject_key == f"order:{order.pk}"
    assert failed.payload["paymentRecovery"]["status"] == "NEEDS_PAYMENT_METHOD"
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.PAUSED

    # The patient saves a card with the active gateway; the next retry charges it.
    card = save_card(subscription.patient, gateway="nmi")
    clock.move_to(RENEWAL + timedelta(days=1), tick=False)
    assert retry_recovery_charges().outcomes == {"paid": 1}
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.payment_method == card  # it bills the card that works from now on
    order.refresh_from_db()
    assert order.recovery_status == RecoveryStatus.RECOVERED
    assert Payment.objects.get(invoice=order.invoice).gateway == "nmi"


@pytest.mark.parametrize("situation", ["removed", "other_vault"])
def test_every_kind_of_missing_card_needs_a_payment_method(clock, subscribe, system, situation):
    subscription = subscribe()
    if situation == "removed":
        remove_card(subscription.payment_method)
    if situation == "other_vault":
        payments.set_active_gateway(gateway="nmi", actor=system, reason="test")
        save_card(subscription.patient, gateway="nmi")
        payments.set_active_gateway(gateway="stripe", actor=system, reason="test")
        remove_card(subscription.payment_method)  # only the NMI card is left
    clock.move_to(RENEWAL, tick=False)

    assert run_billing_cycle().outcomes == {"no_card": 1}
    assert renewal_order(subscription).recovery_status == RecoveryStatus.NEEDS_PAYMENT_METHOD


def test_a_payment_never_reactivates_a_cancelled_subscription(clock, subscribe, admin, cs_user):
    subscription = subscribe()
    failing_renewal(clock, subscription)
    order = renewal_order(subscription)
    lifecycle.cancel_subscription(subscription=subscription, actor=admin, reason="Patient left")
    order.refresh_from_db()
    assert order.recovery_next_retry_at is None  # retries stop with the subscription

    api = APIClient()
    api.force_authenticate(cs_user)
    card = save_card(subscription.patient)
    response = api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/", {"payment_method": card.pk}, format="json"
    )

    assert response.status_code == 201  # the open invoice can still be paid
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.CANCELLED


def test_a_subscription_paused_by_staff_stays_paused_when_an_invoice_is_paid(
    clock, subscribe, admin, system
):
    subscription = subscribe()
    lifecycle.pause_subscription(subscription=subscription, actor=admin, reason="Travelling")
    first = subscription.orders.get()
    reactivate_after_payment(order=first, actor=system)
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.PAUSED


def test_resuming_a_subscription_waiting_for_payment_is_refused_to_cs(clock, subscribe, cs, admin):
    from emr.kernel.errors import StateConflict

    subscription = subscribe()
    failing_renewal(clock, subscription)
    invoice = renewal_order(subscription).invoice

    with pytest.raises(StateConflict) as refused:
        lifecycle.resume_subscription(subscription=subscription, actor=cs, reason="Patient asked")
    assert refused.value.code == "subscription.recovery_invoice_open"
    assert invoice.number in refused.value.detail
    assert "paying it reactivates the subscription" in refused.value.detail

    lifecycle.resume_subscription(subscription=subscription, actor=admin, reason="Reviewed")
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE
