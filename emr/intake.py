"""The intake: the form is sent to the patient, the patient submits it, medical staff review it
(reject it, or send it back for correction).

Sending and submitting: a PENDING form waits for the patient (`intake.pending`); the submitted
answers (SUBMITTED) let the order move on, so it is recalculated (a paid prescription order then
awaits its script).

Rejecting (the guide, "Intake Rejection Cancellation"): the intake is REJECTED with the
reviewer's note, the linked order is REJECTED (its unpaid invoice closes; money already paid is
not refunded automatically: a refund is a separate, deliberate action), the linked subscription
is CANCELLED with its cancellation workflow, and pending intake forms of orders that will not go
ahead are withdrawn. A financed balance does not block it: it is a medical decision.

Needs correction: the patient fixes the answers and continues. Nothing financial changes; the
order is recalculated (it waits for the intake again) and `intake.pending` tells the patient.

What follows from a decision (the order, the subscription, pending forms) is listed in
`emr/reactions.py`; this module records the decision and publishes it.
"""

from django.utils import timezone

from emr.events import IntakeRejected, IntakeSentBack, IntakeSubmitted
from emr.kernel.actors import Actor
from emr.kernel.errors import InvalidInput, StateConflict
from emr.kernel.events import publish
from emr.kernel.services import service_transaction
from emr.models import IntakeResponse, IntakeStatus
from emr.workflows.outbox import emit
from orders.models import Order
from orders.states import ACTION_ONLY, OrderStatus

# What a patient may submit: a form not answered yet, or answers sent back for correction.
SUBMITTABLE = frozenset({IntakeStatus.PENDING, IntakeStatus.NEEDS_CORRECTION})

# What a reviewer may act on: answers that were submitted (or sent back and not fixed yet).
REVIEWABLE = frozenset({IntakeStatus.SUBMITTED, IntakeStatus.NEEDS_CORRECTION})


def send_intake_form(*, order: Order, questionnaire: str, actor: Actor) -> IntakeResponse:
    """The patient is asked to answer `questionnaire` for `order`: a PENDING form, announced
    with `intake.pending`. The order keeps waiting for its requirements."""
    questionnaire = (questionnaire or "").strip()
    if not questionnaire:
        raise InvalidInput("Name the questionnaire to send.", code="intake.questionnaire_required")
    with service_transaction(actor, reason=f"Intake form sent: {questionnaire}"):
        intake = IntakeResponse.objects.create(
            patient_id=order.patient_id, order=order, questionnaire=questionnaire[:100]
        )
        emit("intake.pending", subject=intake, actor=actor)
    return intake


def submit_intake(*, intake: IntakeResponse, actor: Actor) -> IntakeResponse:
    """The patient's answers are in: SUBMITTED, and the order is recalculated."""
    with service_transaction(actor, reason="Intake submitted"):
        intake = (
            IntakeResponse.objects.select_for_update(of=("self",))
            .select_related("order")
            .get(pk=intake.pk)
        )
        if intake.status not in SUBMITTABLE:
            raise StateConflict(
                f"This intake is {intake.get_status_display().lower()}: only a form waiting for "
                "the patient's answers can be submitted.",
                code="intake.not_submittable",
            )
        intake.status = IntakeStatus.SUBMITTED
        intake.submitted_at = timezone.now()
        intake.save()
        publish(IntakeSubmitted(intake=intake, actor=actor))
    return intake


def reject_intake(*, intake: IntakeResponse, actor: Actor, note: str) -> IntakeResponse:
    """REJECTED, with everything it is linked to; returns the intake."""
    note = _require_note(note)
    with service_transaction(actor, reason=f"Intake rejected: {note}"):
        intake = _lock_reviewable(intake)
        intake.status = IntakeStatus.REJECTED
        intake.review_note = note
        intake.save()
        publish(IntakeRejected(intake=intake, actor=actor, note=note))
        emit("intake.rejected", subject=intake, actor=actor)
    return intake


def send_back_for_correction(*, intake: IntakeResponse, actor: Actor, note: str) -> IntakeResponse:
    """NEEDS_CORRECTION: the patient fixes the answers; no order, invoice or subscription moves
    (the order is only recalculated: it waits for the intake again)."""
    note = _require_note(note)
    with service_transaction(actor, reason=f"Intake needs correction: {note}"):
        intake = _lock_reviewable(intake)
        intake.status = IntakeStatus.NEEDS_CORRECTION
        intake.review_note = note
        intake.save()
        publish(IntakeSentBack(intake=intake, actor=actor))
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


def order_kept_status(intake: IntakeResponse) -> str | None:
    """Why a rejected intake's order is not REJECTED: it had gone too far (shipped, completed).
    None when the order was rejected, was already closed by staff, or there is none."""
    order = intake.order
    if (
        intake.status != IntakeStatus.REJECTED
        or order is None
        or order.status in ACTION_ONLY
        or order.transitions.can(order.status, OrderStatus.REJECTED)
    ):
        return None
    return (
        f"{order.number} is {order.get_status_display().lower()} and can no longer be rejected, "
        "so it keeps its status. Nothing was refunded or returned: medical operations decide "
        "what follows."
    )
