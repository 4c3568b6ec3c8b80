"""Disputes (chargebacks) on a charge: opened and updated by Stripe's `charge.dispute.*` events,
entered by a billing admin for NMI (whose processor notifies by letter or portal, not webhook).

Opening a dispute emits `dispute.opened` for the clinic's automations (e.g. "email billing the
due date"). The gateway decides its status; a closed dispute stays closed (billing/states.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from billing.models import Dispute, Payment
from billing.states import DisputeStatus, Gateway, PaymentKind, PaymentStatus, dispute_transitions
from emr.kernel.actors import Actor
from emr.kernel.errors import InvalidInput, NotFound, StateConflict
from emr.kernel.services import require_reason, service_transaction
from emr.workflows.outbox import emit

CLOSED = {DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.WARNING_CLOSED}


@dataclass(frozen=True)
class DisputeUpdate:
    """What a gateway's dispute object says, read into our words."""

    dispute_id: str
    transaction_ids: tuple[str, ...]  # the charge's ids the gateway names (intent, charge)
    amount_cents: int
    currency: str
    reason: str
    status: str
    evidence_due_by: datetime | None
    opened_at: datetime | None


def stripe_dispute_update(obj: dict) -> DisputeUpdate:
    """A Stripe dispute object (webhook `data.object`) as a DisputeUpdate; InvalidInput if it
    lacks what a dispute must carry."""
    details = obj.get("evidence_details") if isinstance(obj.get("evidence_details"), dict) else {}
    amount = obj.get("amount")
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        raise InvalidInput("The dispute has no id.", code="dispute.invalid")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput("The dispute has no positive amount.", code="dispute.invalid")
    status = obj.get("status")
    if status not in DisputeStatus.values:
        raise InvalidInput(f"Unknown dispute status {status!r}.", code="dispute.invalid")
    return DisputeUpdate(
        dispute_id=obj["id"][:100],
        transaction_ids=tuple(
            str(obj[key]) for key in ("payment_intent", "charge") if isinstance(obj.get(key), str)
        ),
        amount_cents=amount,
        currency=str(obj.get("currency") or "usd")[:3].lower(),
        reason=str(obj.get("reason") or "general")[:100],
        status=status,
        evidence_due_by=_from_unix(details.get("due_by")),
        opened_at=_from_unix(obj.get("created")),
    )


def _from_unix(value) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def apply_gateway_dispute(
    *, update: DisputeUpdate, gateway: str, actor: Actor
) -> tuple[Dispute | None, str]:
    """Open or update the dispute a gateway reported. Returns the dispute (None when no charge
    of ours matches) and a sentence of what happened."""
    with service_transaction(actor, reason=f"Dispute {update.dispute_id} reported by {gateway}"):
        dispute = (
            Dispute.objects.select_for_update()
            .filter(gateway=gateway, gateway_dispute_id=update.dispute_id)
            .first()
        )
        if dispute is None:
            payment = (
                Payment.objects.filter(
                    gateway=gateway,
                    kind=PaymentKind.CHARGE,
                    status=PaymentStatus.SUCCEEDED,
                    transaction_id__in=[tid for tid in update.transaction_ids if tid],
                )
                .select_related("invoice__order")
                .first()
            )
            if payment is None:
                return None, (
                    f"Dispute {update.dispute_id} names no charge of ours "
                    f"({', '.join(update.transaction_ids) or 'no transaction id'})."
                )
            dispute = _open(
                payment=payment,
                gateway=gateway,
                gateway_dispute_id=update.dispute_id,
                amount_cents=update.amount_cents,
                currency=update.currency,
                reason=update.reason,
                status=update.status,
                evidence_due_by=update.evidence_due_by,
                opened_at=update.opened_at,
                entered_by=actor.label,
            )
            return dispute, (
                f"Dispute opened on {payment.invoice.order.number}"
                + (
                    f", evidence due {dispute.evidence_due_by:%Y-%m-%d}"
                    if dispute.evidence_due_by
                    else ""
                )
                + ": gather the refund policy, signed agreements and proof of payment."
            )
        if dispute.status in CLOSED:
            return dispute, f"Dispute {dispute.gateway_dispute_id} is already closed."
        changed = []
        if dispute.status != update.status and dispute_transitions.can(
            dispute.status, update.status
        ):
            dispute.status = update.status
            changed.append(f"status {update.status}")
            if update.status in CLOSED:
                dispute.closed_at = timezone.now()
        if update.evidence_due_by and dispute.evidence_due_by != update.evidence_due_by:
            dispute.evidence_due_by = update.evidence_due_by
            changed.append(f"evidence due {update.evidence_due_by:%Y-%m-%d}")
        if dispute.amount_cents != update.amount_cents:
            dispute.amount_cents = update.amount_cents
            changed.append("amount")
        if dispute.reason != update.reason:
            dispute.reason = update.reason
            changed.append(f"reason {update.reason}")
        if changed:
            dispute.save()
        return dispute, (
            f"Dispute {dispute.gateway_dispute_id} updated: {', '.join(changed)}."
            if changed
            else f"Dispute {dispute.gateway_dispute_id}: nothing changed."
        )


