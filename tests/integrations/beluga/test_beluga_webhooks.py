"""POST /webhooks/beluga/ with events built and signed by the fake Beluga: verified, stored
first, processed once, outcome recorded."""

import json
import time

import pytest
from django.test import Client

from emr.models import Prescription
from emr.workflows.models import WorkflowEvent
from integrations.beluga.models import BelugaLog, BelugaMessage, BelugaVisit, BelugaWebhookEvent
from integrations.beluga.states import MessageChannel, ResolvedStatus, VisitStatus
from integrations.signing import sign
from orders.models import Order
from orders.states import OrderStatus
from tests.fixtures.beluga import order_awaiting_script, snapshot, submitted_visit

pytestmark = pytest.mark.django_db

URL = "/webhooks/beluga/"
RX = {"prescriptions": [{"medication": "Semaglutide 0.25 mg", "prescriber": "Dr. Lee"}]}


@pytest.fixture
def visit(beluga):
    return submitted_visit(order_awaiting_script())


def deliver(webhook, *, headers=None, body=None):
    return Client().post(
        URL,
        data=webhook.body if body is None else body,
        content_type="application/json",
        headers=webhook.headers if headers is None else headers,
    )


def stored(webhook):
    return BelugaWebhookEvent.objects.get(event_id=webhook.event["eventId"])


def test_rx_written_puts_the_prescription_in_the_chart_and_recalculates(visit, beluga):
    webhook = beluga.event("RX_WRITTEN", visit.master_id, RX)

    response = deliver(webhook)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "eventId": webhook.event["eventId"],
        "outcome": "PROCESSED",
        "duplicate": False,
    }
    prescription = Prescription.objects.get(order=visit.order)
    assert (prescription.medication, prescription.prescriber) == ("Semaglutide 0.25 mg", "Dr. Lee")
    assert prescription.patient_id == visit.order.patient_id
    order = Order.objects.get(pk=visit.order_id)
    assert order.status == OrderStatus.AWAITING_FULFILLMENT
    last = order.history.latest("history_id")
    assert (last.history_actor, last.history_door) == ("system:beluga-webhook", "webhook")
    assert stored(webhook).outcome == "PROCESSED"
    inbound = BelugaLog.objects.get(direction="inbound")
    assert (inbound.operation, inbound.visit_id, inbound.http_status) == (
        "webhook:RX_WRITTEN",
        visit.pk,
        200,
    )


def test_a_replay_is_answered_and_ignored(visit, beluga):
    webhook = beluga.event("RX_WRITTEN", visit.master_id, RX)
    deliver(webhook)

    replay = deliver(webhook)

    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    assert Prescription.objects.filter(order=visit.order).count() == 1
    assert stored(webhook).deliveries == 2


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: ({**h, "X-Beluga-Signature": "sha256=" + "0" * 64}, b), id="sig"),
        pytest.param(lambda h, b: (h, b.replace(b"Dr. Lee", b"Dr. Evil")), id="body"),
        pytest.param(
            lambda h, b: ({k: v for k, v in h.items() if k != "X-Beluga-Signature"}, b),
            id="unsigned",
        ),
        pytest.param(
            lambda h, b: (
                {
                    **h,
                    "X-Beluga-Timestamp": "1000",
                    "X-Beluga-Signature": sign(
                        secret="beluga-test-webhook-secret-5a8e", timestamp="1000", body=b
                    ),
                },
                b,
            ),
            id="stale",
        ),
        pytest.param(
            lambda h, b: (
                {
                    **h,
                    "X-Beluga-Signature": sign(
                        secret="not-the-secret", timestamp=h["X-Beluga-Timestamp"], body=b
                    ),
                },
                b,
            ),
            id="other-secret",
        ),
    ],
)
def test_a_bad_signature_is_refused_and_nothing_is_stored(visit, beluga, tamper):
    webhook = beluga.event("RX_WRITTEN", visit.master_id, RX)
    headers, body = tamper(webhook.headers, webhook.body)
    before = snapshot(visit.order, visit)

    response = deliver(webhook, headers=headers, body=body)

    assert response.status_code == 400
    assert response.json()["code"] == "webhook.bad_signature"
    assert not BelugaWebhookEvent.objects.exists()
    assert not Prescription.objects.exists()
    assert not BelugaLog.objects.filter(direction="inbound").exists()
    assert snapshot(visit.order, visit) == before


