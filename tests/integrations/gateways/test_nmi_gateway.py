"""NmiGateway against the fake NMI server: real HTTP, nothing of ours mocked.

Every money test ends by reading the fake's ledger: what the adapter returns must match what
actually moved at the gateway, and a retry must never move money twice.
"""

from uuid import uuid4

import pytest

from integrations.gateways.base import (
    AlreadyRefunded,
    CardDetails,
    GatewayAuthenticationFailed,
    GatewayError,
    GatewayNotConfigured,
    GatewayRefused,
    InvalidPaymentToken,
    OutcomeUnknown,
    PaymentDeclined,
    RefundMethod,
    RefundStatus,
)
from integrations.gateways.nmi_gateway import NmiGateway

MERCHANT_ACCOUNT = "nmi-test-merchant"


def make_gateway(nmi, **overrides):
    settings = {
        "security_key": nmi.security_key,
        "api_url": nmi.api_url,
        "query_url": nmi.query_url,
        "merchant_account": MERCHANT_ACCOUNT,
        "timeout": 5.0,
    }
    return NmiGateway(**{**settings, **overrides})


@pytest.fixture
def gateway(nmi):
    return make_gateway(nmi)


def new_reference(kind="attempt"):
    return f"{kind}-{uuid4().hex[:12]}"


def charge(gateway, amount_cents=10_000, card="nmi_tok_visa", reference=None, saved_card=False):
    return gateway.charge(
        amount_cents=amount_cents,
        currency="usd",
        payment_token=card,
        saved_card=saved_card,
        reference=reference or new_reference("charge"),
    )


def refund(gateway, charged, amount_cents=None, reference=None):
    return gateway.refund(
        transaction_id=charged.transaction_id,
        amount_cents=charged.amount_cents if amount_cents is None else amount_cents,
        currency="usd",
        reference=reference or new_reference("refund"),
    )


def ledger(nmi, type_):
    return [entry for entry in nmi.transactions() if entry["type"] == type_]


# Cards and charges


def test_save_card_vaults_it_and_returns_only_masked_details(gateway, nmi):
    saved = gateway.save_card(
        token="nmi_tok_visa", customer_reference="PAT-000001", email="pat@example.com"
    )

    assert saved.token.isdigit()  # NMI's customer_vault_id
    assert saved.card == CardDetails(brand="visa", last4="8431", exp_month=12, exp_year=2030)
    assert nmi.transactions() == []  # vaulting a card moves no money


def test_save_card_refuses_an_unknown_token(gateway):
    with pytest.raises(InvalidPaymentToken, match="NMI does not know this card token"):
        gateway.save_card(token="nmi_tok_unknown", customer_reference="PAT-000001")


def test_charge_a_saved_card(gateway, nmi):
    saved = gateway.save_card(token="nmi_tok_mastercard", customer_reference="PAT-000001")
    reference = new_reference("charge")

    charged = charge(
        gateway, amount_cents=4_999, card=saved.token, reference=reference, saved_card=True
    )

    assert (charged.amount_cents, charged.currency) == (4_999, "usd")
    [sale] = ledger(nmi, "sale")
    assert sale["transaction_id"] == charged.transaction_id
    assert (sale["amount_cents"], sale["orderid"], sale["condition"]) == (
        4_999,
        reference,
        "pendingsettlement",
    )
    found = gateway.find_charge(reference=reference)
    assert found.transaction_id == charged.transaction_id
    assert found.card == CardDetails(brand="mastercard", last4="2297", exp_month=6, exp_year=2029)


def test_charge_is_idempotent_per_reference(gateway, nmi):
    reference = new_reference("charge")

    first = charge(gateway, reference=reference)
    again = charge(gateway, reference=reference)

    assert again.transaction_id == first.transaction_id
    assert len(ledger(nmi, "sale")) == 1


def test_find_charge_is_none_for_an_unknown_reference(gateway):
    assert gateway.find_charge(reference=new_reference("charge")) is None


def test_a_charge_under_one_dollar_is_declined_in_test_mode(gateway, nmi):
    reference = new_reference("charge")

    with pytest.raises(PaymentDeclined, match="declined") as declined:
        charge(gateway, amount_cents=99, reference=reference)

    assert "Nothing was charged" in declined.value.message
    [sale] = ledger(nmi, "sale")
    assert (sale["success"], sale["condition"]) == (False, "failed")
    assert gateway.find_charge(reference=reference) is None


