"""Disputes from the gateways, the evidence packet, and its submission to Stripe exactly once.
Stripe is the project's fake (localstripe has no disputes, files or evidence); the app runs as
a live server where the fake's webhooks must reach it."""

import hashlib
import io
import threading
from datetime import timedelta

import pytest
import requests
from django.core import mail
from django.db import connection
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient

from billing import payments
from billing.dispute_evidence import resume_evidence_submissions
from billing.disputes import apply_gateway_dispute, enter_chargeback, stripe_dispute_update
from billing.models import Dispute, EvidenceSubmission, Payment, SessionPackage
from billing.packages import Redemption, redeem_session
from billing.policies import acknowledge_order, create_policy
from billing.states import PaymentKind
from emr.kernel.actors import Actor
from emr.portal.accounts import invite_patient
from emr.workflows.models import WorkflowEvent
from orders.models import Order, ProductKind
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import NMI_CARD, STRIPE_CARD
from tests.fixtures.stripe import STRIPE_TEST_KEY, run_stripe_fake

SYSTEM = Actor.system("dispute-tests")
WEBHOOK_SECRET = "whsec_test_local_only"


def _paid_order(gateway: str, *, product=None) -> Order:
    payments.set_active_gateway(gateway=gateway, actor=SYSTEM, reason="test")
    patient = PatientFactory()
    token = STRIPE_CARD if gateway == "stripe" else NMI_CARD
    card = payments.save_card(patient=patient, gateway=gateway, token=token, actor=SYSTEM)
    order = make_order(patient=patient, products=[product or ProductFactory(price_cents=12000)])
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=SYSTEM)
    return Order.objects.get(pk=order.pk)


def _charge(order: Order) -> Payment:
    return Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _open_stripe_dispute(fake, order: Order) -> Dispute:
    """The fake opens the dispute; its event is applied as the webhook would."""
    obj = fake.dispute(_charge(order).transaction_id)
    dispute, _ = apply_gateway_dispute(
        update=stripe_dispute_update(obj), gateway="stripe", actor=SYSTEM
    )
    return dispute


def _evidence(fake) -> dict:
    response = requests.get(f"{fake.api_base}/_fake/evidence", timeout=5)
    response.raise_for_status()
    return response.json()


# --- Webhooks ----------------------------------------------------------------------------------


@pytest.fixture
def stripe_with_webhooks(live_server, settings):
    with run_stripe_fake(
        webhook_url=f"{live_server.url}/webhooks/stripe/", webhook_secret=WEBHOOK_SECRET
    ) as fake:
        settings.STRIPE_SECRET_KEY = STRIPE_TEST_KEY
        settings.STRIPE_API_BASE = fake.api_base
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        yield fake
        fake.wait_for_webhooks()


@pytest.mark.django_db(transaction=True)
def test_a_dispute_created_webhook_opens_a_dispute_on_the_right_payment(stripe_with_webhooks):
    other = _paid_order("stripe")
    order = _paid_order("stripe")

    stripe_with_webhooks.dispute(_charge(order).transaction_id)
    stripe_with_webhooks.wait_for_webhooks()

    dispute = Dispute.objects.get()
    assert dispute.payment == _charge(order)
    assert dispute.payment != _charge(other)
    assert (dispute.amount_cents, dispute.reason, dispute.status) == (
        12000,
        "fraudulent",
        "needs_response",
    )
    assert timezone.now() + timedelta(days=6) < dispute.evidence_due_by
    event = WorkflowEvent.objects.get(event_type="dispute.opened")
    assert event.payload["dispute"]["gatewayDisputeId"] == dispute.gateway_dispute_id
    assert event.payload["order"]["orderNumber"] == order.number

    stripe_with_webhooks._control(
        f"disputes/{dispute.gateway_dispute_id}/close", {"status": "lost"}
    )
    stripe_with_webhooks.wait_for_webhooks()
    dispute.refresh_from_db()
    assert dispute.status == "lost" and dispute.closed_at is not None
    assert Dispute.objects.count() == 1  # created once, updated after


