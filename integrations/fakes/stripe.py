"""A fake Stripe API for the semantics localstripe lacks: idempotency, refund limits, pending
refunds that fail later, faults, and signed webhooks.

    python -m integrations.fakes.stripe --port 8421 --api-key sk_test_fake \\
        [--publishable-key pk_test_fake] \\
        [--webhook-url http://localhost:8000/webhooks/stripe/ --webhook-secret whsec_…]

(`--api-key`, `--publishable-key` and `--webhook-secret` default to $STRIPE_SECRET_KEY,
$STRIPE_PUBLISHABLE_KEY and $STRIPE_WEBHOOK_SECRET, so the secrets need not appear in `ps`.)

It speaks Stripe's wire protocol (form bodies in bracket notation, JSON objects with `object`,
the `{"error": {"type", "code", "message", "param"}}` envelope, Bearer auth) for exactly the
endpoints `integrations.gateways.stripe_gateway.StripeGateway` uses:

    POST /v1/customers                    GET /v1/customers/search   GET /v1/customers/{id}
    GET  /v1/payment_methods/{id}         POST /v1/payment_methods/{id}/attach
    POST /v1/payment_methods (a card, with the secret key or, as Stripe.js sends it, with the
         publishable key as `key`: Stripe's test card numbers only, each mapped to its test
         card at once and never kept)
    GET  /js.stripe.com/v3/               a stand-in for Stripe.js (stripe_js_v3.js beside this
                                          file) that tokenises against this server
    POST /v1/payment_intents (confirm=true only)
    GET  /v1/payment_intents              GET /v1/payment_intents/{id}
    POST /v1/refunds                      GET /v1/refunds            GET /v1/refunds/{id}
    POST /v1/files (multipart: purpose, file)                      GET /v1/files/{id}
    POST /v1/disputes/{id} (evidence[…], submit)                   GET /v1/disputes/{id}

Test payment methods, by id as in Stripe's docs: `pm_card_visa`, `pm_card_mastercard`,
`pm_card_amex`, `pm_card_chargeDeclined` and `pm_card_visa_chargeDeclined` (declined when
attached or charged), `pm_card_chargeCustomerFail` (attaches, then every charge is declined).
Like Stripe, each use of a test id makes a new `pm_…`.

Semantics:
- Idempotency-Key: the first answer that did something (200, or a 402 decline) is stored and
  replayed for the same key; the same key with another path or body is a 400
  `idempotency_error`. A request refused as invalid is not stored, so it can be corrected.
- Refunds: over-refund is a 400 on `amount`; a fully refunded charge answers
  `charge_already_refunded`; pending refunds hold their amount until they fail.
- Webhooks (with --webhook-url): `refund.created`, `refund.updated`, `refund.failed`,
  `charge.refunded` (when money has gone back), `charge.dispute.created`, signed like Stripe:
  `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

Test control API (JSON, no auth, tests only):
    POST /_fake/next_refund {"status": "pending"}      the next refund is created with it
        ("succeeded", "pending", or "failed" with an optional "failure_reason": declined at once)
    POST /_fake/refunds/{id}/settle {"status": "succeeded"|"failed", "failure_reason"?}
    POST /_fake/faults {"next": "hang"|"drop_after_apply", "seconds": 5}
        the next /v1 request is applied, then its answer is held for `seconds` (hang) or the
        connection is closed without one (drop_after_apply)
    POST /_fake/dashboard_refund {"payment_intent", "amount"?}   a refund made outside our app
    POST /_fake/disputes {"payment_intent", "reason"?, "amount"?, "due_in_days"?}
        opens a dispute on the charge (charge.dispute.created); submitting evidence sends
        charge.dispute.updated; POST /_fake/disputes/{id}/close {"status": "won"|"lost"} sends
        charge.dispute.closed
    GET  /_fake/evidence   every file uploaded and every dispute update received
    POST /_fake/chaos {"seed", "drop", "slow", "refuse", "slow_seconds", "on": ["charge", "refund",
        "other"]}   random faults for a soak (common.FaultDice), off by default ({} turns them off):
        drop is drop_after_apply, slow is hang for slow_seconds, refuse is Stripe's 429
        `rate_limit` (nothing applied, not stored for the idempotency key); `charge` is POST
        /v1/payment_intents, `refund` POST /v1/refunds, `other` the rest. GET /_fake/chaos: the
        settings and what was injected.
    GET  /_fake/refunds                                 every refund, oldest first
    GET  /_fake/ledger   every charge that took money and every refund, with its reference
    GET  /_fake/webhooks                                {"undelivered": n} (0: all answered)
    POST /_fake/reset
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import queue
import re
import secrets
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from email import policy as email_policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from integrations.fakes.common import FaultDice


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    declined_on_attach: bool = False
    declined_on_charge: bool = False


TEST_CARDS = {
    "pm_card_visa": TestCard("visa", "4242"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "pm_card_amex": TestCard("amex", "8431"),
    "pm_card_chargeDeclined": TestCard("visa", "0002", True, True),
    "pm_card_visa_chargeDeclined": TestCard("visa", "0002", True, True),
    "pm_card_chargeCustomerFail": TestCard("visa", "0341", declined_on_charge=True),
}
TEST_CARD_EXPIRY = (12, 2034)
# Stripe's documented test card numbers (stripe.com/docs/testing), as the Stripe.js stand-in
# sends them, and the test payment method each one is.
TEST_CARD_NUMBERS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "378282246310005": "pm_card_amex",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000000341": "pm_card_chargeCustomerFail",
}
STRIPE_JS = Path(__file__).with_name("stripe_js_v3.js")

# Stripe's dispute evidence fields (docs: the dispute object's `evidence`), and those that take
# the id of an uploaded file.
EVIDENCE_FILE_FIELDS = frozenset(
    {
        "cancellation_policy",
        "customer_communication",
        "customer_signature",
        "duplicate_charge_documentation",
        "receipt",
        "refund_policy",
        "service_documentation",
        "shipping_documentation",
        "uncategorized_file",
    }
)
EVIDENCE_FIELDS = EVIDENCE_FILE_FIELDS | {
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "uncategorized_text",
}
FILE_PURPOSES = {"dispute_evidence", "identity_document", "business_logo"}

# Refund statuses that hold money back from the charge (a failed refund gives it back).
REFUND_HOLDS_MONEY = {"pending", "succeeded"}
REFUND_FAILURE_REASONS = {
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
}


class StripeApiError(Exception):
    """An answer in Stripe's error envelope."""

    def __init__(
        self, status, message, *, type="invalid_request_error", code=None, param=None, **extra
    ):
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {"type": type, "code": code, "message": message, "param": param, **extra}
        }


