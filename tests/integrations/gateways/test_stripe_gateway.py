"""The Stripe adapter's contract, run against localstripe and against our fake.

Cards are Stripe's test PaymentMethod ids (`pm_card_visa` …), never card numbers.
"""

import re

import pytest
import stripe

from integrations.gateways.base import (
    GatewayAuthenticationFailed,
    GatewayNotConfigured,
    PaymentDeclined,
    RefundStatus,
)
from tests.fixtures.stripe import MERCHANT_ACCOUNT, new_reference


@pytest.fixture
def gateway(stripe_server):
    return stripe_server.gateway()


@pytest.fixture
def saved_card(gateway):
    return gateway.save_card(token="pm_card_visa", customer_reference=new_reference("patient"))


@pytest.fixture
def charge(gateway, saved_card):
    return gateway.charge(
        amount_cents=5000,
        currency="usd",
        payment_token=saved_card.token,
        saved_card=True,
        reference=new_reference("charge"),
    )


def test_save_card_vaults_it_under_a_customer(gateway):
    saved = gateway.save_card(
        token="pm_card_visa", customer_reference=new_reference("patient"), email="pat@example.com"
    )

    assert re.fullmatch(r"cus_\w+/pm_\w+", saved.token)
    assert (saved.card.brand, saved.card.last4) == ("visa", "4242")
    assert 1 <= saved.card.exp_month <= 12
    assert saved.card.exp_year >= 2025


def test_charge_a_saved_card(gateway, saved_card):
    reference = new_reference("charge")

    result = gateway.charge(
        amount_cents=5000,
        currency="usd",
        payment_token=saved_card.token,
        saved_card=True,
        reference=reference,
    )

    assert result.transaction_id.startswith("pi_")
    assert (result.amount_cents, result.currency) == (5000, "usd")
    assert result.card == saved_card.card
    assert gateway.find_charge(reference=reference) == result


def test_charge_a_one_off_payment_method(gateway):
    result = gateway.charge(
        amount_cents=1200,
        currency="usd",
        payment_token="pm_card_visa",
        saved_card=False,
        reference=new_reference("charge"),
    )

    assert result.amount_cents == 1200
    assert result.card.last4 == "4242"


def test_find_charge_without_one_is_none(gateway, charge):
    assert gateway.find_charge(reference=new_reference("charge")) is None


def test_a_card_declined_when_saved(gateway):
    with pytest.raises(PaymentDeclined, match="declined"):
        gateway.save_card(
            token="pm_card_visa_chargeDeclined", customer_reference=new_reference("patient")
        )


def test_a_declined_charge_moves_no_money(gateway):
    # This test card saves fine, then every charge on it is declined.
    saved = gateway.save_card(
        token="pm_card_chargeCustomerFail", customer_reference=new_reference("patient")
    )
    reference = new_reference("charge")

    with pytest.raises(PaymentDeclined, match="declined"):
        gateway.charge(
            amount_cents=5000,
            currency="usd",
            payment_token=saved.token,
            saved_card=True,
            reference=reference,
        )

    assert gateway.find_charge(reference=reference) is None


def test_full_refund(gateway, charge):
    reference = new_reference("refund")

    refund = gateway.refund(
        transaction_id=charge.transaction_id, amount_cents=5000, currency="usd", reference=reference
    )

    assert refund.refund_id.startswith("re_")
    assert refund.transaction_id == charge.transaction_id
    assert (refund.amount_cents, refund.currency, refund.status) == (
        5000,
        "usd",
        RefundStatus.SUCCEEDED,
    )
    assert gateway.find_refund(transaction_id=charge.transaction_id, reference=reference) == refund


def test_partial_refunds_are_found_by_their_own_reference(gateway, charge):
    first, second = new_reference("refund"), new_reference("refund")
    refunds = [
        gateway.refund(
            transaction_id=charge.transaction_id,
            amount_cents=amount,
            currency="usd",
            reference=reference,
        )
        for amount, reference in ((1500, first), (2000, second))
    ]

    assert [r.amount_cents for r in refunds] == [1500, 2000]
    assert refunds[0].refund_id != refunds[1].refund_id
    found = gateway.find_refund(transaction_id=charge.transaction_id, reference=second)
    assert found == refunds[1]
    assert (
        gateway.find_refund(transaction_id=charge.transaction_id, reference=new_reference("refund"))
        is None
    )


# localstripe ignores Idempotency-Key and would make a second refund, so this runs on the fake
# only; test_stripe_fake.py covers the wire-level replay.
@pytest.mark.parametrize("stripe_server", ["fake"], indirect=True)
def test_the_same_reference_twice_refunds_once(stripe_server, gateway, charge):
    reference = new_reference("refund")

    first = gateway.refund(
        transaction_id=charge.transaction_id, amount_cents=2000, currency="usd", reference=reference
    )
    again = gateway.refund(
        transaction_id=charge.transaction_id, amount_cents=2000, currency="usd", reference=reference
    )

    assert again == first
    assert [r["id"] for r in stripe_server.refunds()] == [first.refund_id]


# localstripe refuses `description` on a PaymentIntent ("Unexpected description").
@pytest.mark.parametrize("stripe_server", ["fake"], indirect=True)
def test_charge_with_a_description(stripe_server, gateway, saved_card):
    result = gateway.charge(
        amount_cents=900,
        currency="usd",
        payment_token=saved_card.token,
        saved_card=True,
        reference=new_reference("charge"),
        description="ORD-000123, month 2",
    )

    sdk = stripe.StripeClient(stripe_server.api_key, base_addresses={"api": stripe_server.api_base})
    assert (
        sdk.v1.payment_intents.retrieve(result.transaction_id).description == "ORD-000123, month 2"
    )


def test_a_wrong_api_key(stripe_server):
    # Not `sk_…`: localstripe accepts any key of that shape.
    wrong_key = "wrong-key-9f8e7d"
    gateway = stripe_server.gateway(api_key=wrong_key)

    with pytest.raises(GatewayAuthenticationFailed) as refused:
        gateway.save_card(token="pm_card_visa", customer_reference=new_reference("patient"))

    assert MERCHANT_ACCOUNT in refused.value.message
    assert wrong_key not in refused.value.message
    assert refused.value.__cause__ is None  # Stripe's own message quotes part of the key


def test_not_configured_without_an_api_key(stripe_server):
    gateway = stripe_server.gateway(api_key="")
    calls = [
        lambda: gateway.save_card(token="pm_card_visa", customer_reference="patient-1"),
        lambda: gateway.charge(
            amount_cents=100,
            currency="usd",
            payment_token="pm_card_visa",
            saved_card=False,
            reference="r",
        ),
        lambda: gateway.find_charge(reference="r"),
        lambda: gateway.refund(
            transaction_id="pi_1", amount_cents=100, currency="usd", reference="r"
        ),
        lambda: gateway.find_refund(transaction_id="pi_1", reference="r"),
    ]

    for call in calls:
        with pytest.raises(GatewayNotConfigured, match="no API key"):
            call()
