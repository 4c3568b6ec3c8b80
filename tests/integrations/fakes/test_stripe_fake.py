"""What only our fake Stripe does (localstripe does not): idempotent replay, refund limits,
refunds that fail later, faults, and signed webhooks. Checked on the wire with the official SDK,
and through the adapter where the adapter's answer is what matters."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stripe

from integrations.gateways import stripe_gateway
from integrations.gateways.base import (
    AlreadyRefunded,
    GatewayRefused,
    OutcomeUnknown,
    RefundStatus,
)
from tests.fixtures.stripe import STRIPE_TEST_KEY, new_reference, run_stripe_fake

WEBHOOK_SECRET = "whsec_test_secret_for_tests"


@pytest.fixture
def fake(stripe_fake_server):
    stripe_fake_server.reset()
    return stripe_fake_server


@pytest.fixture
def gateway(fake):
    return fake.gateway()


@pytest.fixture
def sdk(fake):
    """The official SDK, for what the adapter hides: status codes, params, headers."""
    client = stripe.StripeClient(
        STRIPE_TEST_KEY, base_addresses={"api": fake.api_base}, max_network_retries=0
    )
    return client.v1


def make_charge(gateway, reference=None):
    card = gateway.save_card(token="pm_card_visa", customer_reference=new_reference("patient"))
    return gateway.charge(
        amount_cents=5000,
        currency="usd",
        payment_token=card.token,
        saved_card=True,
        reference=reference or new_reference("charge"),
    )


def refund(gateway, charge, amount_cents, reference=None):
    return gateway.refund(
        transaction_id=charge.transaction_id,
        amount_cents=amount_cents,
        currency="usd",
        reference=reference or new_reference("refund"),
    )


def test_the_same_idempotency_key_replays_the_stored_answer(fake, gateway, sdk):
    charge = make_charge(gateway)
    params = {"payment_intent": charge.transaction_id, "amount": 1000}
    key = {"idempotency_key": new_reference("refund")}

    first = sdk.refunds.create(params=params, options=key)
    again = sdk.refunds.create(params=params, options=key)

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(fake.refunds()) == 1


def test_the_same_key_with_another_request_is_refused(fake, gateway, sdk):
    charge = make_charge(gateway)
    reference = new_reference("refund")
    refund(gateway, charge, 1000, reference)

    with pytest.raises(stripe.IdempotencyError) as error:
        sdk.refunds.create(
            params={"payment_intent": charge.transaction_id, "amount": 2000},
            options={"idempotency_key": reference},
        )
    assert error.value.http_status == 400

    with pytest.raises(GatewayRefused, match="already used for a different request"):
        refund(gateway, charge, 2000, reference)
    assert len(fake.refunds()) == 1


def test_refunding_more_than_is_left_is_refused(gateway, sdk):
    charge = make_charge(gateway)
    refund(gateway, charge, 3000)

    with pytest.raises(stripe.InvalidRequestError) as error:
        sdk.refunds.create(params={"payment_intent": charge.transaction_id, "amount": 2500})
    assert (error.value.http_status, error.value.param) == (400, "amount")
    assert error.value.user_message == (
        "Refund amount ($25.00) is greater than unrefunded amount on charge ($20.00)"
    )

    with pytest.raises(GatewayRefused, match=r"greater than unrefunded amount") as refused:
        refund(gateway, charge, 2500)
    assert not isinstance(refused.value, AlreadyRefunded)


def test_refunding_a_fully_refunded_charge(fake, gateway, sdk):
    charge = make_charge(gateway)
    refund(gateway, charge, 5000)

    with pytest.raises(stripe.InvalidRequestError) as error:
        sdk.refunds.create(params={"payment_intent": charge.transaction_id, "amount": 100})
    assert error.value.code == "charge_already_refunded"

    with pytest.raises(AlreadyRefunded):
        refund(gateway, charge, 100)


def test_a_pending_refund_that_fails_gives_the_money_back(fake, gateway):
    charge = make_charge(gateway)
    reference = new_reference("refund")
    fake.next_refund("pending")

    pending = refund(gateway, charge, 5000, reference)
    assert pending.status is RefundStatus.PENDING
    with pytest.raises(AlreadyRefunded):  # a pending refund holds the whole amount
        refund(gateway, charge, 100)

    fake.settle_refund(pending.refund_id, "failed", failure_reason="lost_or_stolen_card")

    failed = gateway.find_refund(transaction_id=charge.transaction_id, reference=reference)
    assert failed.status is RefundStatus.FAILED
    assert failed.failure_reason == "The card was reported lost or stolen."
    assert refund(gateway, charge, 5000).status is RefundStatus.SUCCEEDED


def test_a_refund_declined_at_once_holds_no_money(fake, gateway):
    charge = make_charge(gateway)
    fake.next_refund("failed", failure_reason="expired_or_canceled_card")

    declined = refund(gateway, charge, 5000)

    assert declined.status is RefundStatus.FAILED
    assert declined.failure_reason == "The card has expired or was cancelled."
    assert refund(gateway, charge, 5000).status is RefundStatus.SUCCEEDED


def test_a_pending_refund_that_succeeds(fake, gateway):
    charge = make_charge(gateway)
    reference = new_reference("refund")
    fake.next_refund("pending")
    pending = refund(gateway, charge, 2000, reference)

    fake.settle_refund(pending.refund_id, "succeeded")

    found = gateway.find_refund(transaction_id=charge.transaction_id, reference=reference)
    assert found.status is RefundStatus.SUCCEEDED


def test_a_timed_out_refund_is_found_and_not_repeated(fake):
    gateway = fake.gateway(timeout=0.5)
    charge = make_charge(gateway)
    reference = new_reference("refund")
    fake.fault("hang", seconds=2)

    with pytest.raises(OutcomeUnknown, match="may or may not have happened"):
        refund(gateway, charge, 2000, reference)

    found = gateway.find_refund(transaction_id=charge.transaction_id, reference=reference)
    assert (found.amount_cents, found.status) == (2000, RefundStatus.SUCCEEDED)
    assert refund(gateway, charge, 2000, reference) == found  # a retry replays, moves nothing
    assert len(fake.refunds()) == 1


def test_a_charge_whose_answer_was_lost_is_found(fake, gateway):
    card = gateway.save_card(token="pm_card_visa", customer_reference=new_reference("patient"))
    reference = new_reference("charge")
    fake.fault("drop_after_apply")

    with pytest.raises(OutcomeUnknown):
        gateway.charge(
            amount_cents=4200,
            currency="usd",
            payment_token=card.token,
            saved_card=True,
            reference=reference,
        )

    found = gateway.find_charge(reference=reference)
    assert found.amount_cents == 4200
    assert found.card == card.card


def test_lookups_page_through_long_lists(monkeypatch, gateway):
    monkeypatch.setattr(stripe_gateway, "PAGE_SIZE", 1)
    first_reference = new_reference("charge")
    first = make_charge(gateway, first_reference)
    make_charge(gateway)
    refund_references = [new_reference("refund") for _ in range(3)]
    for reference in refund_references:
        refund(gateway, first, 1000, reference)

    assert gateway.find_charge(reference=first_reference) == first
    oldest = gateway.find_refund(
        transaction_id=first.transaction_id, reference=refund_references[0]
    )
    assert oldest.amount_cents == 1000


def test_unknown_parameters_are_refused_like_stripe(fake, sdk):
    with pytest.raises(stripe.InvalidRequestError) as error:
        sdk.customers.create(params={"emial": "typo@example.com"})

    assert (error.value.http_status, error.value.param) == (400, "emial")


def test_a_wrong_key_gets_stripes_401_envelope(fake):
    response = requests.get(
        f"{fake.api_base}/v1/refunds", headers={"Authorization": "Bearer sk_test_wrong"}, timeout=5
    )

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "sk_test_wrong" not in response.text


class WebhookReceiver:
    """A local endpoint that keeps every webhook POSTed to it: (raw body, Stripe-Signature)."""

    def __init__(self):
        self.deliveries: list[tuple[bytes, str]] = []
        deliveries = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                deliveries.append((body, self.headers["Stripe-Signature"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/stripe/"

    def events_for(self, payment_intent: str, count: int, timeout: float = 5) -> list:
        """The first `count` verified events about `payment_intent`, in the order sent."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [
                (body, signature)
                for body, signature in self.deliveries
                if json.loads(body)["data"]["object"].get("payment_intent") == payment_intent
            ]
            if len(matching) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert len(matching) >= count, f"{len(matching)} of {count} webhooks arrived"
        return [stripe.Webhook.construct_event(b, s, WEBHOOK_SECRET) for b, s in matching]


