"""Pharmacy fulfilment states (clinic-platform-notes.md, "Pharmacies"; the guide's "Pharmacy
Voids and Shipment Cancellation").

A pharmacy order is the order's fulfilment at one pharmacy. Its status is the pharmacy
integration's own state; changing it never refunds, cancels the order, or cancels the
subscription. Two statuses reach the order itself, as facts its status is recalculated from:
sent to the pharmacy (AWAITING_SHIPMENT) and shipped (SHIPPED).
"""

from django.db import models

from emr.kernel.errors import InvalidTransition
from emr.kernel.transitions import TransitionTable


class PharmacyType(models.TextChoices):
    BELUGA = "BELUGA", "Beluga pharmacy"
    OWN = "OWN", "Own pharmacy"
    DISPENSE_PRO = "DISPENSE_PRO", "DispensePro"
    BELMAR_LIFEFILE = "BELMAR_LIFEFILE", "Belmar / LifeFile"


# Where an order goes when its product names no pharmacy.
DEFAULT_PHARMACY = PharmacyType.OWN

# The one pharmacy with a void action in its API. For every other one CS verifies the
# fulfilment state with the pharmacy before promising a cancellation.
VOIDABLE_PHARMACIES = frozenset({PharmacyType.DISPENSE_PRO})


class PharmacyOrderStatus(models.TextChoices):
    # Lower case, as the guide writes DispensePro's "voided".
    PENDING = "pending", "Pending (not sent yet)"
    FAILED = "failed", "Sending failed"
    SUBMITTED = "submitted", "Sent to the pharmacy"
    SHIPPED = "shipped", "Shipped"
    VOIDED = "voided", "Voided (DispensePro, before shipment)"
    CANCELLED = "cancelled", "Cancelled at the pharmacy (verified by CS)"


P = PharmacyOrderStatus

PHARMACY_ORDER_TRANSITIONS = {
    # A manual pharmacy may ship (or cancel) before staff record that they sent it.
    P.PENDING: {P.SUBMITTED, P.FAILED, P.SHIPPED, P.CANCELLED},
    P.FAILED: {P.SUBMITTED, P.FAILED, P.CANCELLED},
    P.SUBMITTED: {P.SHIPPED, P.VOIDED, P.CANCELLED},
    # Once shipped it cannot be voided or cancelled: it becomes a return/refund case.
    P.SHIPPED: set(),
    P.VOIDED: set(),
    P.CANCELLED: set(),
}

# A pharmacy order in one of these no longer fulfils anything; the order may be routed again.
CLOSED_STATUSES = frozenset({P.VOIDED, P.CANCELLED})

ALREADY_SHIPPED = (
    "This order has already shipped, so cancellation may no longer be possible and the case may "
    "become a return/refund policy issue. Nothing was changed."
)


def _refuse(current: str, target: str) -> InvalidTransition:
    if current == P.SHIPPED:
        return InvalidTransition(
            ALREADY_SHIPPED, code="pharmacy.already_shipped", current=current, target=target
        )
    if current == P.VOIDED:
        return InvalidTransition(
            "This pharmacy order is already voided. Nothing was changed.",
            code="pharmacy.already_voided",
            current=current,
            target=target,
        )
    if current in {P.PENDING, P.FAILED} and target == P.VOIDED:
        return InvalidTransition(
            "This order was never sent to the pharmacy, so there is nothing to void there.",
            code="pharmacy.not_submitted",
            current=current,
            target=target,
        )
    return InvalidTransition(
        f"A pharmacy order cannot move from {P(current).label} to {P(target).label}.",
        code="pharmacy.invalid_transition",
        current=current,
        target=target,
    )


pharmacy_order_transitions = TransitionTable(PHARMACY_ORDER_TRANSITIONS, refuse=_refuse)


class FulfilmentFinding(models.TextChoices):
    """What CS learned when they checked with a pharmacy that has no void in its API."""

    NOT_SHIPPED_CANCELLED = "NOT_SHIPPED_CANCELLED", "Not shipped: the pharmacy cancelled it"
    NOT_SHIPPED_IN_PROGRESS = (
        "NOT_SHIPPED_IN_PROGRESS",
        "Not shipped: still in fulfilment, not cancelled",
    )
    SHIPPED = "SHIPPED", "Already shipped"


# The pharmacy-order status a finding establishes (None: the finding changes nothing).
FINDING_STATUS = {
    FulfilmentFinding.NOT_SHIPPED_CANCELLED: P.CANCELLED,
    FulfilmentFinding.NOT_SHIPPED_IN_PROGRESS: None,
    FulfilmentFinding.SHIPPED: P.SHIPPED,
}


class WebhookSource(models.TextChoices):
    DISPENSE_PRO = "dispensepro", "DispensePro"
    OWN_PARTNER = "own_partner", "Own pharmacy partner"
