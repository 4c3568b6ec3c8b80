"""Billing pages in the admin are read-only for every role. The active gateway and saved cards
change through the tools on their pages: a confirmation with what to check, a reason, then the
service (the same the API calls), and a sentence saying what happened or why it was refused."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from billing import payments
from billing.models import GatewaySettings, Invoice, Payment, PaymentMethod, RefundAttempt
from billing.refunds import refund_order
from tests.admin_tools import confirm_tool
from tests.factories import PatientFactory, SubscriptionFactory
from tests.fixtures.gateways import STRIPE_CARD

pytestmark = pytest.mark.django_db


def _gateway_tool(tool: str) -> str:
    return reverse("admin:billing_gatewaysettings_tool", args=[1, tool])


def _card_tool(card, tool: str) -> str:
    return reverse("admin:billing_paymentmethod_tool", args=[card.pk, tool])


@pytest.fixture
def stripe_active(gateways, system):
    payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@clinic.test", "test-pass-123")


def test_a_billing_admin_switches_the_active_gateway_with_a_reason(
    stripe_active, billing_admin, admin_client_for
):
    client = admin_client_for(billing_admin)
    listed = client.get(reverse("admin:billing_gatewaysettings_changelist"))
    assert listed.status_code == 302  # the one row's page
    page = client.get(listed.url).content.decode()
    assert 'name="_save"' not in page
    assert 'data-tool="switch_to_nmi"' in page and 'data-tool="switch_to_stripe"' not in page
    assert "NMI: configured" in page

    confirm = client.get(_gateway_tool("switch_to_nmi")).content.decode()
    assert "Before you make NMI the active gateway" in confirm
    assert "Yes: NMI_SECURITY_KEY, NMI_API_URL, NMI_QUERY_URL are set." in confirm
    assert "will refuse" not in confirm
    assert GatewaySettings.load().active_gateway == "stripe"  # nothing happens on the way

    missing_reason = confirm_tool(client, _gateway_tool("switch_to_nmi"), {"reason": " "})
    assert "This field is required." in missing_reason.content.decode()
    assert GatewaySettings.load().active_gateway == "stripe"

    done = confirm_tool(
        client,
        _gateway_tool("switch_to_nmi"),
        {"reason": "Moving to the new processor"},
        follow=True,
    ).content.decode()

    assert "NMI is now the active gateway: it takes every new charge and saved card." in done
    assert GatewaySettings.load().active_gateway == "nmi"
    latest = GatewaySettings.history.latest("history_id")
    assert (latest.history_actor, latest.history_door) == ("billing-admin", "admin")
    assert latest.history_change_reason == "Moving to the new processor"


def test_the_switch_to_an_unconfigured_gateway_is_shown_blocked_and_refused(
    stripe_active, billing_admin, admin_client_for, settings
):
    settings.NMI_SECURITY_KEY = ""
    settings.NMI_QUERY_URL = ""
    client = admin_client_for(billing_admin)
    assert "NMI: not configured (NMI_SECURITY_KEY, NMI_QUERY_URL not set)" in (
        client.get(reverse("admin:billing_gatewaysettings_change", args=[1])).content.decode()
    )

    confirm = client.get(_gateway_tool("switch_to_nmi")).content.decode()
    assert "No: NMI_SECURITY_KEY, NMI_QUERY_URL are not set." in confirm
    assert "The app will refuse this as things stand" in confirm

    refused = confirm_tool(
        client, _gateway_tool("switch_to_nmi"), {"reason": "Moving processors"}, follow=True
    ).content.decode()

    assert "Refused (payment.gateway_not_configured)" in refused
    assert "NMI is not configured on this server" in refused
    assert GatewaySettings.load().active_gateway == "stripe"


def test_the_switch_warns_about_cards_its_gateway_cannot_charge(
    stripe_active, billing_admin, admin_client_for, system
):
    patient = PatientFactory()
    card = payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system)
    SubscriptionFactory(patient=patient, payment_method=card)

    confirm = admin_client_for(billing_admin).get(_gateway_tool("switch_to_nmi")).content.decode()

    assert "1 saved card(s) of 1 patient(s) are in another vault" in confirm
    assert "1 active or paused subscription(s) have no card saved with NMI" in confirm


def test_cs_sees_the_gateway_but_may_not_switch_it(stripe_active, cs_user, admin_client_for):
    client = admin_client_for(cs_user)
    page = client.get(reverse("admin:billing_gatewaysettings_change", args=[1])).content.decode()
    assert "Active gateway" in page and "data-tool" not in page

    refused = confirm_tool(client, _gateway_tool("switch_to_nmi"), {"reason": "try"}, follow=True)

    assert "Your role does not allow this" in refused.content.decode()
    assert GatewaySettings.load().active_gateway == "stripe"


@pytest.fixture
def card(stripe_active, system):
    patient = PatientFactory(first_name="Ada", last_name="Lovelace")
    return payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system)


def test_cs_removes_a_card_after_reading_what_is_charged_to_it(card, cs_user, admin_client_for):
    client = admin_client_for(cs_user)
    page = client.get(reverse("admin:billing_paymentmethod_change", args=[card.pk]))
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert card.gateway_token not in html
    assert 'data-tool="remove"' in html

    confirm = client.get(_card_tool(card, "remove")).content.decode()
    assert f"Before you remove {card}" in confirm
    assert "No active or paused subscription is charged to this card." in confirm
    assert "This is the patient&#x27;s default card" in confirm

    done = confirm_tool(
        client, _card_tool(card, "remove"), {"reason": "Patient reported it lost"}, follow=True
    ).content.decode()

    assert f"{card} of Ada Lovelace is removed: the app will not charge it again." in done
    assert "No card is the default now." in done
    card.refresh_from_db()
    assert card.removed_at is not None and not card.is_default


def test_removing_a_card_a_subscription_uses_is_refused_with_a_sentence(
    card, cs_user, admin_client_for
):
    subscription = SubscriptionFactory(patient=card.patient, payment_method=card)
    client = admin_client_for(cs_user)
    confirm = client.get(_card_tool(card, "remove")).content.decode()
    assert f"{subscription} (active) is charged to this card" in confirm

    refused = confirm_tool(
        client, _card_tool(card, "remove"), {"reason": "Patient asked"}, follow=True
    ).content.decode()

    assert "Refused (payment.card_in_use)" in refused
    assert f"pays for subscription {subscription} (active), so it cannot be removed" in refused
    assert PaymentMethod.objects.get(pk=card.pk).removed_at is None


def test_cs_makes_another_card_the_default(card, cs_user, admin_client_for, system):
    newer = payments.save_card(
        patient=card.patient, gateway="stripe", token=STRIPE_CARD, actor=system
    )
    client = admin_client_for(cs_user)
    assert 'data-tool="make_default"' not in (
        client.get(reverse("admin:billing_paymentmethod_change", args=[newer.pk])).content.decode()
    )

    done = confirm_tool(
        client,
        _card_tool(card, "make_default"),
        {"reason": "Patient prefers this card"},
        follow=True,
    ).content.decode()

    assert f"{card} is now the default card of Ada Lovelace." in done
    assert PaymentMethod.objects.get(patient=card.patient, is_default=True) == card


def test_money_pages_are_read_only_for_every_role(
    paid_order, system, cs_user, billing_admin, superuser, admin_client_for
):
    order = paid_order("stripe", 4000)
    refund_order(order=order, actor=system, reason="Goodwill", amount_cents=1000)
    invoice = Invoice.objects.get(order=order)
    charge = Payment.objects.filter(invoice=invoice).first()
    pages = [
        reverse("admin:billing_invoice_change", args=[invoice.pk]),
        reverse("admin:billing_payment_change", args=[charge.pk]),
        reverse("admin:billing_refundattempt_change", args=[RefundAttempt.objects.get().pk]),
        reverse("admin:billing_gatewaysettings_change", args=[1]),
    ]
    for user in (cs_user, billing_admin, superuser):
        client = admin_client_for(user)
        for url in pages:
            page = client.get(url)
            # Refund attempts are for superusers to read; every other page for every role.
            assert page.status_code == 200 or "refundattempt" in url, (user.username, url)
            assert b'name="_save"' not in page.content, (user.username, url)
            assert client.post(url, {"status": "CANCELLED"}).status_code == 403
    invoice_page = admin_client_for(cs_user).get(pages[0]).content.decode()
    assert reverse("admin:orders_order_change", args=[order.pk]) in invoice_page
    assert Invoice.objects.get(pk=invoice.pk).status == invoice.status
