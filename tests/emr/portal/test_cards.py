"""Saved cards in the portal: the active gateway's cards with brand, last four, expiry and the
default; a card added from the gateway's token becomes the default; the default can change; a
card no subscription pays with can be removed, one that does cannot. The card pages allow the
gateway script's origin, and only there; another patient's card answers 404."""

from urllib.parse import urlencode

import pytest

from billing import payments
from billing.models import PaymentMethod
from subscriptions import lifecycle
from tests.subscriptions.conftest import save_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_active(gateways, system):
    payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")
    return gateways


def test_the_cards_page_lists_the_active_gateways_cards_default_first(
    gateways, portal_client, system
):
    client = portal_client()
    patient = client.patient
    payments.set_active_gateway(gateway="nmi", actor=system, reason="test setup")
    save_card(patient, gateway="nmi")  # saved before the clinic moved to Stripe: not chargeable
    payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")
    older = save_card(patient, token="pm_card_mastercard")
    save_card(patient)  # the newest card is the default

    html = client.get("/patient/cards/").content.decode()

    rows = html.split('data-card="')[1:]
    assert [row.split('"')[0] for row in rows][1] == str(older.pk)
    assert "Visa ····4242" in rows[0] and "Default" in rows[0] and "Expires 12/2034" in rows[0]
    assert "Mastercard ····4444" in rows[1] and "Default" not in rows[1]
    assert len(rows) == 2  # the NMI card is not one the clinic can charge now
    assert "pm_" not in html and "cus_" not in html  # no gateway token reaches the page


def test_a_token_from_the_card_form_saves_the_card_as_the_default(stripe_active, portal_client):
    client = portal_client()
    first = save_card(client.patient)

    response = client.post(
        "/patient/cards/", {"gateway": "stripe", "token": "pm_card_mastercard"}, follow=True
    )

    assert response.status_code == 200
    assert "Mastercard ····4444 is saved. It is now your default card." in response.content.decode()
    added = PaymentMethod.objects.get(patient=client.patient, last4="4444")
    assert added.is_default and added.gateway == "stripe"
    first.refresh_from_db()
    assert not first.is_default
    assert added.history.latest().history_door == "portal"


def test_a_card_number_where_the_token_belongs_is_refused_and_never_stored(
    stripe_active, portal_client
):
    client = portal_client()

    response = client.post("/patient/cards/", {"gateway": "stripe", "token": "4242424242424242"})

    assert response.status_code == 409
    assert "Enter your card in the card form on this page" in response.content.decode()
    assert "4242424242424242" not in response.content.decode()
    assert not PaymentMethod.objects.filter(patient=client.patient).exists()


def test_a_declined_card_is_not_saved_and_the_patient_is_told(stripe_active, portal_client):
    client = portal_client()

    response = client.post(
        "/patient/cards/", {"gateway": "stripe", "token": "pm_card_chargeDeclined"}
    )

    assert response.status_code == 402
    assert "Your bank declined this card, so it was not saved." in response.content.decode()
    assert not PaymentMethod.objects.filter(patient=client.patient).exists()


def test_the_patient_chooses_the_default_and_removes_a_card_no_subscription_uses(
    stripe_active, portal_client
):
    client = portal_client()
    visa = save_card(client.patient)
    mastercard = save_card(client.patient, token="pm_card_mastercard")

    page = client.post(f"/patient/cards/{visa.pk}/default/", follow=True).content.decode()
    assert "Visa ····4242 is now your default card." in page
    visa.refresh_from_db()
    assert visa.is_default

    page = client.post(f"/patient/cards/{mastercard.pk}/remove/", follow=True).content.decode()
    assert "Mastercard ····4444 is removed. The clinic will not charge it again." in page
    mastercard.refresh_from_db()
    assert mastercard.removed_at is not None
    assert client.get(f"/patient/cards/{mastercard.pk}/").status_code == 404


def test_a_card_a_subscription_pays_with_is_not_removed(subscribe_patient, portal_client):
    client = portal_client()
    subscription = subscribe_patient(client.patient, name="Monthly care")
    card = subscription.payment_method

    listing = client.get("/patient/cards/").content.decode()
    assert "Pays for Monthly care" in listing
    assert f'href="/patient/cards/{card.pk}/"' not in listing  # no remove link offered

    response = client.post(f"/patient/cards/{card.pk}/remove/")

    assert response.status_code == 409
    assert "This card pays for one of your subscriptions" in response.content.decode()
    card.refresh_from_db()
    assert card.removed_at is None


def test_another_patients_card_answers_404_on_every_card_door(stripe_active, portal_client):
    theirs = save_card(portal_client().patient)
    client = portal_client()

    assert client.get(f"/patient/cards/{theirs.pk}/").status_code == 404
    assert client.post(f"/patient/cards/{theirs.pk}/default/").status_code == 404
    assert client.post(f"/patient/cards/{theirs.pk}/remove/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.removed_at is None and theirs.is_default


def test_only_the_card_pages_allow_the_gateway_scripts_origin(
    stripe_active, portal_client, settings
):
    client = portal_client()
    fake = stripe_active.stripe.api_base

    cards_policy = client.get("/patient/cards/")["Content-Security-Policy"]
    home_policy = client.get("/patient/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in cards_policy.split(";"))
    assert directives["script-src"] == f"'self' {fake}"
    assert directives["connect-src"] == f"'self' {fake}"
    assert "unsafe-inline" not in directives["script-src"]
    assert fake not in home_policy
    html = client.get("/patient/cards/").content.decode()
    assert f'<script src="{settings.STRIPE_JS_URL}" defer></script>' in html


def test_with_nmi_active_the_page_loads_collect_js_with_its_tokenization_key(
    gateways, portal_client, system, settings
):
    payments.set_active_gateway(gateway="nmi", actor=system, reason="test setup")
    client = portal_client()

    response = client.get("/patient/cards/")

    html = response.content.decode()
    assert f'src="{settings.NMI_COLLECT_JS_URL}"' in html
    assert f'data-tokenization-key="{settings.NMI_TOKENIZATION_KEY}"' in html
    assert gateways.nmi.base_url in response["Content-Security-Policy"]
    assert settings.NMI_SECURITY_KEY not in html


def test_a_card_added_from_the_recovery_page_leads_back_to_it(
    recovery_for, portal_client, patient_with_login
):
    patient = patient_with_login()
    subscription = recovery_for(patient, name="Monthly care")
    client = portal_client(patient)  # signed in after the month the renewal waited
    invoice = lifecycle.open_cycle_invoices(subscription)[0]
    recovery = f"/patient/invoices/?recovery=1&invoice={invoice.number}"
    add_card = f"/patient/cards/?{urlencode({'next': recovery})}"
    assert f'href="{add_card}#add-card"' in client.get(recovery).content.decode()

    response = client.post(add_card, {"gateway": "stripe", "token": "pm_card_mastercard"})

    assert response.status_code == 302 and response["Location"] == recovery
    page = client.get(recovery).content.decode()
    assert "Mastercard ····4444, expires 12/2034 (default)" in page


def test_the_card_form_leads_only_to_portal_pages(stripe_active, portal_client):
    client = portal_client()
    token = {"gateway": "stripe", "token": "pm_card_visa"}
    for elsewhere in ["https://elsewhere.example/", "/admin/", "//elsewhere.example/patient/"]:
        response = client.post(f"/patient/cards/?{urlencode({'next': elsewhere})}", token)
        assert response["Location"] == "/patient/cards/"
