"""Order statuses and the moves between them (clinic-platform-notes.md, "Orders").

Three kinds of status:
- unpaid: PENDING (new), AWAITING_PAYMENT (a charge failed or no usable card);
- in progress, *recalculated* from facts by `orders.recalculation`: PROCESSING and the
  AWAITING_* clinical and fulfilment statuses, then SHIPPED and COMPLETED;
- set by staff actions only: CANCELLED, REJECTED, RETURNED, and REFUNDED (through the refund
  flow). REFUNDED locks the order: nothing moves it again.
"""

from django.db import models

from emr.kernel.errors import InvalidTransition
from emr.kernel.transitions import TransitionTable


class OrderStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    AWAITING_PAYMENT = "AWAITING_PAYMENT", "Awaiting payment"
    PROCESSING = "PROCESSING", "Processing"
    AWAITING_REQUIREMENTS = "AWAITING_REQUIREMENTS", "Awaiting requirements (intake, signatures)"
    AWAITING_REQUISITION = "AWAITING_REQUISITION", "Awaiting lab requisition"
    AWAITING_RESULTS = "AWAITING_RESULTS", "Awaiting lab results"
    AWAITING_SCRIPT = "AWAITING_SCRIPT", "Awaiting prescription"
    AWAITING_FULFILLMENT = "AWAITING_FULFILLMENT", "Awaiting fulfilment"
    AWAITING_SHIPMENT = "AWAITING_SHIPMENT", "Awaiting shipment"
    SHIPPED = "SHIPPED", "Shipped"
    COMPLETED = "COMPLETED", "Completed"
    CANCELLED = "CANCELLED", "Cancelled"
    REJECTED = "REJECTED", "Rejected"
    RETURNED = "RETURNED", "Returned"
    REFUNDED = "REFUNDED", "Refunded"


S = OrderStatus

UNPAID = frozenset({S.PENDING, S.AWAITING_PAYMENT})
# Paid and moving through the clinic; recalculation may move between any of these as facts
# arrive (or are sent back, e.g. an intake returned for correction).
IN_PROGRESS = frozenset(
    {
        S.PROCESSING,
        S.AWAITING_REQUIREMENTS,
        S.AWAITING_REQUISITION,
        S.AWAITING_RESULTS,
        S.AWAITING_SCRIPT,
        S.AWAITING_FULFILLMENT,
        S.AWAITING_SHIPMENT,
    }
)
# Set only by an action; recalculation never touches an order in one of these.
ACTION_ONLY = frozenset({S.CANCELLED, S.REJECTED, S.RETURNED, S.REFUNDED})

ORDER_TRANSITIONS = {
    # Unpaid: payment (or its failure) moves it; it can be closed, but there is nothing to refund.
    S.PENDING: {S.AWAITING_PAYMENT, *IN_PROGRESS, S.CANCELLED, S.REJECTED},
    S.AWAITING_PAYMENT: {S.PENDING, *IN_PROGRESS, S.CANCELLED, S.REJECTED},
    **{
        status: {
            *(IN_PROGRESS - {status}),
            S.SHIPPED,
            S.COMPLETED,
            S.CANCELLED,
            S.REJECTED,
            S.REFUNDED,
        }
        for status in IN_PROGRESS
    },
    # Once shipped it cannot be cancelled: it becomes a return/refund case.
    S.SHIPPED: {S.COMPLETED, S.RETURNED, S.REFUNDED},
    S.COMPLETED: {S.RETURNED, S.REFUNDED},
    # Closed operationally; money may still have to go back.
    S.CANCELLED: {S.REFUNDED},
    S.REJECTED: {S.REFUNDED},
    S.RETURNED: {S.REFUNDED},
    S.REFUNDED: set(),
}


def _refuse(current: str, target: str) -> InvalidTransition:
    if current == S.REFUNDED:
        return InvalidTransition(
            "This order was refunded and is locked: its status can no longer be changed.",
            code="order.locked",
            current=current,
            target=target,
        )
    return InvalidTransition(
        f"An order cannot move from {S(current).label} to {S(target).label}.",
        code="order.invalid_transition",
        current=current,
        target=target,
    )


order_transitions = TransitionTable(ORDER_TRANSITIONS, refuse=_refuse)


class OrderKind(models.TextChoices):
    CHECKOUT = "CHECKOUT", "Checkout purchase"
    SUBSCRIPTION_FIRST = "SUBSCRIPTION_FIRST", "First subscription payment"
    RECURRING = "RECURRING", "Recurring cycle"
    MANUAL = "MANUAL", "Manual (staff)"
    RECOVERY_CYCLE = "RECOVERY_CYCLE", "Payment-only recovery cycle"
    PAYOFF = "PAYOFF", "Payoff / switch"


# Orders that only collect money (the treatment shipped with an earlier order): once paid, they
# wait for nothing clinical.
PAYMENT_ONLY_KINDS = frozenset({OrderKind.RECOVERY_CYCLE, OrderKind.PAYOFF})


class RecoveryStatus(models.TextChoices):
    """Why an order waits for payment (payment recovery), shown to CS and the patient.

    Workflow payloads name each state by its member name, so "not in recovery" (stored empty)
    reads NONE there and every other state reads as it is stored.
    """

    NONE = "", "Not in recovery"
    # No compatible saved card: none saved, only in the other gateway's vault, the active
    # gateway changed, or the card was removed.
    NEEDS_PAYMENT_METHOD = "NEEDS_PAYMENT_METHOD", "Needs a payment method"
    CHARGE_FAILED = "CHARGE_FAILED", "Charge failed"
    RECOVERED = "RECOVERED", "Recovered (paid)"


# The recovery states in which the order waits for the patient's payment.
WAITING_FOR_PAYMENT = frozenset({RecoveryStatus.NEEDS_PAYMENT_METHOD, RecoveryStatus.CHARGE_FAILED})
