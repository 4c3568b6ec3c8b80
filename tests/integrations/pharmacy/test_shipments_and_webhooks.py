"""Shipment events move the order to SHIPPED: DispensePro webhooks (built and signed by the
fake), the own pharmacy's partner webhook, and what CS verified by phone. Each webhook is
verified, stored first, processed once."""

import json
import time

import pytest
from django.test import Client

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.workflows.models import WorkflowEvent
from integrations.pharmacy import services
from integrations.pharmacy.dispensepro import DispenseProClient
from integrations.pharmacy.models import FulfilmentCheck, PharmacyOrder, PharmacyWebhookEvent
from integrations.pharmacy.states import FulfilmentFinding, PharmacyOrderStatus, PharmacyType
from integrations.signing import sign
from orders.models import Order
from orders.states import OrderStatus
from tests.fixtures.beluga import snapshot
from tests.fixtures.dispensepro import order_at_pharmacy

pytestmark = pytest.mark.django_db

PARTNER_SECRET = "own-partner-test-secret"


@pytest.fixture
def pharmacy_order(dispensepro):
    return order_at_pharmacy(PharmacyType.DISPENSE_PRO)


def deliver(url, webhook, *, headers=None):
    return Client().post(
        url,
        data=webhook.body,
        content_type="application/json",
        headers=webhook.headers if headers is None else headers,
    )


def test_dispensepro_shipped_webhook_ships_the_order(pharmacy_order, dispensepro):
    webhook = dispensepro.ship(pharmacy_order.external_id, carrier="UPS", trackingNumber="1Z42")

    response = deliver("/webhooks/dispensepro/", webhook)

    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "PROCESSED"
    pharmacy_order.refresh_from_db()
    assert (pharmacy_order.status, pharmacy_order.carrier, pharmacy_order.tracking_number) == (
        PharmacyOrderStatus.SHIPPED,
        "UPS",
        "1Z42",
    )
    order = Order.objects.get(pk=pharmacy_order.order_id)
    assert order.status == OrderStatus.SHIPPED
    assert order.shipped_at == pharmacy_order.shipped_at
    assert order.history.latest("history_id").history_actor == "system:dispensepro-webhook"


def test_a_replay_is_ignored(pharmacy_order, dispensepro):
    webhook = dispensepro.ship(pharmacy_order.external_id)
    deliver("/webhooks/dispensepro/", webhook)
    history = Order.objects.get(pk=pharmacy_order.order_id).history.count()

    replay = deliver("/webhooks/dispensepro/", webhook)

    assert replay.json()["duplicate"] is True
    assert Order.objects.get(pk=pharmacy_order.order_id).history.count() == history
    assert PharmacyWebhookEvent.objects.get().deliveries == 2


@pytest.mark.parametrize("header", ["X-DispensePro-Signature", "X-DispensePro-Timestamp"])
def test_a_bad_signature_is_refused(pharmacy_order, dispensepro, header):
    webhook = dispensepro.ship(pharmacy_order.external_id)
    before = snapshot(pharmacy_order, pharmacy_order.order)
    forged = {**webhook.headers, header: "sha256=forged" if "Signature" in header else "1000"}

    response = deliver("/webhooks/dispensepro/", webhook, headers=forged)

    assert response.status_code == 400
    assert response.json()["code"] == "webhook.bad_signature"
    assert not PharmacyWebhookEvent.objects.exists()
    assert snapshot(pharmacy_order, pharmacy_order.order) == before


def test_voided_at_dispensepro_is_recorded_as_a_void(pharmacy_order, dispensepro):
    # Voided in DispensePro's own portal; the fake's event reports the order as it now is.
    DispenseProClient.from_settings().void_order(order_id=pharmacy_order.external_id, reason="x")
    webhook = dispensepro.event(pharmacy_order.external_id, "order.voided")
    order_before = snapshot(pharmacy_order.order)

    assert deliver("/webhooks/dispensepro/", webhook).json()["outcome"] == "PROCESSED"

    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == PharmacyOrderStatus.VOIDED
    assert snapshot(pharmacy_order.order) == order_before
    assert WorkflowEvent.objects.filter(event_type="pharmacy.order_voided").count() == 1


def test_a_shipment_after_a_void_is_kept_as_ignored_for_review(pharmacy_order, dispensepro):
    services.void_pharmacy_order(
        pharmacy_order=pharmacy_order, actor=Actor.system("tests"), reason="Cancelled"
    )
    dispensepro_state = dispensepro.orders()[pharmacy_order.external_id]
    assert dispensepro_state["status"] == "voided"
    # A contradicting event (say, from DispensePro's own staff): we keep our state.
    body = json.dumps(
        {
            "id": "evt_contradiction",
            "type": "order.shipped",
            "data": {"order": {**dispensepro_state, "status": "shipped"}},
        }
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "X-DispensePro-Timestamp": timestamp,
        "X-DispensePro-Signature": sign(
            secret=dispensepro.webhook_secret, timestamp=timestamp, body=body
        ),
    }

    response = Client().post(
        "/webhooks/dispensepro/", body, content_type="application/json", headers=headers
    )

    assert response.json()["outcome"] == "IGNORED"
    event = PharmacyWebhookEvent.objects.get(event_id="evt_contradiction")
    assert event.outcome_detail.startswith("refused:")
    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == PharmacyOrderStatus.VOIDED


def test_other_dispensepro_events_are_recorded_as_ignored(pharmacy_order, dispensepro):
    webhook = dispensepro.event(pharmacy_order.external_id, "order.updated")

    assert deliver("/webhooks/dispensepro/", webhook).json()["outcome"] == "IGNORED"
    assert PharmacyWebhookEvent.objects.get().pharmacy_order == pharmacy_order


