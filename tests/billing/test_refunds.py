"""The refund flow end to end, against the local Stripe and NMI servers (nothing of ours patched):
the guide's eight steps, every failure mode, and money moving at most once."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from billing import payments
from billing.models import Invoice, Payment, RefundAttempt
from billing.refund_reconciler import reconcile_refunds
from billing.refunds import refund_order
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.workflows.models import WorkflowEvent
from orders.models import Order
from orders.states import OrderStatus
from tests.factories import make_order

pytestmark = pytest.mark.django_db


def _events(order: Order) -> list[str]:
    return list(
        WorkflowEvent.objects.filter(subject_key=f"order:{order.pk}")
        .order_by("id")
        .values_list("event_type", flat=True)
    )


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _stripe_refunds(gateways) -> list[dict]:
    return gateways.stripe.refunds()


def _nmi_refunds(gateways) -> list[dict]:
    return [row for row in gateways.nmi.transactions() if row["type"] in {"refund", "void"}]


def test_stripe_and_nmi_orders_each_refund_through_their_own_gateway(
    paid_order, gateways, cs_user, system
):
    stripe_order = paid_order("stripe", 12000)
    # The clinic switches to NMI: new money goes there, old Stripe money still goes back to Stripe.
    nmi_order = paid_order("nmi", 8800)
    assert payments.active_gateway() == "nmi"
    api = _api(cs_user)

    for order, gateway in [(stripe_order, "stripe"), (nmi_order, "nmi")]:
        charge = Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)
        assert (charge.gateway, charge.status) == (gateway, PaymentStatus.SUCCEEDED)
        events_before = _events(order)

        response = api.post(
            f"/api/v1/orders/{order.pk}/transition/",
            {"status": "REFUNDED", "reason": "Patient changed their mind"},
            format="json",
        )

        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["status"] == "REFUNDED" and body["locked"] is True
        assert body["invoice"]["status"] == "CANCELLED"
        assert body["refunded_cents"] == order.total_cents
        refund_row = next(p for p in body["payments"] if p["kind"] == "REFUND")
        assert refund_row["status"] == "REFUNDED"
        assert refund_row["gateway"] == gateway
        assert refund_row["refund_of"] == charge.pk
        assert refund_row["amount_cents"] == order.total_cents
        # The original charge row is never rewritten.
        charge.refresh_from_db()
        assert charge.status == PaymentStatus.SUCCEEDED
        new_events = _events(order)[len(events_before) :]
        assert "order.refunded" in new_events and "order.updated" in new_events
        latest = Order.history.filter(id=order.pk).latest("history_id")
        assert (latest.status, latest.history_actor, latest.history_door) == (
            "REFUNDED",
            "cs-agent",
            "api",
        )
        assert latest.history_change_reason == "Patient changed their mind"

    stripe_refunds = _stripe_refunds(gateways)
    assert [(r["payment_intent"], r["amount"]) for r in stripe_refunds] == [
        (Payment.objects.get(invoice__order=stripe_order, kind="CHARGE").transaction_id, 12000)
    ]
    nmi_refunds = _nmi_refunds(gateways)
    nmi_charge = Payment.objects.get(invoice__order=nmi_order, kind="CHARGE")
    assert len(nmi_refunds) == 1
    assert nmi_refunds[0]["parent_transaction_id"] == nmi_charge.transaction_id
    assert nmi_refunds[0]["amount_cents"] == 8800


def test_partial_refunds_then_the_rest(paid_order, gateways, cs_user):
    order = paid_order("stripe", 10000)
    api = _api(cs_user)

    first = api.post(
        f"/api/v1/orders/{order.pk}/refund/",
        {"reason": "One session unused", "amount_cents": 2500},
        format="json",
    )
    assert first.status_code == 201, first.json()
    assert first.json()["status"] == "REFUNDED" and first.json()["amount_cents"] == 2500
    detail = api.get(f"/api/v1/orders/{order.pk}/").json()
    assert detail["status"] != "REFUNDED"
    assert detail["refunded_cents"] == 2500
    assert detail["invoice"]["status"] == "PAID"

    too_much = api.post(
        f"/api/v1/orders/{order.pk}/refund/", {"reason": "x", "amount_cents": 7501}, format="json"
    )
    assert too_much.status_code == 400
    assert too_much.json()["code"] == "refund.amount_exceeds_remaining"

    rest = api.post(f"/api/v1/orders/{order.pk}/refund/", {"reason": "Rest"}, format="json")
    assert rest.status_code == 201
    assert rest.json()["amount_cents"] == 7500
    detail = api.get(f"/api/v1/orders/{order.pk}/").json()
    assert (detail["status"], detail["refunded_cents"]) == ("REFUNDED", 10000)
    assert [r["amount"] for r in _stripe_refunds(gateways)] == [2500, 7500]


@pytest.mark.parametrize("amount", [0, -100, 12.5, "500", True, None])
def test_bad_amounts_answer_400_and_call_no_gateway(paid_order, gateways, cs_user, amount):
    order = paid_order("stripe", 5000)
    payload = {"reason": "x", "amount_cents": amount}
    response = _api(cs_user).post(f"/api/v1/orders/{order.pk}/refund/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert _stripe_refunds(gateways) == []
    assert not RefundAttempt.objects.exists()


def test_over_refund_answers_400_and_calls_no_gateway(paid_order, gateways, cs_user):
    order = paid_order("nmi", 5000)
    response = _api(cs_user).post(
        f"/api/v1/orders/{order.pk}/refund/", {"reason": "x", "amount_cents": 5001}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "refund.amount_exceeds_remaining"
    assert _nmi_refunds(gateways) == []


def _assert_unchanged(order: Order, status: str, invoice_status: str | None) -> None:
    order.refresh_from_db()
    assert order.status == status
    assert order.refunded_cents == 0
    if invoice_status:
        assert Invoice.objects.get(order=order).status == invoice_status
    assert not Payment.objects.filter(invoice__order=order, kind=PaymentKind.REFUND).exists()
    assert "order.refunded" not in _events(order)


def test_failure_no_successful_payment(gateways, cs_user):
    order = make_order()
    response = _api(cs_user).post(
        f"/api/v1/orders/{order.pk}/transition/",
        {"status": "REFUNDED", "reason": "x"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "refund.no_successful_payment"
    assert "cannot refund it automatically" in response.json()["detail"]
    _assert_unchanged(order, OrderStatus.PENDING, InvoiceStatus.SENT)


def test_failure_no_invoice(gateways, system, cs_user):
    order = make_order()
    # An order whose invoice is missing (imported data): delete it as a migration script might.
    Invoice.objects.filter(order=order).delete()
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=system, reason="x")
    assert refused.value.code == "refund.no_invoice"
    _assert_unchanged(order, OrderStatus.PENDING, None)


def test_failure_no_transaction_id(paid_order, system):
    order = paid_order("stripe")
    charge = Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)
    Payment.objects.filter(pk=charge.pk).update(transaction_id="")
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=system, reason="x")
    assert refused.value.code == "refund.no_transaction_id"
    _assert_unchanged(order, OrderStatus.PROCESSING, InvoiceStatus.PAID)


def test_failure_gateway_not_configured(paid_order, settings, system):
    order = paid_order("nmi")
    settings.NMI_SECURITY_KEY = ""
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=system, reason="x")
    assert refused.value.code == "refund.gateway_not_configured"
    assert refused.value.http_status == 502
    _assert_unchanged(order, OrderStatus.PROCESSING, InvoiceStatus.PAID)


def test_failure_credentials_now_for_another_account(paid_order, settings, gateways, system):
    order = paid_order("stripe")
    settings.STRIPE_SECRET_KEY = "sk_test_another_clinic_account"
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=system, reason="x")
    assert refused.value.code == "refund.gateway_auth_failed"
    assert "wrong account" in refused.value.detail
    assert _stripe_refunds(gateways) == []
    _assert_unchanged(order, OrderStatus.PROCESSING, InvoiceStatus.PAID)


def test_failure_credentials_invalid(paid_order, settings, gateways, system):
    order = paid_order("nmi")
    # Same account id configured, but the key itself was revoked at NMI.
    settings.NMI_MERCHANT_ACCOUNT = Payment.objects.get(
        invoice__order=order, kind="CHARGE"
    ).merchant_account
    settings.NMI_SECURITY_KEY = "revoked-key"
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=system, reason="x")
    assert refused.value.code == "refund.gateway_auth_failed"
    assert "revoked-key" not in refused.value.detail
    _assert_unchanged(order, OrderStatus.PROCESSING, InvoiceStatus.PAID)
    attempt = RefundAttempt.objects.get(order=order)
    assert (attempt.status, attempt.error_code) == ("FAILED", "refund.gateway_auth_failed")


def test_failure_gateway_refuses(paid_order, gateways, system):
    order = paid_order("stripe", 4000)
    charge = Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)
    # Refunded in the Stripe dashboard, outside the app: Stripe refuses a second refund.
    gateways.stripe.dashboard_refund(charge.transaction_id)
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=system, reason="x")
    assert refused.value.code == "refund.already_refunded"
    assert len(_stripe_refunds(gateways)) == 1
    _assert_unchanged(order, OrderStatus.PROCESSING, InvoiceStatus.PAID)


def test_failure_already_refunded(paid_order, gateways, system):
    order = paid_order("nmi", 3000)
    refund_order(order=order, actor=system, reason="first")
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=system, reason="second")
    assert refused.value.code == "refund.already_refunded"
    assert len(_nmi_refunds(gateways)) == 1


def test_a_refunded_order_refuses_further_edits(paid_order, cs_user):
    order = paid_order("stripe")
    refund_order(order=order, actor=Actor.staff(cs_user, door=Door.ADMIN), reason="refund")
    api = _api(cs_user)
    for status in ["CANCELLED", "SHIPPED", "COMPLETED", "RETURNED", "REJECTED"]:
        response = api.post(
            f"/api/v1/orders/{order.pk}/transition/",
            {"status": status, "reason": "x"},
            format="json",
        )
        assert response.status_code == 409
        assert response.json()["code"] == "order.locked"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


def test_medical_ops_may_not_refund(paid_order, medical_ops, gateways):
    order = paid_order("stripe")
    response = _api(medical_ops).post(
        f"/api/v1/orders/{order.pk}/refund/", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert _stripe_refunds(gateways) == []


def test_a_refund_the_gateway_declines_at_once_is_recorded_and_may_be_tried_again(
    paid_order, gateways, cs_user
):
    order = paid_order("stripe", 7000)
    gateways.stripe.next_refund("failed", failure_reason="expired_or_canceled_card")
    api = _api(cs_user)

    declined = api.post(f"/api/v1/orders/{order.pk}/refund/", {"reason": "x"}, format="json")

    assert declined.status_code == 502
    assert declined.json()["code"] == "refund.gateway_failed"
    assert "The card has expired or was cancelled." in declined.json()["detail"]
    attempt = RefundAttempt.objects.get(order=order)
    assert (attempt.status, attempt.error_code) == (
        RefundAttemptStatus.FAILED,
        "refund.gateway_failed",
    )
    assert attempt.error_message == declined.json()["detail"]
    _assert_unchanged(order, OrderStatus.PROCESSING, InvoiceStatus.PAID)

    retried = api.post(f"/api/v1/orders/{order.pk}/refund/", {"reason": "x"}, format="json")

    assert retried.status_code == 201, retried.json()
    assert retried.json()["status"] == "REFUNDED"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    assert [r["status"] for r in _stripe_refunds(gateways)] == ["failed", "succeeded"]


def test_a_pending_stripe_refund_settles_later(paid_order, gateways, system):
    order = paid_order("stripe", 6000)
    gateways.stripe.next_refund("pending")

    refund = refund_order(order=order, actor=system, reason="Bank refund")

    assert refund.status == PaymentStatus.PENDING
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING  # not refunded until the money is back
    assert order.refunded_cents == 0
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=system, reason="again")
    assert refused.value.code == "refund.already_refunded"  # nothing left: it is in flight
    assert RefundAttempt.objects.get(order=order).status == RefundAttemptStatus.SUCCEEDED


def _statuses(order: Order, refund: Payment) -> tuple:
    order.refresh_from_db()
    refund.refresh_from_db()
    return (order.status, order.refunded_cents, order.invoice.status, refund.status)


def test_without_webhooks_the_janitor_settles_a_pending_stripe_refund(
    paid_order, gateways, settings, system
):
    settings.STRIPE_WEBHOOK_SECRET = ""  # nothing reports the refund's outcome to the app
    order = paid_order("stripe", 6000)
    gateways.stripe.next_refund("pending")
    refund = refund_order(order=order, actor=system, reason="Bank refund")

    assert reconcile_refunds(older_than=timedelta(0)) == 0  # still pending at the gateway
    gateways.stripe.settle_refund(refund.transaction_id, "succeeded")
    assert reconcile_refunds() == 0  # not asked about before PENDING_REFUND_CHECK_AFTER_SECONDS
    assert _statuses(order, refund) == ("PROCESSING", 0, "PAID", "PENDING")
    before = WorkflowEvent.objects.order_by("-id").values_list("id", flat=True).first()

    assert reconcile_refunds(older_than=timedelta(0)) == 1

    assert _statuses(order, refund) == ("REFUNDED", 6000, "CANCELLED", "REFUNDED")
    events = WorkflowEvent.objects.filter(pk__gt=before).order_by("id")
    assert [(e.event_type, e.subject_key) for e in events] == [
        ("payment.refunded", f"payment:{refund.pk}"),
        ("order.refunded", f"order:{order.pk}"),
        ("order.updated", f"order:{order.pk}"),
    ]
    assert events.last().payload["statusChange"] == {"from": "PROCESSING", "to": "REFUNDED"}
    assert reconcile_refunds(older_than=timedelta(0)) == 0  # settled for good: not asked again


def test_without_webhooks_the_janitor_records_a_pending_stripe_refund_that_failed(
    paid_order, gateways, settings, system
):
    settings.STRIPE_WEBHOOK_SECRET = ""
    order = paid_order("stripe", 6000)
    gateways.stripe.next_refund("pending")
    refund = refund_order(order=order, actor=system, reason="Bank refund")
    gateways.stripe.settle_refund(refund.transaction_id, "failed", failure_reason="declined")

    assert reconcile_refunds(older_than=timedelta(0)) == 1

    assert _statuses(order, refund) == ("PROCESSING", 0, "PAID", "FAILED")
    assert refund.failure_message == "The card issuer declined the refund."
    assert reconcile_refunds(older_than=timedelta(0)) == 0
    # The money never left: the order can be refunded again, and this time it settles at once.
    again = refund_order(order=order, actor=system, reason="Second try")
    assert _statuses(order, again) == ("REFUNDED", 6000, "CANCELLED", "REFUNDED")
