"""The patient's pages: the home page puts what needs attention first; orders say their status
in the patient's words, what was paid with which card, and what came back; a receipt is proof
of payment. Every number belongs to the signed-in patient: another's answers 404."""

import re
from datetime import date

import pytest
from django.test import Client
from django.utils.dateformat import format as format_date

from billing import payments
from billing.models import Payment
from billing.refunds import refund_order
from emr.portal.records import CANCELLED_NOT_REFUNDED, ORDER_STATUS
from orders.services import change_status
from orders.states import OrderStatus
from subscriptions import lifecycle
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import STRIPE_CARD

pytestmark = pytest.mark.django_db


def _today() -> str:
    return format_date(date.today(), "j M Y")


def _html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def _text(response) -> str:
    """The page as read: markup removed."""
    return re.sub(r"<[^>]+>", "", _html(response))


def test_every_order_status_has_words_for_the_patient():
    assert set(ORDER_STATUS) == set(OrderStatus)
    assert all(words.label and words.sentence for words in ORDER_STATUS.values())


# --- Orders --------------------------------------------------------------------------------


def test_a_refunded_order_shows_what_was_paid_and_refunded_to_which_card(
    paid_order, system, portal_client
):
    order = paid_order("stripe", 12000)
    refund_order(order=order, actor=system, reason="Patient asked within the policy window")
    client = portal_client(order.patient)

    page = _html(client.get(f"/patient/orders/{order.number}/"))

    assert "Refunded" in page
    assert f"$120.00 paid with Visa ····4242 on {_today()}" in page
    assert f"$120.00 refunded to Visa ····4242 on {_today()}" in page
    assert "Order cancellation and refund are different" not in page


def test_a_cancelled_paid_order_answers_why_there_is_no_refund(paid_order, system, portal_client):
    order = paid_order("stripe", 8000)
    change_status(order=order, target=OrderStatus.CANCELLED, actor=system, reason="Not needed")

    page = _html(portal_client(order.patient).get(f"/patient/orders/{order.number}/"))

    assert "Cancelled" in page
    assert CANCELLED_NOT_REFUNDED in page
    assert CANCELLED_NOT_REFUNDED.startswith("Order cancellation and refund are different.")
    assert "refunded to" not in page


def test_the_order_list_shows_the_patients_orders_only(paid_order, portal_client):
    mine, theirs = paid_order("stripe", 3000), paid_order("stripe", 4000)
    page = _html(portal_client(mine.patient).get("/patient/orders/"))
    assert mine.number in page and "In progress" in page
    assert theirs.number not in page


def test_an_unpaid_order_links_to_paying_it(portal_client, gateways):
    order = make_order(products=[ProductFactory(price_cents=2500)])
    page = _html(portal_client(order.patient).get(f"/patient/orders/{order.number}/"))
    assert "Waiting for payment" in page
    assert f"/patient/invoices/?recovery=1&amp;invoice={order.invoice.number}" in page


# --- Invoices and receipts -----------------------------------------------------------------


def test_a_receipt_is_proof_of_payment(paid_order, portal_client, settings):
    settings.CLINIC_NAME, settings.CLINIC_ADDRESS = "Harbour Clinic", "1 Quay Road, Portsmouth"
    order = paid_order("stripe", 12000)
    charge = Payment.objects.get(invoice=order.invoice)
    client = portal_client(order.patient)

    page = _html(client.get(f"/patient/invoices/{order.invoice.number}/"))

    assert f"Receipt {order.invoice.number}" in page
    assert "Harbour Clinic" in page and "1 Quay Road, Portsmouth" in page
    assert order.patient.full_name in page and order.number in page
    assert f"$120.00 paid with Visa ····4242 on {_today()}" in page
    assert charge.transaction_id
    assert f'Stripe <span class="reference">{charge.transaction_id}</span>' in page
    assert "Paid on" in page and "data-print" in page
    assert "portal/portal.css" in page  # the print rules live in the app's stylesheet


def test_the_invoice_list_says_which_are_paid_refunded_or_due(paid_order, system, portal_client):
    paid = paid_order("stripe", 3000)
    patient = paid.patient
    refunded = make_order(patient=patient, products=[ProductFactory(price_cents=2000)])
    card = payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system)
    payments.charge_invoice(invoice=refunded.invoice, payment_method=card, actor=system)
    refund_order(order=refunded, actor=system, reason="Duplicate")
    due = make_order(patient=patient, products=[ProductFactory(price_cents=1000)])

    page = _html(portal_client(patient).get("/patient/invoices/"))

    for invoice, words in [
        (paid.invoice, "Paid"),
        (refunded.invoice, "Refunded"),
        (due.invoice, "Payment due"),
    ]:
        assert invoice.number in page
        assert words in page