def no_such(kind: str, object_id: str, param: str | None = None) -> StripeApiError:
    return StripeApiError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def decode_params(encoded: str) -> dict:
    """Stripe's form encoding to nested data: `metadata[reference]=r1&expand[0]=payment_method`
    becomes `{"metadata": {"reference": "r1"}, "expand": ["payment_method"]}`."""
    params: dict = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        *parents, leaf = key.replace("]", "").split("[")
        node = params
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return _indexed_dicts_to_lists(params)


def _indexed_dicts_to_lists(value):
    if not isinstance(value, dict):
        return value
    value = {key: _indexed_dicts_to_lists(item) for key, item in value.items()}
    if value and all(key.isdigit() for key in value):
        return [value[key] for key in sorted(value, key=int)]
    return value


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part. Compared (for idempotency) by its name and hash."""

    filename: str
    content: bytes = dataclass_field(repr=False, compare=False)
    sha256: str = ""


def decode_multipart(content_type: str, raw: bytes) -> dict:
    """A multipart/form-data body (the Files API) as params: text fields as strings, file
    parts as UploadedFile."""
    message = BytesParser(policy=email_policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    params: dict = {}
    if not message.is_multipart():
        raise StripeApiError(400, "The multipart body could not be read.")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            params[name] = UploadedFile(filename, payload, hashlib.sha256(payload).hexdigest())
        else:
            params[name] = payload.decode()
    return params


def accept(params: dict, *names: str) -> None:
    """Refuse parameters this endpoint does not take, as Stripe does (`expand` goes anywhere)."""
    unknown = sorted(params.keys() - {*names, "expand"})
    if unknown:
        raise StripeApiError(400, f"Received unknown parameter: {unknown[0]}", param=unknown[0])


def positive_int(params: dict, name: str) -> int:
    raw = params.get(name, "")
    if not str(raw).isdigit() or int(raw) <= 0:
        raise StripeApiError(400, f"Invalid positive integer: {name}", param=name)
    return int(raw)


def dollars(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class WebhookSender:
    """Delivers events in order from one background thread, signed like Stripe."""

    def __init__(self, url: str, secret: str):
        self.url = url
        self.secret = secret.encode()
        self._queue: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._deliver_forever, daemon=True).start()

    def send(self, event_type: str, obj: dict) -> None:
        self._queue.put(
            {
                "id": new_id("evt"),
                "object": "event",
                "type": event_type,
                "created": int(time.time()),
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "data": {"object": json.loads(json.dumps(obj))},  # a snapshot, as Stripe sends
            }
        )

    def signature(self, timestamp: int, body: bytes) -> str:
        signed = hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256)
        return f"t={timestamp},v1={signed.hexdigest()}"

    def _deliver_forever(self) -> None:
        while True:
            event = self._queue.get()
            body = json.dumps(event).encode()
            request = urllib.request.Request(  # noqa: S310 (the URL we were started with)
                self.url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": self.signature(int(time.time()), body),
                },
            )
            try:
                urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
            except OSError as error:
                print(f"webhook {event['type']} not delivered: {error}", file=sys.stderr)
            finally:
                self._queue.task_done()

    @property
    def undelivered(self) -> int:
        """Events queued or being delivered; a delivery ends when the receiver has answered."""
        return self._queue.unfinished_tasks


class FakeStripe:
    """One Stripe account in memory. Every method runs under `lock`."""

    def __init__(
        self, api_key: str, webhooks: WebhookSender | None = None, *, publishable_key: str = ""
    ):
        self.api_key = api_key
        self.publishable_key = publishable_key
        self.webhooks = webhooks
        self.lock = threading.Lock()
        self.dice = FaultDice({"charge", "refund", "other"})
        self.reset()

    def reset(self) -> None:
        self.objects: dict[str, dict] = {}  # every object by id, in creation order
        self.test_cards: dict[str, TestCard] = {}  # payment method id -> how it behaves
        self.idempotent: dict[str, tuple[str, dict, int, dict]] = {}
        self.next_refund_status = "succeeded"
        self.next_refund_failure_reason: str | None = None
        self.dispute_updates: list[dict] = []
        self.next_fault: tuple[str, float] | None = None
        if hasattr(self, "dice"):
            self.dice.configure({})

    # --- the API ---

    def call(self, handler, path: str, params: dict, idempotency_key: str | None):
        """Run one API request; returns (status, body, replayed)."""
        if idempotency_key:
            stored = self.idempotent.get(idempotency_key)
            if stored:
                stored_path, stored_params, status, body = stored
                if (stored_path, stored_params) != (path, params):
                    raise StripeApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with. Try using a key other than "
                        f"'{idempotency_key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                return status, body, True
        try:
            status, body = 200, handler(params)
        except StripeApiError as error:
            if error.status != 402:  # refused before doing anything: not remembered
                raise
            status, body = error.status, error.body
        if idempotency_key:
            self.idempotent[idempotency_key] = (path, params, status, body)
        return status, body, False

    def create_customer(self, params: dict) -> dict:
        accept(params, "email", "name", "description", "metadata")
        return self._add(
            {
                "id": new_id("cus"),
                "object": "customer",
                "email": params.get("email"),
                "name": params.get("name"),
                "description": params.get("description"),
                "metadata": params.get("metadata", {}),
                "invoice_settings": {"default_payment_method": None},
            }
        )

    def search_customers(self, params: dict) -> dict:
        accept(params, "query", "limit")
        query = re.fullmatch(r"metadata\['([^']+)'\]:'((?:[^'\\]|\\.)*)'", params.get("query", ""))
        if not query:
            raise StripeApiError(
                400,
                "This fake only understands queries like metadata['key']:'value'.",
                param="query",
            )
        key, value = query[1], re.sub(r"\\(.)", r"\1", query[2])
        found = [c for c in self._all("customer") if c["metadata"].get(key) == value]
        return {
            "object": "search_result",
            "url": "/v1/customers/search",
            "has_more": False,
            "next_page": None,
            "data": found[::-1],
        }

    def retrieve_customer(self, params: dict, customer_id: str) -> dict:
        accept(params)
        return self._get("customer", customer_id)

    def retrieve_payment_method(self, params: dict, payment_method_id: str) -> dict:
        accept(params)
        return self._payment_method(payment_method_id)

    def create_payment_method(self, params: dict) -> dict:
        """A card typed into Stripe.js: only a test number is accepted, and it is not kept."""
        accept(params, "type", "card", "billing_details", "key")
        if params.get("type") != "card":
            raise StripeApiError(400, "This fake only makes card payment methods.", param="type")
        card = params.get("card") if isinstance(params.get("card"), dict) else {}
        number = re.sub(r"[ -]", "", str(card.get("number", "")))
        if not number.isdigit() or not luhn_valid(number):
            raise card_error("Your card number is incorrect.", "incorrect_number", "number")
        test_id = TEST_CARD_NUMBERS.get(number)
        if test_id is None:
            raise card_error(
                "Your card was declined. Your request was in test mode, but used a non test "
                "(live) card. For a list of valid test cards, visit: "
                "https://stripe.com/docs/testing.",
                "card_declined",
            )
        month, year = str(card.get("exp_month", "")), str(card.get("exp_year", ""))
        if not month.isdigit() or not 1 <= int(month) <= 12:
            raise card_error(
                "Your card's expiration month is invalid.", "invalid_expiry_month", "exp_month"
            )
        full_year = int(year) + 2000 if year.isdigit() and len(year) == 2 else int(year or 0)
        now = time.gmtime()
        if (full_year, int(month)) < (now.tm_year, now.tm_mon) or full_year > now.tm_year + 50:
            raise card_error(
                "Your card's expiration year is invalid.", "invalid_expiry_year", "exp_year"
            )
        if not re.fullmatch(r"\d{3,4}", str(card.get("cvc", ""))):
            raise card_error("Your card's security code is invalid.", "invalid_cvc", "cvc")
        return self._new_test_payment_method(test_id, expiry=(int(month), full_year))

    def attach_payment_method(self, params: dict, payment_method_id: str) -> dict:
        accept(params, "customer")
        customer = self._get("customer", params.get("customer", ""), "customer")
        payment_method = self._payment_method(payment_method_id)
        if payment_method["customer"] not in (None, customer["id"]):
            raise StripeApiError(
                400,
                "The payment method you provided has already been attached to a customer.",
                code="payment_method_unexpected_state",
            )
        if self.test_cards[payment_method["id"]].declined_on_attach:
            raise self._card_declined()
        payment_method["customer"] = customer["id"]
        return payment_method

    def create_payment_intent(self, params: dict) -> dict:
        accept(
            params,
            *("amount", "currency", "customer", "payment_method", "payment_method_types"),
            *("confirm", "off_session", "metadata", "description"),
        )
        amount = positive_int(params, "amount")
        currency = params.get("currency", "")
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise StripeApiError(400, "Invalid currency.", param="currency")
        if params.get("confirm") != "true":
            raise StripeApiError(400, "This fake only creates PaymentIntents with confirm=true.")
        customer_id = params.get("customer")
        if customer_id:
            self._get("customer", customer_id, "customer")
        payment_method = self._payment_method(params.get("payment_method", ""), "payment_method")
        if payment_method["customer"] and payment_method["customer"] != customer_id:
            raise StripeApiError(
                400,
                f"The PaymentMethod {payment_method['id']} belongs to the Customer "
                f"{payment_method['customer']}. Please include the Customer in the `customer` "
                "parameter on the PaymentIntent.",
                param="payment_method",
            )
        declined = self.test_cards[payment_method["id"]].declined_on_charge
        intent = self._add(
            {
                "id": new_id("pi"),
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0 if declined else amount,
                "currency": currency,
                "customer": customer_id,
                "description": params.get("description"),
                "metadata": params.get("metadata", {}),
                "payment_method": payment_method["id"],
                "payment_method_types": params.get("payment_method_types", ["card"]),
                "capture_method": "automatic",
                "confirmation_method": "automatic",
                "status": "requires_payment_method" if declined else "succeeded",
                "last_payment_error": None,
                "latest_charge": None,
            }
        )
        charge = self._add(
            {
                "id": new_id("ch"),
                "object": "charge",
                "amount": amount,
                "amount_captured": 0 if declined else amount,
                "amount_refunded": 0,
                "currency": currency,
                "customer": customer_id,
                "payment_intent": intent["id"],
                "payment_method": payment_method["id"],
                "metadata": intent["metadata"],
                "status": "failed" if declined else "succeeded",
                "paid": not declined,
                "refunded": False,
                "disputed": False,
            }
        )
        intent["latest_charge"] = charge["id"]
        if declined:
            error = self._card_declined(charge=charge["id"])
            intent["last_payment_error"] = {
                k: v for k, v in error.body["error"].items() if v is not None
            }
            error.body["error"]["payment_intent"] = self._expanded(intent, params)
            raise error
        return self._expanded(intent, params)

    def retrieve_payment_intent(self, params: dict, intent_id: str) -> dict:
        accept(params)
        return self._expanded(self._get("payment_intent", intent_id), params)

    def list_payment_intents(self, params: dict) -> dict:
        accept(params, "customer", "limit", "starting_after")
        intents = self._all("payment_intent")
        if params.get("customer"):
            intents = [i for i in intents if i["customer"] == params["customer"]]
        return self._page("/v1/payment_intents", intents, params)

    def create_refund(self, params: dict) -> dict:
        accept(params, "payment_intent", "charge", "amount", "metadata", "reason")
        return self._refund(params, metadata=params.get("metadata", {}))

    def retrieve_refund(self, params: dict, refund_id: str) -> dict:
        accept(params)
        return self._get("refund", refund_id)

    def list_refunds(self, params: dict) -> dict:
        accept(params, "payment_intent", "charge", "limit", "starting_after")
        refunds = self._all("refund")
        for kind in ("payment_intent", "charge"):
            if kind in params:
                self._get(kind, params[kind], kind)
                refunds = [r for r in refunds if r[kind] == params[kind]]
        return self._page("/v1/refunds", refunds, params)

    # --- the control API ---

    def settle_refund(self, params: dict, refund_id: str) -> dict:
        refund = self._get("refund", refund_id)
        status = params.get("status")
        failure_reason = params.get("failure_reason", "expired_or_canceled_card")
        if status not in ("succeeded", "failed"):
            raise StripeApiError(400, "status must be succeeded or failed.", param="status")
        if failure_reason not in REFUND_FAILURE_REASONS:
            raise StripeApiError(400, "Unknown failure_reason.", param="failure_reason")
        if refund["status"] != "pending":
            raise StripeApiError(409, f"Refund {refund_id} is {refund['status']}, not pending.")
        refund["status"] = status
        if status == "failed":
            refund["failure_reason"] = failure_reason
        charge = self._refresh_charge(refund["charge"])
        self._send("refund.updated", refund)
        if status == "failed":
            self._send("refund.failed", refund)
        else:
            self._send("charge.refunded", charge)
        return refund

    def dashboard_refund(self, params: dict) -> dict:
        """A refund someone made in the Stripe Dashboard: no reference, same rules."""
        return self._refund(params, metadata={})

    def open_dispute(self, params: dict) -> dict:
        charge = self._succeeded_charge(params)
        charge["disputed"] = True
        now = int(time.time())
        due_in_days = params.get("due_in_days", 7)
        dispute = self._add(
            {
                "id": new_id("dp"),
                "object": "dispute",
                "amount": params.get("amount", charge["amount"]),
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "reason": params.get("reason", "fraudulent"),
                "status": params.get("status", "needs_response"),
                "created": now,
                "evidence": {},
                "evidence_details": {
                    "due_by": now + int(due_in_days * 86400),
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "metadata": {},
            }
        )
        self._send("charge.dispute.created", dispute)
        return dispute

    def close_dispute(self, params: dict, dispute_id: str) -> dict:
        dispute = self._get("dispute", dispute_id)
        if params.get("status") not in ("won", "lost"):
            raise StripeApiError(400, "status must be won or lost.", param="status")
        dispute["status"] = params["status"]
        self._send("charge.dispute.closed", dispute)
        return dispute

    def retrieve_dispute(self, params: dict, dispute_id: str) -> dict:
        return self._get("dispute", dispute_id)

    def update_dispute(self, params: dict, dispute_id: str) -> dict:
        """Stripe's `POST /v1/disputes/{id}`: evidence fields (text, or the id of a file
        uploaded with purpose dispute_evidence) and `submit`."""
        accept(params, "evidence", "submit", "metadata")
        dispute = self._get("dispute", dispute_id)
        if dispute["status"] not in ("needs_response", "warning_needs_response"):
            raise StripeApiError(
                400,
                f"This dispute is already {dispute['status']}; its evidence cannot be changed.",
                param="evidence",
            )
        evidence = params.get("evidence", {})
        if not isinstance(evidence, dict):
            raise StripeApiError(400, "evidence must be a hash.", param="evidence")
        unknown = sorted(set(evidence) - EVIDENCE_FIELDS)
        if unknown:
            raise StripeApiError(
                400, f"Received unknown parameter: evidence[{unknown[0]}]", param="evidence"
            )
        for name in sorted(set(evidence) & EVIDENCE_FILE_FIELDS):
            upload = self.objects.get(evidence[name])
            if not upload or upload["object"] != "file" or upload["purpose"] != "dispute_evidence":
                raise StripeApiError(
                    400, f"No such file upload: '{evidence[name]}'", param=f"evidence[{name}]"
                )
        dispute["evidence"] = {**dispute.get("evidence", {}), **evidence}
        details = dispute["evidence_details"]
        details["has_evidence"] = bool(dispute["evidence"])
        if params.get("submit") in ("true", True):
            details["submission_count"] += 1
            dispute["status"] = (
                "warning_under_review"
                if dispute["status"] == "warning_needs_response"
                else "under_review"
            )
        self.dispute_updates.append({"dispute": dispute_id, "evidence": evidence})
        self._send("charge.dispute.updated", dispute)
        return dispute

    def create_file(self, params: dict) -> dict:
        """Stripe's Files API (`POST /v1/files`, multipart): the file is kept by its hash."""
        accept(params, "purpose", "file")
        upload = params.get("file")
        if not isinstance(upload, UploadedFile):
            raise StripeApiError(400, "Missing required param: file.", param="file")
        if params.get("purpose") not in FILE_PURPOSES:
            raise StripeApiError(400, "Invalid purpose.", param="purpose")
        return self._add(
            {
                "id": new_id("file"),
                "object": "file",
                "purpose": params["purpose"],
                "filename": upload.filename,
                "size": len(upload.content),
                "sha256": upload.sha256,
                "type": "pdf" if upload.content.startswith(b"%PDF") else "unknown",
                "created": int(time.time()),
            }
        )

    def retrieve_file(self, params: dict, file_id: str) -> dict:
        return self._get("file", file_id)

    def evidence_ledger(self, params: dict) -> dict:
        """Every file uploaded and every dispute update received, oldest first."""
        return {"files": self._all("file"), "dispute_updates": list(self.dispute_updates)}

    def set_next_refund_status(self, params: dict) -> dict:
        status = params.get("status")
        if status not in ("pending", "succeeded", "failed"):
            raise StripeApiError(
                400, "status must be pending, succeeded or failed.", param="status"
            )
        failure_reason = params.get("failure_reason", "declined") if status == "failed" else None
        if failure_reason is not None and failure_reason not in REFUND_FAILURE_REASONS:
            raise StripeApiError(400, "Unknown failure_reason.", param="failure_reason")
        self.next_refund_status, self.next_refund_failure_reason = status, failure_reason
        return {"next_refund_status": status}

    def set_fault(self, params: dict) -> dict:
        if params.get("next") not in ("hang", "drop_after_apply"):
            raise StripeApiError(400, "next must be hang or drop_after_apply.", param="next")
        self.next_fault = (params["next"], float(params.get("seconds", 5)))
        return {"next": params["next"]}

    def take_fault(self, kind: str) -> tuple[str, float] | None:
        """The queued fault, else one the dice roll for this request kind."""
        fault, self.next_fault = self.next_fault, None
        if fault is None and (rolled := self.dice.draw(kind)):
            fault = (DICE_FAULTS[rolled], self.dice.slow_seconds)
        return fault

    def configure_chaos(self, params: dict) -> dict:
        try:
            return self.dice.configure(params)
        except (ValueError, TypeError) as invalid:
            raise StripeApiError(400, str(invalid)) from None

    def chaos_status(self, params: dict) -> dict:
        return self.dice.status()

    def ledger(self, params: dict) -> dict:
        """What moved money: charges that succeeded, and every refund (its status says whether
        it holds money back from its charge)."""
        charges = [
            {
                "id": intent["id"],
                "amount": intent["amount"],
                "currency": intent["currency"],
                "reference": intent["metadata"].get("reference"),
            }
            for intent in self._all("payment_intent")
            if intent["status"] == "succeeded"
        ]
        refunds = [
            {
                "id": refund["id"],
                "payment_intent": refund["payment_intent"],
                "amount": refund["amount"],
                "status": refund["status"],
                "reference": refund["metadata"].get("reference"),
            }
            for refund in self._all("refund")
        ]
        return {"charges": charges, "refunds": refunds}

    def refund_ledger(self, params: dict) -> dict:
        return {"object": "list", "data": self._all("refund")}

    def webhook_backlog(self, params: dict) -> dict:
        return {"undelivered": self.webhooks.undelivered if self.webhooks else 0}

    def reset_all(self, params: dict) -> dict:
        self.reset()
        return {"reset": True}

    # --- helpers ---

    def _refund(self, params: dict, *, metadata: dict) -> dict:
        charge = self._succeeded_charge(params)
        unrefunded = charge["amount"] - self._refunded(charge["id"])
        if unrefunded == 0:
            raise StripeApiError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = positive_int(params, "amount") if "amount" in params else unrefunded
        if amount > unrefunded:
            raise StripeApiError(
                400,
                f"Refund amount ({dollars(amount)}) is greater than unrefunded amount on charge "
                f"({dollars(unrefunded)})",
                param="amount",
            )
        status, self.next_refund_status = self.next_refund_status, "succeeded"
        failure_reason, self.next_refund_failure_reason = self.next_refund_failure_reason, None
        refund = self._add(
            {
                "id": new_id("re"),
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "metadata": metadata,
                "reason": params.get("reason"),
                "status": status,
                "failure_reason": failure_reason,
            }
        )
        charge = self._refresh_charge(charge["id"])
        self._send("refund.created", refund)
        if status == "succeeded":
            self._send("charge.refunded", charge)
        elif status == "failed":
            self._send("refund.failed", refund)
        return refund

    def _succeeded_charge(self, params: dict) -> dict:
        """The charge named by `charge` or `payment_intent`; it must have succeeded."""
        if params.get("charge"):
            charge = self._get("charge", params["charge"], "charge")
        elif params.get("payment_intent"):
            intent = self._get("payment_intent", params["payment_intent"], "payment_intent")
            if intent["status"] != "succeeded":
                raise StripeApiError(
                    400,
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge to "
                    "refund.",
                    param="payment_intent",
                )
            charge = self.objects[intent["latest_charge"]]
        else:
            raise StripeApiError(
                400,
                "One of the following params should be provided for this "
                "request: payment_intent or charge.",
            )
        if charge["status"] != "succeeded":
            raise StripeApiError(400, "Cannot refund a failed payment.", param="charge")
        return charge

    def _refunded(self, charge_id: str) -> int:
        return sum(
            r["amount"]
            for r in self._all("refund")
            if r["charge"] == charge_id and r["status"] in REFUND_HOLDS_MONEY
        )

    def _refresh_charge(self, charge_id: str) -> dict:
        charge = self.objects[charge_id]
        charge["amount_refunded"] = self._refunded(charge_id)
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return charge

    def _payment_method(self, payment_method_id: str, param: str | None = None) -> dict:
        """A stored payment method, or a new one made from a test id such as `pm_card_visa`."""
        if payment_method_id in TEST_CARDS:
            return self._new_test_payment_method(payment_method_id)
        return self._get("payment_method", payment_method_id, param)

    def _new_test_payment_method(
        self, test_id: str, expiry: tuple[int, int] = TEST_CARD_EXPIRY
    ) -> dict:
        card = TEST_CARDS[test_id]
        payment_method = self._add(
            {
                "id": new_id("pm"),
                "object": "payment_method",
                "type": "card",
                "card": {
                    "brand": card.brand,
                    "last4": card.last4,
                    "exp_month": expiry[0],
                    "exp_year": expiry[1],
                    "funding": "credit",
                    "country": "US",
                },
                "billing_details": {},
                "customer": None,
                "metadata": {},
            }
        )
        self.test_cards[payment_method["id"]] = card
        return payment_method

    @staticmethod
    def _card_declined(**extra) -> StripeApiError:
        return StripeApiError(
            402,
            "Your card was declined.",
            type="card_error",
            code="card_declined",
            decline_code="generic_decline",
            **extra,
        )

    def _add(self, obj: dict) -> dict:
        obj |= {"created": int(time.time()), "livemode": False}
        self.objects[obj["id"]] = obj
        return obj

    def _get(self, kind: str, object_id: str, param: str | None = None) -> dict:
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise no_such(kind, object_id, param)
        return obj

    def _all(self, kind: str) -> list[dict]:
        return [obj for obj in self.objects.values() if obj["object"] == kind]

    def _page(self, url: str, newest_last: list[dict], params: dict) -> dict:
        """One page of a list, newest first, as Stripe pages (`limit`, `starting_after`)."""
        items = newest_last[::-1]
        after = params.get("starting_after")
        if after:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = min(positive_int(params, "limit"), 100) if "limit" in params else 10
        data = [self._expanded(item, params, prefix="data.") for item in items[:limit]]
        return {"object": "list", "url": url, "has_more": len(items) > limit, "data": data}

    def _expanded(self, obj: dict, params: dict, prefix: str = "") -> dict:
        """A copy of `obj` with the fields named in `expand[]` replaced by their objects."""
        paths = [p.removeprefix(prefix) for p in params.get("expand", []) if p.startswith(prefix)]
        copy = dict(obj)
        for field in paths:
            if isinstance(copy.get(field), str) and copy[field] in self.objects:
                copy[field] = self.objects[copy[field]]
        return copy

    def _send(self, event_type: str, obj: dict) -> None:
        if self.webhooks:
            self.webhooks.send(event_type, obj)


