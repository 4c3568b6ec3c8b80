"""NMI events end to end: the fake NMI server signs and POSTs them, as NMI does, to the app running
as a real HTTP server (pytest-django's live_server); the app verifies, stores, dedupes, applies."""

import json
import re

import pytest
import requests

from billing import payments
from billing.models import GatewayEvent, Payment
from billing.refunds import refund_order
from billing.states import Gateway, PaymentKind, PaymentStatus
from emr.kernel.actors import Actor
from emr.workflows.models import WorkflowEvent
from orders.models import Order
from orders.states import OrderStatus
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import NMI_CARD
from tests.fixtures.nmi import run_nmi_fake

pytestmark = pytest.mark.django_db(transaction=True)

SIGNING_KEY = "nmi-webhook-signing-key-for-tests"
SYSTEM = Actor.system("webhook-tests")


@pytest.fixture
def nmi_with_webhooks(live_server, settings):
    with run_nmi_fake(
        webhook_url=f"{live_server.url}/webhooks/nmi/", signing_key=SIGNING_KEY
    ) as fake:
        settings.NMI_SECURITY_KEY = fake.security_key
        settings.NMI_API_URL = fake.api_url
        settings.NMI_QUERY_URL = fake.query_url
        settings.NMI_WEBHOOK_SIGNING_KEY = SIGNING_KEY
        settings.GATEWAY_TIMEOUT_SECONDS = 5
        yield fake
        # A delivery still being handled by the live server would race the database flush
        # that ends the test.
        fake.wait_for_webhooks()


def _paid_order(cents: int) -> Order:
    payments.set_active_gateway(gateway="nmi", actor=SYSTEM, reason="test")
    patient = PatientFactory()
    card = payments.save_card(patient=patient, gateway="nmi", token=NMI_CARD, actor=SYSTEM)
    order = make_order(patient=patient, products=[ProductFactory(price_cents=cents)])
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=SYSTEM)
    return Order.objects.get(pk=order.pk)


def _charge(order: Order) -> Payment:
    return Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)


def _refunds(order: Order) -> list[Payment]:
    return list(Payment.objects.filter(invoice__order=order, kind=PaymentKind.REFUND))


def _nmi_event(event_type: str) -> GatewayEvent:
    return GatewayEvent.objects.get(gateway=Gateway.NMI, event_type=event_type)


def _workflow_events(order: Order) -> list[str]:
    return list(
        WorkflowEvent.objects.filter(subject_key=f"order:{order.pk}").values_list(
            "event_type", flat=True
        )
    )