def test_the_same_card_and_amount_twice_within_the_window_is_refused_as_a_duplicate(gateway, nmi):
    charge(gateway, amount_cents=7_500)

    with pytest.raises(GatewayRefused, match="duplicate"):
        charge(gateway, amount_cents=7_500)  # another reference: a second order, say

    charge(gateway, amount_cents=7_501)
    assert [s["amount_cents"] for s in ledger(nmi, "sale")] == [7_500, 7_501]


def test_a_charge_whose_answer_is_lost_is_found_on_retry_not_made_twice(gateway, nmi):
    reference = new_reference("charge")
    nmi.inject("drop_after_apply", on="sale")

    with pytest.raises(OutcomeUnknown):
        charge(gateway, reference=reference)
    charged = charge(gateway, reference=reference)

    [sale] = ledger(nmi, "sale")
    assert charged.transaction_id == sale["transaction_id"]


# Configuration and credentials


def test_a_wrong_security_key_is_an_authentication_failure(nmi):
    gateway = make_gateway(nmi, security_key="revoked-key-123")

    with pytest.raises(GatewayAuthenticationFailed) as failed:
        charge(gateway)

    assert MERCHANT_ACCOUNT in failed.value.message
    assert "revoked-key-123" not in failed.value.message
    assert nmi.transactions() == []


def test_a_refund_with_a_wrong_security_key_is_an_authentication_failure(gateway, nmi):
    charged = charge(gateway)

    with pytest.raises(GatewayAuthenticationFailed):
        refund(make_gateway(nmi, security_key="revoked-key-123"), charged)

    assert ledger(nmi, "refund") == ledger(nmi, "void") == []


def test_an_empty_security_key_means_not_configured(nmi):
    gateway = make_gateway(nmi, security_key="")

    with pytest.raises(GatewayNotConfigured, match="NMI_SECURITY_KEY"):
        charge(gateway)
    with pytest.raises(GatewayNotConfigured):
        gateway.refund(
            transaction_id="10000000001", amount_cents=100, currency="usd", reference="r-1"
        )


# Refunds and voids


def test_a_full_refund_of_an_unsettled_sale_is_a_void(gateway, nmi):
    charged = charge(gateway)

    result = refund(gateway, charged)

    assert result.method == RefundMethod.VOID
    assert result.status == RefundStatus.SUCCEEDED
    assert (result.refund_id, result.amount_cents) == (charged.transaction_id, 10_000)
    [void] = ledger(nmi, "void")
    assert void["parent_transaction_id"] == charged.transaction_id
    assert void["condition"] == "canceled"
    assert ledger(nmi, "refund") == []


def test_a_settled_sale_is_refunded(gateway, nmi):
    charged = charge(gateway)
    nmi.settle()
    reference = new_reference("refund")

    result = refund(gateway, charged, reference=reference)

    assert result.method == RefundMethod.REFUND
    assert (result.transaction_id, result.amount_cents) == (charged.transaction_id, 10_000)
    [refunded] = ledger(nmi, "refund")
    assert refunded["transaction_id"] == result.refund_id
    assert refunded["parent_transaction_id"] == charged.transaction_id
    assert (refunded["amount_cents"], refunded["orderid"]) == (10_000, reference)
    assert ledger(nmi, "void") == []


def test_a_partial_refund_of_an_unsettled_sale_is_a_refund(gateway, nmi):
    charged = charge(gateway)

    result = refund(gateway, charged, amount_cents=2_500)

    assert (result.method, result.amount_cents) == (RefundMethod.REFUND, 2_500)
    assert [r["amount_cents"] for r in ledger(nmi, "refund")] == [2_500]
    assert ledger(nmi, "void") == []


def test_a_sale_that_settles_between_lookup_and_void_is_refunded_instead(gateway, nmi):
    charged = charge(gateway)
    # Settlement lands after the adapter saw `pendingsettlement` and before its void arrives.
    nmi.inject("settle_before", on="void")

    result = refund(gateway, charged)

    assert result.method == RefundMethod.REFUND
    assert ledger(nmi, "void") == []
    [refunded] = ledger(nmi, "refund")
    assert refunded["amount_cents"] == 10_000
    [sale] = ledger(nmi, "sale")
    assert sale["condition"] == "complete"


def test_partial_refunds_stop_at_the_remaining_balance(gateway, nmi):
    charged = charge(gateway)
    nmi.settle()
    refund(gateway, charged, amount_cents=4_000)
    refund(gateway, charged, amount_cents=5_000)

    with pytest.raises(GatewayRefused, match="more than what is left") as refused:
        refund(gateway, charged, amount_cents=1_001)

    assert not isinstance(refused.value, AlreadyRefunded)
    refund(gateway, charged, amount_cents=1_000)
    assert [r["amount_cents"] for r in ledger(nmi, "refund")] == [4_000, 5_000, 1_000]


