"""A card is charged only as what it is, and a card number is never kept (issue 12, cards).

A one-off token is never read as a saved card: one shaped like another patient's vault id or
Stripe customer/payment method must not charge that card. A card number sent where a token
belongs is refused before any gateway call; one echoed in a gateway's text is cut out before it
is stored or returned.
"""

import pytest
from rest_framework.test import APIClient

from billing import payments
from billing.models import Payment
from billing.states import PaymentKind, PaymentStatus
from emr.kernel.actors import Actor
from emr.kernel.card_numbers import CARD_NUMBER_REMOVED, scrub_card_numbers
from emr.kernel.errors import InvalidInput
from emr.workflows.models import WorkflowEvent
from tests.factories import PatientFactory, make_order
from tests.fixtures.gateways import NMI_CARD, STRIPE_CARD

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("card-safety-tests")
# Test card numbers every gateway publishes; Luhn-valid, belonging to nobody.
VISA_TEST_NUMBER = "4242424242424242"


@pytest.fixture
def api(cs_user, gateways):
    client = APIClient()
    client.force_authenticate(cs_user)
    return client


def _pay_one_off(api, order, gateway, token):
    return api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/",
        {"gateway": gateway, "token": token},
        format="json",
    )


def _successful_charges():
    return Payment.objects.filter(kind=PaymentKind.CHARGE, status=PaymentStatus.SUCCEEDED)


@pytest.mark.parametrize(("gateway", "card_token"), [("nmi", NMI_CARD), ("stripe", STRIPE_CARD)])
def test_another_patients_saved_card_cannot_pay_by_its_token(api, gateway, card_token):
    payments.set_active_gateway(gateway=gateway, actor=SYSTEM, reason="test")
    owner = PatientFactory()
    saved = payments.save_card(patient=owner, gateway=gateway, token=card_token, actor=SYSTEM)
    strangers_order = make_order(patient=PatientFactory())
    invoice_status = strangers_order.invoice.status

    response = _pay_one_off(api, strangers_order, gateway, saved.gateway_token)

    assert response.status_code != 201, response.json()
    assert set(response.json()) == {"code", "detail"}
    assert not _successful_charges().exists()
    strangers_order.invoice.refresh_from_db()
    assert strangers_order.invoice.status == invoice_status  # still to be paid


def test_the_same_saved_card_pays_its_own_patients_invoice(api):
    payments.set_active_gateway(gateway="nmi", actor=SYSTEM, reason="test")
    patient = PatientFactory()
    saved = payments.save_card(patient=patient, gateway="nmi", token=NMI_CARD, actor=SYSTEM)
    order = make_order(patient=patient)

    response = api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/", {"payment_method": saved.pk}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert _successful_charges().count() == 1


@pytest.mark.parametrize("number", [VISA_TEST_NUMBER, "4242 4242 4242 4242", "4242-4242-4242-4242"])
def test_a_card_number_sent_as_a_token_is_refused_before_any_gateway_call(api, number):
    order = make_order()

    response = _pay_one_off(api, order, "stripe", number)

    assert response.status_code == 400
    assert response.json()["code"] == "payment.card_number_refused"
    assert VISA_TEST_NUMBER not in response.content.decode().replace(" ", "").replace("-", "")
    assert not Payment.objects.exists()
    assert not WorkflowEvent.objects.filter(event_type="payment.failed").exists()


def test_a_card_number_is_not_saved_as_a_card(api):
    patient = PatientFactory()
    response = api.post(
        f"/api/v1/patients/{patient.pk}/payment-methods/",
        {"gateway": "stripe", "token": VISA_TEST_NUMBER},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "payment.card_number_refused"


def test_a_card_number_quoted_in_a_refusal_is_cut_out():
    error = InvalidInput(f"No such token: '{VISA_TEST_NUMBER}'", code="payment.gateway_failed")
    assert VISA_TEST_NUMBER not in error.detail
    assert CARD_NUMBER_REMOVED in error.detail


def test_a_failed_charge_stores_the_gateway_text_without_the_card_number(gateways):
    order = make_order()
    pending = Payment.objects.create(
        invoice=order.invoice,
        kind=PaymentKind.CHARGE,
        status=PaymentStatus.PENDING,
        gateway="stripe",
        amount_cents=order.invoice.amount_cents,
        currency=order.invoice.currency,
    )
    payments.record_failed_charge(
        payment=pending, message=f"Invalid payment method: {VISA_TEST_NUMBER}", actor=SYSTEM
    )
    pending.refresh_from_db()
    assert VISA_TEST_NUMBER not in pending.failure_message
    assert VISA_TEST_NUMBER not in str(pending.history.latest().failure_message)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Order ORD-000123 for 1699999999 cents", True),  # too short, or not Luhn
        ("Reference 1234567890123", True),  # 13 digits, Luhn-invalid
        (f"card {VISA_TEST_NUMBER} declined", False),
        ("card 5555 5555 5555 4444 declined", False),
    ],
)
def test_only_card_like_numbers_are_cut(text, kept):
    assert (scrub_card_numbers(text) == text) is kept
