"""Stripe events end to end: the fake Stripe server signs and POSTs them to the app running as
a real HTTP server (pytest-django's live_server); the app verifies, stores, dedupes, applies."""

import hashlib
import hmac
import json
import time

import pytest
import requests
from django.test import Client

from billing import payments
from billing.models import GatewayEvent, Payment
from billing.refunds import refund_order
from billing.states import PaymentKind, PaymentStatus
from emr.kernel.actors import Actor
from orders.models import Order
from orders.states import OrderStatus
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import STRIPE_CARD
from tests.fixtures.stripe import STRIPE_TEST_KEY, run_stripe_fake

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK_SECRET = "whsec_test_local_only"
SYSTEM = Actor.system("webhook-tests")


@pytest.fixture
def stripe_with_webhooks(live_server, settings):
    with run_stripe_fake(
        webhook_url=f"{live_server.url}/webhooks/stripe/", webhook_secret=WEBHOOK_SECRET
    ) as fake:
        settings.STRIPE_SECRET_KEY = STRIPE_TEST_KEY
        settings.STRIPE_API_BASE = fake.api_base
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        yield fake
        # A delivery still being handled by the live server would race the database flush
        # that ends the test.
        fake.wait_for_webhooks()


def _paid_order(cents: int) -> Order:
    payments.set_active_gateway(gateway="stripe", actor=SYSTEM, reason="test")
    patient = PatientFactory()
    card = payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=SYSTEM)
    order = make_order(patient=patient, products=[ProductFactory(price_cents=cents)])
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=SYSTEM)
    return Order.objects.get(pk=order.pk)


def _charge(order: Order) -> Payment:
    return Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)


def test_a_pending_refund_settles_when_stripe_says_so(stripe_with_webhooks):
    order = _paid_order(6400)
    stripe_with_webhooks.next_refund("pending")
    refund = refund_order(order=order, actor=SYSTEM, reason="Patient request")
    assert refund.status == PaymentStatus.PENDING

    stripe_with_webhooks.settle_refund(refund.transaction_id, "succeeded")

    stripe_with_webhooks.wait_for_webhooks()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    refund.refresh_from_db()
    assert refund.status == PaymentStatus.REFUNDED
    order.refresh_from_db()
    assert order.refunded_cents == 6400
    assert order.invoice.status == "CANCELLED"
    applied = GatewayEvent.objects.get(event_type="refund.updated")
    assert applied.outcome == GatewayEvent.Outcome.APPLIED


def test_a_pending_refund_that_fails_leaves_the_order_as_it_was(stripe_with_webhooks):
    order = _paid_order(3100)
    stripe_with_webhooks.next_refund("pending")
    refund = refund_order(order=order, actor=SYSTEM, reason="Patient request")

    stripe_with_webhooks.settle_refund(refund.transaction_id, "failed")

    stripe_with_webhooks.wait_for_webhooks()
    assert Payment.objects.get(pk=refund.pk).status == PaymentStatus.FAILED
    order.refresh_from_db()
    assert (order.status, order.refunded_cents) == (OrderStatus.PROCESSING, 0)
    assert order.invoice.status == "PAID"


def test_a_dashboard_refund_is_recorded_and_flagged_without_touching_the_order(
    stripe_with_webhooks,
):
    order = _paid_order(4500)
    stripe_with_webhooks.dashboard_refund(_charge(order).transaction_id, amount=1500)

    stripe_with_webhooks.wait_for_webhooks()
    flagged = Payment.objects.filter(invoice__order=order, kind=PaymentKind.REFUND).first()
    assert (flagged.status, flagged.amount_cents, flagged.needs_review) == (
        PaymentStatus.REFUNDED,
        1500,
        True,
    )
    assert "outside the app" in flagged.review_note
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING  # the gateway's word alone changes no status
    assert order.refunded_cents == 1500
    assert GatewayEvent.objects.filter(outcome=GatewayEvent.Outcome.NEEDS_REVIEW).exists()


def test_a_dispute_is_stored_for_review(stripe_with_webhooks):
    order = _paid_order(2000)
    stripe_with_webhooks.dispute(_charge(order).transaction_id)
    stripe_with_webhooks.wait_for_webhooks()
    event = GatewayEvent.objects.filter(event_type="charge.dispute.created").first()
    assert event.outcome == GatewayEvent.Outcome.NEEDS_REVIEW
    assert "proof of payment" in event.outcome_detail


def test_bad_signatures_are_refused_and_replays_ignored(stripe_with_webhooks, live_server):
    order = _paid_order(2600)
    stripe_with_webhooks.dashboard_refund(_charge(order).transaction_id)
    stripe_with_webhooks.wait_for_webhooks()
    stored = GatewayEvent.objects.filter(event_type="refund.created").first()
    body = json.dumps(stored.payload).encode()
    url = f"{live_server.url}/webhooks/stripe/"

    forged = requests.post(url, data=body, headers={"Stripe-Signature": "t=1,v1=00"}, timeout=5)
    assert forged.status_code == 400
    assert forged.json()["code"] == "webhook.bad_signature"

    signature = _signed(body)
    replay = Client().post(
        "/webhooks/stripe/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
    assert replay.status_code == 200
    assert GatewayEvent.objects.filter(event_id=stored.event_id).count() == 1
    assert Payment.objects.filter(invoice__order=order, kind=PaymentKind.REFUND).count() == 1


def _signed(body: bytes, timestamp: int | None = None) -> str:
    """A valid Stripe-Signature for `body`, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@pytest.mark.parametrize("offset_seconds", [3600, -3600], ids=["an-hour-ahead", "an-hour-old"])
def test_a_signature_an_hour_from_now_is_refused_either_way(stripe_with_webhooks, offset_seconds):
    body = json.dumps({"id": "evt_clock", "type": "refund.created", "data": {"object": {}}})
    signature = _signed(body.encode(), timestamp=int(time.time()) + offset_seconds)
    response = Client().post(
        "/webhooks/stripe/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
    assert response.status_code == 400
    assert response.json()["code"] == "webhook.bad_signature"
    assert not GatewayEvent.objects.filter(event_id="evt_clock").exists()


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"id": "evt_no_data", "type": "refund.created"}, "data.object is missing"),
        ({"id": "evt_no_object", "type": "refund.created", "data": {}}, "data.object is missing"),
        ({"id": "evt_no_type", "data": {"object": {}}}, "type is missing"),
    ],
    ids=["no-data", "no-object", "no-type"],
)
def test_a_signed_event_missing_its_data_is_answered_400_and_recorded_failed(
    stripe_with_webhooks, event, reason
):
    response = _post_signed(json.dumps(event).encode())

    assert response.status_code == 400
    assert response.json()["code"] == "webhook.invalid"
    stored = GatewayEvent.objects.get(event_id=event["id"])
    assert stored.outcome == GatewayEvent.Outcome.FAILED
    assert reason in stored.outcome_detail


@pytest.mark.parametrize("body", [b"[]", b'{"type": "refund.created"}', b'{"id": 7}', b"not json"])
def test_a_signed_body_without_an_event_id_is_answered_400_and_not_stored(
    stripe_with_webhooks, body
):
    response = _post_signed(body)

    assert response.status_code == 400
    assert response.json()["code"] == "webhook.invalid"
    assert not GatewayEvent.objects.exists()


def _post_signed(body: bytes):
    return Client().post(
        "/webhooks/stripe/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=_signed(body),
    )