def test_no_secret_configured_refuses_everything(visit, beluga, settings):
    webhook = beluga.event("RX_WRITTEN", visit.master_id, RX)
    settings.BELUGA_WEBHOOK_SECRET = ""

    response = deliver(webhook)

    assert response.status_code == 503
    assert not BelugaWebhookEvent.objects.exists()


def test_a_signed_body_that_is_not_an_event_is_refused(beluga):
    body = b'{"hello": "world"}'
    timestamp = str(int(time.time()))
    headers = {
        "X-Beluga-Timestamp": timestamp,
        "X-Beluga-Signature": sign(secret=beluga.webhook_secret, timestamp=timestamp, body=body),
    }
    response = Client().post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "webhook.invalid"


def test_beluga_cancelling_the_visit_changes_the_visit_only(visit, beluga):
    webhook = beluga.event("VISIT_CANCELED", visit.master_id)
    order_before = snapshot(visit.order)

    assert deliver(webhook).status_code == 200

    visit.refresh_from_db()
    assert (visit.status, visit.resolved_status) == (VisitStatus.CANCELED, ResolvedStatus.CLOSED)
    assert snapshot(visit.order) == order_before
    event = WorkflowEvent.objects.get(event_type="beluga.visit_cancelled")
    assert event.actor == "system:beluga-webhook"


def test_a_concluded_visit_is_resolved_and_closed(visit, beluga):
    deliver(beluga.event("VISIT_CONCLUDED", visit.master_id))

    visit.refresh_from_db()
    assert (visit.status, visit.resolved_status) == (VisitStatus.RESOLVED, ResolvedStatus.CLOSED)


def test_status_changes_follow_beluga_and_the_table(visit, beluga):
    holding = beluga.event("VISIT_STATUS_CHANGED", visit.master_id, {"visitStatus": "holding"})
    assert deliver(holding).json()["outcome"] == "PROCESSED"
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.HOLDING

    deliver(beluga.event("VISIT_CANCELED", visit.master_id))
    back = beluga.event("VISIT_STATUS_CHANGED", visit.master_id, {"visitStatus": "active"})

    assert deliver(back).json()["outcome"] == "IGNORED"
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.CANCELED
    assert "does not move to active" in stored(back).outcome_detail


@pytest.mark.parametrize(
    ("event", "channel"),
    [("DOCTOR_CHAT", MessageChannel.DOCTOR_PATIENT), ("ADMIN_CHAT", MessageChannel.CS_ADMIN)],
)
def test_chat_messages_reach_the_chart_but_not_the_log(visit, beluga, event, channel):
    body = "Please take it with food; how is the nausea?"
    data = {
        "messageId": "msg-1",
        "sender": "Dr. Lee",
        "body": body,
        "sentAt": "2026-01-05T10:00:00Z",
    }

    deliver(beluga.event(event, visit.master_id, data))

    message = BelugaMessage.objects.get(visit=visit)
    assert (message.channel, message.body, message.sender) == (channel, body, "Dr. Lee")
    assert message.sent_at.isoformat() == "2026-01-05T10:00:00+00:00"
    inbound = BelugaLog.objects.get(direction="inbound")
    assert body not in json.dumps(inbound.request_body)


def test_events_for_unknown_visits_or_types_are_recorded_as_ignored(visit, beluga):
    unknown_visit = beluga.event("RX_WRITTEN", "EMR-unknown", RX)
    unknown_type = beluga.event("LAB_RESULT", visit.master_id, {"panel": "A1C"})

    assert deliver(unknown_visit).json()["outcome"] == "IGNORED"
    assert deliver(unknown_type).json()["outcome"] == "IGNORED"

    assert "no visit with masterId 'EMR-unknown'" in stored(unknown_visit).outcome_detail
    assert "LAB_RESULT events are not acted on" in stored(unknown_type).outcome_detail
    assert not Prescription.objects.exists()


def test_a_failed_event_is_recorded_and_processed_again_when_resent(visit, beluga):
    broken = beluga.event("RX_WRITTEN", visit.master_id, {"prescriptions": ["not an object"]})

    first = deliver(broken)
    again = deliver(broken)

    assert (first.status_code, again.status_code) == (500, 500)
    assert again.json()["duplicate"] is False  # tried again, not skipped
    event = stored(broken)
    assert (event.outcome, event.deliveries) == ("FAILED", 2)
    assert "processing failed" in event.outcome_detail
    assert not Prescription.objects.exists()
    assert Order.objects.get(pk=visit.order_id).status == OrderStatus.AWAITING_SCRIPT
