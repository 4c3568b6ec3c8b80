"""The Stripe adapter, on the official SDK (`stripe.StripeClient`, one client per instance).

The subset of the Stripe API it uses, and nothing else:

- `GET  /v1/customers/search`               find the Customer whose metadata holds our
                                             `customer_reference` (a 404 here means the server has
                                             no search, as in localstripe: we then create one)
- `POST /v1/customers`                      create that Customer
- `POST /v1/payment_methods/{id}/attach`    vault a PaymentMethod (test ids like `pm_card_visa`
                                             are turned into a new `pm_…` by Stripe on attach)
- `POST /v1/payment_intents`                charge: `confirm=true`, `off_session=true` for saved
                                             cards, `expand[]=payment_method` for the card details
- `GET  /v1/payment_intents`                find a charge by `metadata[reference]` (see below)
- `POST /v1/refunds`                        refund part or all of a PaymentIntent
- `GET  /v1/refunds?payment_intent=…`       find a refund by `metadata[reference]`

Every POST that moves money carries `Idempotency-Key: <reference>` and `metadata[reference]`, so a
retry with the same reference returns Stripe's stored answer instead of moving money again, and
a lookup can tell afterwards whether the movement happened.

Saved-card token format: `"<customer id>/<payment method id>"`, e.g. `"cus_123/pm_456"`. `charge`
uses both parts (Stripe needs the Customer to charge an attached card off-session); a bare
`"pm_…"` is charged once, without a Customer.

Why lookups list instead of search: Stripe's search API is eventually consistent (new objects can
take a minute or more to appear), so a search miss right after a timeout would not prove that the
charge is absent; listing is consistent. `find_charge` walks PaymentIntents newest first and
gives up at `CHARGE_LOOKBACK`, which is longer than any reconciler waits and longer than Stripe
keeps idempotency keys (24 hours).
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import stripe

from integrations.gateways.base import (
    AlreadyRefunded,
    CardDetails,
    ChargeResult,
    DisputeEvidenceGateway,
    GatewayAuthenticationFailed,
    GatewayError,
    GatewayName,
    GatewayNotConfigured,
    GatewayRefused,
    InvalidPaymentToken,
    OutcomeUnknown,
    PaymentDeclined,
    PaymentGateway,
    RefundResult,
    RefundStatus,
    SavedCard,
)

DEFAULT_TIMEOUT_SECONDS = 30
CHARGE_LOOKBACK = timedelta(days=7)
PAGE_SIZE = 100

# PaymentIntent statuses after which money has moved, or may still move.
_MOVED_MONEY = {"succeeded", "processing"}

_REFUND_STATUSES = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}

# Stripe's `failure_reason` codes, as a sentence staff can act on.
_REFUND_FAILURE_REASONS = {
    "lost_or_stolen_card": "The card was reported lost or stolen.",
    "expired_or_canceled_card": "The card has expired or was cancelled.",
    "charge_for_pending_refund_disputed": "The patient disputed the charge.",
    "insufficient_funds": "The merchant balance could not cover the refund.",
    "declined": "The card issuer declined the refund.",
    "merchant_request": "The refund was cancelled at the merchant's request.",
}

_SECRET_KEY = re.compile(r"\b(?:(?:sk|rk|pk)_(?:live|test)|whsec)_\w+")


class StripeGateway(PaymentGateway, DisputeEvidenceGateway):
    name = GatewayName.STRIPE

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str,
        merchant_account: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ):
        super().__init__(merchant_account=merchant_account)
        # An empty key is allowed here so that an unconfigured gateway can still be built (and
        # listed); every call then raises GatewayNotConfigured.
        self._api = None
        if api_key:
            client = stripe.StripeClient(
                api_key,
                base_addresses={
                    "api": api_base or stripe.DEFAULT_API_BASE,
                    # Stripe takes uploads on files.stripe.com; a local Stripe (the fake) on
                    # the API's own address.
                    "files": (
                        api_base
                        if api_base and api_base != stripe.DEFAULT_API_BASE
                        else stripe.DEFAULT_UPLOAD_API_BASE
                    ),
                },
                # Retries belong to our callers, who retry with the same reference.
                max_network_retries=0,
                http_client=stripe.RequestsClient(timeout=timeout),
            )
            self._api = client.v1

    def save_card(self, *, token: str, customer_reference: str, email: str = "") -> SavedCard:
        with self._errors("save the card", card_token=True):
            customer = self._find_customer(customer_reference) or self._create_customer(
                customer_reference, email
            )
            payment_method = self._client.payment_methods.attach(
                token, params={"customer": customer.id}
            )
        return SavedCard(
            token=f"{customer.id}/{payment_method.id}", card=_card_details(payment_method)
        )

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
        # A saved card's token is "customer/payment_method" (see save_card); a one-off token is
        # charged as it is, so one shaped like a saved card is refused by Stripe, not obeyed.
        customer_id, _, payment_method_id = (
            payment_token.partition("/") if saved_card else ("", "", payment_token)
        )
        params = {
            "amount": amount_cents,
            "currency": currency,
            "payment_method": payment_method_id,
            # Card only: with Stripe's default automatic payment methods, confirming without a
            # return_url is refused in case a redirect-based method is chosen.
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {"reference": reference},
            "expand": ["payment_method"],
        }
        if customer_id:
            # A saved card is charged while the patient is away: Stripe then declines instead of
            # asking for authentication nobody is there to give.
            params |= {"customer": customer_id, "off_session": True}
        if description:
            params["description"] = description
        with self._errors("charge the card", card_token=True):
            intent = self._client.payment_intents.create(
                params=params, options={"idempotency_key": reference}
            )
        if intent.status == "requires_action":
            raise PaymentDeclined(
                "The card needs the patient to authenticate the payment, which cannot happen "
                "while they are away. Ask them to pay from the portal."
            )
        return _charge_result(intent)

    def find_charge(self, *, reference: str) -> ChargeResult | None:
        oldest = time.time() - CHARGE_LOOKBACK.total_seconds()
        with self._errors("look up the charge"):
            intents = self._client.payment_intents.list(
                params={"limit": PAGE_SIZE, "expand": ["data.payment_method"]}
            )
            for intent in intents.auto_paging_iter():
                # Stripe lists newest first (localstripe oldest first: it is then read to the end).
                if intent.created < oldest:
                    return None
                if _reference_of(intent) == reference:
                    # A declined or cancelled intent moved no money: that is no charge.
                    return _charge_result(intent) if intent.status in _MOVED_MONEY else None
        return None

    def refund(
        self,
        *,
        transaction_id: str,
        amount_cents: int,
        currency: str,
        reference: str,
    ) -> RefundResult:
        # No `currency` is sent: Stripe refunds in the currency of the charge and reports it back.
        with self._errors(f"refund payment {transaction_id}"):
            refund = self._client.refunds.create(
                params={
                    **_refund_target(transaction_id),
                    "amount": amount_cents,
                    "metadata": {"reference": reference},
                },
                options={"idempotency_key": reference},
            )
        return _refund_result(refund, transaction_id)

    def find_refund(self, *, transaction_id: str, reference: str) -> RefundResult | None:
        with self._errors(f"look up the refunds of payment {transaction_id}"):
            refunds = self._client.refunds.list(
                params={**_refund_target(transaction_id), "limit": PAGE_SIZE}
            )
            for refund in refunds.auto_paging_iter():
                if _reference_of(refund) == reference:
                    return _refund_result(refund, transaction_id)
        return None

    def upload_dispute_evidence(self, *, content: bytes, filename: str, reference: str) -> str:
        """Upload a dispute's evidence file (Files API, purpose `dispute_evidence`); returns the
        file id. Idempotent per `reference`."""
        upload = io.BytesIO(content)
        upload.name = filename
        with self._errors("upload the dispute evidence"):
            created = self._client.files.create(
                params={"purpose": "dispute_evidence", "file": upload},
                options={"idempotency_key": reference},
            )
        return created.id

    def submit_dispute_evidence(self, *, dispute_id: str, evidence: dict, reference: str) -> str:
        """Set the dispute's evidence and submit it; returns the dispute's new status.
        Idempotent per `reference`."""
        with self._errors(f"submit the evidence of dispute {dispute_id}"):
            dispute = self._client.disputes.update(
                dispute_id,
                params={"evidence": evidence, "submit": True},
                options={"idempotency_key": reference},
            )
        return dispute.status

    @property
    def _client(self):
        if self._api is None:
            raise GatewayNotConfigured(
                "Stripe is not configured: no API key is set, so nothing can be charged or "
                "refunded through Stripe."
            )
        return self._api

    def _find_customer(self, customer_reference: str):
        query = f"metadata['customer_reference']:'{_quote(customer_reference)}'"
        try:
            found = self._client.customers.search(params={"query": query, "limit": 1})
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:  # a Stripe look-alike without search (localstripe)
                return None
            raise
        return found.data[0] if found.data else None

    def _create_customer(self, customer_reference: str, email: str):
        params = {"metadata": {"customer_reference": customer_reference}}
        if email:
            params["email"] = email
        return self._client.customers.create(params=params)

    @contextmanager
    def _errors(self, action: str, *, card_token: bool = False) -> Iterator[None]:
        """Turn every SDK error into a GatewayError that says what happened while doing `action`.

        `card_token`: the call names a card by its token, so Stripe's "no such payment method"
        (a 404 or `resource_missing` on `payment_method`) is an unknown token, not a refusal.
        """
        try:
            yield
        except stripe.CardError as error:
            details = (error.json_body or {}).get("error", {})
            reason = details.get("decline_code") or error.code or "no reason given"
            raise PaymentDeclined(
                f"The card was declined ({reason}): {_stripe_says(error)}"
            ) from error
        except (stripe.AuthenticationError, stripe.PermissionError):
            # Not chained: Stripe's own message quotes part of the key.
            raise GatewayAuthenticationFailed(
                f"Stripe refused our API key for merchant account {self.merchant_account} while "
                f"we tried to {action}: the key was rolled, revoked or is not allowed to do this. "
                "An administrator needs to update it."
            ) from None
        except stripe.IdempotencyError as error:
            raise GatewayRefused(
                f"Stripe refused to {action}: this reference was already used for a different "
                "request, so it was not repeated."
            ) from error
        except stripe.InvalidRequestError as error:
            if card_token and _names_a_missing_payment_method(error):
                # Not chained, and Stripe's text is not repeated: it quotes the token.
                raise InvalidPaymentToken(
                    f"Stripe does not know this card token, so it could not {action}: it was "
                    "never issued, has expired or was already used. Nothing was charged."
                ) from None
            if error.code == "charge_already_refunded":
                raise AlreadyRefunded(
                    f"Stripe refused to {action}: the payment has already been fully refunded."
                ) from error
            raise GatewayRefused(f"Stripe refused to {action}: {_stripe_says(error)}") from error
        except stripe.APIConnectionError as error:
            raise OutcomeUnknown(
                f"Stripe did not answer in time while we tried to {action}, so it may or may not "
                "have happened. Check the payment before trying again."
            ) from error
        except stripe.APIError as error:
            # Stripe documents a 5xx (and a 409 for a key still in use) as "result unknown".
            if error.http_status is None or error.http_status >= 500 or error.http_status == 409:
                raise OutcomeUnknown(
                    f"Stripe failed while we tried to {action}, so it may or may not have "
                    "happened. Check the payment before trying again."
                ) from error
            raise GatewayError(f"Stripe could not {action}: {_stripe_says(error)}") from error
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe could not {action}: {_stripe_says(error)}") from error


def _names_a_missing_payment_method(error: stripe.InvalidRequestError) -> bool:
    # Stripe: `resource_missing` on `payment_method`; a look-alike without codes (localstripe)
    # answers a bare 404, which in a call naming one card and no other object means the card.
    missing = error.code == "resource_missing" or error.http_status == 404
    return missing and getattr(error, "param", None) in (None, "payment_method")


def _refund_target(transaction_id: str) -> dict[str, str]:
    # Our transaction ids are PaymentIntents; a bare Charge id comes from payments taken before.
    if transaction_id.startswith("ch_"):
        return {"charge": transaction_id}
    return {"payment_intent": transaction_id}


def _reference_of(obj) -> str:
    return obj.metadata.to_dict().get("reference", "")


def _card_details(payment_method) -> CardDetails:
    card = payment_method.card
    return CardDetails(
        brand=card.brand.lower(),
        last4=card.last4,
        exp_month=int(card.exp_month),
        exp_year=int(card.exp_year),
    )


def _charge_result(intent) -> ChargeResult:
    if intent.status == "processing":
        raise OutcomeUnknown(
            f"Stripe is still processing payment {intent.id}. Check it again in a few minutes."
        )
    if intent.status != "succeeded":
        raise PaymentDeclined(f"Stripe did not complete the charge (status {intent.status}).")
    payment_method = intent.payment_method
    card = None if isinstance(payment_method, str) else _card_details(payment_method)
    return ChargeResult(
        transaction_id=intent.id,
        amount_cents=intent.amount,
        currency=intent.currency,
        card=card,
    )


def refund_from_event(refund: dict) -> tuple[RefundResult, str]:
    """A refund object from a Stripe webhook event, read as `refund()` reads an API answer.

    Returns the result and our reference (metadata), empty for a refund we did not make.
    """
    obj = stripe.Refund.construct_from(refund, None)
    transaction_id = refund.get("payment_intent") or refund.get("charge") or ""
    return _refund_result(obj, transaction_id), _reference_of(obj)


def _refund_result(refund, transaction_id: str) -> RefundResult:
    status = _REFUND_STATUSES.get(refund.status, RefundStatus.PENDING)
    failure_reason = ""
    if status is RefundStatus.FAILED:
        code = getattr(refund, "failure_reason", None) or "unknown"
        failure_reason = _REFUND_FAILURE_REASONS.get(
            code, f"Stripe reports the refund failed ({code})."
        )
    return RefundResult(
        refund_id=refund.id,
        transaction_id=transaction_id,
        amount_cents=refund.amount,
        currency=refund.currency,
        status=status,
        failure_reason=failure_reason,
    )


def _stripe_says(error: stripe.StripeError) -> str:
    """Stripe's own explanation, which is written for people, with anything key-like removed."""
    message = error.user_message or "no details were given."
    return _SECRET_KEY.sub("[redacted]", message)


def _quote(value: str) -> str:
    # Search query strings are single-quoted; a quote inside is escaped with a backslash.
    return value.replace("\\", "\\\\").replace("'", "\\'")