@pytest.fixture(scope="module")
def webhook_receiver():
    receiver = WebhookReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def fake_with_webhooks(webhook_receiver):
    with run_stripe_fake(webhook_url=webhook_receiver.url, webhook_secret=WEBHOOK_SECRET) as fake:
        yield fake


def test_refund_webhooks_are_signed_like_stripes(fake_with_webhooks, webhook_receiver):
    gateway = fake_with_webhooks.gateway()
    charge = make_charge(gateway)
    reference = new_reference("refund")
    refund(gateway, charge, 1500, reference)

    created, refunded = webhook_receiver.events_for(charge.transaction_id, count=2)

    assert created.type == "refund.created"
    assert created.data.object.metadata.reference == reference
    assert refunded.type == "charge.refunded"
    assert refunded.data.object.amount_refunded == 1500

    body, signature = webhook_receiver.deliveries[-1]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body + b" ", signature, WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_someone_else")


def test_a_failed_refund_sends_updated_then_failed(fake_with_webhooks, webhook_receiver):
    gateway = fake_with_webhooks.gateway()
    charge = make_charge(gateway)
    fake_with_webhooks.next_refund("pending")
    pending = refund(gateway, charge, 5000)

    fake_with_webhooks.settle_refund(pending.refund_id, "failed")

    events = webhook_receiver.events_for(charge.transaction_id, count=3)
    assert [e.type for e in events] == ["refund.created", "refund.updated", "refund.failed"]
    assert events[-1].data.object.failure_reason == "expired_or_canceled_card"


def test_dashboard_refunds_and_disputes_send_events(fake_with_webhooks, webhook_receiver):
    gateway = fake_with_webhooks.gateway()
    charge = make_charge(gateway)

    fake_with_webhooks.dashboard_refund(charge.transaction_id, amount=1000)
    fake_with_webhooks.dispute(charge.transaction_id)

    events = webhook_receiver.events_for(charge.transaction_id, count=3)
    assert [e.type for e in events] == [
        "refund.created",
        "charge.refunded",
        "charge.dispute.created",
    ]
    assert "reference" not in events[0].data.object.metadata  # not made by our app
    assert events[2].data.object.amount == 5000
    # The dashboard refund counts: our own refund can only return what is left.
    with pytest.raises(GatewayRefused, match=r"\(\$40\.00\)"):
        refund(gateway, charge, 5000)