def _open(*, payment: Payment, entered_by: str, opened_at=None, **fields) -> Dispute:
    dispute = Dispute.objects.create(
        payment=payment,
        opened_at=opened_at or timezone.now(),
        entered_by_label=entered_by,
        **fields,
    )
    emit("dispute.opened", subject=dispute)
    return dispute


def enter_chargeback(
    *,
    payment: Payment,
    case_number: str,
    amount_cents: int,
    reason: str,
    evidence_due_by: datetime | None,
    actor: Actor,
    note: str = "",
) -> Dispute:
    """A chargeback the NMI processor notified the clinic of, entered by a billing admin."""
    case_number = (case_number or "").strip()
    if not case_number:
        raise InvalidInput("Enter the processor's case number.", code="dispute.case_required")
    reason = require_reason(reason, prompt="Say the chargeback's reason code or words")
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise InvalidInput("The disputed amount must be more than zero.", code="dispute.amount")
    with service_transaction(actor, reason=f"Chargeback {case_number} entered"):
        payment = Payment.objects.select_for_update().select_related("invoice").get(pk=payment.pk)
        if payment.kind != PaymentKind.CHARGE or payment.status != PaymentStatus.SUCCEEDED:
            raise StateConflict(
                "Only a successful charge can be disputed.", code="dispute.not_a_charge"
            )
        if payment.gateway != Gateway.NMI:
            raise StateConflict(
                "Stripe reports its disputes itself (they appear here from its webhooks); "
                "enter only NMI chargebacks by hand.",
                code="dispute.reported_by_gateway",
            )
        if amount_cents > payment.amount_cents:
            raise InvalidInput(
                f"The disputed amount cannot exceed the charge ({payment.amount_cents} cents).",
                code="dispute.amount",
            )
        if Dispute.objects.filter(gateway=payment.gateway, gateway_dispute_id=case_number).exists():
            raise StateConflict(
                f"Chargeback {case_number} is already entered.", code="dispute.already_entered"
            )
        return _open(
            payment=payment,
            gateway=payment.gateway,
            gateway_dispute_id=case_number[:100],
            amount_cents=amount_cents,
            currency=payment.currency,
            reason=reason[:100],
            status=DisputeStatus.NEEDS_RESPONSE,
            evidence_due_by=evidence_due_by,
            entered_by=actor.label,
            note=note,
        )


def get_dispute(dispute_id: int) -> Dispute:
    dispute = (
        Dispute.objects.select_related("payment__invoice__order__patient")
        .filter(pk=dispute_id)
        .first()
    )
    if dispute is None:
        raise NotFound("No dispute with that id.", code="dispute.not_found")
    return dispute
