"""Medical review of an intake: reject it, or send it back for correction.

Rejecting (the guide, "Intake Rejection Cancellation"): the intake is REJECTED with the
reviewer's note, the linked order is REJECTED (its unpaid invoice closes; money already paid is
not refunded automatically: a refund is a separate, deliberate action), the linked subscription
is CANCELLED with its cancellation workflow, and pending intake forms of orders that will not go
ahead are withdrawn. A financed balance does not block it: it is a medical decision.

Needs correction: the patient fixes the answers and continues. Nothing financial changes; the
order is recalculated (it waits for the intake again) and `intake.pending` tells the patient.
"""

from django.db import transaction

from audit.actors import Actor
from audit.context import acting
from emr.errors import InvalidInput, StateConflict
from emr.models import IntakeResponse, IntakeStatus
from emr.workflows.outbox import emit
from orders.models import Order
from orders.services import change_status, recalculate_status
from orders.states import ACTION_ONLY, OrderStatus
from subscriptions.intake_cleanup import withdraw_pending_intakes
from subscriptions.models import Subscription
from subscriptions.services import audit_reason, cancel_subscription
from subscriptions.states import CancellationCause, SubscriptionStatus

# What a reviewer may act on: answers that were submitted (or sent back and not fixed yet).
REVIEWABLE = frozenset({IntakeStatus.SUBMITTED, IntakeStatus.NEEDS_CORRECTION})


def reject_intake(*, intake: IntakeResponse, actor: Actor, note: str) -> IntakeResponse:
    """REJECTED, with everything it is linked to; returns the intake."""
    note = _require_note(note)
    with transaction.atomic(), acting(actor, reason=audit_reason(f"Intake rejected: {note}")):
        intake = _lock_reviewable(intake)
        intake.status = IntakeStatus.REJECTED
        intake.review_note = note
        intake.save()
        order = intake.order
        if order is not None:
            if order.status not in ACTION_ONLY:
                change_status(
                    order=order, target=OrderStatus.REJECTED, actor=actor, reason="Intake rejected"
                )
            if order.subscription_id is not None:
                _cancel_linked_subscription(order.subscription_id, actor=actor, note=note)
            withdraw_pending_intakes(orders=Order.objects.filter(pk=order.pk))
        emit("intake.rejected", subject=intake, actor=actor)
    return intake


def send_back_for_correction(*, intake: IntakeResponse, actor: Actor, note: str) -> IntakeResponse:
    """NEEDS_CORRECTION: the patient fixes the answers; no order, invoice or subscription moves
    (the order is only recalculated: it waits for the intake again)."""
    note = _require_note(note)
    with (
        transaction.atomic(),
        acting(actor, reason=audit_reason(f"Intake needs correction: {note}")),
    ):
        intake = _lock_reviewable(intake)
        intake.status = IntakeStatus.NEEDS_CORRECTION
        intake.review_note = note
        intake.save()
        if intake.order is not None:
            recalculate_status(order=intake.order, actor=actor, reason="Intake needs correction")
        emit("intake.pending", subject=intake, actor=actor)
    return intake


def _require_note(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise InvalidInput(
            "Write a review note: the patient and CS read it to understand the decision.",
            code="intake.note_required",
        )
    return note


def _lock_reviewable(intake: IntakeResponse) -> IntakeResponse:
    intake = (
        IntakeResponse.objects.select_for_update(of=("self",))
        .select_related("order")
        .get(pk=intake.pk)
    )
    if intake.status == IntakeStatus.REJECTED:
        raise StateConflict("This intake was already rejected.", code="intake.already_rejected")
    if intake.status not in REVIEWABLE:
        raise StateConflict(
            f"Only submitted answers can be reviewed; this intake is "
            f"{intake.get_status_display().lower()}.",
            code="intake.not_reviewable",
        )
    return intake


def _cancel_linked_subscription(subscription_id: int, *, actor: Actor, note: str) -> None:
    subscription = Subscription.objects.get(pk=subscription_id)
    if subscription.status in {SubscriptionStatus.CANCELLED, SubscriptionStatus.EXPIRED}:
        return
    cancel_subscription(
        subscription=subscription,
        actor=actor,
        reason=f"Intake rejected: {note}"[:500],
        cause=CancellationCause.INTAKE_REJECTED,
    )