def card_error(message: str, code: str, param: str | None = None) -> StripeApiError:
    return StripeApiError(402, message, type="card_error", code=code, param=param)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _api_routes(fake: FakeStripe):
    """(method, path pattern, handler(params, *ids in the path)) for the Stripe API."""
    return [
        ("POST", r"/v1/customers", fake.create_customer),
        ("GET", r"/v1/customers/search", fake.search_customers),
        ("GET", r"/v1/customers/(cus_\w+)", fake.retrieve_customer),
        ("POST", r"/v1/payment_methods", fake.create_payment_method),
        ("GET", r"/v1/payment_methods/(\w+)", fake.retrieve_payment_method),
        ("POST", r"/v1/payment_methods/(\w+)/attach", fake.attach_payment_method),
        ("POST", r"/v1/payment_intents", fake.create_payment_intent),
        ("GET", r"/v1/payment_intents", fake.list_payment_intents),
        ("GET", r"/v1/payment_intents/(\w+)", fake.retrieve_payment_intent),
        ("POST", r"/v1/refunds", fake.create_refund),
        ("GET", r"/v1/refunds", fake.list_refunds),
        ("GET", r"/v1/refunds/(\w+)", fake.retrieve_refund),
        ("POST", r"/v1/files", fake.create_file),
        ("GET", r"/v1/files/(\w+)", fake.retrieve_file),
        ("GET", r"/v1/disputes/(dp_\w+)", fake.retrieve_dispute),
        ("POST", r"/v1/disputes/(dp_\w+)", fake.update_dispute),
    ]


