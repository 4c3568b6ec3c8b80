"""Pharmacy fulfilment: route, send, void, record shipments and what CS verified. One function
per action, shared by the admin, the API, the webhooks and the tasks.

What each action may change (refunds-cancellations-guide.txt, "Pharmacy Voids and Shipment
Cancellation"): the pharmacy order, plus two facts on the order that its status is recalculated
from: sent to the pharmacy (-> AWAITING_SHIPMENT) and shipped (-> SHIPPED). A void is not a
refund: it changes the pharmacy order only.

Calling DispensePro: no transaction is open while we wait. Submission (per reference) and void
(per order) are idempotent at DispensePro, so each action *calls first, then locks and records*
in one short transaction, re-checking under the lock. Lock order: pharmacy order, then order.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from emr.kernel.actors import Actor, acting
from emr.kernel.enqueue import enqueue_after_commit
from emr.kernel.errors import (
    DomainError,
    IntegrationFailed,
    InvalidInput,
    InvalidTransition,
    StateConflict,
)
from emr.kernel.services import require_reason, service_transaction
from emr.workflows.outbox import emit
from integrations.patients import patient_for_partner
from integrations.pharmacy import dispensepro
from integrations.pharmacy.errors import ManualVerificationRequired, PrescriptionRequired
from integrations.pharmacy.models import FulfilmentCheck, PharmacyOrder, ProductPharmacyRoute
from integrations.pharmacy.states import (
    CLOSED_STATUSES,
    DEFAULT_PHARMACY,
    FINDING_STATUS,
    VOIDABLE_PHARMACIES,
    FulfilmentFinding,
    PharmacyOrderStatus,
    PharmacyType,
)
from orders.models import Order
from orders.services import lock_order, recalculate_status
from orders.states import ACTION_ONLY

logger = logging.getLogger(__name__)

ORDER_VOIDED_EVENT = "pharmacy.order_voided"

# Pharmacies we send orders to through an API. Every other one is sent by staff, who then
# record it here.
API_PHARMACIES = frozenset({PharmacyType.DISPENSE_PRO})

SUBMITTER = Actor.system("dispensepro-submission")
# A pending DispensePro order older than this was never tried: its enqueue was lost.
SWEEP_GRACE = timedelta(minutes=2)


def lock_pharmacy_order(pharmacy_order_id: int) -> PharmacyOrder:
    """The pharmacy order row, locked until the surrounding transaction ends."""
    return PharmacyOrder.objects.select_for_update().get(pk=pharmacy_order_id)


def _fresh(pharmacy_order: PharmacyOrder) -> PharmacyOrder:
    return PharmacyOrder.objects.select_related("order").get(pk=pharmacy_order.pk)


# --- Routing --------------------------------------------------------------------------------


def pharmacy_for(order: Order) -> PharmacyType:
    """The default pharmacy of the order's first routed product; the own pharmacy otherwise."""
    product_ids = list(order.items.order_by("id").values_list("product_id", flat=True))
    routes = dict(
        ProductPharmacyRoute.objects.filter(product_id__in=product_ids).values_list(
            "product_id", "pharmacy"
        )
    )
    for product_id in product_ids:
        if product_id in routes:
            return PharmacyType(routes[product_id])
    return DEFAULT_PHARMACY


def open_pharmacy_order(order: Order) -> PharmacyOrder | None:
    return order.pharmacy_orders.exclude(status__in=CLOSED_STATUSES).first()


def route_order_if_needed(*, order: Order, actor: Actor) -> PharmacyOrder:
    """For an order whose prescription was just confirmed (it reached AWAITING_FULFILLMENT):
    open its fulfilment at the product's default pharmacy, once.

    Runs inside the caller's transaction (it may hold the order's lock), so it only writes the
    pharmacy order and schedules the DispensePro submission for after commit. Pharmacies without
    an API wait for staff to send the order and record it.
    """
    if not order.prescriptions.exists():
        raise PrescriptionRequired()
    if existing := open_pharmacy_order(order):
        return existing
    pharmacy = pharmacy_for(order)
    with acting(actor, reason=f"Prescription confirmed: routed to {pharmacy.label}"):
        pharmacy_order = PharmacyOrder.objects.create(
            order=order, pharmacy=pharmacy, reference=new_reference(order)
        )
    if pharmacy in API_PHARMACIES:
        enqueue_after_commit("pharmacy.send_to_dispensepro", pharmacy_order.pk)
    return pharmacy_order


def new_reference(order: Order) -> str:
    return f"{order.number}-RX{secrets.token_hex(3).upper()}"


# --- Sending --------------------------------------------------------------------------------


