"""The guide's two checklists, computed from real data (orders paid through the local gateways)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Payment
from billing.refunds import refund_order
from emr.models import Prescription
from emr.support.preflight import (
    Action,
    Check,
    order_preflight,
    subscription_cancel_preflight,
)
from orders.services import record_fact
from subscriptions.lifecycle import cancel_subscription
from subscriptions.models import Plan
from tests.factories import SubscriptionFactory, make_order

pytestmark = pytest.mark.django_db


def _states(preflight) -> dict[str, str]:
    return {item.key: item.state for item in preflight.items}


def _sentence(preflight, key: str) -> str:
    return next(item.sentence for item in preflight.items if item.key == key)


def test_a_paid_order_can_be_refunded_and_the_checklist_says_what_it_will_not_do(paid_order):
    order = paid_order("stripe", 9900)
    preflight = order_preflight(order, Action.REFUND)

    assert not preflight.blocked
    states = _states(preflight)
    assert states["payment"] == states["gateway"] == states["transaction_id"] == Check.OK
    assert "Stripe" in _sentence(preflight, "gateway")
    assert "$99.00 of $99.00" in _sentence(preflight, "remaining")
    assert "cancel the patient's subscription" in preflight.will_not_do
    assert "void a pharmacy order" in preflight.will_not_do


def test_an_unpaid_order_is_blocked_with_the_guides_reason(gateways):
    preflight = order_preflight(make_order(), Action.REFUND)
    assert preflight.blocked
    assert _states(preflight)["payment"] == Check.BLOCKED
    assert "cannot refund this order automatically" in _sentence(preflight, "payment")


def test_a_refunded_order_is_blocked(paid_order, system):
    order = paid_order("nmi", 4000)
    refund_order(order=order, actor=system, reason="refund")
    preflight = order_preflight(order, Action.REFUND)
    assert _states(preflight)["order_status"] == Check.BLOCKED
    assert _states(preflight)["remaining"] == Check.BLOCKED


def test_a_payment_without_transaction_id_is_blocked(paid_order):
    order = paid_order("stripe")
    Payment.objects.filter(invoice__order=order).update(transaction_id="")
    assert _states(order_preflight(order, Action.REFUND))["transaction_id"] == Check.BLOCKED


def test_refund_warns_about_shipment_prescription_and_subscription(paid_order, system):
    order = paid_order("stripe")
    order.subscription = SubscriptionFactory(patient=order.patient)
    order.save()
    Prescription.objects.create(
        patient=order.patient, order=order, medication="Semaglutide", written_at=timezone.now()
    )
    record_fact(order=order, fact="shipped", actor=system, reason="Carrier scan")

    states = _states(order_preflight(order, Action.REFUND))
    assert states["shipment"] == states["prescription"] == states["subscription"] == Check.WARN


def test_cancel_of_a_paid_order_warns_that_it_refunds_nothing(paid_order):
    preflight = order_preflight(paid_order("stripe", 5000), Action.CANCEL)
    assert not preflight.blocked
    assert _states(preflight)["payment"] == Check.WARN
    assert "does not refund" in _sentence(preflight, "payment")
    assert "refund the patient: cancellation alone returns no money" in preflight.will_not_do


def test_cancel_after_shipment_is_blocked_as_a_return_refund_case(paid_order, system):
    order = paid_order("stripe")
    record_fact(order=order, fact="shipped", actor=system, reason="Carrier scan")
    preflight = order_preflight(order, Action.CANCEL)
    assert preflight.blocked
    assert "return/refund policy" in _sentence(preflight, "order_status")


def test_the_checklist_costs_the_same_queries_however_long_the_history(paid_order, system):
    small = paid_order("stripe", 3000)
    busy = paid_order("stripe", 9000)
    for cents in (1000, 1000, 1000):
        refund_order(order=busy, actor=system, reason="partial", amount_cents=cents)

    def queries(order) -> int:
        with CaptureQueriesContext(connection) as captured:
            order_preflight(order, Action.REFUND)
        return len(captured.captured_queries)

    assert queries(small) == queries(busy)


def test_subscription_cancel_checklist_shows_the_financed_balance():
    subscription = SubscriptionFactory()
    Plan.objects.filter(pk=subscription.plan_id).update(financed_cycles=6)
    preflight = subscription_cancel_preflight(subscription)
    assert _states(preflight)["recovery"] == Check.WARN
    assert "remaining financed balance" in _sentence(preflight, "recovery")
    assert "refund past orders" in preflight.will_not_do


def test_subscription_cancel_checklist_blocks_an_already_cancelled_one(system):
    subscription = SubscriptionFactory()
    cancel_subscription(subscription=subscription, actor=system, reason="Patient request")
    preflight = subscription_cancel_preflight(subscription)
    assert preflight.blocked
    assert "cannot be reactivated" in _sentence(preflight, "status")