def partner_webhook(reference: str, *, secret: str = PARTNER_SECRET):
    body = json.dumps(
        {
            "id": "ship-77",
            "type": "shipment.shipped",
            "created": "2026-01-05T10:00:00Z",
            "data": {
                "reference": reference,
                "shippedAt": "2026-01-05T09:30:00Z",
                "carrier": "USPS",
                "trackingNumber": "9400",
            },
        }
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "X-Pharmacy-Timestamp": timestamp,
        "X-Pharmacy-Signature": sign(secret=secret, timestamp=timestamp, body=body),
    }
    return body, headers


def post_partner(body, headers):
    return Client().post(
        "/webhooks/pharmacy-partner/", body, content_type="application/json", headers=headers
    )


def test_the_own_pharmacy_partner_ships(dispensepro, settings):
    settings.OWN_PHARMACY_WEBHOOK_SECRET = PARTNER_SECRET
    pharmacy_order = order_at_pharmacy(PharmacyType.OWN)

    response = post_partner(*partner_webhook(pharmacy_order.reference))

    assert response.status_code == 200, response.content
    pharmacy_order.refresh_from_db()
    assert (pharmacy_order.status, pharmacy_order.tracking_number) == ("shipped", "9400")
    assert pharmacy_order.shipped_at.isoformat() == "2026-01-05T09:30:00+00:00"
    assert Order.objects.get(pk=pharmacy_order.order_id).status == OrderStatus.SHIPPED
    assert post_partner(*partner_webhook(pharmacy_order.reference)).json()["duplicate"] is True


def test_the_partner_webhook_is_refused_without_its_secret_or_with_another(dispensepro, settings):
    pharmacy_order = order_at_pharmacy(PharmacyType.OWN)

    assert post_partner(*partner_webhook(pharmacy_order.reference)).status_code == 503

    settings.OWN_PHARMACY_WEBHOOK_SECRET = PARTNER_SECRET
    forged = partner_webhook(pharmacy_order.reference, secret="guess")
    assert post_partner(*forged).status_code == 400
    assert PharmacyOrder.objects.get(pk=pharmacy_order.pk).status == "submitted"


@pytest.fixture
def staff(cs_user):
    return Actor.staff(cs_user, door=Door.ADMIN)


def test_cs_records_a_cancellation_the_pharmacy_confirmed(dispensepro, staff):
    pharmacy_order = order_at_pharmacy(PharmacyType.BELMAR_LIFEFILE)
    order_before = snapshot(pharmacy_order.order, pharmacy_order.order.invoice)
    note = "Called Belmar 10:05, spoke to Sam: not compounded yet, cancelled."

    check = services.record_fulfilment_check(
        pharmacy_order=pharmacy_order,
        finding=FulfilmentFinding.NOT_SHIPPED_CANCELLED,
        note=note,
        actor=staff,
    )

    assert (check.checked_by, check.note) == ("cs-agent", note)
    pharmacy_order.refresh_from_db()
    assert pharmacy_order.status == PharmacyOrderStatus.CANCELLED
    # Cancelling the order itself, or refunding it, is a separate, deliberate action.
    assert snapshot(pharmacy_order.order, pharmacy_order.order.invoice) == order_before
    assert pharmacy_order.history.latest("history_id").history_change_reason == note


def test_cs_records_a_shipment_or_that_nothing_changed(dispensepro, staff):
    shipped = order_at_pharmacy(PharmacyType.OWN)
    in_progress = order_at_pharmacy(PharmacyType.BELUGA)

    services.record_fulfilment_check(
        pharmacy_order=shipped, finding="SHIPPED", note="Shipped Monday", actor=staff
    )
    services.record_fulfilment_check(
        pharmacy_order=in_progress, finding="NOT_SHIPPED_IN_PROGRESS", note="Too late", actor=staff
    )

    assert Order.objects.get(pk=shipped.order_id).status == OrderStatus.SHIPPED
    assert PharmacyOrder.objects.get(pk=in_progress.pk).status == "submitted"
    assert FulfilmentCheck.objects.count() == 2


def test_a_check_that_contradicts_a_shipment_is_refused(dispensepro, staff):
    pharmacy_order = order_at_pharmacy(PharmacyType.OWN)
    services.record_shipment(pharmacy_order=pharmacy_order, actor=staff, reason="Shipped")

    with pytest.raises(DomainError) as refused:
        services.record_fulfilment_check(
            pharmacy_order=pharmacy_order,
            finding="NOT_SHIPPED_CANCELLED",
            note="They say cancelled",
            actor=staff,
        )

    assert refused.value.code == "pharmacy.already_shipped"
    assert not FulfilmentCheck.objects.exists()


def test_dispensepro_orders_are_not_checked_by_hand(pharmacy_order, staff):
    with pytest.raises(DomainError) as refused:
        services.record_fulfilment_check(
            pharmacy_order=pharmacy_order, finding="SHIPPED", note="?", actor=staff
        )
    assert refused.value.code == "pharmacy.use_api"


def test_refresh_from_dispensepro_records_a_missed_shipment(pharmacy_order, dispensepro, staff):
    dispensepro.ship(pharmacy_order.external_id, carrier="FedEx", trackingNumber="77")

    services.refresh_from_dispensepro(pharmacy_order=pharmacy_order, actor=staff)

    pharmacy_order.refresh_from_db()
    assert (pharmacy_order.status, pharmacy_order.carrier) == ("shipped", "FedEx")
    assert Order.objects.get(pk=pharmacy_order.order_id).status == OrderStatus.SHIPPED