def _control_routes(fake: FakeStripe):
    return [
        ("POST", r"/_fake/next_refund", fake.set_next_refund_status),
        ("POST", r"/_fake/refunds/(\w+)/settle", fake.settle_refund),
        ("POST", r"/_fake/faults", fake.set_fault),
        ("POST", r"/_fake/dashboard_refund", fake.dashboard_refund),
        ("POST", r"/_fake/disputes", fake.open_dispute),
        ("POST", r"/_fake/disputes/(dp_\w+)/close", fake.close_dispute),
        ("GET", r"/_fake/evidence", fake.evidence_ledger),
        ("GET", r"/_fake/refunds", fake.refund_ledger),
        ("GET", r"/_fake/ledger", fake.ledger),
        ("POST", r"/_fake/chaos", fake.configure_chaos),
        ("GET", r"/_fake/chaos", fake.chaos_status),
        ("GET", r"/_fake/webhooks", fake.webhook_backlog),
        ("POST", r"/_fake/reset", fake.reset_all),
    ]


def _route(routes, method: str, path: str):
    for route_method, pattern, handler in routes:
        match = re.fullmatch(pattern, path)
        if route_method == method and match:
            return lambda params: handler(params, *match.groups())
    raise StripeApiError(404, f"Unrecognized request URL ({method}: {path}).")


