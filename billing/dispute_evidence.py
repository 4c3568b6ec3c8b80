"""Submitting a Stripe dispute's evidence, once.

    submit_evidence(dispute=..., build_packet=lambda: evidence_packet.render(order), actor=...)

1. Under the dispute's lock: refuse what cannot be submitted (an NMI chargeback: its packet is
   downloaded for the processor's portal; a closed dispute); answer a submission already made
   with itself (nothing is sent again); refuse a second request while one is being sent
   (`dispute.evidence_in_progress`). Otherwise the `EvidenceSubmission` row is committed, with
   the exact packet (built once) and the text fields, before any gateway call.
2. Outside any transaction: upload the packet (Files API, purpose dispute_evidence) and update
   the dispute with the evidence and `submit`, each with an idempotency key made of the
   submission's reference, so repeating them makes Stripe replay its answer instead of acting
   again. The file id is committed as soon as it is known.
3. Record SUBMITTED and the dispute's new status.

An answer lost in step 2 leaves the submission PENDING; the janitor
(`resume_evidence_submissions`, beat every 3 minutes) or a retry by staff after the lease
repeats the same requests with the same keys.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from billing.models import Dispute, EvidenceSubmission, PolicyAcknowledgement
from billing.policies import versions_of
from billing.states import EvidenceStatus, Gateway, dispute_transitions
from emr.kernel.actors import Actor
from emr.kernel.errors import IntegrationFailed, StateConflict
from emr.kernel.services import service_transaction
from integrations.gateways.base import GatewayError, GatewayNotConfigured, OutcomeUnknown
from integrations.gateways.registry import gateway_for

# The packet answers each of these (Stripe's evidence fields that take a file).
FILE_FIELDS = ("receipt", "service_documentation", "customer_communication", "uncategorized_file")
JANITOR = Actor.system("evidence-janitor")


def lease() -> timedelta:
    """How long a submission being sent is left to its sender before a retry may take it."""
    return timedelta(seconds=getattr(settings, "DISPUTE_EVIDENCE_LEASE_SECONDS", 120))


def submit_evidence(
    *,
    dispute: Dispute,
    build_packet: Callable[[], object],
    actor: Actor,
) -> EvidenceSubmission:
    """Send the dispute's evidence to Stripe once; the submission as it stands after."""
    submission = _claim(dispute=dispute, build_packet=build_packet, actor=actor)
    if submission.status == EvidenceStatus.SUBMITTED:
        return submission
    return _send(submission, actor=actor)


def _claim(*, dispute: Dispute, build_packet, actor: Actor) -> EvidenceSubmission:
    with service_transaction(actor, reason=f"Evidence of dispute {dispute.gateway_dispute_id}"):
        dispute = (
            Dispute.objects.select_for_update(of=("self",))
            .select_related("payment__invoice__order__patient")
            .get(pk=dispute.pk)
        )
        submission = EvidenceSubmission.objects.select_for_update().filter(dispute=dispute).first()
        if submission is not None and submission.status == EvidenceStatus.SUBMITTED:
            return submission
        if dispute.gateway != Gateway.STRIPE:
            raise StateConflict(
                f"{dispute.get_gateway_display()} takes no evidence through its API: download "
                "the evidence packet and upload it in the processor's portal.",
                code="dispute.download_only",
            )
        if not dispute.is_open:
            raise StateConflict(
                f"The dispute is {dispute.get_status_display().lower()}: evidence can no longer "
                "be submitted.",
                code="dispute.closed",
            )
        now = timezone.now()
        if submission is None:
            packet = build_packet()
            submission = EvidenceSubmission.objects.create(
                dispute=dispute,
                packet=packet.content,
                packet_sha256=packet.sha256,
                evidence=evidence_text(dispute),
                requested_by_label=actor.label,
                door=actor.door,
            )
        elif (
            submission.status == EvidenceStatus.PENDING
            and submission.claimed_at is not None
            and submission.claimed_at > now - lease()
        ):
            raise StateConflict(
                "This dispute's evidence is being sent to Stripe right now. Wait a minute and "
                "look again.",
                code="dispute.evidence_in_progress",
            )
        submission.status = EvidenceStatus.PENDING
        submission.claimed_at = now
        submission.attempts += 1
        submission.save()
        return submission


def evidence_text(dispute: Dispute) -> dict[str, str]:
    """The text fields Stripe reads beside the packet."""
    order = dispute.payment.invoice.order
    patient = order.patient
    items = ", ".join(f"{item.description} x {item.quantity}" for item in order.items.all())
    text = {
        "customer_name": patient.full_name,
        "customer_email_address": patient.email,
        "product_description": f"Order {order.number}: {items}"[:20000],
        "uncategorized_text": (
            f"The attached packet is the clinic's record of order {order.number}: the order, "
            "the refund policy and the patient's acceptance of it, sessions used, every message "
            "sent to the patient, proof of payment, refunds and the audit trail."
        ),
    }
    acceptances = [
        f"“{ack.policy_version.policy.name}” v{ack.policy_version.version} accepted "
        f"{ack.acknowledged_at:%Y-%m-%d %H:%M} UTC through {ack.get_channel_display()}"
        + (f" from IP {ack.ip_address}" if ack.ip_address else "")
        for ack in PolicyAcknowledgement.objects.filter(order=order).select_related(
            "policy_version__policy"
        )
    ]
    if versions_of(order):
        text["refund_policy_disclosure"] = (
            "The refund terms were shown before payment and accepted: " + "; ".join(acceptances)
            if acceptances
            else "The order was sold under the refund terms in the attached packet."
        )
    return text


def _send(submission: EvidenceSubmission, *, actor: Actor) -> EvidenceSubmission:
    dispute = submission.dispute
    gateway = gateway_for(dispute.gateway)
    key = str(submission.reference)
    try:
        if not submission.file_id:
            file_id = gateway.upload_dispute_evidence(
                content=bytes(submission.packet),
                filename=f"evidence-{dispute.payment.invoice.order.number}.pdf",
                reference=f"{key}-file",
            )
            submission = _record(submission, actor=actor, file_id=file_id)
        fields = dict.fromkeys(FILE_FIELDS, submission.file_id)
        if "refund_policy_disclosure" in submission.evidence:
            fields["refund_policy"] = submission.file_id
        status = gateway.submit_dispute_evidence(
            dispute_id=dispute.gateway_dispute_id,
            evidence={**submission.evidence, **fields},
            reference=f"{key}-submit",
        )
    except OutcomeUnknown as error:
        _record(submission, actor=actor, error=("dispute.evidence_outcome_unknown", error.message))
        raise IntegrationFailed(
            f"{error.message} The evidence is sent again automatically within minutes, and "
            "Stripe will not take it twice.",
            code="dispute.evidence_outcome_unknown",
        ) from error
    except GatewayNotConfigured as error:
        _record(submission, actor=actor, error=("dispute.gateway_not_configured", error.message))
        raise IntegrationFailed(error.message, code="dispute.gateway_not_configured") from error
    except GatewayError as error:
        _record(
            submission,
            actor=actor,
            error=("dispute.evidence_refused", error.message),
            status=EvidenceStatus.FAILED,
        )
        raise IntegrationFailed(error.message, code="dispute.evidence_refused") from error
    return _record(submission, actor=actor, status=EvidenceStatus.SUBMITTED, dispute_status=status)


def _record(
    submission: EvidenceSubmission,
    *,
    actor: Actor,
    file_id: str = "",
    error: tuple[str, str] | None = None,
    status: str | None = None,
    dispute_status: str | None = None,
) -> EvidenceSubmission:
    reason = f"Evidence of dispute {submission.dispute.gateway_dispute_id}"
    with service_transaction(actor, reason=reason):
        submission = (
            EvidenceSubmission.objects.select_for_update()
            .select_related("dispute__payment__invoice__order")
            .get(pk=submission.pk)
        )
        if submission.status == EvidenceStatus.SUBMITTED:
            return submission
        if file_id:
            submission.file_id = file_id
        if error:
            submission.error_code, submission.error_message = error[0], error[1][:2000]
        if status:
            submission.status = status
        if status == EvidenceStatus.SUBMITTED:
            submission.submitted_at = timezone.now()
            submission.error_code = submission.error_message = ""
            dispute = Dispute.objects.select_for_update().get(pk=submission.dispute_id)
            if dispute_status and dispute_transitions.can(dispute.status, dispute_status):
                dispute.status = dispute_status
                dispute.save()
        submission.save()
        return submission


def resume_evidence_submissions() -> int:
    """The janitor: send again every submission whose answer was lost (PENDING past its lease).
    The same idempotency keys make Stripe replay what it did. Returns how many were resolved."""
    stale = EvidenceSubmission.objects.filter(
        status=EvidenceStatus.PENDING, claimed_at__lt=timezone.now() - lease()
    ).values_list("dispute_id", flat=True)
    resolved = 0
    for dispute_id in list(stale):
        dispute = Dispute.objects.get(pk=dispute_id)
        try:
            submission = submit_evidence(dispute=dispute, build_packet=_never_built, actor=JANITOR)
        except (IntegrationFailed, StateConflict):
            continue  # still unknown, refused, or taken by someone else: recorded on the row
        resolved += submission.status == EvidenceStatus.SUBMITTED
    return resolved


def _never_built():
    raise AssertionError("a PENDING submission already holds its packet")