def test_a_portal_refund_is_recorded_and_flagged_like_a_dashboard_refund(nmi_with_webhooks):
    order = _paid_order(4500)
    nmi_with_webhooks.portal_refund(_charge(order).transaction_id, amount="15.00")

    nmi_with_webhooks.wait_for_webhooks()
    [flagged] = _refunds(order)
    assert (flagged.status, flagged.amount_cents, flagged.needs_review) == (
        PaymentStatus.REFUNDED,
        1500,
        True,
    )
    assert "outside the app" in flagged.review_note
    assert flagged.refund_of == _charge(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING  # the gateway's word alone changes no status
    assert order.refunded_cents == 1500
    assert "order.updated" in _workflow_events(order)
    event = _nmi_event("transaction.refund.success")
    assert event.outcome == GatewayEvent.Outcome.NEEDS_REVIEW
    assert "outside the app" in event.outcome_detail


def test_a_portal_void_is_recorded_as_the_whole_sale_returned(nmi_with_webhooks):
    order = _paid_order(3900)
    nmi_with_webhooks.portal_void(_charge(order).transaction_id)

    nmi_with_webhooks.wait_for_webhooks()
    [flagged] = _refunds(order)
    assert (flagged.status, flagged.amount_cents, flagged.needs_review) == (
        PaymentStatus.REFUNDED,
        3900,
        True,
    )
    order.refresh_from_db()
    assert (order.status, order.refunded_cents) == (OrderStatus.PROCESSING, 3900)
    assert _nmi_event("transaction.void.success").outcome == GatewayEvent.Outcome.NEEDS_REVIEW


@pytest.mark.parametrize(
    ("amount", "nmi_event"),
    [(None, "transaction.void.success"), (1000, "transaction.refund.success")],
    ids=["void", "partial-refund"],
)
def test_the_apps_own_sale_and_refund_are_recognised_and_not_recorded_twice(
    nmi_with_webhooks, amount, nmi_event
):
    order = _paid_order(5200)
    refund = refund_order(order=order, actor=SYSTEM, reason="Patient request", amount_cents=amount)

    nmi_with_webhooks.wait_for_webhooks()
    assert _refunds(order) == [refund]
    refund.refresh_from_db()
    assert (refund.status, refund.needs_review) == (PaymentStatus.REFUNDED, False)
    order.refresh_from_db()
    assert order.refunded_cents == (amount or 5200)
    sale = _nmi_event("transaction.sale.success")
    assert (sale.outcome, sale.outcome_detail) == (
        GatewayEvent.Outcome.APPLIED,
        "the app's own charge: already recorded, nothing created",
    )
    assert _nmi_event(nmi_event).outcome == GatewayEvent.Outcome.APPLIED
    assert all(status == 200 for status in _statuses(nmi_with_webhooks))


def test_a_resent_event_is_stored_once_and_processed_once(nmi_with_webhooks):
    order = _paid_order(2600)
    nmi_with_webhooks.portal_refund(_charge(order).transaction_id)
    nmi_with_webhooks.wait_for_webhooks()
    event = _nmi_event("transaction.refund.success")

    nmi_with_webhooks.resend_webhook(event.event_id)

    nmi_with_webhooks.wait_for_webhooks()
    assert _statuses(nmi_with_webhooks)[-1] == 200
    event.refresh_from_db()
    assert (event.outcome, event.deliveries) == (GatewayEvent.Outcome.NEEDS_REVIEW, 2)
    assert GatewayEvent.objects.filter(event_id=event.event_id).count() == 1
    assert len(_refunds(order)) == 1
    order.refresh_from_db()
    assert order.refunded_cents == 2600


def test_what_nmi_did_not_sign_is_refused_and_not_stored(nmi_with_webhooks, live_server, settings):
    url = f"{live_server.url}/webhooks/nmi/"
    body = json.dumps(
        {
            "event_id": "evt-forged",
            "event_type": "transaction.refund.success",
            "event_body": {"transaction_id": "1", "action": {"action_type": "refund"}},
        }
    )
    for headers in [{}, {"Webhook-Signature": "t=abc,s=00"}, {"Webhook-Signature": "t=1,s=é"}]:
        refused = requests.post(url, data=body.encode(), headers=headers, timeout=5)
        assert refused.status_code == 400
        assert refused.json()["code"] == "webhook.bad_signature"
        assert refused.json()["detail"]

    settings.NMI_WEBHOOK_SIGNING_KEY = ""
    unconfigured = requests.post(url, data=body.encode(), timeout=5)
    assert (unconfigured.status_code, unconfigured.json()["code"]) == (
        503,
        "webhook.not_configured",
    )
    assert not GatewayEvent.objects.exists()


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"event_type": "transaction.refund.success"}, "event_body is not an object"),
        (
            {"event_type": "transaction.refund.success", "event_body": {"action": {}}},
            "event_body.transaction_id is missing",
        ),
        (
            {
                "event_type": "transaction.void.success",
                "event_body": {"transaction_id": "7", "action": {"action_type": "void"}},
            },
            "event_body.action.amount is not an amount",
        ),
        ({"event_body": {}}, "event_type is missing"),
        (
            {"event_type": "settlement.batch.complete", "event_body": {"transaction_ids": "7"}},
            "event_body.transaction_ids is not a list",
        ),
    ],
    ids=["no-body", "no-transaction", "no-amount", "no-type", "bad-settlement"],
)
def test_a_signed_but_malformed_event_is_answered_400_and_recorded_failed(
    nmi_with_webhooks, event, reason
):
    nmi_with_webhooks.send_webhook(json.dumps({"event_id": "evt-malformed", **event}))

    nmi_with_webhooks.wait_for_webhooks()
    assert _statuses(nmi_with_webhooks)[-1] == 400
    stored = GatewayEvent.objects.get(gateway=Gateway.NMI, event_id="evt-malformed")
    assert stored.outcome == GatewayEvent.Outcome.FAILED
    assert reason in stored.outcome_detail
    assert stored.processed_at is not None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"event_type": "x"}),
        json.dumps({"event_id": "evt-nul\u0000", "event_type": "transaction.sale.success"}),
        '{"event_id": "evt-raw-nul", "event_type": "transaction.sale.success\x00"}',
    ],
    ids=["not-json", "not-an-object", "no-event-id", "escaped-nul", "raw-nul"],
)
def test_a_signed_body_that_is_not_an_event_is_answered_400_and_not_stored(nmi_with_webhooks, body):
    nmi_with_webhooks.send_webhook(body)

    nmi_with_webhooks.wait_for_webhooks()
    assert _statuses(nmi_with_webhooks)[-1] == 400
    assert not GatewayEvent.objects.exists()


