"""The payment-gateway contract every adapter (Stripe, NMI) implements.

Adapters take primitives and return the frozen result types below; they know no Django
models, so `billing` decides what a result means for an order and the adapters only speak the
gateway's protocol. Every failure is one of the `GatewayError` subclasses, each with a stable
`code` and a `message` a support agent can read (never a secret, token or card number).

Money is integer cents plus a lower-case ISO currency ("usd").

`reference` is our own idempotency key for one money movement (a RefundAttempt or charge
attempt id). Adapters pass it to the gateway so that a retry with the same reference never moves
money twice (Stripe: the Idempotency-Key header and metadata; NMI: `orderid`), and so that
`find_refund` / `find_charge` can tell after a timeout whether the movement happened.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass


class GatewayName(enum.StrEnum):
    STRIPE = "stripe"
    NMI = "nmi"


class RefundStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    # Stripe may answer `pending` and settle later (succeeded or failed): only SUCCEEDED is final.
    PENDING = "pending"
    FAILED = "failed"


class RefundMethod(enum.StrEnum):
    REFUND = "refund"
    # NMI: an unsettled sale is voided instead of refunded; the money never leaves the card.
    VOID = "void"


@dataclass(frozen=True)
class CardDetails:
    brand: str  # "visa", "mastercard", … (lower case)
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class SavedCard:
    """A card vaulted at the gateway. `token` is what `charge(payment_token=…)` takes later."""

    token: str
    card: CardDetails


@dataclass(frozen=True)
class ChargeResult:
    transaction_id: str  # Stripe PaymentIntent id; NMI transactionid
    amount_cents: int
    currency: str
    card: CardDetails | None
    # The issuer's address and security-code checks, as the gateway reported them (empty when
    # it gave none): proof of payment in a dispute.
    avs_result: str = ""
    cvv_result: str = ""


@dataclass(frozen=True)
class RefundResult:
    refund_id: str  # the gateway's id of the refund (or of the void)
    transaction_id: str  # the original charge it returns money from
    amount_cents: int
    currency: str
    status: RefundStatus
    method: RefundMethod = RefundMethod.REFUND
    failure_reason: str = ""


class GatewayError(Exception):
    """Base of every adapter failure. `message` is safe to show to staff."""

    code = "gateway.error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class GatewayNotConfigured(GatewayError):
    code = "gateway.not_configured"


class GatewayAuthenticationFailed(GatewayError):
    """The credentials were refused: changed, revoked, or for another merchant account."""

    code = "gateway.auth_failed"


class PaymentDeclined(GatewayError):
    """The card was declined. Nothing was charged."""

    code = "gateway.declined"


class GatewayRefused(GatewayError):
    """The gateway answered and said no for good (over-refund, unknown transaction, …).

    Retrying the same request will not succeed.
    """

    code = "gateway.refused"


class InvalidPaymentToken(GatewayRefused):
    """The gateway does not know the card token (never issued, expired, used up, or a vault
    record that is gone): no card was asked, so this is no decline. Nothing was charged."""

    code = "gateway.invalid_token"


class AlreadyRefunded(GatewayRefused):
    code = "gateway.already_refunded"


class OutcomeUnknown(GatewayError):
    """Timeout or lost connection: the gateway may or may not have applied the request.

    Never retry blindly: look it up (`find_refund` / `find_charge`) or retry with the same
    `reference`, which the adapter guarantees is idempotent.
    """

    code = "gateway.outcome_unknown"


class PaymentGateway(ABC):
    """One configured merchant account at one gateway."""

    name: GatewayName

    def __init__(self, *, merchant_account: str):
        # A non-secret identifier of the account these credentials belong to. Payments record it
        # so that a refund after the credentials moved to another account is refused clearly.
        self.merchant_account = merchant_account

    @abstractmethod
    def save_card(self, *, token: str, customer_reference: str, email: str = "") -> SavedCard:
        """Vault a card (Stripe PaymentMethod id / NMI payment token) for later charges."""

    @abstractmethod
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
        """Charge a card. Raises PaymentDeclined on a decline.

        `saved_card` says what `payment_token` is: a `SavedCard.token` (the caller checked whose
        card it is) or a one-off token from the gateway's browser tokeniser. Adapters never guess
        it from the token's shape: a one-off token shaped like someone's vault id must not charge
        their card.
        """

    @abstractmethod
    def find_charge(self, *, reference: str) -> ChargeResult | None:
        """The charge made with this reference, or None if the gateway has none."""

    @abstractmethod
    def refund(
        self,
        *,
        transaction_id: str,
        amount_cents: int,
        currency: str,
        reference: str,
    ) -> RefundResult:
        """Return money from `transaction_id`. Idempotent per `reference`.

        NMI voids an unsettled sale (full amount) and refunds a settled one, falling back to a
        refund when settlement happened between the two.
        """

    @abstractmethod
    def find_refund(self, *, transaction_id: str, reference: str) -> RefundResult | None:
        """The refund (or void) made for `transaction_id` with this reference, or None."""


class DisputeEvidenceGateway(ABC):
    """A gateway that takes a dispute's evidence through its API (Stripe). NMI has none: its
    chargebacks are answered in the processor's portal with the downloaded packet."""

    @abstractmethod
    def upload_dispute_evidence(self, *, content: bytes, filename: str, reference: str) -> str:
        """Upload the evidence file; returns its id. Idempotent per `reference`."""

    @abstractmethod
    def submit_dispute_evidence(self, *, dispute_id: str, evidence: dict, reference: str) -> str:
        """Attach `evidence` (field -> text or file id) and submit; returns the new status.
        Idempotent per `reference`."""
