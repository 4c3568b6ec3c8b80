"""Accepting the refund terms on the pay page: a tick beside each version's generated text,
recorded through `billing.policies.acknowledge_order` (portal, version, the hash of the text
shown, who, when, address, browser) before the charge in the same request. No tick: a form
error and no charge. Accepted already: the date instead of the box. Against the Stripe fake."""

import re

import pytest

from billing.models import Payment, PolicyAcknowledgement
from billing.policies import acknowledge_order, combined_hash, revise_policy
from billing.states import InvoiceStatus, PaymentStatus
from emr.kernel.actors import Actor, Door
from tests.factories import PatientFactory
from tests.fixtures.packages import PACKAGE_TERMS, package_order

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def purchase(gateways, portal_client):
    patient = PatientFactory()
    order, card = package_order(patient)
    client = portal_client(patient)
    version = order.items.get().refund_policy_version
    return type(
        "Purchase",
        (),
        {
            "client": client,
            "patient": patient,
            "order": order,
            "card": card,
            "version": version,
            "page": f"/patient/invoices/?recovery=1&invoice={order.invoice.number}",
            "pay": f"/patient/invoices/{order.invoice.number}/pay/",
        },
    )


def _post(purchase, *, ticked=True, shown=None, **extra):
    data = {"card": purchase.card.pk, "terms_shown": shown or purchase.version.text_sha256}
    if ticked:
        data[f"accept_{purchase.version.pk}"] = "on"
    return purchase.client.post(purchase.pay, data, **extra)


def test_the_pay_page_shows_the_generated_terms_with_a_required_tick(purchase):
    response = purchase.client.get(purchase.page)

    assert response.status_code == 200
    page = response.content.decode()
    assert purchase.version.text in page  # the generated text itself, as hashed
    assert "Six facials terms (version 1)" in page
    assert f'name="accept_{purchase.version.pk}"' in page and "required" in page
    assert f'value="{combined_hash([purchase.version])}"' in page
    assert "I have read and accept these refund terms." in page


def test_ticking_records_the_acceptance_then_charges(purchase, gateways):
    response = _post(
        purchase, follow=True, HTTP_USER_AGENT="Phone browser", REMOTE_ADDR="198.51.100.4"
    )

    assert response.redirect_chain[-1][0] == f"/patient/invoices/{purchase.order.invoice.number}/"
    assert "Thank you: $360.00 paid with Visa ····4242." in _text(response)
    [ack] = PolicyAcknowledgement.objects.filter(order=purchase.order)
    assert ack.channel == "portal"
    assert ack.policy_version == purchase.version
    assert ack.text_sha256 == purchase.version.text_sha256
    assert ack.recorded_by_label == f"patient:{purchase.patient.user.username}"
    assert ack.ip_address == "198.51.100.4" and ack.user_agent == "Phone browser"
    charge = Payment.objects.get(invoice=purchase.order.invoice, status=PaymentStatus.SUCCEEDED)
    assert ack.acknowledged_at < charge.created_at  # accepted before the charge
    purchase.order.invoice.refresh_from_db()
    assert purchase.order.invoice.status == InvoiceStatus.PAID


def test_not_ticking_is_a_form_error_and_charges_nothing(purchase, gateways):
    charges_before = len(gateways.stripe.payment_intents())

    response = _post(purchase, ticked=False)

    assert response.status_code == 400
    assert "Tick the box to accept these refund terms before paying. No money was taken." in _text(
        response
    )
    assert not PolicyAcknowledgement.objects.filter(order=purchase.order).exists()
    assert not Payment.objects.filter(invoice=purchase.order.invoice).exists()
    assert len(gateways.stripe.payment_intents()) == charges_before


def test_terms_revised_while_the_page_was_open_are_not_accepted_unseen(purchase):
    stale = "0" * 64  # the fingerprint of other words than the ones in force

    response = _post(purchase, shown=stale)

    assert response.status_code == 409
    assert "The refund terms changed while this page was open" in _text(response)
    assert not PolicyAcknowledgement.objects.filter(order=purchase.order).exists()
    assert not Payment.objects.filter(invoice=purchase.order.invoice).exists()


def test_a_revision_after_the_order_does_not_change_the_terms_it_shows(purchase):
    actor = Actor.system("tests", door=Door.SHELL)
    revise_policy(
        policy=purchase.version.policy,
        rules={**PACKAGE_TERMS, "partial_refunds": "none"},
        actor=actor,
    )

    page = _text(purchase.client.get(purchase.page))

    assert "Six facials terms (version 1)" in page
    assert "Unused sessions are refunded pro rata" in page
    assert _post(purchase).status_code == 302


def test_terms_accepted_already_show_the_date_instead_of_the_box(purchase, cs_user):
    acknowledge_order(
        order=purchase.order, channel="phone", actor=Actor.staff(cs_user, door=Door.API)
    )

    response = purchase.client.get(purchase.page)
    page = _text(response)

    ack = PolicyAcknowledgement.objects.get(order=purchase.order)
    assert f"You accepted these terms on {ack.acknowledged_at:%-d %b %Y}." in page
    assert f"accept_{purchase.version.pk}" not in response.content.decode()
    paid = purchase.client.post(purchase.pay, {"card": purchase.card.pk})
    assert paid.status_code == 302
    assert PolicyAcknowledgement.objects.filter(order=purchase.order).count() == 1


def test_an_order_whose_terms_need_no_tick_pays_as_before(gateways, portal_client):
    patient = PatientFactory()
    order, card = package_order(
        patient, rules={"partial_refunds": "none", "package_expires_days": 30}
    )
    client = portal_client(patient)
    page = client.get(f"/patient/invoices/?recovery=1&invoice={order.invoice.number}")
    assert "No partial refunds." in page.content.decode()
    assert "accept_" not in page.content.decode()

    paid = client.post(f"/patient/invoices/{order.invoice.number}/pay/", {"card": card.pk})

    assert paid.status_code == 302
    assert not PolicyAcknowledgement.objects.filter(order=order).exists()