# --- The packet --------------------------------------------------------------------------------


def _packet_text(client, order) -> str:
    response = client.get(f"/api/v1/orders/{order.pk}/evidence-packet/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


@pytest.mark.django_db
def test_the_packet_holds_policy_acceptance_usage_messages_and_payment(
    gateways, billing_admin, django_capture_on_commit_callbacks
):
    policy = create_policy(
        name="Six sessions",
        rules={"acknowledgement_required": True, "partial_refunds": "pro_rata_unused"},
        actor=SYSTEM,
    )
    product = ProductFactory(
        name="Six physio sessions",
        kind=ProductKind.PACKAGE,
        price_cents=36000,
        sessions=6,
        refund_policy_id=policy.pk,
    )
    payments.set_active_gateway(gateway="stripe", actor=SYSTEM, reason="test")
    patient = PatientFactory(first_name="Dana", last_name="Quill")
    card = payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=SYSTEM)
    order = make_order(patient=patient, products=[product])
    acknowledge_order(
        order=order,
        channel="portal",
        actor=Actor.patient(patient.user) if patient.user else SYSTEM,
        ip_address="203.0.113.9",
        user_agent="Mozilla/5.0 (iPhone) Evidence",
    )
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=SYSTEM)
    package = SessionPackage.objects.get(order_item__order=order)
    redeem_session(
        package=package,
        redemption=Redemption(redeemed_at=timezone.now(), provider="Dr. Lee", note="Knee"),
        actor=SYSTEM,
    )
    with django_capture_on_commit_callbacks(execute=True):
        invite_patient(patient=patient, actor=SYSTEM)
    [invite] = mail.outbox
    order.refresh_from_db()

    text = _packet_text(_api(billing_admin), order)

    version = order.items.get().refund_policy_version
    assert f"evidence for order {order.number}" in text
    assert "Six physio sessions x 1" in text
    assert f"Policy “Six sessions”, version 1 (text SHA-256 {version.text_sha256}" in text
    assert "Accepted" in text and "203.0.113.9" in text and "Mozilla/5.0 (iPhone) Evidence" in text
    assert "(matches the version above)" in text
    assert "1 of 6 sessions used" in text and "Dr. Lee" in text
    assert f"“{invite.subject}”" in text
    assert hashlib.sha256(invite.body.encode()).hexdigest() in text
    charge = _charge(order)
    assert f"transaction id {charge.transaction_id}" in text
    assert "card visa ending 4242" in text
    assert "AVS not given by the gateway" in text
    assert "No refund was made." in text
    assert "Audit timeline" in text and f"order {order.number}" in text


@pytest.mark.django_db
def test_the_packet_names_an_unsigned_consent_and_then_holds_the_signature(
    consent_order, consent, billing_admin
):
    from tests.fixtures.documents import sign

    before = _packet_text(_api(billing_admin), consent_order)
    signed = sign(consent_order.patient, consent)
    after = _packet_text(_api(billing_admin), consent_order)

    assert "Ketamine consent not signed." in before
    assert "Ketamine consent not signed." not in after
    assert "Consent to ketamine treatment (“Ketamine consent”, version 1)" in after
    assert f"as “{consent_order.patient.full_name}” by typed name" in after
    assert "203.0.113.7" in after and "Mozilla/5.0 (test)" in after
    assert signed.text_sha256 in after and signed.pdf_sha256 in after


@pytest.mark.django_db
def test_cs_without_dispute_rights_cannot_read_a_packet(gateways, medical_ops):
    order = _paid_order("nmi")
    response = _api(medical_ops).get(f"/api/v1/orders/{order.pk}/evidence-packet/")
    assert response.status_code == 403
    assert set(response.json()) >= {"code", "detail"}


