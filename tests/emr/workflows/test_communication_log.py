"""The communication log: every message the app sends lands in it with the SHA-256 of its body,
readable through the API, on the audit timeline and (for the patient) in the portal."""

import hashlib

import pytest
from django.core import mail
from rest_framework.test import APIClient

from audit.sources import patient_scope
from audit.trail import TrailFilter, walk
from emr.models import DeliveryStatus, MessageChannel, SentMessage
from emr.portal.accounts import invite_patient
from emr.workflows import sms
from emr.workflows.outbox import emit
from tests.emr.workflows.helpers import TESTS, fail_charge, make_workflow
from tests.factories import make_order

pytestmark = pytest.mark.django_db


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_every_workflow_email_and_sms_lands_in_the_log_with_its_hash(run_event, billing_admin):
    make_workflow(
        "payment.failed",
        (
            "email",
            {
                "subject": "Payment needed for {{order.orderNumber}}",
                "body": "Hi {{patient.firstName}}",
            },
        ),
        ("sms", {"body": "Pay {{order.orderNumber}} please"}),
        ("email", {"subject": "Receipt follows", "body": "Second email for {{order.orderNumber}}"}),
        name="Recovery",
    )
    order = make_order()
    order.patient.phone = "+15555550123"
    order.patient.save()
    event = emit("payment.failed", subject=fail_charge(order), actor=TESTS)

    run_event(event)

    assert len(mail.outbox) == 2
    logged = {m.subject: m for m in SentMessage.objects.filter(channel=MessageChannel.EMAIL)}
    for sent in mail.outbox:
        entry = logged[sent.subject]
        assert entry.body_sha256 == sha256(sent.body)
        assert entry.recipient == order.patient.email
        assert entry.patient == order.patient and entry.order == order
        assert entry.status == DeliveryStatus.SENT
        assert entry.sent_by == f"workflow “Recovery” (#{entry.sent_by.split('#')[1][:-1]})"
    [text] = sms.outbox
    texted = SentMessage.objects.get(channel=MessageChannel.SMS)
    assert texted.body_sha256 == sha256(text.body) and texted.recipient == "+15555550123"

    client = APIClient()
    client.force_authenticate(billing_admin)
    response = client.get(f"/api/v1/patients/{order.patient_id}/messages/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert {row["body_sha256"] for row in rows} == {
        *(sha256(m.body) for m in mail.outbox),
        sha256(text.body),
    }
    assert {row["order_number"] for row in rows} == {order.number}

    timeline = list(walk(TrailFilter(scope=patient_scope(order.patient), kind="message")))
    assert len(timeline) == 3
    assert any("Payment needed for" in entry.action for entry in timeline)


def test_a_refused_email_is_logged_as_not_sent(run_event, settings):
    settings.EMAIL_BACKEND = "tests.emr.workflows.test_communication_log.RefusingBackend"
    make_workflow("payment.failed", ("email", {"subject": "S", "body": "B"}))
    order = make_order()
    run_event(emit("payment.failed", subject=fail_charge(order), actor=TESTS))
    entry = SentMessage.objects.get()
    assert entry.status == DeliveryStatus.FAILED
    assert "refused" in entry.status_detail


class RefusingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("mail server refused the connection")


def test_a_portal_invitation_is_logged_by_hash_without_its_link(
    django_capture_on_commit_callbacks,
):
    order = make_order()
    with django_capture_on_commit_callbacks(execute=True):
        invite_patient(patient=order.patient, actor=TESTS)
    [sent] = mail.outbox
    entry = SentMessage.objects.get(patient=order.patient)
    assert entry.body_sha256 == sha256(sent.body)
    assert entry.body == ""  # the one-time link is not kept
    assert entry.kind == "PORTAL_INVITE"