def send_to_dispensepro(
    *, pharmacy_order: PharmacyOrder, actor: Actor, reason: str = "Sent to DispensePro"
) -> PharmacyOrder:
    """Submit to DispensePro and record it sent (the order moves to AWAITING_SHIPMENT).

    A failure is recorded on the pharmacy order (FAILED, with the error) and raised.
    """
    pharmacy_order = _fresh(pharmacy_order)
    if pharmacy_order.pharmacy not in API_PHARMACIES:
        raise StateConflict(
            f"{pharmacy_order.get_pharmacy_display()} has no API here: send the order to the "
            "pharmacy yourself, then record it as sent.",
            code="pharmacy.manual_submission",
        )
    if pharmacy_order.status == PharmacyOrderStatus.SUBMITTED:
        return pharmacy_order
    pharmacy_order.transitions.check(pharmacy_order.status, PharmacyOrderStatus.SUBMITTED)
    _refuse_closed_order(pharmacy_order.order)
    try:
        answer = dispensepro.DispenseProClient.from_settings().submit_order(
            **submission_of(pharmacy_order)
        )
    except IntegrationFailed as failure:
        _record_failure(pharmacy_order, failure=failure, actor=actor, reason=reason)
        raise
    return _record_sent(pharmacy_order, external_id=answer.id, actor=actor, reason=reason)


def send_automatically(*, pharmacy_order: PharmacyOrder) -> None:
    """The worker's submission (enqueued after commit, or found by the sweep). Raises nothing: a
    failure is recorded on the pharmacy order (FAILED, with the error) for staff to retry."""
    try:
        send_to_dispensepro(
            pharmacy_order=pharmacy_order,
            actor=SUBMITTER,
            reason="Automatic submission: prescription confirmed",
        )
    except DomainError as failure:
        logger.warning("DispensePro submission %s refused: %s", pharmacy_order.pk, failure.code)


def send_unsent_orders() -> None:
    """The sweep: send the DispensePro orders whose submission was never tried (their enqueue
    was lost)."""
    unsent = PharmacyOrder.objects.filter(
        pharmacy__in=API_PHARMACIES,
        status=PharmacyOrderStatus.PENDING,
        created_at__lte=timezone.now() - SWEEP_GRACE,
    ).exclude(order__status__in=ACTION_ONLY)
    for pharmacy_order in unsent[:100]:
        send_automatically(pharmacy_order=pharmacy_order)


def record_sent_manually(
    *, pharmacy_order: PharmacyOrder, actor: Actor, reason: str
) -> PharmacyOrder:
    """Staff sent the order to a pharmacy without an API (own, Beluga, Belmar/LifeFile)."""
    reason = require_reason(reason)
    pharmacy_order = _fresh(pharmacy_order)
    if pharmacy_order.pharmacy in API_PHARMACIES:
        raise StateConflict(
            "DispensePro orders are sent through its API: retry the submission instead.",
            code="pharmacy.use_api",
        )
    pharmacy_order.transitions.check(pharmacy_order.status, PharmacyOrderStatus.SUBMITTED)
    _refuse_closed_order(pharmacy_order.order)
    return _record_sent(pharmacy_order, external_id="", actor=actor, reason=reason)


def submission_of(pharmacy_order: PharmacyOrder) -> dict:
    order = pharmacy_order.order
    prescriptions = list(order.prescriptions.order_by("id"))
    return {
        "reference": pharmacy_order.reference,
        "patient": patient_for_partner(order.patient),
        "items": [{"medication": rx.medication, "quantity": 1} for rx in prescriptions],
        "prescriber": prescriptions[0].prescriber if prescriptions else "",
    }


def _refuse_closed_order(order: Order) -> None:
    # Staff closed the order (cancelled, rejected, refunded…) after it was routed: sending it
    # now would fill a prescription nobody should receive.
    if order.status in ACTION_ONLY:
        raise StateConflict(
            f"Order {order.number} is {order.get_status_display()}: it is not sent to a "
            "pharmacy. Nothing was changed.",
            code="pharmacy.order_closed",
        )


def _record_sent(
    pharmacy_order: PharmacyOrder, *, external_id: str, actor: Actor, reason: str
) -> PharmacyOrder:
    with service_transaction(actor, reason=reason):
        pharmacy_order = lock_pharmacy_order(pharmacy_order.pk)
        if pharmacy_order.status == PharmacyOrderStatus.SUBMITTED:
            return pharmacy_order  # a concurrent submission recorded it first
        pharmacy_order.transitions.check(pharmacy_order.status, PharmacyOrderStatus.SUBMITTED)
        pharmacy_order.status = PharmacyOrderStatus.SUBMITTED
        pharmacy_order.external_id = external_id
        pharmacy_order.last_error = ""
        pharmacy_order.submit_attempts += 1
        pharmacy_order.submitted_at = timezone.now()
        pharmacy_order.save()
        _mark_order(pharmacy_order.order_id, actor=actor, reason=reason)
    return pharmacy_order