# --- Submission --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_evidence_goes_to_stripe_once_even_when_retried(gateways, billing_admin):
    order = _paid_order("stripe")
    dispute = _open_stripe_dispute(gateways.stripe, order)
    client = _api(billing_admin)

    first = client.post(f"/api/v1/disputes/{dispute.pk}/submit-evidence/")
    again = client.post(f"/api/v1/disputes/{dispute.pk}/submit-evidence/")

    assert first.status_code == again.status_code == 200, first.json()
    assert first.json()["status"] == "under_review"
    assert first.json()["submission"]["status"] == "SUBMITTED"
    assert again.json()["submission"] == first.json()["submission"]
    ledger = _evidence(gateways.stripe)
    [upload] = ledger["files"]
    [update] = ledger["dispute_updates"]
    submission = EvidenceSubmission.objects.get()
    assert upload["purpose"] == "dispute_evidence" and upload["type"] == "pdf"
    assert upload["sha256"] == submission.packet_sha256
    assert update["dispute"] == dispute.gateway_dispute_id
    assert update["evidence"]["receipt"] == upload["id"]
    assert update["evidence"]["customer_email_address"] == order.patient.email


@pytest.mark.django_db
def test_a_lost_answer_is_sent_again_by_the_janitor_and_stripe_acts_once(
    gateways, billing_admin, settings
):
    order = _paid_order("stripe")
    dispute = _open_stripe_dispute(gateways.stripe, order)
    gateways.stripe.fault("drop_after_apply")  # the upload happens; its answer never arrives

    lost = _api(billing_admin).post(f"/api/v1/disputes/{dispute.pk}/submit-evidence/")

    assert lost.status_code == 502
    assert lost.json()["code"] == "dispute.evidence_outcome_unknown"
    assert EvidenceSubmission.objects.get().status == "PENDING"
    retry_too_soon = _api(billing_admin).post(f"/api/v1/disputes/{dispute.pk}/submit-evidence/")
    assert retry_too_soon.status_code == 409
    assert retry_too_soon.json()["code"] == "dispute.evidence_in_progress"

    settings.DISPUTE_EVIDENCE_LEASE_SECONDS = 0
    assert resume_evidence_submissions() == 1

    ledger = _evidence(gateways.stripe)
    assert len(ledger["files"]) == 1  # the repeated upload was replayed, not made again
    assert len(ledger["dispute_updates"]) == 1
    submission = EvidenceSubmission.objects.get()
    assert submission.status == "SUBMITTED" and submission.attempts == 2
    dispute.refresh_from_db()
    assert dispute.status == "under_review"


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_double_submit_sends_once(gateways, billing_admin):
    order = _paid_order("stripe")
    dispute = _open_stripe_dispute(gateways.stripe, order)
    statuses = []
    barrier = threading.Barrier(2)

    def submit():
        client = _api(billing_admin)
        barrier.wait()
        try:
            response = client.post(f"/api/v1/disputes/{dispute.pk}/submit-evidence/")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert 200 in statuses and set(statuses) <= {200, 409}
    ledger = _evidence(gateways.stripe)
    assert len(ledger["files"]) == 1 and len(ledger["dispute_updates"]) == 1


@pytest.mark.django_db
def test_an_nmi_chargeback_is_entered_by_hand_and_its_packet_is_download_only(
    gateways, billing_admin
):
    order = _paid_order("nmi")
    dispute = enter_chargeback(
        payment=_charge(order),
        case_number="CB-7781",
        amount_cents=12000,
        reason="13.1 merchandise not received",
        evidence_due_by=timezone.now() + timedelta(days=10),
        actor=SYSTEM,
    )
    assert WorkflowEvent.objects.filter(event_type="dispute.opened").count() == 1

    client = _api(billing_admin)
    listed = client.get("/api/v1/disputes/").json()["results"]
    assert [row["gateway_dispute_id"] for row in listed] == ["CB-7781"]
    refused = client.post(f"/api/v1/disputes/{dispute.pk}/submit-evidence/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "dispute.download_only"
    assert client.get(f"/api/v1/orders/{order.pk}/evidence-packet/").status_code == 200
