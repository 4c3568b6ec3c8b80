"""Beluga visits: submit, retry a failed submission, cancel. One function per action, shared by
the admin, the API and the tasks.

The rule that matters most (refunds-cancellations-guide.txt, "Beluga Visit Cancellation"):
cancelling a visit calls Beluga's cancel endpoint, updates the visit here, marks it resolved
`closed`, emits `beluga.visit_cancelled`, and nothing else. It never refunds, never cancels the
order or the subscription, and never voids the pharmacy order.

Calling Beluga: no transaction is open while we wait for Beluga. Both calls we make are
idempotent at Beluga (submission per masterId, cancellation per visit; see client.py), so each
action *calls first, then locks and records* in one short transaction, re-checking the visit
under the lock. Two concurrent requests can both reach Beluga, harmlessly; only one records.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from emr.kernel.actors import Actor, acting
from emr.kernel.enqueue import enqueue_after_commit
from emr.kernel.errors import (
    DomainError,
    IntegrationFailed,
    InvalidTransition,
    StateConflict,
)
from emr.kernel.services import require_reason, service_transaction
from emr.workflows.outbox import emit
from integrations.beluga import client as beluga_client
from integrations.beluga.errors import BelugaError, VisitNotSubmitted
from integrations.beluga.logs import recorder_for
from integrations.beluga.models import BelugaVisit
from integrations.beluga.states import (
    ResolvedStatus,
    SubmitStatus,
    VisitStatus,
    submit_transitions,
)
from integrations.patients import patient_for_partner
from orders.models import Order
from orders.states import ACTION_ONLY

logger = logging.getLogger(__name__)

VISIT_CANCELLED_EVENT = "beluga.visit_cancelled"

SUBMITTER = Actor.system("beluga-submission")
# A visit row older than this and never tried means its on-commit enqueue was lost.
SWEEP_GRACE = timedelta(minutes=2)


def is_configured() -> bool:
    return bool(settings.BELUGA_API_URL and settings.BELUGA_API_KEY)


def lock_visit(visit_id: int) -> BelugaVisit:
    """The visit row, locked until the surrounding transaction ends (its order is read along,
    not locked: `of=("self",)`)."""
    return (
        BelugaVisit.objects.select_for_update(of=("self",)).select_related("order").get(pk=visit_id)
    )


def _client_for(visit: BelugaVisit) -> beluga_client.BelugaClient:
    # Every call about this visit lands in its Beluga log, redacted.
    return beluga_client.BelugaClient.from_settings(on_exchange=recorder_for(visit))


# --- Submission ---------------------------------------------------------------------------


def submit_visit_if_needed(*, order: Order, actor: Actor) -> BelugaVisit | None:
    """For an order that just reached AWAITING_SCRIPT: make sure Beluga gets its visit.

    Runs inside the caller's transaction (order recalculation, which holds the order's lock), so
    it only writes the visit row and schedules the submission for after commit; it never calls
    Beluga itself. Skipped when the visit was already submitted, or the integration is off.
    """
    if not is_configured():
        return None
    with acting(actor, reason="Order awaits a prescription: Beluga visit requested"):
        visit, _ = BelugaVisit.objects.get_or_create(
            order=order, defaults={"master_id": new_master_id(order)}
        )
    if visit.is_submitted:
        return visit
    enqueue_after_commit("beluga.submit_visit", visit.pk)
    return visit


def new_master_id(order: Order) -> str:
    """Readable for support (the order number) and unique across databases (random part)."""
    return f"{order.number}-{secrets.token_hex(4)}"


def submit_visit(
    *, visit: BelugaVisit, actor: Actor, reason: str = "Submitted to Beluga"
) -> BelugaVisit:
    """Send the visit to Beluga and record the answer: SUBMITTED, or FAILED with the error.

    A failure is recorded on the visit and raised. Safe to run twice: a submitted visit is left
    alone, and Beluga answers a masterId it already has with that visit.
    """
    visit = BelugaVisit.objects.select_related("order__patient").get(pk=visit.pk)
    if visit.is_submitted:
        return visit
    _refuse_closed_order(visit.order)
    client = _client_for(visit)  # raises BelugaNotConfigured before anything is recorded
    try:
        answer = client.submit_visit(**submission_of(visit))
    except IntegrationFailed as failure:
        _record_submission_failure(visit, failure=failure, actor=actor, reason=reason)
        raise
    return _record_submission(visit, answer=answer, actor=actor, reason=reason)


def submit_automatically(*, visit: BelugaVisit) -> None:
    """The worker's submission (enqueued after commit, or found by the sweep). Raises nothing: a
    Beluga failure is recorded on the visit (FAILED, with the error) for staff to see and retry,
    and a closed order is simply not submitted."""
    try:
        submit_visit(
            visit=visit, actor=SUBMITTER, reason="Automatic submission: the order awaits a script"
        )
    except DomainError as failure:
        logger.warning("Beluga submission of visit %s refused: %s", visit.pk, failure.code)


def submit_unsent_visits() -> None:
    """The sweep: submit the visits whose submission was never tried (their enqueue was lost)."""
    if not is_configured():
        return
    unsent = BelugaVisit.objects.filter(
        submit_status=SubmitStatus.NOT_SUBMITTED, created_at__lte=timezone.now() - SWEEP_GRACE
    ).exclude(order__status__in=ACTION_ONLY)
    for visit in unsent[:100]:
        submit_automatically(visit=visit)


def retry_submission(*, visit: BelugaVisit, actor: Actor, reason: str) -> BelugaVisit:
    """Staff retry of a visit whose submission failed (or never ran)."""
    reason = require_reason(reason)
    visit = BelugaVisit.objects.get(pk=visit.pk)
    submit_transitions.check(visit.submit_status, SubmitStatus.SUBMITTED)
    return submit_visit(visit=visit, actor=actor, reason=f"Submission retried: {reason}")


def _refuse_closed_order(order: Order) -> None:
    # Staff closed the order (cancelled, rejected, refunded…) before the visit went out: a
    # prescriber should not review it.
    if order.status in ACTION_ONLY:
        raise StateConflict(
            f"Order {order.number} is {order.get_status_display()}: its visit is not sent to "
            "Beluga. Nothing was changed.",
            code="beluga.order_closed",
        )


def submission_of(visit: BelugaVisit) -> dict[str, Any]:
    """What Beluga needs to open the visit: who, what they answered, what they ordered."""
    order = visit.order
    return {
        "master_id": visit.master_id,
        "patient": patient_for_partner(order.patient),
        "form": {
            "orderNumber": order.number,
            "intakes": [
                {
                    "questionnaire": intake.questionnaire,
                    "status": intake.status,
                    "submittedAt": intake.submitted_at.isoformat() if intake.submitted_at else None,
                }
                for intake in order.intakes.order_by("id")
            ],
        },
        "products": [
            {"productId": item.product_id, "name": item.description, "quantity": item.quantity}
            for item in order.items.order_by("id")
        ],
    }


def _record_submission(
    visit: BelugaVisit, *, answer: beluga_client.Visit, actor: Actor, reason: str
) -> BelugaVisit:
    with service_transaction(actor, reason=reason):
        visit = lock_visit(visit.pk)
        if visit.is_submitted:
            return visit  # a concurrent submission recorded the same answer first
        visit.submit_status = SubmitStatus.SUBMITTED
        visit.submit_error = ""
        visit.submit_attempts += 1
        visit.submitted_at = timezone.now()
        _apply_reported_status(visit, answer)
        visit.save()
    return visit


def _record_submission_failure(
    visit: BelugaVisit, *, failure: IntegrationFailed, actor: Actor, reason: str
) -> None:
    with service_transaction(actor, reason=f"{reason} (failed)"):
        visit = lock_visit(visit.pk)
        if visit.is_submitted:
            return
        visit.submit_status = SubmitStatus.FAILED
        visit.submit_error = failure.detail[:500]
        visit.submit_attempts += 1
        visit.save()


def _apply_reported_status(visit: BelugaVisit, answer: beluga_client.Visit) -> None:
    if answer.visit_status in VisitStatus.values and answer.visit_status != visit.status:
        visit.transitions.check(visit.status, answer.visit_status)
        visit.status = answer.visit_status
        if answer.visit_status == VisitStatus.CANCELED and visit.cancelled_at is None:
            visit.cancelled_at = timezone.now()
    if answer.resolved_status in ResolvedStatus.values and answer.resolved_status:
        visit.resolved_status = answer.resolved_status


# --- Cancellation -------------------------------------------------------------------------


def refusal_to_cancel(visit: BelugaVisit) -> DomainError | None:
    """Why this visit cannot be cancelled now, or None when it can (as far as we know)."""
    if not visit.is_submitted:
        return VisitNotSubmitted()
    try:
        visit.transitions.check(visit.status, VisitStatus.CANCELED)
    except InvalidTransition as refusal:
        return refusal
    return None


def cancel_visit(*, visit: BelugaVisit, actor: Actor, reason: str) -> BelugaVisit:
    """Cancel the visit at Beluga, then here (status canceled, resolved closed), and emit
    `beluga.visit_cancelled`. Nothing else changes: not the order, its invoice or payments, the
    subscription, or the pharmacy order.

    A refusal or a Beluga failure (error, timeout) raises with nothing changed here; the attempt
    is in the visit's Beluga log.
    """
    reason = require_reason(reason)
    visit = BelugaVisit.objects.get(pk=visit.pk)
    if refusal := refusal_to_cancel(visit):
        raise refusal
    answer = _client_for(visit).cancel_visit(master_id=visit.master_id, reason=reason)
    if answer.visit_status != VisitStatus.CANCELED:
        raise BelugaError(
            f"Beluga answered the cancellation with visit status {answer.visit_status!r} "
            "instead of canceled."
        )
    with service_transaction(actor, reason=reason):
        visit = lock_visit(visit.pk)
        # Re-checked under the lock: a concurrent cancel or a webhook may have recorded it.
        visit.transitions.check(visit.status, VisitStatus.CANCELED)
        mark_cancelled(visit, actor=actor)
    return visit


def mark_cancelled(visit: BelugaVisit, *, actor: Actor) -> None:
    """Record a cancellation Beluga confirmed (our request, or Beluga's own). Caller holds the
    visit's lock inside a transaction and an `acting(...)` block."""
    visit.status = VisitStatus.CANCELED
    visit.resolved_status = ResolvedStatus.CLOSED
    visit.cancelled_at = timezone.now()
    visit.save()
    # The event's subject is the order (the workflows' subject type), but nothing on the order
    # changed: the payload is the order as it stands.
    emit(VISIT_CANCELLED_EVENT, subject=visit.order, actor=actor)