def _record_failure(
    pharmacy_order: PharmacyOrder, *, failure: IntegrationFailed, actor: Actor, reason: str
) -> None:
    with service_transaction(actor, reason=f"{reason} (failed)"):
        pharmacy_order = lock_pharmacy_order(pharmacy_order.pk)
        # Unless it moved on meanwhile (submitted by a concurrent retry, cancelled by CS).
        if pharmacy_order.transitions.can(pharmacy_order.status, PharmacyOrderStatus.FAILED):
            pharmacy_order.status = PharmacyOrderStatus.FAILED
            pharmacy_order.last_error = failure.detail[:500]
            pharmacy_order.submit_attempts += 1
            pharmacy_order.save()


def _mark_order(
    order_id: int, *, actor: Actor, reason: str, shipped_at: datetime | None = None
) -> None:
    """Record on the order that it went to a pharmacy (and shipped, when `shipped_at` is given),
    then let its status follow from those facts. Caller: inside a transaction and `acting`."""
    order = lock_order(order_id)
    changed = []
    if order.sent_to_pharmacy_at is None:
        order.sent_to_pharmacy_at = timezone.now()
        changed.append("sent_to_pharmacy_at")
    if shipped_at is not None and order.shipped_at is None:
        order.shipped_at = shipped_at
        changed.append("shipped_at")
    if changed:
        order.save(update_fields=[*changed, "updated_at"])
    recalculate_status(order=order, actor=actor, reason=reason)


# --- Void -----------------------------------------------------------------------------------


def refusal_to_void(pharmacy_order: PharmacyOrder) -> DomainError | None:
    """Why this pharmacy order cannot be voided, or None when it can (as far as we know here:
    DispensePro may have shipped it since, and then refuses)."""
    if pharmacy_order.pharmacy not in VOIDABLE_PHARMACIES:
        return ManualVerificationRequired(pharmacy_order.pharmacy)
    try:
        pharmacy_order.transitions.check(pharmacy_order.status, PharmacyOrderStatus.VOIDED)
    except InvalidTransition as refusal:
        return refusal
    return None


def voidable_pharmacy_order(order: Order) -> PharmacyOrder | None:
    """The order's pharmacy order a void would apply to, if it has one."""
    return next((p for p in order.pharmacy_orders.all() if refusal_to_void(p) is None), None)


def void_pharmacy_order(
    *, pharmacy_order: PharmacyOrder, actor: Actor, reason: str
) -> PharmacyOrder:
    """Void a DispensePro order before shipment: its status becomes `voided` and
    `pharmacy.order_voided` is emitted. Not a refund, not an order cancellation.

    Other pharmacies have no void: the answer is `pharmacy.manual_verification_required`. After
    shipment: `pharmacy.already_shipped`. A refusal or failure changes nothing.
    """
    reason = require_reason(reason)
    pharmacy_order = _fresh(pharmacy_order)
    if refusal := refusal_to_void(pharmacy_order):
        raise refusal
    answer = dispensepro.DispenseProClient.from_settings().void_order(
        order_id=pharmacy_order.external_id, reason=reason
    )
    if answer.status != dispensepro.VOIDED:
        raise dispensepro.PharmacyError(
            f"DispensePro answered the void with status {answer.status!r} instead of voided."
        )
    with service_transaction(actor, reason=reason):
        pharmacy_order = lock_pharmacy_order(pharmacy_order.pk)
        mark_voided(pharmacy_order, actor=actor)
    return pharmacy_order


def mark_voided(pharmacy_order: PharmacyOrder, *, actor: Actor) -> None:
    """Record a void DispensePro confirmed. Caller holds the lock, inside `acting(...)`."""
    pharmacy_order.transitions.check(pharmacy_order.status, PharmacyOrderStatus.VOIDED)
    pharmacy_order.status = PharmacyOrderStatus.VOIDED
    pharmacy_order.voided_at = timezone.now()
    pharmacy_order.save()
    emit(ORDER_VOIDED_EVENT, subject=pharmacy_order.order, actor=actor)


# --- Shipment -------------------------------------------------------------------------------


def record_shipment(
    *,
    pharmacy_order: PharmacyOrder,
    actor: Actor,
    reason: str,
    shipped_at: datetime | None = None,
    carrier: str = "",
    tracking_number: str = "",
) -> PharmacyOrder:
    """The pharmacy shipped: the pharmacy order and the order become shipped (SHIPPED).

    Idempotent: a second report of the same shipment only fills in missing tracking.
    """
    with service_transaction(actor, reason=reason):
        pharmacy_order = lock_pharmacy_order(pharmacy_order.pk)
        _apply_shipment(
            pharmacy_order,
            shipped_at=shipped_at or timezone.now(),
            carrier=carrier,
            tracking_number=tracking_number,
            actor=actor,
            reason=reason,
        )
    return pharmacy_order


