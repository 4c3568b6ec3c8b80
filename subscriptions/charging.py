"""Charging a subscription order's invoice, and what the answer means for payment recovery.

`billing.payments.charge_invoice` does the money part (at most once, gateway called outside any
transaction, success recorded with the invoice PAID and the order recalculated). Its refusals
are sorted here into the recovery statuses: no compatible card, or the charge failed.
"""

import enum
import logging
from dataclasses import dataclass

from billing.models import PaymentMethod
from billing.payments import PaymentRequired, charge_invoice
from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError
from orders.models import Order
from orders.states import RecoveryStatus

logger = logging.getLogger(__name__)

# Refusals that mean "this card cannot be charged here": the patient must add a card.
NO_COMPATIBLE_CARD = frozenset({"payment.gateway_mismatch", "payment.card_not_found"})
# Someone else is charging (or charged) this invoice right now: nothing to do.
ALREADY_HANDLED = frozenset({"invoice.not_payable", "payment.in_progress"})
# Refused before a payment row was written, so billing emitted no `payment.failed`.
REFUSED_BEFORE_PAYMENT_ROW = frozenset({"payment.gateway_not_configured"})


class Outcome(enum.StrEnum):
    PAID = "paid"
    CHARGE_FAILED = "charge_failed"
    NO_CARD = "no_card"
    # The gateway's answer was lost: the payment stays PENDING until billing reconciles it.
    UNKNOWN = "unknown"
    ALREADY_HANDLED = "already_handled"


@dataclass(frozen=True)
class ChargeAttempt:
    outcome: Outcome
    message: str = ""
    error: DomainError | None = None
    # Whether billing already emitted `payment.failed` (it does when it records a FAILED row).
    failure_announced: bool = False

    @property
    def recovery_status(self) -> RecoveryStatus:
        if self.outcome == Outcome.NO_CARD:
            return RecoveryStatus.NEEDS_PAYMENT_METHOD
        return RecoveryStatus.CHARGE_FAILED


NO_CARD_MESSAGE = (
    "No compatible payment method: the patient has no saved card with the clinic's active "
    "gateway. The patient must save a card again (or pay the recovery invoice in the portal)."
)


def charge_order(
    *, order: Order, card: PaymentMethod | None, actor: Actor, reason: str
) -> ChargeAttempt:
    """Charge the order's open invoice with `card`; never raises for a refused charge."""
    if card is None:
        return ChargeAttempt(Outcome.NO_CARD, NO_CARD_MESSAGE)
    try:
        charge_invoice(invoice=order.invoice, payment_method=card, actor=actor, reason=reason)
    except PaymentRequired as declined:
        return ChargeAttempt(
            Outcome.CHARGE_FAILED, declined.detail, declined, failure_announced=True
        )
    except DomainError as error:
        return _sorted_refusal(error)
    return ChargeAttempt(Outcome.PAID)


def _sorted_refusal(error: DomainError) -> ChargeAttempt:
    if error.code in NO_COMPATIBLE_CARD:
        return ChargeAttempt(Outcome.NO_CARD, error.detail, error)
    if error.code in ALREADY_HANDLED:
        return ChargeAttempt(Outcome.ALREADY_HANDLED, error.detail, error)
    if error.code == "payment.outcome_unknown":
        logger.warning("Charge outcome unknown; left for reconciliation: %s", error.detail)
        return ChargeAttempt(Outcome.UNKNOWN, error.detail, error)
    # The gateway failed or refused (auth, not configured, unreachable): retry later.
    return ChargeAttempt(
        Outcome.CHARGE_FAILED,
        error.detail,
        error,
        failure_announced=error.code not in REFUSED_BEFORE_PAYMENT_ROW,
    )
