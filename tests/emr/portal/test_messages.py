"""The messages page: the doctor conversation Beluga relayed (its DOCTOR_CHAT webhooks), read
only, the patient's own; the clinic's internal channel with Beluga (ADMIN_CHAT) never shows."""

import pytest

from emr.communications import Delivery, record_message
from emr.models import MessageChannel, MessageKind
from tests.factories import make_order
from tests.fixtures.beluga import order_awaiting_script, submitted_visit
from tests.integrations.beluga.test_beluga_webhooks import deliver

pytestmark = pytest.mark.django_db


def _chat(beluga, visit, event: str, message_id: str, body: str, sent_at: str) -> None:
    data = {"messageId": message_id, "sender": "Dr. Lee", "body": body, "sentAt": sent_at}
    assert deliver(beluga.event(event, visit.master_id, data)).status_code == 200


def test_the_patient_reads_their_doctor_messages_newest_first_and_nothing_internal(
    beluga, portal_client
):
    mine = submitted_visit(order_awaiting_script())
    theirs = submitted_visit(order_awaiting_script())
    _chat(beluga, mine, "DOCTOR_CHAT", "m1", "Take it with food.", "2026-01-05T10:00:00Z")
    _chat(beluga, mine, "DOCTOR_CHAT", "m2", "How is the nausea?", "2026-01-07T09:30:00Z")
    _chat(beluga, mine, "ADMIN_CHAT", "m3", "Refund escalated to billing", "2026-01-06T08:00:00Z")
    _chat(beluga, theirs, "DOCTOR_CHAT", "m4", "Someone else's dose", "2026-01-06T08:00:00Z")
    client = portal_client(mine.order.patient)

    response = client.get("/patient/messages/")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("How is the nausea?") < html.index("Take it with food.")
    assert (
        "7 Jan 2026, 09:30 UTC" in html
        and f'About order <a href="/patient/orders/{mine.order.number}/">' in html
    )
    assert "Refund escalated" not in html and "Someone else" not in html
    assert "<form" not in html.split("<main", 1)[1].split("</main>")[0]  # read only


def test_no_messages_says_where_they_will_appear(portal_client):
    html = portal_client().get("/patient/messages/").content.decode()
    assert "You have no messages yet." in html


def test_what_the_clinic_sent_is_shown_read_only_and_its_opening_recorded(portal_client):
    client = portal_client()
    patient = client.patient
    order = make_order(patient=patient)
    entry = record_message(
        channel=MessageChannel.EMAIL,
        kind=MessageKind.WORKFLOW,
        recipient=patient.email,
        subject=f"Your receipt for {order.number}",
        body="Thank you: we received $120.00.",
        delivery=Delivery(sent=True),
        sent_by="workflow “Receipts” (#1)",
        patient_id=patient.pk,
        order_id=order.pk,
    )
    assert entry.opened_at is None

    html = client.get("/patient/messages/").content.decode()

    assert "From the clinic" in html
    assert f"Your receipt for {order.number}" in html
    assert "Thank you: we received $120.00." in html
    entry.refresh_from_db()
    opened = entry.opened_at
    assert opened is not None
    client.get("/patient/messages/")
    entry.refresh_from_db()
    assert entry.opened_at == opened  # the first opening is kept
