"""A fake NMI Payment API server for development and tests.

    python -m integrations.fakes.nmi --port 8701 --security-key KEY [--dup-seconds 1200]
        [--tokenization-key KEY]
        [--webhook-url http://localhost:8000/webhooks/nmi/ --webhook-signing-key KEY]

(`--security-key`, `--tokenization-key` and `--webhook-signing-key` default to
$NMI_SECURITY_KEY, $NMI_TOKENIZATION_KEY and $NMI_WEBHOOK_SIGNING_KEY, so none need appear in
`ps`.)

It speaks the part of NMI's protocol that `integrations/gateways/nmi_gateway.py` uses:

POST /api/transact.php: form in; always HTTP 200; the answer is a query string
`response=1|2|3&responsetext=…&authcode=…&transactionid=…&avsresponse=&cvvresponse=&orderid=…
&type=…&response_code=…` (1 approved, 2 declined, 3 error).
  - `customer_vault=add_customer&payment_token=…` vaults the card; answers `customer_vault_id`.
  - `type=sale` with `payment_token` or `customer_vault_id`, `amount`, `currency`, `orderid`,
    and optionally `dup_seconds`.
  - `type=refund&transactionid=…` with optional `amount` (omitted or 0.00: the whole balance)
    and `orderid`. A refund is a transaction of its own, with its own id and that orderid.
  - `type=void&transactionid=…` cancels an unsettled sale in full.
POST /api/query.php: form in; XML out (`<nm_response>`).
  - `transaction_id=…` (comma-separated allowed) and/or `order_id=…`: matching `<transaction>`s,
    each with its `condition` and `<action>`s. Card numbers are masked as NMI masks them.
  - `report_type=customer_vault&customer_vault_id=…`: the vaulted card, masked.

Collect.js, for the browser (with --tokenization-key):
GET /token/Collect.js: a stand-in for NMI's Collect.js (nmi_collect.js beside this file).
POST /token/api/create: form `tokenization_key`, `ccnumber`, `ccexp` (MMYY), `cvv`; what the
  stand-in calls. NMI's documented test card numbers only (TEST_CARD_NUMBERS); the answer is
  Collect.js's callback response, `{"tokenType": "inline", "token", "card": {"number" (masked),
  "bin", "exp", "type"}}`, or `{"error", "field"}`. The number is not kept: the token stands for
  a FakeCard (brand, first digit, last four, expiry), usable once, as a Collect.js token is.

Behaviour, and where it comes from:
  - Test payment tokens stand in for Collect.js tokens (no card numbers anywhere): see
    TEST_CARDS. Unlike real tokens, which work once, they can be used again and again.
  - NMI test mode: a sale under 1.00 is declined (response=2, "DECLINE", response_code=200).
  - A wrong security key: response=3, "Authentication Failed", response_code=300.
  - Sales and refunds start `pendingsettlement`; NMI settles them in a daily batch, here when a
    test calls POST /_fake/settle (they become `complete`).
  - Void: only while the sale is `pendingsettlement` ("Only transactions pending settlement can
    be voided"); the sale becomes `canceled`. The fake also refuses to void a sale that already
    has refunds (NMI does not document this case).
  - Refund: NMI's Payment API documentation says a refund "will reverse a previously settled or
    pending settlement transaction", and ActiveMerchant's live NMI test refunds a sale right
    after making it; so the fake accepts refunds of unsettled sales too. The balance is the sale
    minus its refunds: asking for more answers "Refund amount may not exceed the transaction
    balance". A voided or fully refunded sale refuses further refunds; those two texts are the
    fake's own, as NMI does not document them.
  - Duplicate check (support.nmi.com, "Duplicate Transaction Error"): by default NMI refuses a
    sale with the same payment data (card) and amount as an approved sale in the last 1200
    seconds, answering "Duplicate transaction REFID:…" (response=3, response_code=300);
    `dup_seconds` on the request sets the window, 0 turns the check off. The order id takes
    part only if the merchant enables that option; the fake follows the default.
  - Gateway-refused errors end with " REFID:<number>", as NMI's do.

Webhooks (with --webhook-url), as NMI sends them: a POST of JSON
`{"event_id": <uuid>, "event_type": "transaction.<sale|refund|void>.<success|failure>" |
"settlement.batch.<complete|failure>", "event_body": …}` with the header
`Webhook-Signature: t=<nonce>,s=<hex HMAC-SHA256 of "<nonce>." + body, key the signing key>`,
the nonce random per delivery. A transaction's event_body is the transaction as query.php
describes it (`transaction_id`, `order_id`, `condition`, `currency`, `requested_amount`, the
masked `card`) with the `action` the event is about (`amount`, `action_type`, `date`, `success`,
`source`: "api" or "virtual_terminal", `response_text`, `response_code`). A settled batch's is
`{"batch_id", "count", "amount", "transaction_ids", …}`; a failed batch's names only the batch,
merchant and processor (NMI's settlement event samples). Every approved or declined sale,
refund and void sends one, made through the API or in the merchant portal; so does each
settlement batch, settled or failed, with something in it. Deliveries go out in order from one
thread, after the API answer is sent or while it is; NMI retries an unanswered or non-2xx
delivery, here a test resends it.
  - Merchant portal: a refund or void made there follows the API's rules; the refund is filed
    under the sale's order id (the portal refunds a sale from its order), and its event's
    `source` is "virtual_terminal".

Test control API (JSON), for tests only:
  POST /_fake/settle          settle every pending transaction; {"fail": true}: the batch
                              fails instead (settlement.batch.failure) and they stay pending
  POST /_fake/portal/refund   {"transaction_id", "amount"?: "x.xx"}: refund a sale in the
                              merchant portal (amount omitted: the whole balance); answers
                              {"response", "responsetext", "transaction_id"}
  POST /_fake/portal/void     {"transaction_id"}: void a sale in the merchant portal
  GET  /_fake/webhooks        {"undelivered": n (0: every delivery answered), "deliveries":
                              [{"event_id", "event_type", "status"}, …] oldest first}
  POST /_fake/webhooks/resend {"event_id"}: deliver that event again, exactly as sent before
  POST /_fake/webhooks/send   {"body": "<raw text>"}: deliver any body, signed as NMI signs
  POST /_fake/faults          {"next": "fail" | "hang" | "drop_after_apply" | "settle_before",
                               "seconds": 1.0, "on": "sale" | "refund" | "void" |
                               "add_customer" | "query" | "any"}
                              queues a fault for the next request of that kind ("any" by
                              default). fail: answer an NMI system error and apply nothing;
                              hang: apply, then wait `seconds` before answering;
                              drop_after_apply: apply, then close the connection unanswered;
                              settle_before: settle everything pending, then apply (the race
                              where settlement lands between a lookup and a void).
  POST /_fake/chaos           {"seed", "drop", "slow", "refuse" (probabilities), "slow_seconds",
                               "on": [request kinds]}: random faults for a soak, off by default
                              ({} turns them off). drop is drop_after_apply, slow is hang for
                              slow_seconds, refuse is fail (common.FaultDice); a queued fault
                              goes first. GET /_fake/chaos: the settings and what was injected.
  GET  /_fake/transactions    the ledger: every sale, refund and void, oldest first
  POST /_fake/reset           forget all transactions, vault records and faults
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import os
import queue
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.etree import ElementTree as ET

from integrations.fakes.common import FaultDice, FaultQueue, serve

DEFAULT_DUP_SECONDS = 1200  # NMI's default duplicate window
TEST_MODE_DECLINE_BELOW_CENTS = 100

PENDING_SETTLEMENT = "pendingsettlement"
COMPLETE = "complete"
CANCELED = "canceled"
FAILED = "failed"

NmiEndpoint = Callable[[dict[str, str]], str]  # form in, answer body out

API, PORTAL = "api", "virtual_terminal"  # an action's `source`
FAKE_MERCHANT = {"id": "900001", "name": "Fake NMI merchant"}

FAULT_KINDS = {"fail", "hang", "drop_after_apply", "settle_before"}
REQUEST_KINDS = {"sale", "refund", "void", "add_customer", "query"}
# A soak's random faults (common.FaultDice) as this fake's own: "refuse" is NMI's system error.
DICE_FAULTS = {"drop": "drop_after_apply", "slow": "hang", "refuse": "fail"}


@dataclass(frozen=True)
class FakeCard:
    cc_type: str  # as NMI names the brand
    first_digit: str  # NMI keeps the first digit when it masks a number
    last4: str
    cc_exp: str  # MMYY

    @property
    def masked_number(self) -> str:
        length = 15 if self.cc_type == "amex" else 16
        return self.first_digit + "x" * (length - 5) + self.last4


TEST_CARDS = {
    "nmi_tok_visa": FakeCard("visa", "4", "8431", "1230"),
    "nmi_tok_mastercard": FakeCard("mastercard", "5", "2297", "0629"),
    "nmi_tok_amex": FakeCard("amex", "3", "6005", "0931"),
}
# NMI's documented test card numbers (its integration guide), by the brand NMI reports.
TEST_CARD_NUMBERS = {
    "4111111111111111": "visa",
    "5431111111111111": "mastercard",
    "6011601160116611": "discover",
    "341111111111111": "amex",
}
COLLECT_JS = Path(__file__).with_name("nmi_collect.js")


@dataclass
class Action:
    action_type: str  # sale, refund, void, settle
    amount_cents: int
    success: bool
    response_text: str
    source: str = API
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Transaction:
    transaction_id: str
    kind: str  # "sale" or "refund"
    amount_cents: int
    currency: str
    orderid: str
    card: FakeCard
    condition: str
    actions: list[Action]
    parent_id: str = ""  # the sale a refund returns money from
    customer_vault_id: str = ""
    created_at: float = field(default_factory=time.monotonic)  # for the duplicate window

    @property
    def approved(self) -> bool:
        return self.actions[0].success


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float
    on: str


NO_FAULT = Fault(kind="", seconds=0.0, on="any")


class Refused(Exception):
    """The gateway refuses the request (response=3, response_code=300)."""


def cents_from(amount: str) -> int | None:
    """NMI's "x.xx" as integer cents; None when it is not a non-negative amount."""
    try:
        cents = Decimal(amount).scaleb(2)
    except InvalidOperation:
        return None
    if cents < 0 or cents != cents.to_integral_value():
        return None
    return int(cents)