def test_a_fully_refunded_sale_refuses_another_refund(gateway, nmi):
    charged = charge(gateway)
    nmi.settle()
    refund(gateway, charged)

    with pytest.raises(AlreadyRefunded, match="already refunded"):
        refund(gateway, charged, amount_cents=100)

    assert len(ledger(nmi, "refund")) == 1


def test_a_voided_sale_answers_with_its_void_and_moves_nothing_more(gateway, nmi):
    charged = charge(gateway)
    voided = refund(gateway, charged)

    # NMI records no reference on a void, so whichever reference asks, the void is the answer.
    again = refund(gateway, charged)
    found = gateway.find_refund(
        transaction_id=charged.transaction_id, reference=new_reference("refund")
    )

    assert again == found == voided
    assert len(ledger(nmi, "void")) == 1
    assert ledger(nmi, "refund") == []


def test_refunding_an_unknown_transaction_is_refused(gateway, nmi):
    with pytest.raises(GatewayRefused, match="no transaction 999"):
        gateway.refund(
            transaction_id="999", amount_cents=100, currency="usd", reference=new_reference()
        )


def test_find_refund_is_none_when_nothing_was_returned(gateway):
    charged = charge(gateway)

    assert (
        gateway.find_refund(
            transaction_id=charged.transaction_id, reference=new_reference("refund")
        )
        is None
    )


# Unknown outcomes: look up, retry with the same reference, never move money twice


def test_a_refund_that_times_out_is_found_and_not_repeated(gateway, nmi):
    charged = charge(gateway)
    nmi.settle()
    reference = new_reference("refund")
    nmi.inject("hang", seconds=1.0, on="refund")  # applied, but answered too late

    with pytest.raises(OutcomeUnknown, match="may or may not have happened") as unknown:
        refund(make_gateway(nmi, timeout=0.3), charged, reference=reference)

    assert nmi.security_key not in unknown.value.message
    found = gateway.find_refund(transaction_id=charged.transaction_id, reference=reference)
    assert (found.method, found.amount_cents, found.status) == (
        RefundMethod.REFUND,
        10_000,
        RefundStatus.SUCCEEDED,
    )
    assert refund(gateway, charged, reference=reference) == found
    [refunded] = ledger(nmi, "refund")
    assert refunded["transaction_id"] == found.refund_id


def test_a_refund_whose_answer_is_lost_happens_exactly_once(gateway, nmi):
    charged = charge(gateway)
    nmi.settle()
    reference = new_reference("refund")
    nmi.inject("drop_after_apply", on="refund")

    with pytest.raises(OutcomeUnknown):
        refund(gateway, charged, amount_cents=3_000, reference=reference)
    retried = refund(gateway, charged, amount_cents=3_000, reference=reference)

    [refunded] = ledger(nmi, "refund")
    assert (refunded["transaction_id"], refunded["amount_cents"]) == (retried.refund_id, 3_000)


def test_a_void_whose_answer_is_lost_is_found_on_retry(gateway, nmi):
    charged = charge(gateway)
    reference = new_reference("refund")
    nmi.inject("drop_after_apply", on="void")

    with pytest.raises(OutcomeUnknown):
        refund(gateway, charged, reference=reference)
    retried = refund(gateway, charged, reference=reference)

    assert retried.method == RefundMethod.VOID
    assert len(ledger(nmi, "void")) == 1
    assert ledger(nmi, "refund") == []


def test_a_gateway_system_error_is_a_failure_nothing_moved(gateway, nmi):
    charged = charge(gateway)
    nmi.settle()
    nmi.inject("fail", on="refund")

    with pytest.raises(GatewayError, match="try again later") as failed:
        refund(gateway, charged)

    assert not isinstance(failed.value, (GatewayRefused, OutcomeUnknown))
    assert ledger(nmi, "refund") == []


def test_a_lookup_that_times_out_changes_nothing(gateway, nmi):
    charged = charge(gateway)
    nmi.inject("hang", seconds=1.0, on="query")

    with pytest.raises(GatewayError, match="nothing was changed") as failed:
        refund(make_gateway(nmi, timeout=0.3), charged)

    assert not isinstance(failed.value, OutcomeUnknown)
    assert ledger(nmi, "refund") == ledger(nmi, "void") == []