def test_a_refund_filed_under_an_order_id_not_ours_changes_nothing(nmi_with_webhooks):
    order = _paid_order(2000)
    foreign = {
        "event_id": "evt-foreign",
        "event_type": "transaction.refund.success",
        "event_body": {
            "transaction_id": "99999999999",
            "order_id": "1005",  # another system's order number, not one of our references
            "currency": "USD",
            "action": {"action_type": "refund", "amount": "20.00", "success": "1"},
        },
    }
    nmi_with_webhooks.send_webhook(json.dumps(foreign))

    nmi_with_webhooks.wait_for_webhooks()
    assert _statuses(nmi_with_webhooks)[-1] == 200
    assert "not one of ours" in _nmi_event("transaction.refund.success").outcome_detail
    assert _refunds(order) == []


def test_a_settlement_is_kept_with_the_payments_it_settled(nmi_with_webhooks):
    order = _paid_order(3300)
    nmi_with_webhooks.settle()

    nmi_with_webhooks.wait_for_webhooks()
    settled = _nmi_event("settlement.batch.complete")
    assert settled.outcome == GatewayEvent.Outcome.IGNORED
    assert f"{order.invoice.number} charge" in settled.outcome_detail
    assert settled.payload["event_body"]["transaction_ids"] == [_charge(order).transaction_id]


def test_a_failed_settlement_is_kept_for_review(nmi_with_webhooks):
    order = _paid_order(1800)
    nmi_with_webhooks.settle(fail=True)

    nmi_with_webhooks.wait_for_webhooks()
    failed = _nmi_event("settlement.batch.failure")
    assert failed.outcome == GatewayEvent.Outcome.NEEDS_REVIEW
    # NMI names the batch only: the detail claims no count of what was in it.
    assert re.fullmatch(
        r"NMI could not settle settlement batch \d+: the money in it may not have reached the "
        r"clinic's account\. Check the batch in NMI's merchant portal\.",
        failed.outcome_detail,
    )
    assert _charge(order).status == PaymentStatus.SUCCEEDED  # the charge itself stands


def test_only_what_is_read_is_stored_of_an_event(nmi_with_webhooks):
    order = _paid_order(2100)
    nmi_with_webhooks.wait_for_webhooks()
    stored = _nmi_event("transaction.sale.success").payload["event_body"]
    assert stored["transaction_id"] == _charge(order).transaction_id
    assert stored["action"]["action_type"] == "sale"
    assert not {"card", "merchant", "billing_address"} & stored.keys()


def _statuses(fake) -> list[int | str]:
    return [delivery["status"] for delivery in fake.deliveries()]