# A soak's random faults (common.FaultDice) as this fake's own.
DICE_FAULTS = {"drop": "drop_after_apply", "slow": "hang", "refuse": "refuse"}

# Stripe's answer when it refuses a request for load: nothing happened, so it may be sent again.
RATE_LIMITED = (
    429,
    StripeApiError(
        429,
        "Too many requests hit the API too quickly. We recommend an exponential backoff of your "
        "requests.",
        code="rate_limit",
    ).body,
)


def _request_kind(method: str, path: str) -> str:
    if method == "POST" and path == "/v1/payment_intents":
        return "charge"
    if method == "POST" and path == "/v1/refunds":
        return "refund"
    return "other"


def _error_answer(error: Exception) -> tuple[int, dict]:
    if isinstance(error, StripeApiError):
        return error.status, error.body
    # A bug in the fake: answer like Stripe's own 500 rather than dropping the connection.
    print(f"fake Stripe error: {error!r}", file=sys.stderr)
    return 500, StripeApiError(500, f"Internal error: {error}", type="api_error").body


def make_handler(fake: FakeStripe, *, verbose: bool = False):
    api_routes, control_routes = _api_routes(fake), _control_routes(fake)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._handle()

        def do_POST(self):
            self._handle()

        def do_OPTIONS(self):
            # A browser's preflight before Stripe.js's POST from the page's origin.
            self._respond(204, None)

        def _handle(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            body = "" if content_type.startswith("multipart/") else raw.decode()
            if url.path == "/js.stripe.com/v3/" and self.command == "GET":
                self._script()
            elif url.path.startswith("/_fake/"):
                self._control(url.path, json.loads(body) if body else {})
            elif self.command == "POST" and content_type.startswith("multipart/form-data"):
                self._api(url.path, decode_multipart(content_type, raw))
            else:
                self._api(url.path, decode_params(body if self.command == "POST" else url.query))

        def _control(self, path: str, params: dict):
            try:
                with fake.lock:
                    status, body = 200, _route(control_routes, self.command, path)(params)
            except Exception as error:  # every failure becomes an answer
                status, body = _error_answer(error)
            self._respond(status, body)

        def _api(self, path: str, params: dict):
            if not self._authorized(path, params):
                self._respond(401, StripeApiError(401, "Invalid API Key provided.").body)
                return
            key = self.headers.get("Idempotency-Key") if self.command == "POST" else None
            with fake.lock:
                fault = fake.take_fault(_request_kind(self.command, path))
                if fault and fault[0] == "refuse":
                    self._respond(*RATE_LIMITED)  # refused before anything is applied
                    return
                try:
                    handler = _route(api_routes, self.command, path)
                    status, body, replayed = fake.call(handler, path, params, key)
                except Exception as error:  # every failure becomes an answer
                    (status, body), replayed = _error_answer(error), False
            if fault and fault[0] == "drop_after_apply":
                self.close_connection = True  # applied, but the caller never hears
                return
            if fault and fault[0] == "hang":
                time.sleep(fault[1])
            self._respond(status, body, replayed=replayed, idempotency_key=key)

        def _authorized(self, path: str, params: dict) -> bool:
            scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
            if scheme == "Bearer" and hmac.compare_digest(credentials, fake.api_key):
                return True
            # Stripe.js creates a payment method with the publishable key in the form.
            key = params.get("key")
            return (
                self.command == "POST"
                and path == "/v1/payment_methods"
                and bool(fake.publishable_key)
                and isinstance(key, str)
                and hmac.compare_digest(key, fake.publishable_key)
            )

        def _script(self):
            payload = STRIPE_JS.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _respond(self, status, body, *, replayed=False, idempotency_key=None):
            payload = json.dumps(body).encode() if body is not None else b""
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                # The Stripe.js stand-in calls from the page's origin, as Stripe.js does.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Headers", "Content-Type")
                self.send_header("Request-Id", new_id("req"))
                if idempotency_key:
                    self.send_header("Idempotency-Key", idempotency_key)
                if replayed:
                    self.send_header("Idempotent-Replayed", "true")
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller gave up (a hang outlived its timeout)

        def log_message(self, format, *args):
            if verbose:
                super().log_message(format, *args)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8421)
    parser.add_argument("--api-key", default=os.environ.get("STRIPE_SECRET_KEY", ""))
    parser.add_argument(
        "--publishable-key",
        default=os.environ.get("STRIPE_PUBLISHABLE_KEY", ""),
        help="the key the Stripe.js stand-in makes payment methods with (none: it cannot)",
    )
    parser.add_argument("--webhook-url", default="")
    parser.add_argument("--webhook-secret", default=os.environ.get("STRIPE_WEBHOOK_SECRET", ""))
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("--api-key (or $STRIPE_SECRET_KEY) is required")
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret (or $STRIPE_WEBHOOK_SECRET)")

    webhooks = WebhookSender(args.webhook_url, args.webhook_secret) if args.webhook_url else None
    fake = FakeStripe(args.api_key, webhooks, publishable_key=args.publishable_key)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(fake, verbose=args.verbose))
    server.daemon_threads = True
    print(f"fake Stripe listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