def _apply_shipment(
    pharmacy_order: PharmacyOrder,
    *,
    shipped_at: datetime,
    carrier: str,
    tracking_number: str,
    actor: Actor,
    reason: str,
) -> None:
    if pharmacy_order.status != PharmacyOrderStatus.SHIPPED:
        pharmacy_order.transitions.check(pharmacy_order.status, PharmacyOrderStatus.SHIPPED)
        pharmacy_order.status = PharmacyOrderStatus.SHIPPED
        pharmacy_order.shipped_at = shipped_at
    pharmacy_order.carrier = pharmacy_order.carrier or carrier[:50]
    pharmacy_order.tracking_number = pharmacy_order.tracking_number or tracking_number[:100]
    pharmacy_order.save()
    _mark_order(
        pharmacy_order.order_id,
        shipped_at=pharmacy_order.shipped_at,
        actor=actor,
        reason=reason,
    )


# --- Pharmacies without a void: CS verifies, and records what they learned -----------------


def record_fulfilment_check(
    *, pharmacy_order: PharmacyOrder, finding: str, note: str, actor: Actor
) -> FulfilmentCheck:
    """What the pharmacy told CS. A cancellation they confirmed closes the pharmacy order (the
    order itself stays as it is: cancelling or refunding it is a separate action); a shipment
    they confirmed is recorded as one; "still in fulfilment" changes nothing."""
    note = require_reason(note, prompt="Note who at the pharmacy said what")
    if finding not in FulfilmentFinding.values:
        raise InvalidInput(
            f"finding must be one of {', '.join(FulfilmentFinding.values)}.", code="invalid"
        )
    pharmacy_order = _fresh(pharmacy_order)
    if pharmacy_order.pharmacy in VOIDABLE_PHARMACIES:
        raise StateConflict(
            "DispensePro reports its state through the integration: void it, or refresh it "
            "from DispensePro, instead of recording a manual check.",
            code="pharmacy.use_api",
        )
    with service_transaction(actor, reason=note):
        pharmacy_order = lock_pharmacy_order(pharmacy_order.pk)
        target = FINDING_STATUS[FulfilmentFinding(finding)]
        if target == PharmacyOrderStatus.SHIPPED:
            _apply_shipment(
                pharmacy_order,
                shipped_at=timezone.now(),
                carrier="",
                tracking_number="",
                actor=actor,
                reason=note,
            )
        elif target == PharmacyOrderStatus.CANCELLED:
            pharmacy_order.transitions.check(pharmacy_order.status, target)
            pharmacy_order.status = target
            pharmacy_order.cancelled_at = timezone.now()
            pharmacy_order.save()
        return FulfilmentCheck.objects.create(
            pharmacy_order=pharmacy_order, finding=finding, note=note, checked_by=actor.label
        )


# --- Refresh from DispensePro ---------------------------------------------------------------


def refresh_from_dispensepro(*, pharmacy_order: PharmacyOrder, actor: Actor) -> PharmacyOrder:
    """Ask DispensePro where the order stands, and record a shipment or void we missed."""
    pharmacy_order = _fresh(pharmacy_order)
    if pharmacy_order.pharmacy not in API_PHARMACIES or not pharmacy_order.external_id:
        raise StateConflict(
            "Only orders sent to DispensePro can be refreshed from it.", code="pharmacy.use_api"
        )
    answer = dispensepro.DispenseProClient.from_settings().get_order(
        order_id=pharmacy_order.external_id
    )
    return apply_dispensepro_state(
        pharmacy_order=pharmacy_order, remote=answer, actor=actor, reason="DispensePro reported"
    )


def apply_dispensepro_state(
    *,
    pharmacy_order: PharmacyOrder,
    remote: dispensepro.DispenseProOrder,
    actor: Actor,
    reason: str,
) -> PharmacyOrder:
    """Bring our record in line with what DispensePro says (shipped or voided there)."""
    if remote.status == dispensepro.SHIPPED:
        return record_shipment(
            pharmacy_order=pharmacy_order,
            actor=actor,
            reason=f"{reason}: shipped",
            shipped_at=parse_moment(remote.shipped_at),
            carrier=remote.carrier,
            tracking_number=remote.tracking_number,
        )
    if remote.status == dispensepro.VOIDED:
        with service_transaction(actor, reason=f"{reason}: voided"):
            pharmacy_order = lock_pharmacy_order(pharmacy_order.pk)
            if pharmacy_order.status != PharmacyOrderStatus.VOIDED:
                mark_voided(pharmacy_order, actor=actor)
    return pharmacy_order


def parse_moment(value: str | None) -> datetime | None:
    try:
        moment = parse_datetime(value) if value else None
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment
