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
    card_removal_preflight,
    gateway_switch_preflight,
    order_preflight,
    refund_summary,
    subscription_cancel_preflight,
)
from integrations.beluga.states import VisitStatus
from orders.services import record_fact
from subscriptions.lifecycle import cancel_subscription
from subscriptions.models import Plan
from tests.emr.support.conftest import add_pharmacy_order, add_visit, link_subscription
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


@pytest.mark.parametrize("action", [Action.CANCEL, Action.REJECT])
def test_a_charged_and_refunded_order_is_not_called_unpaid(paid_order, system, action):
    order = paid_order("stripe", 45000)
    refund_order(order=order, actor=system, reason="Patient cancelled")

    preflight = order_preflight(order, action)

    sentence = _sentence(preflight, "payment")
    assert _states(preflight)["payment"] == Check.OK
    assert "Nothing was paid" not in sentence
    assert sentence == (
        "$450.00 was paid through Stripe and $450.00 refunded: nothing is held for this order."
    )


def test_a_partly_refunded_order_says_what_is_still_held(paid_order, system):
    order = paid_order("nmi", 45000)
    refund_order(order=order, actor=system, reason="Goodwill", amount_cents=10000)

    preflight = order_preflight(order, Action.CANCEL)

    assert _states(preflight)["payment"] == Check.WARN
    assert _sentence(preflight, "payment").startswith(
        "$450.00 was paid through NMI, $100.00 refunded: $350.00 is still held. Cancelling the "
        "order does not refund it"
    )


def test_an_unpaid_order_closes_its_open_invoice(gateways):
    order = make_order()
    preflight = order_preflight(order, Action.CANCEL)
    assert _sentence(preflight, "payment") == (
        f"Nothing was paid; the open invoice {order.invoice.number} closes with the order."
    )


def test_the_reject_checklist_is_its_own(paid_order, system):
    order = paid_order("stripe", 5000)
    preflight = order_preflight(order, Action.REJECT)

    assert preflight.heading == f"Before you reject {order.number}"
    assert _sentence(preflight, "order_status") == "Processing: it can be rejected."
    assert "This rejects the order (status REJECTED)" in _sentence(preflight, "what")
    assert "Rejecting the order does not refund it" in _sentence(preflight, "payment")
    assert "refund the patient: rejection alone returns no money" in preflight.will_not_do
    record_fact(order=order, fact="shipped", actor=system, reason="Carrier scan")
    shipped = order_preflight(order, Action.REJECT)
    assert shipped.blocked
    assert "Rejection may no longer be possible" in _sentence(shipped, "order_status")


def test_the_beluga_visit_checklist_checks_payment_prescription_fulfilment_and_subscription(
    paid_order,
):
    order = paid_order("stripe", 9000)
    link_subscription(order)
    add_visit(order)
    add_pharmacy_order(order)
    Prescription.objects.create(
        patient=order.patient, order=order, medication="Semaglutide", written_at=timezone.now()
    )

    preflight = order_preflight(order, Action.CANCEL_VISIT)

    assert preflight.heading == f"Before you cancel the Beluga visit of {order.number}"
    assert not preflight.blocked
    states = _states(preflight)
    assert states["beluga"] == Check.OK
    assert states["payment"] == states["prescription"] == Check.WARN
    assert states["pharmacy"] == states["subscription"] == Check.WARN
    assert "Cancelling the visit does not refund it" in _sentence(preflight, "payment")
    assert "escalate before cancelling the visit" in _sentence(preflight, "escalate")
    assert preflight.will_not_do == [
        "refund the patient",
        "cancel the order",
        "cancel the subscription",
        "void pharmacy fulfilment",
    ]


def test_the_beluga_visit_checklist_blocks_an_order_without_an_open_visit(paid_order):
    order = paid_order("stripe")
    assert _states(order_preflight(order, Action.CANCEL_VISIT))["beluga"] == Check.BLOCKED
    add_visit(order, status=VisitStatus.CANCELED)
    preflight = order_preflight(order, Action.CANCEL_VISIT)
    assert preflight.blocked
    assert "is canceled" in _sentence(preflight, "beluga")


def test_a_bulk_refund_adds_up_by_gateway(paid_order):
    orders = [paid_order("stripe", 30000), paid_order("stripe", 15000), paid_order("nmi", 12000)]
    unpaid = make_order()

    assert refund_summary([*orders, unpaid]) == [
        "To be refunded: NMI $120.00, Stripe $450.00.",
        f"Refused as things stand (see BLOCKED below): {unpaid.number}.",
    ]


def test_the_card_checklist_blocks_a_card_a_live_subscription_uses(paid_order):
    order = paid_order("stripe")
    card = order.patient.payment_methods.get()
    assert not card_removal_preflight(card).blocked
    subscription = SubscriptionFactory(patient=order.patient, payment_method=card)

    preflight = card_removal_preflight(card)

    assert preflight.blocked
    assert f"{subscription} (active) is charged to this card" in _sentence(
        preflight, "subscriptions"
    )


def test_the_gateway_checklist_says_whether_the_target_is_configured(gateways, settings):
    assert _states(gateway_switch_preflight("nmi"))["configured"] == Check.OK
    settings.NMI_API_URL = ""
    preflight = gateway_switch_preflight("nmi")
    assert preflight.blocked
    assert preflight.heading == "Before you make NMI the active gateway"
    assert _sentence(preflight, "configured").startswith("No: NMI_API_URL is not set.")


def test_the_api_serves_the_reject_and_visit_checklists(paid_order, api):
    order = paid_order("stripe")
    for action in ("reject", "cancel_visit"):
        response = api.get(f"/api/v1/orders/{order.pk}/preflight/", {"action": action})
        assert response.status_code == 200
        assert response.json()["action"] == action
        assert response.json()["order_number"] == order.number
    refused = api.get(f"/api/v1/orders/{order.pk}/preflight/", {"action": "switch_gateway"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "preflight.unknown_action"
