"""Paying a recovery invoice from the link the workflows send: through the same charge service
staff use, against the Stripe fake. Success takes the subscription out of recovery; a decline
shows the gateway's refusal in plain words and leaves the invoice open."""

import re

import pytest

from billing.models import Invoice, Payment
from billing.states import InvoiceStatus, PaymentStatus
from emr.portal.payments import issuer_words
from orders.states import RecoveryStatus
from subscriptions import lifecycle
from subscriptions.states import SubscriptionStatus
from tests.factories import PatientFactory
from tests.subscriptions.conftest import save_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def recovery(recovery_for, portal_client):
    """A patient whose renewal was declined, signed in, with a working card saved since."""
    patient = PatientFactory()
    subscription = recovery_for(patient, name="Monthly care")
    invoice = lifecycle.open_cycle_invoices(subscription)[0]
    declining = patient.payment_methods.get(removed_at__isnull=True)
    working = save_card(patient)  # the default now
    client = portal_client(patient)
    return type(
        "Recovery",
        (),
        {
            "client": client,
            "subscription": subscription,
            "invoice": invoice,
            "working": working,
            "declining": declining,
            "link": f"/patient/invoices?recovery=1&invoice={invoice.number}",
        },
    )


def test_the_recovery_link_shows_what_is_due_and_why(recovery):
    page = re.sub(r"<[^>]+>", "", recovery.client.get(recovery.link, follow=True).content.decode())
    assert f"Pay invoice {recovery.invoice.number}" in page
    assert "Your Monthly care subscription" in page and "$99.00" in page
    assert "did not go through" in page
    assert "Your subscription is paused until it is paid" in page
    assert "Visa ····4242, expires" in page and "(default)" in page
    assert "Visa ····0341" in page  # the declining card is offered too: it is theirs


def test_paying_with_a_saved_card_takes_the_subscription_out_of_recovery(recovery):
    response = recovery.client.post(
        f"/patient/invoices/{recovery.invoice.number}/pay/",
        {"card": recovery.working.pk},
        follow=True,
    )

    page = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/patient/invoices/{recovery.invoice.number}/"
    assert "Thank you: $99.00 paid with Visa ····4242." in page
    assert "Your Monthly care subscription is active again." in page
    invoice = Invoice.objects.select_related("order").get(pk=recovery.invoice.pk)
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.order.recovery_status == RecoveryStatus.RECOVERED
    recovery.subscription.refresh_from_db()
    assert recovery.subscription.status == SubscriptionStatus.ACTIVE
    charge = Payment.objects.get(invoice=invoice, status=PaymentStatus.SUCCEEDED)
    assert charge.payment_method_id == recovery.working.pk and charge.transaction_id
    stamp = charge.history.latest("history_id")
    assert stamp.history_door == "portal"
    assert stamp.history_actor == f"patient:{recovery.client.patient.user.username}"


def test_a_declined_card_shows_the_gateways_refusal_and_leaves_the_invoice_open(recovery):
    response = recovery.client.post(
        f"/patient/invoices/{recovery.invoice.number}/pay/", {"card": recovery.declining.pk}
    )

    assert response.status_code == 402
    page = response.content.decode()
    assert (
        "The payment did not go through. The card issuer answered: “Your card was declined.”"
        in page
    )
    assert "generic_decline" not in page  # the gateway's code is not the patient's business
    assert "No money was taken" in page
    assert "payment.declined" not in page
    failed = Payment.objects.filter(invoice=recovery.invoice, status=PaymentStatus.FAILED)
    assert failed.count() == 2  # the renewal's and the patient's own attempt
    recovery.invoice.refresh_from_db()
    assert recovery.invoice.status == InvoiceStatus.SENT
    recovery.subscription.refresh_from_db()
    assert recovery.subscription.status == SubscriptionStatus.PAUSED


def test_a_card_that_is_not_the_patients_is_refused_before_any_charge(recovery, paid_order):
    stranger_card = paid_order("stripe", 1000).patient.payment_methods.get()
    response = recovery.client.post(
        f"/patient/invoices/{recovery.invoice.number}/pay/", {"card": stranger_card.pk}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Payment.objects.filter(
        invoice=recovery.invoice, payment_method=stranger_card
    ).exists()


def test_a_paid_invoice_has_nothing_left_to_pay(recovery):
    recovery.client.post(
        f"/patient/invoices/{recovery.invoice.number}/pay/", {"card": recovery.working.pk}
    )
    page = recovery.client.get(recovery.link, follow=True).content.decode()
    assert f"Invoice {recovery.invoice.number} is paid" in page
    again = recovery.client.post(
        f"/patient/invoices/{recovery.invoice.number}/pay/", {"card": recovery.working.pk}
    )
    assert again.status_code == 409
    assert "already paid or closed" in again.content.decode()
    assert (
        Payment.objects.filter(invoice=recovery.invoice, status=PaymentStatus.SUCCEEDED).count()
        == 1
    )


@pytest.mark.parametrize(
    ("gateway_said", "patient_reads"),
    [
        (
            "The card was declined (generic_decline): Your card was declined.",
            "Your card was declined.",
        ),
        ("The card was declined (NMI says: DECLINE). Nothing was charged.", "DECLINE"),
        ("Card expired", "Card expired"),
    ],
)
def test_the_patient_reads_the_issuers_words_without_gateway_codes(gateway_said, patient_reads):
    assert issuer_words(gateway_said) == patient_reads
