import pytest
from rest_framework.test import APIClient

from billing import payments
from billing.models import GatewaySettings, Invoice, Payment, PaymentMethod
from billing.states import InvoiceStatus, PaymentStatus
from emr.kernel.errors import IntegrationFailed, InvalidInput, StateConflict
from emr.workflows.models import WorkflowEvent
from orders.models import Order
from orders.states import OrderStatus
from subscriptions.states import SubscriptionStatus
from tests.factories import PatientFactory, ProductFactory, SubscriptionFactory, make_order
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


def test_the_active_gateway_cannot_be_one_this_server_has_no_keys_for(
    api, billing_admin, settings, system
):
    settings.NMI_SECURITY_KEY = ""
    admin = APIClient()
    admin.force_authenticate(billing_admin)

    response = admin.put("/api/v1/settings/active-gateway/", {"gateway": "nmi"}, format="json")

    assert response.status_code == 502
    assert response.json()["code"] == "payment.gateway_not_configured"
    assert (
        "NMI is not configured on this server (NMI_SECURITY_KEY not set)"
        in (response.json()["detail"])
    )
    assert GatewaySettings.load().active_gateway == "stripe"
    with pytest.raises(IntegrationFailed):
        payments.set_active_gateway(gateway="nmi", actor=system, reason="Processor changed")
    assert not GatewaySettings.history.filter(active_gateway="nmi").exists()


def _card(patient, gateway="stripe", token=STRIPE_CARD, *, actor):
    return payments.save_card(patient=patient, gateway=gateway, token=token, actor=actor)


def test_a_card_becomes_the_default_and_the_previous_one_no_longer_is(api, system):
    patient = PatientFactory()
    first, second = _card(patient, actor=system), _card(patient, actor=system)

    payments.set_default_card(card=first, actor=system, reason="Patient prefers the old card")

    defaults = PaymentMethod.objects.filter(patient=patient, is_default=True)
    assert list(defaults.values_list("id", flat=True)) == [first.pk]
    assert PaymentMethod.history.filter(id=second.pk).latest("history_id").is_default is False


def test_a_card_of_the_other_gateway_cannot_be_the_default(api, system):
    patient = PatientFactory()
    stripe_card = _card(patient, actor=system)
    payments.set_active_gateway(gateway="nmi", actor=system, reason="Processor changed")
    nmi_card = _card(patient, "nmi", NMI_CARD, actor=system)

    with pytest.raises(StateConflict) as refused:
        payments.set_default_card(card=stripe_card, actor=system, reason="Patient asked")

    assert refused.value.code == "payment.gateway_mismatch"
    assert PaymentMethod.objects.get(patient=patient, is_default=True) == nmi_card


def test_a_removed_card_is_never_charged_again(api, system):
    patient = PatientFactory()
    card = _card(patient, actor=system)

    payments.remove_card(card=card, actor=system, reason="Card reported stolen")

    card.refresh_from_db()
    assert card.removed_at is not None and card.is_default is False
    order = make_order(patient=patient)
    with pytest.raises(InvalidInput) as refused:
        payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
    assert refused.value.code == "payment.card_not_found"
    assert card.history.latest("history_id").history_change_reason == "Card reported stolen"


def test_a_card_a_live_subscription_pays_with_is_not_removed(api, system):
    patient = PatientFactory()
    card = _card(patient, actor=system)
    subscription = SubscriptionFactory(patient=patient, payment_method=card)
    ended = SubscriptionFactory(patient=patient, payment_method=_card(patient, actor=system))
    ended.status = SubscriptionStatus.EXPIRED
    ended.save()

    with pytest.raises(StateConflict) as refused:
        payments.remove_card(card=card, actor=system, reason="Patient asked")

    assert refused.value.code == "payment.card_in_use"
    assert f"pays for subscription {subscription} (active), so it cannot be removed" in (
        refused.value.detail
    )
    assert PaymentMethod.objects.get(pk=card.pk).removed_at is None
    payments.remove_card(card=ended.payment_method, actor=system, reason="Old card")
    assert PaymentMethod.objects.get(pk=ended.payment_method_id).removed_at is not None
