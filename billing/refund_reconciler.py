"""The refund janitor (beat every 3 minutes, and `manage.py reconcile_refunds`): asks the
gateway about every refund of ours whose outcome we do not know yet. It never refunds.

- A `RefundAttempt` left PENDING (the process died, or the gateway's answer was lost, between
  the call and our commit): found at the gateway, it is recorded as if the answer had arrived;
  not found, no money moved, so the attempt fails and CS may refund again.
- A refund the gateway answered `pending` (its REFUND payment row is PENDING): once the gateway
  says it succeeded or failed, that is recorded exactly as the gateway's webhook would have it
  (`billing.refund_updates`), so it settles even where no webhook reaches the app.

Safe to run concurrently, and beside the webhooks: every recording re-checks the rows under
their locks, so each answer is recorded once.
"""

from contextlib import suppress
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from billing.models import Payment, RefundAttempt
from billing.refund_updates import apply_gateway_refund
from billing.refunds import complete_attempt, fail_attempt
from billing.states import PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.kernel.actors import Actor
from emr.kernel.errors import IntegrationFailed
from integrations.gateways import registry
from integrations.gateways.base import GatewayError, RefundStatus


def reconcile_refunds(*, actor: Actor | None = None, older_than: timedelta | None = None) -> int:
    """Resolve what is at least `older_than` old: attempts left PENDING (by default after
    REFUND_RECONCILE_AFTER_SECONDS) and refunds still pending at the gateway (after
    PENDING_REFUND_CHECK_AFTER_SECONDS). Returns how many were resolved."""
    actor = actor or Actor.system("refund-reconciler")
    stale = RefundAttempt.objects.filter(
        status=RefundAttemptStatus.PENDING,
        created_at__lte=_cutoff(older_than, settings.REFUND_RECONCILE_AFTER_SECONDS),
    )
    resolved = sum(_reconcile_attempt(pk, actor) for pk in stale.values_list("id", flat=True))
    pending = Payment.objects.filter(
        kind=PaymentKind.REFUND,
        status=PaymentStatus.PENDING,
        refund_attempt__isnull=False,  # a refund made outside the app has no reference to ask by
        created_at__lte=_cutoff(older_than, settings.PENDING_REFUND_CHECK_AFTER_SECONDS),
    )
    resolved += sum(_settle_pending(pk, actor) for pk in pending.values_list("id", flat=True))
    return resolved


def _cutoff(older_than: timedelta | None, default_seconds: int):
    age = timedelta(seconds=default_seconds) if older_than is None else older_than
    return timezone.now() - age


def _reconcile_attempt(attempt_id: int, actor: Actor) -> bool:
    # Two reconcilers may ask the gateway about the same attempt; only one records the answer,
    # because complete_attempt and fail_attempt re-check the status under the attempt's lock.
    # The age threshold (longer than the gateway timeout) keeps a request still in flight from
    # being declared missing.
    attempt = RefundAttempt.objects.select_related("charge").get(pk=attempt_id)
    try:
        found = registry.gateway_for(attempt.gateway).find_refund(
            transaction_id=attempt.charge.transaction_id, reference=str(attempt.reference)
        )
    except GatewayError:
        return False  # the gateway cannot answer now; the next run asks again
    if found is None:
        fail_attempt(
            attempt=attempt,
            code="refund.gateway_failed",
            message="The gateway has no record of this refund: no money moved. "
            "It can be tried again.",
            actor=actor,
        )
        return True
    # A refund the gateway reports as failed raises after complete_attempt recorded it.
    with suppress(IntegrationFailed):
        complete_attempt(attempt=attempt, result=found, actor=actor)
    return True


def _settle_pending(refund_id: int, actor: Actor) -> bool:
    refund = Payment.objects.select_related("refund_of", "refund_attempt").get(pk=refund_id)
    reference = str(refund.refund_attempt.reference)
    try:
        found = registry.gateway_for(refund.gateway).find_refund(
            transaction_id=refund.refund_of.transaction_id, reference=reference
        )
    except GatewayError:
        return False  # the gateway cannot answer now; the next run asks again
    if found is None or found.status == RefundStatus.PENDING:
        return False  # still on its way (or not found by its reference: asked again next run)
    apply_gateway_refund(result=found, gateway=refund.gateway, reference=reference, actor=actor)
    return True
