"""Refunds as the gateway reports them afterwards: a pending refund settling or failing, a
refund our crashed process never recorded, and a refund made outside the app.

The rule for news from the gateway: record the money as it is, never move an order's status
on the gateway's word alone except to finish a refund the app itself started.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from billing.models import GatewayEvent, Payment, RefundAttempt
from billing.refunds import apply_settled_refund, complete_attempt, create_refund_row
from billing.states import PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.kernel.actors import Actor
from emr.kernel.services import service_transaction
from emr.workflows.outbox import emit
from integrations.gateways.base import RefundResult, RefundStatus
from orders.services import lock_order

OUTSIDE_THE_APP = (
    "Refunded outside the app (in the gateway's dashboard). The order's status was not changed: "
    "check whether it should be cancelled or refunded in the app."
)
FAILED_AFTER_SETTLING = (
    "The gateway reported this refund failed after it had succeeded: the patient may not have "
    "their money. Escalate to billing/admin operations."
)


@dataclass(frozen=True)
class Applied:
    """What the app did with the gateway's news, and whether a person must look at it."""

    note: str
    needs_review: bool = False

    @property
    def outcome(self) -> str:
        """What the gateway event that brought the news is recorded as."""
        if self.needs_review:
            return GatewayEvent.Outcome.NEEDS_REVIEW
        return GatewayEvent.Outcome.APPLIED


def apply_gateway_refund(
    *, result: RefundResult, gateway: str, reference: str, actor: Actor
) -> Applied:
    """Bring our records in line with one refund the gateway reports."""
    known = Payment.objects.filter(
        gateway=gateway, kind=PaymentKind.REFUND, transaction_id=result.refund_id
    ).first()
    if known is not None:
        return _settle(payment=known, result=result, actor=actor)
    attempt = _attempt_for(reference)
    if attempt is not None:
        if attempt.status == RefundAttemptStatus.PENDING:
            complete_attempt(attempt=attempt, result=result, actor=actor)
            return Applied("completed the app's pending refund attempt")
        return Applied("already recorded by the app")
    return _record_outside_refund(result=result, gateway=gateway, actor=actor)


def _attempt_for(reference: str) -> RefundAttempt | None:
    try:
        return RefundAttempt.objects.filter(reference=reference).first() if reference else None
    except ValidationError:  # not a UUID: not one of ours
        return None


def _settle(*, payment: Payment, result: RefundResult, actor: Actor) -> Applied:
    with service_transaction(actor, reason=f"Gateway reports refund {result.status}"):
        order = lock_order(payment.invoice.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if result.status == RefundStatus.SUCCEEDED and payment.status == PaymentStatus.PENDING:
            payment.status = PaymentStatus.REFUNDED
            payment.save()
            apply_settled_refund(order=order, refund=payment, actor=actor)
            return Applied("pending refund settled")
        if result.status == RefundStatus.FAILED and payment.status != PaymentStatus.FAILED:
            settled_before = payment.status == PaymentStatus.REFUNDED
            payment.status = PaymentStatus.FAILED
            payment.failure_message = (result.failure_reason or "refund failed")[:300]
            if settled_before:
                payment.needs_review = True
                payment.review_note = FAILED_AFTER_SETTLING
                order.refunded_cents -= payment.amount_cents
                order.save(update_fields=["refunded_cents", "updated_at"])
            payment.save()
            emit("order.updated", subject=order, actor=actor)
            return Applied(
                FAILED_AFTER_SETTLING if settled_before else "refund failed", settled_before
            )
    return Applied("no change")


def _record_outside_refund(*, result: RefundResult, gateway: str, actor: Actor) -> Applied:
    charge = Payment.objects.filter(
        gateway=gateway,
        kind=PaymentKind.CHARGE,
        status=PaymentStatus.SUCCEEDED,
        transaction_id=result.transaction_id,
    ).first()
    if charge is None:
        return Applied("ignored: the refunded payment is not one of ours")
    with service_transaction(actor, reason="Refund made outside the app"):
        order = lock_order(charge.invoice.order_id)
        refund = create_refund_row(
            charge=charge,
            result=result,
            amount_cents=result.amount_cents,
            currency=result.currency or charge.currency,
            needs_review=True,
            review_note=OUTSIDE_THE_APP,
        )
        if refund.status == PaymentStatus.REFUNDED:
            order.refunded_cents += refund.amount_cents
            order.save(update_fields=["refunded_cents", "updated_at"])
        emit("payment.refunded", subject=refund, actor=actor)
        emit("order.updated", subject=order, actor=actor)
    return Applied(OUTSIDE_THE_APP, needs_review=True)
