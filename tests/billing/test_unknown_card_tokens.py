"""A card token the gateway does not know is the caller's mistake, not a declined card (issue 12).

Paying with it answers 400 `payment.invalid_token` and asks for a new token; the order keeps its
status, no failed payment is listed and no `payment.failed` goes to the clinic's automations.
A saved card the gateway no longer knows is still a failed charge: renewals and retries count it.
"""

import pytest
from rest_framework.test import APIClient

from billing import payments
from billing.models import Payment, PaymentMethod
from billing.states import PaymentStatus
from emr.kernel.actors import Actor
from emr.workflows.models import WorkflowEvent
from integrations.gateways.base import InvalidPaymentToken
from orders.models import Order
from tests.factories import PatientFactory, make_order
from tests.fixtures.gateways import NMI_CARD, STRIPE_CARD

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("unknown-token-tests")
# Shaped like each gateway's tokens, issued by neither.
UNKNOWN = {"stripe": "pm_1NeverIssuedByStripe", "nmi": "00000000-never-issued-by-nmi"}


@pytest.fixture(params=["stripe", "nmi"])
def gateway(request, gateways):
    payments.set_active_gateway(gateway=request.param, actor=SYSTEM, reason="test")
    return request.param


@pytest.fixture
def api(billing_admin):
    client = APIClient()
    client.force_authenticate(billing_admin)
    return client


def _failed_payment_events():
    return WorkflowEvent.objects.filter(event_type="payment.failed")


def test_paying_with_an_unknown_token_changes_nothing_and_asks_for_a_new_one(api, gateway):
    order = make_order()
    status = order.status

    response = api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/",
        {"gateway": gateway, "token": UNKNOWN[gateway]},
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert response.json() == {"code": "payment.invalid_token", "detail": payments.SEND_A_NEW_CARD}
    assert "Send a new card token" in response.json()["detail"]
    assert Order.objects.get(pk=order.pk).status == status
    assert not Payment.objects.filter(invoice=order.invoice).exists()
    assert not _failed_payment_events().exists()
    # The attempt stays in the payment's history, with why it was taken back.
    [_created, withdrawn] = Payment.history.filter(invoice_id=order.invoice.pk).order_by("pk")
    assert withdrawn.history_type == "-"
    assert "unknown to the gateway" in withdrawn.history_change_reason
    # Nothing blocks paying the same invoice with a real card now.
    real = api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/",
        {"gateway": gateway, "token": NMI_CARD if gateway == "nmi" else STRIPE_CARD},
        format="json",
    )
    assert real.status_code == 201, real.json()


def test_stripe_and_its_look_alikes_answer_an_unknown_token_as_unknown(stripe_server):
    # localstripe (a Stripe we did not write) answers a bare 404; Stripe and our fake say
    # `resource_missing` on `payment_method`. Either is an unknown token, never a refusal.
    adapter = stripe_server.gateway()
    with pytest.raises(InvalidPaymentToken) as charged:
        adapter.charge(
            amount_cents=1000,
            currency="usd",
            payment_token=UNKNOWN["stripe"],
            saved_card=False,
            reference=f"unknown-{stripe_server.kind}",
        )
    with pytest.raises(InvalidPaymentToken):
        adapter.save_card(token=UNKNOWN["stripe"], customer_reference="patient-unknown-token")
    assert UNKNOWN["stripe"] not in charged.value.message


def test_saving_an_unknown_token_is_refused_the_same_way(api, gateway):
    patient = PatientFactory()

    response = api.post(
        f"/api/v1/patients/{patient.pk}/payment-methods/",
        {"gateway": gateway, "token": UNKNOWN[gateway]},
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "payment.invalid_token"
    assert not PaymentMethod.objects.filter(patient=patient).exists()


def test_a_saved_card_the_gateway_no_longer_knows_is_still_a_failed_charge(gateways):
    payments.set_active_gateway(gateway="nmi", actor=SYSTEM, reason="test")
    order = make_order()
    card = payments.save_card(patient=order.patient, gateway="nmi", token=NMI_CARD, actor=SYSTEM)
    PaymentMethod.objects.filter(pk=card.pk).update(gateway_token="1999999999")  # vault emptied
    card.refresh_from_db()

    with pytest.raises(payments.DomainError) as refused:
        payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=SYSTEM)

    assert refused.value.code == "payment.gateway_failed"
    assert Payment.objects.get(invoice=order.invoice).status == PaymentStatus.FAILED
    assert _failed_payment_events().count() == 1