def amount_from(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def nmi_answer(response: int, text: str, *, code: int, type_: str = "", **fields: str) -> str:
    """A transact.php answer, with NMI's fields in NMI's order."""
    return urlencode(
        {
            "response": response,
            "responsetext": text,
            "authcode": fields.pop("authcode", ""),
            "transactionid": fields.pop("transactionid", ""),
            "avsresponse": "",
            "cvvresponse": "",
            "orderid": fields.pop("orderid", ""),
            "type": type_,
            "response_code": code,
            **fields,
        }
    )


class Webhooks:
    """Delivers events in order from one background thread, signed as NMI signs them (the
    fake's own signer, not the app's: borrowing the app's could not catch a mistake in it)."""

    def __init__(self, url: str, signing_key: str):
        self.url = url
        self._key = signing_key.encode()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
        self._sent: dict[str, tuple[str, bytes]] = {}  # event_id -> (event_type, body)
        self._deliveries: list[dict[str, object]] = []
        threading.Thread(target=self._deliver_forever, daemon=True).start()

    def send(self, event_type: str, event_body: dict[str, object]) -> None:
        event_id = str(uuid.uuid4())
        event = {"event_id": event_id, "event_type": event_type, "event_body": event_body}
        body = json.dumps(event).encode()
        with self._lock:
            self._sent[event_id] = (event_type, body)
        self._queue.put((event_id, event_type, body))

    def resend(self, event_id: str) -> bool:
        with self._lock:
            sent = self._sent.get(event_id)
        if sent is None:
            return False
        self._queue.put((event_id, *sent))
        return True

    def send_raw(self, body: bytes) -> None:
        self._queue.put(("", "", body))

    def signature(self, nonce: str, body: bytes) -> str:
        digest = hmac.new(self._key, nonce.encode() + b"." + body, hashlib.sha256).hexdigest()
        return f"t={nonce},s={digest}"

    def status(self) -> dict[str, object]:
        with self._lock:
            deliveries = list(self._deliveries)
        return {"undelivered": self._queue.unfinished_tasks, "deliveries": deliveries}

    def forget(self) -> None:
        with self._lock:
            self._sent.clear()
            self._deliveries.clear()

    def _deliver_forever(self) -> None:
        while True:
            event_id, event_type, body = self._queue.get()
            try:
                status = self._deliver(body)
                with self._lock:
                    self._deliveries.append(
                        {"event_id": event_id, "event_type": event_type, "status": status}
                    )
            finally:
                self._queue.task_done()

    def _deliver(self, body: bytes) -> int | str:
        headers = {
            "Content-Type": "application/json",
            "Webhook-Signature": self.signature(secrets.token_hex(16), body),
        }
        request = urllib.request.Request(self.url, data=body, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as refused:
            return refused.code
        except OSError as failure:
            print(f"NMI webhook not delivered: {failure}", file=sys.stderr)
            return f"not delivered: {failure}"


class FakeNmi:
    """The gateway's state and rules; the HTTP handler below only translates."""

    def __init__(
        self,
        *,
        security_key: str,
        dup_seconds: int = DEFAULT_DUP_SECONDS,
        webhooks: Webhooks | None = None,
        tokenization_key: str = "",
    ):
        self.security_key = security_key
        self.tokenization_key = tokenization_key
        self._collected: dict[str, FakeCard] = {}  # Collect.js tokens not used yet
        self.dup_seconds = dup_seconds
        self.webhooks = webhooks
        self._lock = threading.Lock()
        # Ids keep counting across resets, so an id a test kept never names a newer record.
        self._transaction_ids = itertools.count(10_000_000_001)
        self._vault_ids = itertools.count(1_000_000_001)
        self._refids = itertools.count(3_000_000_001)
        self._batch_ids = itertools.count(5_000_001)
        self._transactions: dict[str, Transaction] = {}
        self._vault: dict[str, FakeCard] = {}
        self.faults: FaultQueue[Fault] = FaultQueue()
        self.dice = FaultDice(REQUEST_KINDS)

    def authenticates(self, form: dict[str, str]) -> bool:
        return hmac.compare_digest(form.get("security_key", ""), self.security_key)

    # transact.php

    def transact(self, form: dict[str, str]) -> str:
        type_ = form.get("type", "")
        if not self.authenticates(form):
            return nmi_answer(3, "Authentication Failed", code=300, type_=type_)
        with self._lock:
            try:
                if form.get("customer_vault") == "add_customer":
                    return self._add_customer(form)
                if type_ == "sale":
                    return self._sale(form)
                if type_ == "refund":
                    return self._refund(form)
                if type_ == "void":
                    return self._void(form)
                raise Refused("Invalid Transaction Type")
            except Refused as refusal:
                text = f"{refusal} REFID:{next(self._refids)}"
                return nmi_answer(3, text, code=300, type_=type_)

    def transact_failure(self, form: dict[str, str]) -> str:
        text = f"Communication error with processor REFID:{next(self._refids)}"
        return nmi_answer(3, text, code=420, type_=form.get("type", ""))

    def _add_customer(self, form: dict[str, str]) -> str:
        card = self._card_for_token(form.get("payment_token", ""))
        vault_id = str(next(self._vault_ids))
        self._vault[vault_id] = card
        return nmi_answer(1, "Customer Added", code=100, customer_vault_id=vault_id)

    def _sale(self, form: dict[str, str]) -> str:
        if vault_id := form.get("customer_vault_id", ""):
            if vault_id not in self._vault:
                raise Refused("Invalid Customer Vault Id")
            card = self._vault[vault_id]
        else:
            card = self._card_for_token(form.get("payment_token", ""))
        amount = cents_from(form.get("amount", ""))
        if not amount:
            raise Refused("Invalid amount")
        window = form.get("dup_seconds") or str(self.dup_seconds)
        if not window.isdigit():
            raise Refused("Invalid dup_seconds")
        if self._is_duplicate(card, amount, int(window)):
            raise Refused("Duplicate transaction")

        transaction_id = str(next(self._transaction_ids))
        approved = amount >= TEST_MODE_DECLINE_BELOW_CENTS
        sale = Transaction(
            transaction_id=transaction_id,
            kind="sale",
            amount_cents=amount,
            currency=form.get("currency", "USD").upper(),
            # NMI's documentation: orderid "defaults to gateway transaction id".
            orderid=form.get("orderid") or transaction_id,
            card=card,
            condition=PENDING_SETTLEMENT if approved else FAILED,
            actions=[Action("sale", amount, approved, "SUCCESS" if approved else "DECLINE")],
            customer_vault_id=vault_id,
        )
        self._transactions[transaction_id] = sale
        self._announce(sale, sale.actions[0])
        if approved:
            return nmi_answer(
                1,
                "SUCCESS",
                code=100,
                type_="sale",
                authcode="123456",
                transactionid=transaction_id,
                orderid=sale.orderid,
            )
        return nmi_answer(
            2, "DECLINE", code=200, type_="sale", transactionid=transaction_id, orderid=sale.orderid
        )

    def _refund(self, form: dict[str, str], *, source: str = API) -> str:
        sale = self._sale_to_reverse(form)
        if sale.condition == CANCELED:
            raise Refused("Transaction was voided and cannot be refunded")
        balance = sale.amount_cents - self._refunded_cents(sale)
        if balance == 0:
            raise Refused("Transaction has already been fully refunded")
        amount = cents_from(form.get("amount") or "0.00")
        if amount is None:
            raise Refused("Invalid amount")
        amount = amount or balance  # 0.00 refunds the entire balance
        if amount > balance:
            raise Refused("Refund amount may not exceed the transaction balance")

        transaction_id = str(next(self._transaction_ids))
        refund = Transaction(
            transaction_id=transaction_id,
            kind="refund",
            amount_cents=amount,
            currency=sale.currency,
            orderid=form.get("orderid") or transaction_id,
            card=sale.card,
            condition=PENDING_SETTLEMENT,
            actions=[Action("refund", amount, True, "SUCCESS", source)],
            parent_id=sale.transaction_id,
            customer_vault_id=sale.customer_vault_id,
        )
        self._transactions[transaction_id] = refund
        self._announce(refund, refund.actions[0])
        return nmi_answer(
            1,
            "SUCCESS",
            code=100,
            type_="refund",
            transactionid=transaction_id,
            orderid=refund.orderid,
        )

    def _void(self, form: dict[str, str], *, source: str = API) -> str:
        sale = self._sale_to_reverse(form)
        if sale.condition != PENDING_SETTLEMENT:
            raise Refused("Only transactions pending settlement can be voided")
        if self._refunded_cents(sale):
            raise Refused("Transactions with refunds cannot be voided")
        sale.condition = CANCELED
        void = Action("void", sale.amount_cents, True, "Transaction Void Successful", source)
        sale.actions.append(void)
        self._announce(sale, void)
        # A void is an action on the sale, so NMI answers with the sale's own id.
        return nmi_answer(
            1,
            "Transaction Void Successful",
            code=100,
            type_="void",
            authcode="123456",
            transactionid=sale.transaction_id,
            orderid=sale.orderid,
        )

    def _card_for_token(self, token: str) -> FakeCard:
        if token in self._collected:
            return self._collected.pop(token)
        if token not in TEST_CARDS:
            raise Refused("Payment Token does not exist")
        return TEST_CARDS[token]

    # Collect.js

    def collect(self, form: dict[str, str]) -> dict[str, object]:
        """Tokenise a card typed into the Collect.js stand-in; the number is not kept."""
        key = form.get("tokenization_key", "")
        if not self.tokenization_key or not hmac.compare_digest(key, self.tokenization_key):
            return {"error": "Invalid tokenization key", "field": "ccnumber"}
        number = form.get("ccnumber", "")
        brand = TEST_CARD_NUMBERS.get(number)
        if brand is None:
            return {"error": "Card number must be an NMI test card number", "field": "ccnumber"}
        exp = form.get("ccexp", "")
        if not (len(exp) == 4 and exp.isdigit() and 1 <= int(exp[:2]) <= 12):
            return {"error": "Expiration date must be MMYY", "field": "ccexp"}
        if not (form.get("cvv", "").isdigit() and 3 <= len(form["cvv"]) <= 4):
            return {"error": "CVV must be 3 or 4 digits", "field": "cvv"}
        card = FakeCard(brand, number[0], number[-4:], exp)
        token = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
        with self._lock:
            self._collected[token] = card
        return {
            "tokenType": "inline",
            "token": token,
            "card": {
                "number": number[:6] + "*" * (len(number) - 10) + card.last4,
                "bin": number[:6],
                "exp": exp,
                "type": brand,
            },
        }

    def _sale_to_reverse(self, form: dict[str, str]) -> Transaction:
        transaction = self._transactions.get(form.get("transactionid", ""))
        if transaction is None:
            raise Refused("Transaction not found")
        if transaction.kind != "sale":
            raise Refused("The fake only refunds and voids sales")
        if not transaction.approved:
            raise Refused("A declined transaction cannot be refunded or voided")
        return transaction

    def _refunded_cents(self, sale: Transaction) -> int:
        return sum(
            t.amount_cents
            for t in self._transactions.values()
            if t.kind == "refund" and t.parent_id == sale.transaction_id
        )

    def _is_duplicate(self, card: FakeCard, amount_cents: int, window_seconds: int) -> bool:
        now = time.monotonic()
        return any(
            t.kind == "sale"
            and t.approved
            and t.card == card
            and t.amount_cents == amount_cents
            and now - t.created_at < window_seconds
            for t in self._transactions.values()
        )

    # The merchant portal: the same rules, made by a person at NMI instead of through the API.

    def portal_refund(self, transaction_id: str, amount: str = "") -> dict[str, str]:
        with self._lock:
            sale = self._transactions.get(transaction_id)
            form = {"transactionid": transaction_id, "amount": amount}
            if sale is not None:
                form["orderid"] = sale.orderid
            return self._in_portal(self._refund, form)

    def portal_void(self, transaction_id: str) -> dict[str, str]:
        with self._lock:
            return self._in_portal(self._void, {"transactionid": transaction_id})

    def _in_portal(self, apply: Callable[..., str], form: dict[str, str]) -> dict[str, str]:
        try:
            answer = dict(parse_qsl(apply(form, source=PORTAL), keep_blank_values=True))
        except Refused as refusal:
            return {"response": "3", "responsetext": str(refusal), "transaction_id": ""}
        return {
            "response": answer["response"],
            "responsetext": answer["responsetext"],
            "transaction_id": answer["transactionid"],
        }

    # Webhooks

    def _announce(self, t: Transaction, action: Action) -> None:
        if self.webhooks is None:
            return
        result = "success" if action.success else "failure"
        self.webhooks.send(f"transaction.{action.action_type}.{result}", event_body(t, action))

    def _announce_settlement(self, batch: list[Transaction], *, failed: bool) -> None:
        if self.webhooks is None or not batch:
            return
        about = {"batch_id": str(next(self._batch_ids)), "merchant": FAKE_MERCHANT}
        about["processor"] = {"id": "ccprocessora", "name": "CC Processor", "type": "cc"}
        if failed:  # NMI's failure event says which batch, not what was in it
            self.webhooks.send("settlement.batch.failure", about)
            return
        self.webhooks.send(
            "settlement.batch.complete",
            {
                **about,
                "count": len(batch),
                "amount": amount_from(sum(t.amount_cents for t in batch)),
                "transaction_ids": [t.transaction_id for t in batch],
            },
        )

    # query.php

    def query(self, form: dict[str, str]) -> str:
        root = ET.Element("nm_response")
        if not self.authenticates(form):
            ET.SubElement(root, "error_response").text = "Authentication Failed"
            return xml_document(root)
        with self._lock:
            if form.get("report_type") == "customer_vault":
                self._vault_xml(root, form.get("customer_vault_id", ""))
            else:
                for transaction in self._matching(form):
                    root.append(transaction_xml(transaction))
        return xml_document(root)

    def query_failure(self, form: dict[str, str]) -> str:
        root = ET.Element("nm_response")
        error = f"Internal error, please try again REFID:{next(self._refids)}"
        ET.SubElement(root, "error_response").text = error
        return xml_document(root)

    def _matching(self, form: dict[str, str]) -> list[Transaction]:
        # As in NMI, an empty or missing filter matches everything.
        ids = {i for i in form.get("transaction_id", "").split(",") if i}
        order_id = form.get("order_id", "")
        return [
            t
            for t in self._transactions.values()
            if (not ids or t.transaction_id in ids) and (not order_id or t.orderid == order_id)
        ]

    def _vault_xml(self, root: ET.Element, vault_id: str) -> None:
        if vault_id:
            records = {vault_id: self._vault[vault_id]} if vault_id in self._vault else {}
        else:
            records = dict(self._vault)  # NMI lists the whole vault when no id is given
        if not records:
            return
        vault = ET.SubElement(root, "customer_vault")
        for record_id, card in records.items():
            customer = ET.SubElement(vault, "customer", id=record_id)
            add_text(customer, "customer_vault_id", record_id)
            add_card(customer, card)

    # test control

    def settle(self, *, fail: bool = False) -> None:
        """Settle every pending transaction or, with `fail`, fail the batch: its transactions
        stay pending, to go in the next one."""
        with self._lock:
            batch = [t for t in self._transactions.values() if t.condition == PENDING_SETTLEMENT]
            if not fail:
                for transaction in batch:
                    transaction.condition = COMPLETE
                    transaction.actions.append(Action("settle", transaction.amount_cents, True, ""))
            self._announce_settlement(batch, failed=fail)

    def reset(self) -> None:
        with self._lock:
            self._transactions.clear()
            self._vault.clear()
            self._collected.clear()
        self.faults.clear()
        self.dice.configure({})
        if self.webhooks is not None:
            self.webhooks.forget()

    def ledger(self) -> list[dict[str, object]]:
        with self._lock:
            entries = []
            for t in self._transactions.values():
                entries.append(ledger_entry(t.kind, t, t.amount_cents, t.parent_id or None))
                for void in (a for a in t.actions if a.action_type == "void"):
                    entries.append(ledger_entry("void", t, void.amount_cents, t.transaction_id))
            return entries


def ledger_entry(type_: str, t: Transaction, amount: int, parent: str | None) -> dict[str, object]:
    return {
        "type": type_,
        "transaction_id": t.transaction_id,
        "parent_transaction_id": parent,
        "amount_cents": amount,
        "currency": t.currency,
        "orderid": t.orderid,
        "condition": t.condition,
        "success": t.approved,
    }


def event_body(t: Transaction, action: Action) -> dict[str, object]:
    """A transaction as a webhook's event_body describes it, with the action it is about."""
    return {
        "merchant": FAKE_MERCHANT,
        "features": {"is_test_mode": True},
        "transaction_id": t.transaction_id,
        "transaction_type": "cc",
        "condition": t.condition,
        "processor_id": "ccprocessora",
        "order_id": t.orderid,
        "customerid": t.customer_vault_id,
        "currency": t.currency,
        "requested_amount": amount_from(t.amount_cents),
        "card": {
            "cc_number": t.card.masked_number,
            "cc_exp": t.card.cc_exp,
            "cc_type": t.card.cc_type,
        },
        "action": {
            "amount": amount_from(action.amount_cents),
            "action_type": action.action_type,
            "date": action.at.strftime("%Y%m%d%H%M%S"),
            "success": "1" if action.success else "0",
            "source": action.source,
            "response_text": action.response_text,
            "response_code": "100" if action.success else "200",
        },
    }


def transaction_xml(t: Transaction) -> ET.Element:
    element = ET.Element("transaction")
    add_text(element, "transaction_id", t.transaction_id)
    add_text(element, "transaction_type", "cc")
    add_text(element, "condition", t.condition)
    add_text(element, "order_id", t.orderid)
    add_text(element, "customerid", t.customer_vault_id)
    add_card(element, t.card)
    add_text(element, "currency", t.currency)
    for action in t.actions:
        node = ET.SubElement(element, "action")
        add_text(node, "amount", amount_from(action.amount_cents))
        add_text(node, "action_type", action.action_type)
        add_text(node, "date", action.at.strftime("%Y%m%d%H%M%S"))
        add_text(node, "success", "1" if action.success else "0")
        add_text(node, "response_text", action.response_text)
        add_text(node, "response_code", "100" if action.success else "200")
    return element


def add_card(element: ET.Element, card: FakeCard) -> None:
    add_text(element, "cc_number", card.masked_number)
    add_text(element, "cc_exp", card.cc_exp)
    add_text(element, "cc_type", card.cc_type)


def add_text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def xml_document(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def parse_fault(body: bytes) -> Fault | None:
    try:
        spec = json.loads(body or b"{}")
        fault = Fault(
            kind=spec["next"], seconds=float(spec.get("seconds", 0)), on=spec.get("on", "any")
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    valid = fault.kind in FAULT_KINDS and fault.on in REQUEST_KINDS | {"any"}
    return fault if valid else None


def request_kind(path: str, form: dict[str, str]) -> str:
    if path.endswith("query.php"):
        return "query"
    if form.get("customer_vault") == "add_customer":
        return "add_customer"
    return form.get("type", "")


class FakeNmiHandler(BaseHTTPRequestHandler):
    server: FakeNmiHTTPServer
    max_body_bytes = 1_000_000

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/token/Collect.js":
            self._send(COLLECT_JS.read_text(), "application/javascript")
        elif path == "/_fake/transactions":
            self._send_json(self.server.nmi.ledger())
        elif path == "/_fake/webhooks":
            self._with_webhooks(lambda webhooks: self._send_json(webhooks.status()))
        elif path == "/_fake/chaos":
            self._send_json(self.server.nmi.dice.status())
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        nmi = self.server.nmi
        path = urlsplit(self.path).path
        if path == "/api/transact.php":
            self._serve_nmi(path, nmi.transact, nmi.transact_failure, "text/html")
        elif path == "/api/query.php":
            self._serve_nmi(path, nmi.query, nmi.query_failure, "text/xml")
        elif path == "/token/api/create":
            form = dict(parse_qsl(self._read_body().decode(), keep_blank_values=True))
            self._send_json(nmi.collect(form))
        elif path == "/_fake/settle":
            nmi.settle(fail=self._read_spec().get("fail") is True)
            self._send_json({"settled": True})
        elif path == "/_fake/faults":
            self._add_fault()
        elif path == "/_fake/chaos":
            self._configure_chaos()
        elif path == "/_fake/reset":
            nmi.reset()
            self._send_json({"reset": True})
        elif path == "/_fake/portal/refund":
            spec = self._read_spec()
            self._send_json(
                nmi.portal_refund(spec.get("transaction_id", ""), spec.get("amount", ""))
            )
        elif path == "/_fake/portal/void":
            self._send_json(nmi.portal_void(self._read_spec().get("transaction_id", "")))
        elif path == "/_fake/webhooks/resend":
            event_id = self._read_spec().get("event_id", "")
            self._with_webhooks(lambda webhooks: self._resend(webhooks, event_id))
        elif path == "/_fake/webhooks/send":
            body = self._read_spec().get("body", "")
            self._with_webhooks(lambda webhooks: self._send_raw(webhooks, body))
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def _with_webhooks(self, use: Callable[[Webhooks], None]) -> None:
        if self.server.nmi.webhooks is None:
            self._send_json({"error": "started without --webhook-url"}, HTTPStatus.CONFLICT)
        else:
            use(self.server.nmi.webhooks)

    def _resend(self, webhooks: Webhooks, event_id: str) -> None:
        if webhooks.resend(event_id):
            self._send_json({"resent": event_id})
        else:
            self._send_json({"error": f"no event {event_id!r} was sent"}, HTTPStatus.NOT_FOUND)

    def _send_raw(self, webhooks: Webhooks, body: object) -> None:
        if not isinstance(body, str):
            self._send_json({"error": "body must be a string"}, HTTPStatus.BAD_REQUEST)
            return
        webhooks.send_raw(body.encode())
        self._send_json({"queued": True})

    def _read_spec(self) -> dict[str, str]:
        try:
            spec = json.loads(self._read_body() or b"{}")
        except ValueError:
            return {}
        return spec if isinstance(spec, dict) else {}

    def _serve_nmi(
        self, path: str, handle: NmiEndpoint, fail: NmiEndpoint, content_type: str
    ) -> None:
        form = dict(parse_qsl(self._read_body().decode(), keep_blank_values=True))
        kind = request_kind(path, form)
        fault = self.server.nmi.faults.take(kind) or self._rolled_fault(kind)
        if fault.kind == "fail":
            self._send(fail(form), content_type)
            return
        if fault.kind == "settle_before":
            self.server.nmi.settle()
        answer = handle(form)
        if fault.kind == "drop_after_apply":
            self.close_connection = True  # the request was applied; the answer is lost
            return
        if fault.kind == "hang":
            time.sleep(fault.seconds)
        self._send(answer, content_type)

    def _rolled_fault(self, kind: str) -> Fault:
        dice = self.server.nmi.dice
        rolled = dice.draw(kind)
        if rolled is None:
            return NO_FAULT
        return Fault(kind=DICE_FAULTS[rolled], seconds=dice.slow_seconds, on=kind)

    def _configure_chaos(self) -> None:
        try:
            self._send_json(self.server.nmi.dice.configure(json.loads(self._read_body() or b"{}")))
        except (ValueError, TypeError) as invalid:
            self._send_json({"error": str(invalid)}, HTTPStatus.BAD_REQUEST)

    def _add_fault(self) -> None:
        fault = parse_fault(self._read_body())
        if fault is None:
            message = f"Expected next in {sorted(FAULT_KINDS)}, on in {sorted(REQUEST_KINDS)}."
            self._send_json({"error": message}, HTTPStatus.BAD_REQUEST)
            return
        self.server.nmi.faults.add(fault)
        self._send_json({"queued": fault.kind, "on": fault.on})

    def _read_body(self) -> bytes:
        length = min(int(self.headers.get("Content-Length") or 0), self.max_body_bytes)
        return self.rfile.read(length)

    def _send(self, body: str, content_type: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        payload = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            # The Collect.js stand-in calls from the page's origin.
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a "hang" fault does that on purpose)

    def _send_json(self, data: object, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(data), "application/json", status)

    def log_request(self, code="-", size="-") -> None:
        # The path only: a query string could carry a security key if a client sent one there.
        self.log_message("%s %s %s", self.command, urlsplit(self.path).path, code)


class FakeNmiHTTPServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], nmi: FakeNmi):
        super().__init__(address, FakeNmiHandler)
        self.nmi = nmi


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake NMI Payment API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument(
        "--security-key",
        default=os.environ.get("NMI_SECURITY_KEY"),
        help="the key clients must send (default: $NMI_SECURITY_KEY)",
    )
    parser.add_argument(
        "--tokenization-key",
        default=os.environ.get("NMI_TOKENIZATION_KEY", ""),
        help="the public key the Collect.js stand-in sends (default: $NMI_TOKENIZATION_KEY)",
    )
    parser.add_argument("--webhook-url", default="")
    parser.add_argument(
        "--webhook-signing-key",
        default=os.environ.get("NMI_WEBHOOK_SIGNING_KEY", ""),
        help="the key webhooks are signed with (default: $NMI_WEBHOOK_SIGNING_KEY)",
    )
    parser.add_argument(
        "--dup-seconds",
        type=int,
        default=DEFAULT_DUP_SECONDS,
        help="duplicate-sale window when a request sends no dup_seconds (0: off)",
    )
    args = parser.parse_args(argv)
    if not args.security_key:
        parser.error("give --security-key or set NMI_SECURITY_KEY")
    if args.webhook_url and not args.webhook_signing_key:
        parser.error("--webhook-url needs --webhook-signing-key (or $NMI_WEBHOOK_SIGNING_KEY)")

    webhooks = Webhooks(args.webhook_url, args.webhook_signing_key) if args.webhook_url else None
    nmi = FakeNmi(
        security_key=args.security_key,
        dup_seconds=args.dup_seconds,
        webhooks=webhooks,
        tokenization_key=args.tokenization_key,
    )
    server = FakeNmiHTTPServer((args.host, args.port), nmi)
    serve(server, name="NMI", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
