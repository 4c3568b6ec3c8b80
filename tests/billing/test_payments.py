import pytest
from rest_framework.test import APIClient

from billing import payments
from billing.models import GatewaySettings, Invoice, Payment, PaymentMethod
from billing.states import InvoiceStatus, PaymentStatus
from emr.workflows.models import WorkflowEvent
from orders.models import Order
from orders.states import OrderStatus
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import NMI_CARD, STRIPE_CARD

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(cs_user, gateways):
    client = APIClient()
    client.force_authenticate(cs_user)
    return client


def _save(api, patient, gateway, token):
    return api.post(
        f"/api/v1/patients/{patient.pk}/payment-methods/",
        {"gateway": gateway, "token": token},
        format="json",
    )


def test_saving_a_card_vaults_it_with_the_active_gateway(api):
    patient = PatientFactory()
    response = _save(api, patient, "stripe", STRIPE_CARD)

    assert response.status_code == 201, response.json()
    card = response.json()
    assert card["gateway"] == "stripe" and card["brand"] == "visa" and len(card["last4"]) == 4
    assert card["is_default"] is True
    assert "token" not in card and "gateway_token" not in card
    stored = PaymentMethod.objects.get(pk=card["id"])
    assert stored.gateway_token.startswith("cus_") and "/pm_" in stored.gateway_token


def test_a_card_for_the_inactive_gateway_is_refused(api):
    patient = PatientFactory()
    response = _save(api, patient, "nmi", NMI_CARD)
    assert response.status_code == 409
    assert response.json()["code"] == "payment.gateway_not_active"
    assert not PaymentMethod.objects.exists()


def test_a_new_card_becomes_the_only_default(api):
    patient = PatientFactory()
    first = _save(api, patient, "stripe", STRIPE_CARD).json()
    second = _save(api, patient, "stripe", STRIPE_CARD).json()
    defaults = PaymentMethod.objects.filter(patient=patient, is_default=True)
    assert list(defaults.values_list("id", flat=True)) == [second["id"]]
    assert first["id"] != second["id"]


def test_paying_an_invoice_with_a_saved_card(api, gateways):
    patient = PatientFactory()
    card = _save(api, patient, "stripe", STRIPE_CARD).json()
    order = make_order(patient=patient, products=[ProductFactory(price_cents=4200)])

    response = api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/", {"payment_method": card["id"]}, format="json"
    )

    assert response.status_code == 201, response.json()
    payment = response.json()
    assert (payment["kind"], payment["status"], payment["gateway"]) == (
        "CHARGE",
        "SUCCEEDED",
        "stripe",
    )
    assert payment["amount_cents"] == 4200 and payment["transaction_id"].startswith("pi_")
    assert payment["card_last4"] == card["last4"]
    assert Invoice.objects.get(pk=order.invoice.pk).status == InvoiceStatus.PAID
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PROCESSING
    events = set(WorkflowEvent.objects.values_list("event_type", flat=True))
    assert {"invoice.paid", "order.updated"} <= events


def test_paying_twice_is_refused(api):
    patient = PatientFactory()
    card = _save(api, patient, "stripe", STRIPE_CARD).json()
    order = make_order(patient=patient)
    url = f"/api/v1/invoices/{order.invoice.pk}/pay/"
    assert api.post(url, {"payment_method": card["id"]}, format="json").status_code == 201
    again = api.post(url, {"payment_method": card["id"]}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "invoice.not_payable"
    assert Payment.objects.filter(invoice=order.invoice).count() == 1


def test_a_decline_answers_402_and_the_order_waits_for_payment(api, system):
    payments.set_active_gateway(gateway="nmi", actor=system, reason="test")
    patient = PatientFactory()
    # NMI's test mode declines amounts under 1.00.
    order = make_order(patient=patient, products=[ProductFactory(price_cents=50)])

    response = api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/",
        {"gateway": "nmi", "token": NMI_CARD},
        format="json",
    )

    assert response.status_code == 402
    assert response.json()["code"] == "payment.declined"
    assert "declined" in response.json()["detail"]
    assert Invoice.objects.get(pk=order.invoice.pk).status == InvoiceStatus.SENT
    failed = Payment.objects.get(invoice=order.invoice)
    assert failed.status == PaymentStatus.FAILED and "DECLINE" in failed.failure_message.upper()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_PAYMENT
    assert WorkflowEvent.objects.filter(event_type="payment.failed").count() == 1


def test_a_card_of_the_other_gateway_answers_409(api, system):
    patient = PatientFactory()
    card = _save(api, patient, "stripe", STRIPE_CARD).json()
    payments.set_active_gateway(gateway="nmi", actor=system, reason="Switched processor")
    order = make_order(patient=patient)

    response = api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/", {"payment_method": card["id"]}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "payment.gateway_mismatch"
    assert "Save the card again with the active gateway" in response.json()["detail"]
    assert not Payment.objects.filter(invoice=order.invoice).exists()


def test_only_billing_admins_switch_the_active_gateway(api, billing_admin):
    assert (
        api.put("/api/v1/settings/active-gateway/", {"gateway": "nmi"}, format="json").status_code
        == 403
    )
    admin = APIClient()
    admin.force_authenticate(billing_admin)
    response = admin.put("/api/v1/settings/active-gateway/", {"gateway": "nmi"}, format="json")
    assert response.status_code == 200
    assert GatewaySettings.load().active_gateway == "nmi"
    latest = GatewaySettings.history.latest("history_id")
    assert latest.history_actor == "billing-admin"


@pytest.mark.parametrize(
    "payload",
    [{}, {"payment_method": 1, "gateway": "stripe", "token": "x"}, {"gateway": "stripe"}],
)
def test_pay_needs_exactly_one_source(api, payload):
    order = make_order()
    response = api.post(f"/api/v1/invoices/{order.invoice.pk}/pay/", payload, format="json")
    assert response.status_code == 400
    assert not Payment.objects.exists()