def test_the_recovery_link_without_a_slash_still_arrives(portal_client, gateways):
    order = make_order()
    client = portal_client(order.patient)
    response = client.get(
        f"/patient/invoices?recovery=1&invoice={order.invoice.number}", follow=True
    )
    assert f"Pay invoice {order.invoice.number}" in _text(response)


def test_signed_out_visitors_sign_in_first_and_come_back(db):
    response = Client().get("/patient/invoices?recovery=1&invoice=INV-000001", follow=True)
    assert response.redirect_chain[-1][0].startswith("/patient/login/?next=")
    assert "recovery%3D1" in response.redirect_chain[-1][0]


# --- The home page -------------------------------------------------------------------------


def test_the_home_page_puts_what_needs_attention_first(
    recovery_for, subscribe_patient, system, portal_client, portal_clock
):
    patient = PatientFactory(first_name="Rob")
    paused = recovery_for(patient, name="Monthly care")
    financed = subscribe_patient(patient, name="Financed course", financed_cycles=3)
    lifecycle.schedule_cancellation(subscription=financed, actor=system, reason="Moving away")
    soon = date.today()
    card = payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system)
    card.exp_month, card.exp_year = soon.month, soon.year
    card.save()

    page = _html(portal_client(patient).get("/patient/"))

    attention = page.split('id="attention-heading"')[1].split('id="subscriptions-heading"')[0]
    open_invoice = lifecycle.open_cycle_invoices(paused)[0]
    assert "Payment needed: $99.00" in attention
    assert f"Pay invoice {open_invoice.number}" in attention
    assert "Your subscription is paused until it is paid" in attention
    assert "Your Visa ····4242 expires soon" in attention
    assert f"end of {format_date(soon, 'F Y')}" in attention
    assert "Your Financed course subscription is set to cancel" in attention
    assert attention.index("Payment needed") < attention.index("expires soon")
    rest = page.split('id="subscriptions-heading"')[1]
    assert "Monthly care" in rest and "Paused: payment needed" in rest
    assert "Financed course" in rest and "Active, cancellation scheduled" in rest
    assert "Recent orders" in rest


def test_nothing_to_do_says_so(portal_client):
    assert "Nothing needs your attention" in _html(portal_client().get("/patient/"))


# --- Safety: another patient's number answers 404, and nothing internal is shown ---------------


@pytest.fixture
def someone_elses(paid_order, subscribe_patient):
    order = paid_order("stripe", 7777)
    return order, subscribe_patient(order.patient)


@pytest.mark.parametrize(
    "path",
    [
        "/patient/orders/{order}/",
        "/patient/invoices/{invoice}/",
        "/patient/invoices/?recovery=1&invoice={invoice}",
        "/patient/subscriptions/{subscription}/",
        "/patient/subscriptions/{subscription}/cancel/",
    ],
)
def test_another_patients_number_answers_404_and_shows_nothing(someone_elses, portal_client, path):
    order, subscription = someone_elses
    url = path.format(order=order.number, invoice=order.invoice.number, subscription=subscription)

    response = portal_client().get(url)

    assert response.status_code == 404
    page = response.content.decode()
    assert "We could not find that in your account" in page
    assert "$77.77" not in page and order.patient.last_name not in page


def test_another_patients_invoice_cannot_be_paid(someone_elses, portal_client):
    order, _ = someone_elses
    unpaid = make_order(patient=order.patient)
    client = portal_client()
    response = client.post(f"/patient/invoices/{unpaid.invoice.number}/pay/", {"card": 1})
    assert response.status_code == 404
    assert not Payment.objects.filter(invoice=unpaid.invoice).exists()


def test_staff_notes_tokens_and_codes_never_reach_the_patient(paid_order, system, portal_client):
    order = paid_order("stripe", 5000)
    charge = Payment.objects.get(invoice=order.invoice)
    charge.needs_review, charge.review_note = True, "CS: patient disputes, check with Stripe"
    charge.save()
    token = order.patient.payment_methods.get().gateway_token
    client = portal_client(order.patient)
    for url in [
        "/patient/",
        f"/patient/orders/{order.number}/",
        f"/patient/invoices/{order.invoice.number}/",
    ]:
        page = _html(client.get(url))
        assert "CS: patient disputes" not in page
        assert token not in page
        assert "SUCCEEDED" not in page and "PROCESSING" not in page
