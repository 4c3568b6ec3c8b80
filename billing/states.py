"""Invoice and payment statuses and the moves between them.

A payment row is one money movement. A refund never rewrites the charge it returns money from:
it is a new row of kind REFUND (status REFUNDED, or PENDING while the gateway settles it)
pointing at the charge through `refund_of`.
"""

from django.db import models

from emr.kernel.errors import InvalidTransition
from emr.kernel.transitions import TransitionTable
from integrations.gateways.base import GatewayName


class Gateway(models.TextChoices):
    STRIPE = GatewayName.STRIPE.value, "Stripe"
    NMI = GatewayName.NMI.value, "NMI"


class InvoiceStatus(models.TextChoices):
    SENT = "SENT", "Sent"
    PAID = "PAID", "Paid"
    CANCELLED = "CANCELLED", "Cancelled"


INVOICE_TRANSITIONS = {
    InvoiceStatus.SENT: {InvoiceStatus.PAID, InvoiceStatus.CANCELLED},
    # A refund through the app cancels the paid invoice.
    InvoiceStatus.PAID: {InvoiceStatus.CANCELLED},
    InvoiceStatus.CANCELLED: set(),
}

invoice_transitions = TransitionTable(
    INVOICE_TRANSITIONS,
    refuse=lambda current, target: InvalidTransition(
        f"An invoice cannot move from {InvoiceStatus(current).label} to "
        f"{InvoiceStatus(target).label}.",
        code="invoice.invalid_transition",
        current=current,
        target=target,
    ),
)


class PaymentKind(models.TextChoices):
    CHARGE = "CHARGE", "Charge"
    REFUND = "REFUND", "Refund"


class PaymentStatus(models.TextChoices):
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    PENDING = "PENDING", "Pending"
    REFUNDED = "REFUNDED", "Refunded"


PAYMENT_TRANSITIONS = {
    PaymentKind.CHARGE: {
        PaymentStatus.PENDING: {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED},
        PaymentStatus.SUCCEEDED: set(),
        PaymentStatus.FAILED: set(),
    },
    PaymentKind.REFUND: {
        # Stripe refunds may be pending and settle later; a settled refund can still fail at the
        # card network, and the row must say so.
        PaymentStatus.PENDING: {PaymentStatus.REFUNDED, PaymentStatus.FAILED},
        PaymentStatus.REFUNDED: {PaymentStatus.FAILED},
        PaymentStatus.FAILED: set(),
    },
}


def _refuse_payment(kind: str):
    def refuse(current: str, target: str) -> InvalidTransition:
        return InvalidTransition(
            f"A {PaymentKind(kind).label.lower()} payment cannot move from "
            f"{PaymentStatus(current).label} to {PaymentStatus(target).label}.",
            code="payment.invalid_transition",
            current=current,
            target=target,
        )

    return refuse


payment_transitions = {
    kind: TransitionTable(table, refuse=_refuse_payment(kind))
    for kind, table in PAYMENT_TRANSITIONS.items()
}


class RefundAttemptStatus(models.TextChoices):
    PENDING = "PENDING", "Pending (gateway asked)"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"


class DisputeStatus(models.TextChoices):
    """Stripe's dispute statuses (NMI chargebacks entered by staff use the same words)."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response", "Inquiry: needs a response"
    WARNING_UNDER_REVIEW = "warning_under_review", "Inquiry: under review"
    WARNING_CLOSED = "warning_closed", "Inquiry closed"
    NEEDS_RESPONSE = "needs_response", "Needs a response"
    UNDER_REVIEW = "under_review", "Evidence submitted, under review"
    WON = "won", "Won"
    LOST = "lost", "Lost"


OPEN_DISPUTE_STATUSES = frozenset(
    {
        DisputeStatus.WARNING_NEEDS_RESPONSE,
        DisputeStatus.WARNING_UNDER_REVIEW,
        DisputeStatus.NEEDS_RESPONSE,
        DisputeStatus.UNDER_REVIEW,
    }
)
# The gateway decides a dispute's status; an open one may move to any status (an inquiry can
# become a chargeback), a closed one stays closed.
DISPUTE_TRANSITIONS = {
    **{status: set(DisputeStatus.values) - {status} for status in OPEN_DISPUTE_STATUSES},
    DisputeStatus.WARNING_CLOSED: set(),
    DisputeStatus.WON: set(),
    DisputeStatus.LOST: set(),
}

dispute_transitions = TransitionTable(
    DISPUTE_TRANSITIONS,
    refuse=lambda current, target: InvalidTransition(
        f"A dispute that is {DisputeStatus(current).label.lower()} cannot become "
        f"{DisputeStatus(target).label.lower()}: it is closed.",
        code="dispute.closed",
        current=current,
        target=target,
    ),
)


class EvidenceStatus(models.TextChoices):
    PENDING = "PENDING", "Being sent to the gateway"
    SUBMITTED = "SUBMITTED", "Submitted"
    FAILED = "FAILED", "Refused by the gateway"
