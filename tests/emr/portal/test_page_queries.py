"""Each portal page costs the same number of SQL queries however many orders, invoices,
payments, refunds and history rows the patient has (measured at two data sizes)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import payments
from billing.refunds import refund_order
from integrations.beluga.models import BelugaMessage
from integrations.beluga.states import MessageChannel
from tests.emr.support.conftest import add_visit
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import STRIPE_CARD

pytestmark = pytest.mark.django_db


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured.captured_queries)


def _paid(patient, card, system, cents):
    order = make_order(patient=patient, products=[ProductFactory(price_cents=cents)] * 2)
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
    return order


def _doctor_message(order, n: int) -> None:
    visit = add_visit(order)
    BelugaMessage.objects.create(
        visit=visit,
        channel=MessageChannel.DOCTOR_PATIENT,
        sender="Dr. Lee",
        body=f"Message {n}",
        sent_at=timezone.now(),
        external_id=f"msg-{order.number}-{n}",
    )


def test_no_portal_page_grows_with_the_patients_records(
    subscribe_patient, portal_client, system, portal_clock
):
    patient = PatientFactory()
    subscription = subscribe_patient(patient, name="Monthly care")
    card = patient.payment_methods.get()
    order = _paid(patient, card, system, 4000)
    open_order = make_order(patient=patient)
    _doctor_message(order, 0)
    client = portal_client(patient)
    pages = [
        "/patient/",
        "/patient/orders/",
        f"/patient/orders/{order.number}/",
        "/patient/invoices/",
        f"/patient/invoices/{order.invoice.number}/",
        f"/patient/invoices/?recovery=1&invoice={open_order.invoice.number}",
        "/patient/subscriptions/",
        f"/patient/subscriptions/{subscription}/",
        f"/patient/subscriptions/{subscription}/cancel/",
        "/patient/cards/",
        f"/patient/cards/{card.pk}/",
        "/patient/messages/",
    ]
    for url in pages:
        _queries(client, url)  # warm per-process caches (content types, the gateway settings row)
    few = {url: _queries(client, url) for url in pages}

    for cents in (1000, 2000, 3000, 4000, 5000, 6000):
        more = _paid(patient, card, system, cents)
        refund_order(order=more, actor=system, reason="partial", amount_cents=500)
    for _ in range(3):  # more payments, refund attempts and history on the order itself
        refund_order(order=order, actor=system, reason="partial", amount_cents=1000)
    for n in range(3):
        _doctor_message(make_order(patient=patient), n + 1)
    payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system)

    many = {url: _queries(client, url) for url in pages}
    assert many == few
