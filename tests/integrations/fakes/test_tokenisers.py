"""The browser tokenisers the fakes serve for dev and tests: a Stripe.js stand-in and a
Collect.js stand-in. Each script is served, takes only the gateway's public test card numbers,
and answers with a token our adapters save as a card, by brand and last four only."""

import pytest
import requests

from integrations.gateways.base import InvalidPaymentToken
from tests.fixtures.nmi import TEST_TOKENIZATION_KEY
from tests.fixtures.stripe import STRIPE_PUBLISHABLE_TEST_KEY, new_reference
from tests.integrations.gateways.test_nmi_gateway import make_gateway

# The gateways' published test cards (stripe.com/docs/testing, NMI's integration guide).
STRIPE_TEST_MASTERCARD = "5555555555554444"
NMI_TEST_VISA = "4111111111111111"


def _stripe_card(server, number: str, key: str = STRIPE_PUBLISHABLE_TEST_KEY):
    form = {
        "key": key,
        "type": "card",
        "card[number]": number,
        "card[exp_month]": "7",
        "card[exp_year]": "41",
        "card[cvc]": "123",
    }
    return requests.post(f"{server.api_base}/v1/payment_methods", data=form, timeout=5)


def test_the_stripe_js_stand_in_tokenises_a_test_card_the_adapter_saves(stripe_fake_server):
    script = requests.get(f"{stripe_fake_server.api_base}/js.stripe.com/v3/", timeout=5)
    assert "createPaymentMethod" in script.text
    assert script.headers["Content-Type"].startswith("application/javascript")

    made = _stripe_card(stripe_fake_server, STRIPE_TEST_MASTERCARD)

    assert made.status_code == 200 and made.headers["Access-Control-Allow-Origin"] == "*"
    payment_method = made.json()
    assert payment_method["id"].startswith("pm_") and "number" not in payment_method["card"]
    saved = stripe_fake_server.gateway().save_card(
        token=payment_method["id"], customer_reference=new_reference("patient")
    )
    card = saved.card
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        "mastercard",
        "4444",
        7,
        2041,
    )


@pytest.mark.parametrize(
    ("number", "key", "status", "code"),
    [
        ("4000056655665556", STRIPE_PUBLISHABLE_TEST_KEY, 402, "card_declined"),  # not a test card
        ("4242424242424241", STRIPE_PUBLISHABLE_TEST_KEY, 402, "incorrect_number"),
        (STRIPE_TEST_MASTERCARD, "pk_test_someone_else", 401, None),
    ],
)
def test_the_stripe_stand_in_refuses_as_stripe_does(stripe_fake_server, number, key, status, code):
    answer = _stripe_card(stripe_fake_server, number, key)
    assert answer.status_code == status
    assert answer.json()["error"].get("code") == code


def _collect(nmi, number: str, key: str = TEST_TOKENIZATION_KEY) -> dict:
    form = {"tokenization_key": key, "ccnumber": number, "ccexp": "0941", "cvv": "999"}
    return requests.post(f"{nmi.base_url}/token/api/create", data=form, timeout=5).json()


def test_the_collect_js_stand_in_tokenises_a_test_card_once(nmi):
    script = requests.get(f"{nmi.base_url}/token/Collect.js", timeout=5)
    assert "startPaymentRequest" in script.text

    answer = _collect(nmi, NMI_TEST_VISA)

    assert answer["card"] == {
        "number": "411111******1111",
        "bin": "411111",
        "exp": "0941",
        "type": "visa",
    }
    gateway = make_gateway(nmi)
    saved = gateway.save_card(token=answer["token"], customer_reference="PAT-000001")
    card = saved.card
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "1111", 9, 2041)
    # A Collect.js token works once: the second use is an unknown token, not a decline.
    with pytest.raises(InvalidPaymentToken, match="does not know this card token"):
        gateway.save_card(token=answer["token"], customer_reference="PAT-000002")


def test_the_collect_js_stand_in_needs_the_tokenization_key_and_a_test_card(nmi):
    assert _collect(nmi, NMI_TEST_VISA, key="someone-elses-key")["error"] == (
        "Invalid tokenization key"
    )
    assert "test card" in _collect(nmi, "4242424242424242")["error"]
