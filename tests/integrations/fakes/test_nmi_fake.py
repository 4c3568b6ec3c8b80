"""The fake NMI server speaks NMI's protocol: raw form posts in, NMI's answers out.

These pin the wire format and the gateway rules the adapter relies on, independently of it.
"""

import re
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

import pytest
import requests

# Card numbers only ever leave the fake masked, as NMI masks them: 4xxxxxxxxxxx1234.
MASKED_CARD_NUMBER = re.compile(r"\dx{10,11}\d{4}")


def transact(nmi, **fields):
    response = requests.post(
        nmi.api_url, data={"security_key": nmi.security_key, **fields}, timeout=5
    )
    assert response.status_code == 200  # NMI answers 200 whatever happened
    return dict(parse_qsl(response.text, keep_blank_values=True))


def query(nmi, **fields):
    response = requests.post(
        nmi.query_url, data={"security_key": nmi.security_key, **fields}, timeout=5
    )
    assert response.status_code == 200
    root = ET.fromstring(response.text)  # noqa: S314 (our own fake's answer)
    for number in root.iter("cc_number"):
        assert MASKED_CARD_NUMBER.fullmatch(number.text)
    return root


def sale(nmi, amount="25.00", card="nmi_tok_visa", **fields):
    return transact(nmi, type="sale", payment_token=card, amount=amount, **fields)


def test_an_approved_sale_starts_pending_settlement(nmi):
    answer = sale(nmi, orderid="ORD-1")

    assert answer["response"] == "1"
    assert answer["responsetext"] == "SUCCESS"
    assert answer["response_code"] == "100"
    assert answer["type"] == "sale"
    assert answer["orderid"] == "ORD-1"
    [entry] = nmi.transactions()
    assert entry["transaction_id"] == answer["transactionid"]
    assert entry["condition"] == "pendingsettlement"
    assert entry["amount_cents"] == 2500


def test_a_wrong_security_key_fails_authentication(nmi):
    answer = transact(nmi, security_key="wrong", type="sale", payment_token="nmi_tok_visa")

    assert (answer["response"], answer["responsetext"], answer["response_code"]) == (
        "3",
        "Authentication Failed",
        "300",
    )
    error = query(nmi, security_key="wrong", order_id="ORD-1").findtext("error_response")
    assert error == "Authentication Failed"
    assert nmi.transactions() == []


def test_test_mode_declines_a_sale_under_one_dollar(nmi):
    answer = sale(nmi, amount="0.99")

    assert (answer["response"], answer["responsetext"], answer["response_code"]) == (
        "2",
        "DECLINE",
        "200",
    )
    [entry] = nmi.transactions()
    assert (entry["success"], entry["condition"]) == (False, "failed")


def test_an_unknown_payment_token_is_an_error(nmi):
    answer = sale(nmi, card="nmi_tok_unknown")

    assert answer["response"] == "3"
    assert answer["responsetext"].startswith("Payment Token does not exist REFID:")


def test_the_customer_vault_keeps_the_card_masked(nmi):
    vault_id = transact(nmi, customer_vault="add_customer", payment_token="nmi_tok_mastercard")[
        "customer_vault_id"
    ]

    customer = query(nmi, report_type="customer_vault", customer_vault_id=vault_id).find(
        "customer_vault/customer"
    )
    assert customer.get("id") == vault_id
    assert customer.findtext("cc_number") == "5xxxxxxxxxxx2297"
    assert customer.findtext("cc_exp") == "0629"
    assert customer.findtext("cc_type") == "mastercard"
    assert transact(nmi, type="sale", customer_vault_id=vault_id, amount="5.00")["response"] == "1"


def test_a_void_is_allowed_only_before_settlement(nmi):
    unsettled = sale(nmi, amount="10.00")["transactionid"]
    settled = sale(nmi, amount="20.00")["transactionid"]
    nmi.settle()
    unsettled_later = sale(nmi, amount="30.00")["transactionid"]

    too_late = transact(nmi, type="void", transactionid=settled)
    voided = transact(nmi, type="void", transactionid=unsettled_later)

    assert too_late["response"] == "3"
    assert too_late["responsetext"].startswith("Only transactions pending settlement can be voided")
    assert (voided["response"], voided["transactionid"]) == ("1", unsettled_later)
    conditions = {e["transaction_id"]: e["condition"] for e in nmi.transactions()}
    assert conditions == {unsettled: "complete", settled: "complete", unsettled_later: "canceled"}


def test_a_failed_settlement_batch_leaves_its_transactions_for_the_next(nmi):
    sale(nmi, amount="12.00")

    nmi.settle(fail=True)
    after_failure = {e["condition"] for e in nmi.transactions()}
    nmi.settle()

    assert after_failure == {"pendingsettlement"}
    assert {e["condition"] for e in nmi.transactions()} == {"complete"}


