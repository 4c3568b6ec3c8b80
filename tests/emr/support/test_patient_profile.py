"""The patient search and one-page profile: the right rows, never a gateway token, and a query
count that does not grow with the patient's history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Payment, PaymentMethod
from billing.states import PaymentKind
from tests.factories import PatientFactory, make_order

pytestmark = pytest.mark.django_db


def profile_url(patient) -> str:
    return reverse("admin:support_patientprofile_profile", args=[patient.pk])


def test_the_profile_shows_every_record_and_never_a_token(chart, cs_user, client_for):
    patient = chart(orders=2)
    html = client_for(cs_user).get(profile_url(patient)).content.decode()

    for order in patient.orders.all():
        assert f">{order.number}</a>" in html
        assert f">{order.invoice.number}</a>" in html
        assert f"visit-{order.number}" in html
        assert f"rx-{order.number}" in html
    charges = Payment.objects.filter(invoice__order__patient=patient, kind=PaymentKind.CHARGE)
    refunds = Payment.objects.filter(invoice__order__patient=patient, kind=PaymentKind.REFUND)
    assert html.count('class="payment-row"') == 4
    for payment in [*charges, *refunds]:
        assert payment.transaction_id in html
    assert f"visa ····{charges[0].card_last4}" in html
    card = PaymentMethod.objects.get(patient=patient)
    assert html.count('class="card-row"') == 1
    assert f"<td>····{card.last4}</td>" in html
    assert f"{card.exp_month:02d}/{card.exp_year}" in html
    assert card.gateway_token
    assert card.gateway_token not in html
    assert html.count('class="subscription-row"') == 1
    assert "$5.00" in html  # the partial refunds
    assert "Semaglutide" in html

    # Messages: the patient's channel and the internal one, each in its labelled section.
    internal = html.index("CS ↔ Beluga admin (internal: never shown to the patient)")
    patient_channel = html.index("doctor ↔ patient (the patient sees these)")
    order = patient.orders.first()
    assert patient_channel < html.index(f"Doctor ↔ patient note about {order.number}") < internal
    assert html.index(f"CS ↔ Beluga admin note about {order.number}") > internal


def test_the_query_count_does_not_grow_with_orders_and_payments(chart, cs_user, client_for):
    small, large = chart(orders=1), chart(orders=10)
    client = client_for(cs_user)
    client.get(profile_url(small))  # warm-up: the session and permission caches

    counts = []
    for patient in (small, large):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(profile_url(patient))
        assert response.status_code == 200
        counts.append(len(queries))
    assert response.content.decode().count('class="payment-row"') == 20
    assert counts[0] == counts[1], counts


def test_search_by_name_email_order_number_or_invoice_number(db, cs_user, client_for):
    ada = PatientFactory(first_name="Ada", last_name="Lovelace")
    other = PatientFactory(first_name="Grace", last_name="Hopper")
    order = make_order(patient=ada)
    make_order(patient=other)
    client = client_for(cs_user)
    search = reverse("admin:support_patientprofile_changelist")

    for query in ["Ada Lovelace", ada.email, order.number, order.invoice.number]:
        html = client.get(search, {"q": query}).content.decode()
        assert f'href="{profile_url(ada)}"' in html, query
        assert f'href="{profile_url(other)}"' not in html, query


def test_the_profile_needs_every_permission_it_shows(db, nobody, grant, client_for):
    patient = PatientFactory()
    grant(nobody, "emr.view_patient", "orders.view_order")  # but not payments, cards, messages
    client = client_for(nobody)
    for url in (profile_url(patient), reverse("admin:support_patientprofile_changelist")):
        refused = client.get(url)
        assert refused.status_code == 403
        assert "your role may not see all of them" in refused.content.decode()


def test_medical_ops_may_read_the_profile(db, medical_ops, client_for):
    patient = PatientFactory()
    response = client_for(medical_ops).get(profile_url(patient))
    assert response.status_code == 200
    assert "Escalate…" not in response.content.decode()
