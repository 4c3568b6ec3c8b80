"""The NMI Payment API adapter.

The protocol subset used, and nothing more (integrations/fakes/nmi.py serves the same):

transact.php: form POST with `security_key`; always HTTP 200; the body is a query string with
`response` (1 approved, 2 declined, 3 error), `responsetext`, `response_code` (100 approved,
2xx declined, 300 refused by the gateway, 4xx processor or system error) and `transactionid`.
  - `customer_vault=add_customer&payment_token=…` vaults a card and answers `customer_vault_id`.
  - `type=sale` with `customer_vault_id` (a saved card) or `payment_token` (a one-off
    Collect.js token), `amount`, `currency` and `orderid`.
  - `type=void&transactionid=…` cancels an unsettled sale in full: the money never moves.
  - `type=refund&transactionid=…&amount=…&orderid=…`: a new transaction with its own id.
query.php: form POST with `security_key`; the body is XML (`<nm_response>`).
  - `order_id=…` or `transaction_id=…`: `<transaction>`s with their `condition`
    (pendingsettlement, complete, canceled, failed) and `<action>`s (sale, refund, void, settle).
  - `report_type=customer_vault&customer_vault_id=…`: the vaulted card, masked.

NMI has no idempotency key. Our `reference` travels as `orderid`, and every call that moves
money first asks query.php whether a movement with that reference already happened. After a
timeout or a lost connection the adapter raises OutcomeUnknown and never retries by itself.

Webhooks (`WebhookTransaction` reads them; billing/nmi_webhook.py acts on them): NMI POSTs
`{"event_id", "event_type": "transaction.<action>.<success|failure|unknown>", "event_body"}`,
the body being the transaction as query.php describes it: `transaction_id`, `order_id`,
`condition`, `currency`, `requested_amount` and the `action` the event is about (`amount`,
`action_type`, `success`, `response_text`, `source`, …). A refund is its own transaction, so
its event names the refund's id; a void is an action on the sale, so its event names the sale.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

import requests

from .base import (
    AlreadyRefunded,
    CardDetails,
    ChargeResult,
    GatewayAuthenticationFailed,
    GatewayError,
    GatewayName,
    GatewayNotConfigured,
    GatewayRefused,
    InvalidPaymentToken,
    OutcomeUnknown,
    PaymentDeclined,
    PaymentGateway,
    RefundMethod,
    RefundResult,
    RefundStatus,
    SavedCard,
)

DEFAULT_TIMEOUT = 30.0  # seconds; the processor behind NMI can take a while to answer

APPROVED, DECLINED, ERROR = "1", "2", "3"
REFUSED_BY_GATEWAY = "300"  # response_code: the request itself was refused, not the card

PENDING_SETTLEMENT = "pendingsettlement"
FAILED = "failed"

# responsetext fragments that decide how a refusal is reported.
AUTHENTICATION_FAILED = "Authentication Failed"
VOID_TOO_LATE = "Only transactions pending settlement can be voided"
OVER_BALANCE = "may not exceed the transaction balance"
ALREADY_RETURNED = ("already been fully refunded", "was voided")
DUPLICATE = "Duplicate transaction"
# A one-off Collect.js token, or a vault record, NMI does not have (response_code 300).
UNKNOWN_TOKEN = ("Payment Token does not exist", "Invalid Customer Vault Id")


@dataclass(frozen=True)
class _Answer:
    """A transact.php answer."""

    response: str
    text: str
    code: str
    transaction_id: str
    customer_vault_id: str
    avs: str = ""
    cvv: str = ""

    @classmethod
    def parse(cls, body: str) -> _Answer:
        fields = dict(parse_qsl(body.strip(), keep_blank_values=True))
        return cls(
            response=fields.get("response", ""),
            text=fields.get("responsetext", ""),
            code=fields.get("response_code", ""),
            transaction_id=fields.get("transactionid", ""),
            customer_vault_id=fields.get("customer_vault_id", ""),
            avs=fields.get("avsresponse", ""),
            cvv=fields.get("cvvresponse", ""),
        )

    @property
    def approved(self) -> bool:
        return self.response == APPROVED


@dataclass(frozen=True)
class _Transaction:
    """One `<transaction>` of a query.php answer: a sale or a refund."""

    transaction_id: str
    condition: str
    kind: str  # the type of its first action: "sale" or "refund"
    amount_cents: int
    approved: bool
    voided: bool
    currency: str
    card: CardDetails | None

    @classmethod
    def from_xml(cls, element: ET.Element) -> _Transaction:
        actions = element.findall("action")
        first = actions[0] if actions else ET.Element("action")
        return cls(
            transaction_id=element.findtext("transaction_id", ""),
            condition=element.findtext("condition", ""),
            kind=first.findtext("action_type", ""),
            amount_cents=_cents(first.findtext("amount") or "0"),
            approved=first.findtext("success") == "1",
            voided=any(
                a.findtext("action_type") == "void" and a.findtext("success") == "1"
                for a in actions
            ),
            currency=element.findtext("currency", "").lower(),
            card=_card(element),
        )


@dataclass(frozen=True)
class WebhookTransaction:
    """The transaction a `transaction.*` webhook event is about, and the action it reports."""

    transaction_id: str
    order_id: str
    action: str  # sale, refund, void, capture, credit, …
    amount_cents: int | None  # None when the action carries no positive amount
    currency: str  # lower case; "" when NMI left it out

    @classmethod
    def from_event_body(cls, body: object) -> WebhookTransaction:
        """Raise ValueError, naming the field, unless `body` carries what an event must."""
        if not isinstance(body, dict):
            raise ValueError("event_body is not an object")
        action = body.get("action")
        if not isinstance(action, dict):
            raise ValueError("event_body.action is not an object")
        transaction_id, action_type = body.get("transaction_id"), action.get("action_type")
        if not isinstance(transaction_id, str) or not transaction_id:
            raise ValueError("event_body.transaction_id is missing")
        if not isinstance(action_type, str) or not action_type:
            raise ValueError("event_body.action.action_type is missing")
        return cls(
            transaction_id=transaction_id,
            order_id=str(body.get("order_id") or ""),
            action=action_type,
            amount_cents=_event_cents(action.get("amount")),
            currency=str(body.get("currency") or "").lower(),
        )

    def refund_result(self, *, sale_transaction_id: str) -> RefundResult:
        """The refund (or void) this event reports, read as `refund()` reads an answer: a void
        is named by the sale it cancelled. ValueError when it does not say how much."""
        if self.amount_cents is None:
            raise ValueError("event_body.action.amount is not an amount")
        void = self.action == "void"
        return RefundResult(
            refund_id=self.transaction_id,
            transaction_id=self.transaction_id if void else sale_transaction_id,
            amount_cents=self.amount_cents,
            currency=self.currency,
            status=RefundStatus.SUCCEEDED,
            method=RefundMethod.VOID if void else RefundMethod.REFUND,
        )


class NmiGateway(PaymentGateway):
    name = GatewayName.NMI

    def __init__(
        self,
        *,
        security_key: str,
        api_url: str,
        query_url: str,
        merchant_account: str,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        super().__init__(merchant_account=merchant_account)
        self._security_key = security_key
        self._api_url = api_url
        self._query_url = query_url
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"NmiGateway(merchant_account={self.merchant_account!r}, api_url={self._api_url!r})"

    # The contract

    def save_card(self, *, token: str, customer_reference: str, email: str = "") -> SavedCard:
        # customer_reference is not sent: NMI's vault has no free field for it without
        # merchant-side setup, and the vault id we keep is what links the card to the patient.
        self._check_configured()
        answer = self._transact(
            {"customer_vault": "add_customer", "payment_token": token, "email": email},
            what="card saving",
        )
        if not answer.approved:
            raise self._refusal(answer, what="card saving")
        root = self._query(report_type="customer_vault", customer_vault_id=answer.customer_vault_id)
        record = root.find("customer_vault/customer")
        card = _card(record) if record is not None else None
        if card is None:
            raise GatewayError(
                f"NMI saved the card as vault record {answer.customer_vault_id} but did not "
                "return its details. Try saving the card again."
            )
        return SavedCard(token=answer.customer_vault_id, card=card)

    def charge(
        self,
        *,
        amount_cents: int,
        currency: str,
        payment_token: str,
        saved_card: bool,
        reference: str,
        description: str = "",
    ) -> ChargeResult:
        self._check_configured()
        if existing := self.find_charge(reference=reference):
            return existing
        answer = self._transact(
            {
                "type": "sale",
                **_payment_source(payment_token, saved_card=saved_card),
                "amount": _amount(amount_cents),
                "currency": currency.upper(),
                "orderid": reference,
                "order_description": description,
            },
            what="charge",
        )
        if not answer.approved:
            raise self._refusal(answer, what="charge")
        # The sale's answer carries no card details; find_charge reads them from query.php.
        return ChargeResult(
            transaction_id=answer.transaction_id,
            amount_cents=amount_cents,
            currency=currency.lower(),
            card=None,
            avs_result=answer.avs,
            cvv_result=answer.cvv,
        )

    def find_charge(self, *, reference: str) -> ChargeResult | None:
        self._check_configured()
        for sale in self._transactions(order_id=_required(reference, "reference")):
            if sale.kind == "sale" and sale.approved:
                return ChargeResult(
                    transaction_id=sale.transaction_id,
                    amount_cents=sale.amount_cents,
                    currency=sale.currency,
                    card=sale.card,
                )
        return None

    def refund(
        self,
        *,
        transaction_id: str,
        amount_cents: int,
        currency: str,
        reference: str,
    ) -> RefundResult:
        self._check_configured()
        if existing := self._refund_with_reference(transaction_id, reference):
            return existing
        sale = self._sale(transaction_id)
        if sale is None:
            raise GatewayRefused(
                f"NMI has no transaction {transaction_id} on merchant account "
                f"{self.merchant_account!r}, so nothing was refunded."
            )
        if sale.voided:
            return self._void_result(sale)
        if sale.currency and sale.currency != currency.lower():
            raise GatewayRefused(
                f"NMI transaction {transaction_id} was charged in {sale.currency.upper()}, not "
                f"{currency.upper()}. Nothing was refunded."
            )
        # A void is better while the sale is unsettled (the money never moves), but NMI voids
        # only the whole sale; a partial amount is refunded, which NMI allows before settlement.
        whole_unsettled_sale = (
            sale.condition == PENDING_SETTLEMENT and amount_cents == sale.amount_cents
        )
        if whole_unsettled_sale and (voided := self._void(sale)):
            return voided
        # Refund; this includes a sale that settled between our lookup and the void.
        return self._refund(sale, amount_cents, reference)

    def find_refund(self, *, transaction_id: str, reference: str) -> RefundResult | None:
        """The refund with this reference or, as NMI records no reference on a void, the void.

        A sale is voided at most once and always in full, so a voided sale answers for any
        reference: its whole amount is back on the card and nothing more can be returned.
        """
        self._check_configured()
        if refund := self._refund_with_reference(transaction_id, reference):
            return refund
        sale = self._sale(transaction_id)
        return self._void_result(sale) if sale and sale.voided else None

    # Refund steps

    def _refund_with_reference(self, transaction_id: str, reference: str) -> RefundResult | None:
        for refund in self._transactions(order_id=_required(reference, "reference")):
            if refund.kind == "refund" and refund.approved:
                # An approved card refund is final; `failed` is how NMI would report otherwise.
                failed = refund.condition == FAILED
                return RefundResult(
                    refund_id=refund.transaction_id,
                    transaction_id=transaction_id,
                    amount_cents=refund.amount_cents,
                    currency=refund.currency,
                    status=RefundStatus.FAILED if failed else RefundStatus.SUCCEEDED,
                )
        return None

    def _sale(self, transaction_id: str) -> _Transaction | None:
        found = self._transactions(transaction_id=_required(transaction_id, "transaction_id"))
        return next((t for t in found if t.kind == "sale"), None)

    def _void(self, sale: _Transaction) -> RefundResult | None:
        """Void the sale; None when NMI answers that it has settled meanwhile."""
        answer = self._transact({"type": "void", "transactionid": sale.transaction_id}, what="void")
        if answer.approved:
            return self._void_result(sale)
        if VOID_TOO_LATE in answer.text:
            return None
        raise self._refusal(answer, what="void")

    def _refund(self, sale: _Transaction, amount_cents: int, reference: str) -> RefundResult:
        answer = self._transact(
            {
                "type": "refund",
                "transactionid": sale.transaction_id,
                "amount": _amount(amount_cents),
                "orderid": reference,
            },
            what="refund",
        )
        if not answer.approved:
            raise self._refusal(answer, what="refund")
        return RefundResult(
            refund_id=answer.transaction_id,
            transaction_id=sale.transaction_id,
            amount_cents=amount_cents,
            currency=sale.currency,
            status=RefundStatus.SUCCEEDED,
        )

    @staticmethod
    def _void_result(sale: _Transaction) -> RefundResult:
        # NMI answers a void with the sale's own transaction id: the void has no id of its own.
        return RefundResult(
            refund_id=sale.transaction_id,
            transaction_id=sale.transaction_id,
            amount_cents=sale.amount_cents,
            currency=sale.currency,
            status=RefundStatus.SUCCEEDED,
            method=RefundMethod.VOID,
        )

    # The wire

    def _check_configured(self) -> None:
        if not (self._security_key and self._api_url and self._query_url):
            raise GatewayNotConfigured(
                "NMI is not configured: its security key or API address is missing "
                "(NMI_SECURITY_KEY, NMI_API_URL, NMI_QUERY_URL). Ask an administrator to set them."
            )

    def _transact(self, fields: dict[str, str], *, what: str) -> _Answer:
        body = self._post(self._api_url, fields, what=what, moves_money=True)
        answer = _Answer.parse(body)
        if answer.response not in (APPROVED, DECLINED, ERROR):
            raise OutcomeUnknown(
                f"NMI's answer to the {what} could not be read, so it may or may not have "
                "happened. Check the transaction at NMI before trying again."
            )
        if answer.text.startswith(AUTHENTICATION_FAILED):
            raise self._authentication_failed()
        return answer

    def _transactions(self, **filters: str) -> list[_Transaction]:
        root = self._query(**filters)
        return [_Transaction.from_xml(element) for element in root.findall("transaction")]

    def _query(self, **filters: str) -> ET.Element:
        body = self._post(self._query_url, filters, what="lookup", moves_money=False)
        try:
            # NMI's own answer over HTTPS; ElementTree expands no external entities.
            root = ET.fromstring(body)  # noqa: S314
        except ET.ParseError:
            raise GatewayError(
                "NMI's answer to a lookup could not be read. Nothing was changed; try again later."
            ) from None
        error = root.findtext("error_response")
        if error is None:
            return root
        if error.startswith(AUTHENTICATION_FAILED):
            raise self._authentication_failed()
        raise GatewayError(
            f"NMI could not look up the transaction (NMI says: {error}). Nothing was changed; "
            "try again later."
        )

    def _post(self, url: str, fields: dict[str, str], *, what: str, moves_money: bool) -> str:
        consequence = (
            "so it may or may not have happened. Check the transaction at NMI before trying again."
            if moves_money
            else "so nothing was changed. Try again later."
        )
        error = OutcomeUnknown if moves_money else GatewayError
        data = {"security_key": self._security_key, **fields}
        try:
            response = requests.post(url, data=data, timeout=self._timeout)
        except requests.Timeout as exc:
            raise error(
                f"NMI did not answer the {what} within {self._timeout:g} seconds, {consequence}"
            ) from exc
        except requests.ConnectionError as exc:
            raise error(
                f"The connection to NMI broke off during the {what}, {consequence}"
            ) from exc
        if response.status_code != 200:
            raise error(f"NMI answered the {what} with HTTP {response.status_code}, {consequence}")
        return response.text

    # Errors

    def _authentication_failed(self) -> GatewayAuthenticationFailed:
        return GatewayAuthenticationFailed(
            f"NMI refused the security key for merchant account {self.merchant_account!r}: it "
            "was changed, revoked, or belongs to another account. Nothing was charged or "
            "refunded. Update NMI_SECURITY_KEY."
        )

    @staticmethod
    def _refusal(answer: _Answer, *, what: str) -> GatewayError:
        says = f"(NMI says: {answer.text})"
        if answer.response == DECLINED:
            return PaymentDeclined(f"The card was declined {says}. Nothing was charged.")
        if answer.code == REFUSED_BY_GATEWAY and answer.text.startswith(UNKNOWN_TOKEN):
            # NMI's text is not repeated: it may name the vault id.
            return InvalidPaymentToken(
                f"NMI does not know this card token, so the {what} did not happen: it was never "
                "issued, has expired or was already used. Nothing was charged."
            )
        if answer.text.startswith(DUPLICATE):
            return GatewayRefused(
                f"NMI refused the {what} as a duplicate: the same card was charged the same "
                f"amount a few minutes ago {says}. Check that payment before charging again."
            )
        if OVER_BALANCE in answer.text:
            return GatewayRefused(
                f"NMI refused the refund: it is more than what is left to refund on this "
                f"payment {says}. Nothing was refunded."
            )
        if any(phrase in answer.text for phrase in ALREADY_RETURNED):
            return AlreadyRefunded(
                f"NMI says this payment was already refunded or voided in full {says}. "
                "Nothing more can be returned."
            )
        if answer.code == REFUSED_BY_GATEWAY:
            return GatewayRefused(f"NMI refused the {what} {says}. Nothing was done.")
        return GatewayError(
            f"NMI could not complete the {what} {says}. Nothing was done; try again later."
        )


def _payment_source(token: str, *, saved_card: bool) -> dict[str, str]:
    return {"customer_vault_id": token} if saved_card else {"payment_token": token}


def _card(element: ET.Element) -> CardDetails | None:
    """The masked card NMI reports (`cc_number` like 4xxxxxxxxxxx1234, `cc_exp` as MMYY)."""
    number = element.findtext("cc_number", "")
    expiry = element.findtext("cc_exp", "")
    if len(number) < 4 or len(expiry) != 4 or not expiry.isdigit():
        return None
    return CardDetails(
        brand=element.findtext("cc_type", "").lower() or "unknown",
        last4=number[-4:],
        exp_month=int(expiry[:2]),
        exp_year=2000 + int(expiry[2:]),
    )


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _cents(amount: str) -> int:
    return int(Decimal(amount).scaleb(2))


def _event_cents(amount: object) -> int | None:
    try:
        cents = Decimal(str(amount)).scaleb(2)
    except ArithmeticError:
        return None
    if not cents.is_finite() or cents <= 0 or cents != cents.to_integral_value():
        return None
    return int(cents)


def _required(value: str, name: str) -> str:
    # NMI's query.php treats an empty filter as "everything": never send one.
    if not value:
        raise ValueError(f"{name} is required to look a transaction up at NMI")
    return value