def test_refunds_are_transactions_of_their_own_found_by_their_order_id(nmi):
    sale_id = sale(nmi, amount="40.00", orderid="ORD-2")["transactionid"]

    # NMI also refunds a sale that has not settled yet (its Payment API documentation).
    refund = transact(nmi, type="refund", transactionid=sale_id, amount="15.00", orderid="RF-1")

    assert refund["response"] == "1"
    assert refund["transactionid"] != sale_id
    [found] = query(nmi, order_id="RF-1").findall("transaction")
    assert found.findtext("transaction_id") == refund["transactionid"]
    assert found.findtext("condition") == "pendingsettlement"
    assert found.findtext("cc_number") == "4xxxxxxxxxxx8431"
    assert found.findtext("action/action_type") == "refund"
    assert found.findtext("action/amount") == "15.00"
    assert nmi.transactions()[1] == {
        "type": "refund",
        "transaction_id": refund["transactionid"],
        "parent_transaction_id": sale_id,
        "amount_cents": 1500,
        "currency": "USD",
        "orderid": "RF-1",
        "condition": "pendingsettlement",
        "success": True,
    }


def test_refunds_stop_at_the_transaction_balance(nmi):
    sale_id = sale(nmi, amount="50.00")["transactionid"]
    nmi.settle()

    first = transact(nmi, type="refund", transactionid=sale_id, amount="30.00")
    too_much = transact(nmi, type="refund", transactionid=sale_id, amount="20.01")
    rest = transact(nmi, type="refund", transactionid=sale_id)  # no amount: the whole balance
    another = transact(nmi, type="refund", transactionid=sale_id, amount="1.00")

    assert first["response"] == "1"
    assert too_much["response"] == "3"
    assert too_much["responsetext"].startswith(
        "Refund amount may not exceed the transaction balance REFID:"
    )
    assert rest["response"] == "1"
    assert another["responsetext"].startswith("Transaction has already been fully refunded")
    refunds = [e["amount_cents"] for e in nmi.transactions() if e["type"] == "refund"]
    assert refunds == [3000, 2000]


def test_a_voided_sale_refuses_refunds(nmi):
    sale_id = sale(nmi)["transactionid"]
    transact(nmi, type="void", transactionid=sale_id)

    answer = transact(nmi, type="refund", transactionid=sale_id)

    assert answer["response"] == "3"
    assert answer["responsetext"].startswith("Transaction was voided and cannot be refunded")


def test_the_same_card_and_amount_within_the_window_is_a_duplicate(nmi):
    first = sale(nmi, amount="12.00", orderid="ORD-A")

    duplicate = sale(nmi, amount="12.00", orderid="ORD-B")
    other_amount = sale(nmi, amount="12.01", orderid="ORD-C")
    other_card = sale(nmi, amount="12.00", card="nmi_tok_amex", orderid="ORD-D")
    check_disabled = sale(nmi, amount="12.00", orderid="ORD-E", dup_seconds="0")

    assert first["response"] == "1"
    assert (duplicate["response"], duplicate["response_code"]) == ("3", "300")
    assert re.fullmatch(r"Duplicate transaction REFID:\d+", duplicate["responsetext"])
    assert duplicate["transactionid"] == ""
    assert [a["response"] for a in (other_amount, other_card, check_disabled)] == ["1"] * 3


def test_a_declined_sale_does_not_count_as_a_duplicate(nmi):
    sale(nmi, amount="0.50")

    assert sale(nmi, amount="0.50")["responsetext"] == "DECLINE"


def test_injected_faults_apply_to_the_next_request_of_their_kind(nmi):
    nmi.inject("fail", on="sale")
    query(nmi, order_id="ORD-1")  # a query does not consume a sale's fault

    failed = sale(nmi)

    assert (failed["response"], failed["response_code"]) == ("3", "420")
    assert nmi.transactions() == []
    assert sale(nmi)["response"] == "1"


def test_a_dropped_connection_still_applies_the_request(nmi):
    nmi.inject("drop_after_apply", on="sale")

    with pytest.raises(requests.ConnectionError):
        sale(nmi, orderid="ORD-LOST")

    assert [e["orderid"] for e in nmi.transactions()] == ["ORD-LOST"]


def test_the_control_api_rejects_an_unknown_fault(nmi):
    response = requests.post(f"{nmi.base_url}/_fake/faults", json={"next": "explode"}, timeout=5)

    assert response.status_code == 400


def test_reset_forgets_everything(nmi):
    sale(nmi)
    nmi.inject("fail")

    nmi.reset()

    assert nmi.transactions() == []
    assert sale(nmi)["response"] == "1"  # neither the fault nor the duplicate window survived


def test_the_merchant_portal_refunds_under_the_sales_order_id_by_the_same_rules(nmi):
    sale_id = sale(nmi, amount="30.00", orderid="ORD-3")["transactionid"]

    refund = nmi.portal_refund(sale_id, amount="10.00")
    too_much = nmi.portal_refund(sale_id, amount="25.00")
    void = nmi.portal_void(sale_id)

    assert refund["response"] == "1"
    assert too_much == {
        "response": "3",
        "responsetext": "Refund amount may not exceed the transaction balance",
        "transaction_id": "",
    }
    assert void["responsetext"] == "Transactions with refunds cannot be voided"
    [found] = query(nmi, transaction_id=refund["transaction_id"]).findall("transaction")
    assert found.findtext("order_id") == "ORD-3"
    assert found.findtext("action/action_type") == "refund"


def test_the_webhook_controls_need_a_webhook_url(nmi):
    refused = requests.post(f"{nmi.base_url}/_fake/webhooks/resend", json={}, timeout=5)
    assert refused.status_code == 409
